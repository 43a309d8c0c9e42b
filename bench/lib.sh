# shellcheck shell=bash
# Shared by the bench/*-l2 scripts (sourced, not run).

# median: the median of the numbers on stdin, one per line ("n/a" when there are none).
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

# hung_boot REASON: a hung boot usually means this L1 hangs every guest (tests/rig/README.md).
# Inside the rig, ask for a fresh L1 and exit, rather than report a half-empty table;
# elsewhere return, and the caller counts the hang.
hung_boot() {
  if [ -n "${RIG_RERUN_FILE:-}" ]; then
    echo "bench: $1" > "$RIG_RERUN_FILE"; exit 1
  fi
}
