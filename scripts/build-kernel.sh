#!/usr/bin/env bash
# Build (or fetch from cache) a kernel from Debian's linux-source-6.1 and kernel-config/.
# Usage: scripts/build-kernel.sh guest|rig   -> prints the path of vmlinux on stdout.
# The cache lives outside the repository: $LCOW_CACHE (default ~/.cache/lcow), keyed by a hash
# of the fragments, this script and the source package version.
set -euo pipefail

kind=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cfgdir=$root/kernel-config
cache=${LCOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lcow}
log() { printf 'kernel: %s\n' "$*" >&2; }

fragments=""
for f in "$cfgdir"/*.config; do
  [ "$f" = "$cfgdir/rig-host.config" ] || fragments="$fragments $f"
done
case "$kind" in
  guest) ;;
  rig) fragments="$fragments $cfgdir/rig-host.config" ;;
  *) echo "usage: $0 guest|rig" >&2; exit 2 ;;
esac
fragments=${fragments# }

"$root/scripts/deps.sh" kernel
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { echo "$kind $srcver"; cat "$0"; for f in $fragments; do echo "== $(basename "$f")"; cat "$f"; done; } \
       | sha256sum | cut -c1-16)
out=$cache/kernel/$kind-$key
if [ -f "$out/vmlinux" ]; then
  echo "$out/vmlinux"
  exit 0
fi

mkdir -p "$cache/kernel" "$cache/src" "$cache/build"
# One build at a time per cache: two kernels at once would only fight over 2 cores.
exec 9>"$cache/kernel/.lock"
flock 9
[ -f "$out/vmlinux" ] && { echo "$out/vmlinux"; exit 0; }

src=$cache/src/linux-source-6.1-$srcver
if [ ! -f "$src/.extracted" ]; then
  log "extracting /usr/src/linux-source-6.1.tar.xz"
  rm -rf "$src" && mkdir -p "$src"
  tar -C "$src" --strip-components=1 -xf /usr/src/linux-source-6.1.tar.xz
  touch "$src/.extracted"
fi

build=$cache/build/$kind-$key
mkdir -p "$build"
blog=$build/build.log
log "building $kind kernel ($srcver, key $key); log: $blog"
start=$(date +%s)
{
  make -C "$src" O="$build" ARCH=x86_64 tinyconfig
  # shellcheck disable=SC2086
  "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" $fragments
  make -C "$src" O="$build" ARCH=x86_64 olddefconfig
} >"$blog" 2>&1 || { tail -30 "$blog" >&2; log "configuration failed"; exit 1; }

# Every option a fragment asks for must survive olddefconfig, or the build is wrong.
bad=0
for f in $fragments; do
  # shellcheck disable=SC2094 # reads the fragment, greps the .config: not the same file
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) want=$line ;;
      "# CONFIG_"*" is not set") want=$line ;;
      *) continue ;;
    esac
    if [[ $want == "# "* ]]; then
      opt=${want#\# }; opt=${opt%% *}
      if grep -q "^$opt=" "$build/.config"; then log "$(basename "$f"): $opt should be off"; bad=1; fi
    elif ! grep -qxF "$want" "$build/.config"; then
      log "$(basename "$f"): $want not in the final .config (got: $(grep "^${want%%=*}=" "$build/.config" || echo unset))"
      bad=1
    fi
  done < "$f"
done
[ $bad = 0 ] || { log "fragments do not apply cleanly to $srcver"; exit 1; }

targets=vmlinux
[ "$kind" = guest ] && targets="vmlinux bzImage"
jobs=$(nproc)
# shellcheck disable=SC2086 # one make target per word
if ! make -C "$src" O="$build" ARCH=x86_64 -j"$jobs" $targets >>"$blog" 2>&1; then
  tail -40 "$blog" >&2
  log "build failed; full log: $blog"
  exit 1
fi

tmp=$out.tmp.$$
rm -rf "$tmp" && mkdir -p "$tmp"
cp "$build/vmlinux" "$build/.config" "$tmp/"
[ "$kind" = guest ] && cp "$build/arch/x86/boot/bzImage" "$tmp/"
echo "$srcver" > "$tmp/source-version"
mv "$tmp" "$out"
log "built $kind kernel in $(( $(date +%s) - start )) s: $(du -h "$out/vmlinux" | cut -f1) vmlinux"
# Keep the build tree only for the newest key of each kind (incremental rebuilds).
for d in "$cache/build/$kind"-*; do [ "$d" = "$build" ] || rm -rf "$d"; done
echo "$out/vmlinux"
