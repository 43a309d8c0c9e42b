# shellcheck shell=bash
# tests/e2e/lib.sh: a private containerd (Debian's 1.6, or the one in $E2E_CONTAINERD_DIR that
# scripts/containerd.sh unpacked) for the end-to-end tests and benches,
# sourced by tests/e2e/l2 and bench/e2e-l2. Everything lives under $E2E (a tmpfs: containerd's
# overlayfs snapshots cannot sit on the rig's overlayfs root).
#
# e2e_start SHIM_DIR VMM KERNEL INITRD: writes the lcow configuration, starts containerd with
# SHIM_DIR first on its PATH; sets E2E, CTR (array) and E2E_CONTAINERD_PID.
# e2e_stop: stops containerd, kills what is left, unmounts.

e2e_start() {
  local shim_dir=$1 vmm=$2 kernel=$3 initrd=$4
  E2E=$(mktemp -d /tmp/lcow-e2e.XXXXXX)
  mount -t tmpfs -o size=2400m,mode=0755 tmpfs "$E2E"
  cat > "$E2E/lcow.toml" <<TOML
vmm = "$vmm"
kernel = "$kernel"
initramfs = "$initrd"
memory_mib = ${E2E_MEMORY_MIB:-256}
vcpus = ${E2E_VCPUS:-1}
share_protocol = "${E2E_SHARE_PROTOCOL:-virtiofs}"
console_log_dir = "$E2E/consoles"
boot_timeout_secs = ${E2E_BOOT_TIMEOUT:-45}
TOML
  # The CRI plugin only where a segment drives it (E2E_CRI=1): the runtime handler `lcow`, a
  # local pause image (tests/e2e/images pause), no CNI (the pods use the node's network).
  local top='disabled_plugins = ["io.containerd.grpc.v1.cri"]' cri=""
  if [ "${E2E_CRI:-0}" = 1 ]; then
    mkdir -p "$E2E/cni/bin" "$E2E/cni/conf"
    cri="[plugins.\"io.containerd.grpc.v1.cri\"]
  sandbox_image = \"docker.io/local/pause:latest\"
  [plugins.\"io.containerd.grpc.v1.cri\".containerd]
    default_runtime_name = \"lcow\"
  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.lcow]
    runtime_type = \"io.containerd.lcow.v1\"
  [plugins.\"io.containerd.grpc.v1.cri\".cni]
    bin_dir = \"$E2E/cni/bin\"
    conf_dir = \"$E2E/cni/conf\""
    top=""
  fi
  cat > "$E2E/containerd.toml" <<TOML
version = 2
root = "$E2E/root"
state = "$E2E/state"
$top
[grpc]
  address = "$E2E/containerd.sock"
[debug]
  level = "debug"
$cri
TOML
  local cbin=${E2E_CONTAINERD_DIR:+$E2E_CONTAINERD_DIR/}
  PATH="$shim_dir:$PATH" LCOW_CONFIG="$E2E/lcow.toml" \
    "${cbin}containerd" --config "$E2E/containerd.toml" >"$E2E/containerd.log" 2>&1 &
  E2E_CONTAINERD_PID=$!
  CTR=("${cbin}ctr" --address "$E2E/containerd.sock")
  for _ in $(seq 1 300); do
    "${CTR[@]}" version >/dev/null 2>&1 && return 0
    kill -0 "$E2E_CONTAINERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "e2e: containerd did not start; its log:" >&2
  tail -30 "$E2E/containerd.log" >&2
  return 1
}

# vm_ends_since FILE: the end records the shim wrote (`<console_log_dir>/<id>.end`, one line
# "<how> <when>": power-off|reset|guest-panic|vmm-error|signal-N|boot-timeout, then boot|run)
# newer than FILE.
vm_ends_since() {
  find "$E2E/consoles" -name '*.end' -newer "$1" -exec cat {} + 2>/dev/null
}

# rig_fault FILE: which of the rig's guest faults the end records newer than FILE show:
# "hang" (an agent that never answered), "boot" (a reset or panic before it answered),
# "midrun" (a reset or panic after), or nothing. Typed words, not the shim's log text.
rig_fault() {
  local how when kind=""
  while read -r how when; do
    case "$how $when" in
      "boot-timeout boot") echo hang; return ;;
      "reset boot" | "guest-panic boot") kind=boot ;;
      "reset run" | "guest-panic run") [ -n "$kind" ] || kind=midrun ;;
    esac
  done < <(vm_ends_since "$1")
  echo "$kind"
}

# e2e_task_api: the task API services containerd called, as the shim logged them.
e2e_task_api() {
  grep -o 'containerd calls the task API [A-Za-z0-9.]*' "$E2E/containerd.log" | awk '{print $NF}' | sort -u | tr '\n' ' '
}

# e2e_leftovers: prints what a finished container may have left behind (nothing, normally).
e2e_leftovers() {
  pgrep -a lcow-vmm
  pgrep -af containerd-shim-lcow-v1
  grep -E ' /run/lcow' /proc/self/mountinfo | cut -d' ' -f5
  find /run/lcow -mindepth 1 -maxdepth 1 2>/dev/null
}

e2e_stop() {
  [ -n "${E2E_CONTAINERD_PID:-}" ] && kill "$E2E_CONTAINERD_PID" 2>/dev/null && wait "$E2E_CONTAINERD_PID" 2>/dev/null
  pkill -KILL -f containerd-shim-lcow-v1 2>/dev/null
  pkill -KILL lcow-vmm 2>/dev/null
  grep -E " ($E2E|/run/lcow)" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  umount -l "$E2E" 2>/dev/null
  rm -rf "$E2E"
}
