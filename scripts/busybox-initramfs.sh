#!/usr/bin/env bash
# busybox-initramfs.sh OUT INIT: build a gzip cpio initramfs holding static busybox and INIT as
# /init (plus /dev/console and /dev/null), without root. Rebuilt only when INIT or busybox is
# newer than OUT. Prints OUT.
set -euo pipefail
out=${1:?usage: busybox-initramfs.sh OUT INIT}; init=${2:?usage: busybox-initramfs.sh OUT INIT}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /bin/busybox ] || { echo "busybox-initramfs: /bin/busybox missing: run 'make deps'" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
if [ ! -f "$out" ] || [ "$init" -nt "$out" ] || [ /bin/busybox -nt "$out" ]; then
  python3 "$root/scripts/mkcpio.py" "$out" <<SPEC
dir /bin 0755
dir /dev 0755
dir /proc 0755
dir /sys 0755
dir /tmp 1777
nod /dev/console 0600 c 5 1
nod /dev/null 0666 c 1 3
file /bin/busybox /bin/busybox 0755
file /init $init 0755
SPEC
fi
echo "$out"
