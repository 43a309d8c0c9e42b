#!/usr/bin/env bash
# build-guest.sh [--test]: build the static guest agent and the initramfs that boots it (the
# agent as /init and nothing else but /dev/console and empty mount points); print its path.
#
# With --test, also build the test container rootfs (static busybox under /testroot, the
# agent's default rootfs) and print the path of an initramfs that is the agent's archive with
# the rootfs archive appended (the kernel unpacks concatenated archives in turn).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
test=0; [ "${1:-}" = --test ] && test=1
"$root/scripts/deps.sh" guest
out=$root/target/guest; mkdir -p "$out"
triple=x86_64-unknown-linux-gnu

# Static glibc build: only the target artifacts get +crt-static (build scripts and proc macros
# are host artifacts, hence the explicit --target).
(
  cd "$root"
  export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu
  export RUSTFLAGS="-C target-feature=+crt-static"
  nice cargo build --quiet --release -p lcow-agent --target "$triple" >&2
)
agent=$root/target/$triple/release/lcow-agent
if ! file "$agent" | grep -q 'static'; then
  echo "build-guest: $agent is not statically linked" >&2; file "$agent" >&2; exit 1
fi

# The initramfs carries the agent stripped (the unstripped binary keeps the symbols) and
# uncompressed: the guest copies it instead of inflating it, which boots faster than reading
# fewer bytes.
stripped=$out/lcow-agent
if [ ! -f "$stripped" ] || [ "$agent" -nt "$stripped" ]; then
  strip -o "$stripped.tmp" "$agent" && mv "$stripped.tmp" "$stripped"
fi
initramfs=$out/initramfs.cpio
if [ ! -f "$initramfs" ] || [ "$stripped" -nt "$initramfs" ] || [ "$0" -nt "$initramfs" ]; then
  python3 "$root/scripts/mkcpio.py" "$initramfs.tmp" < <(sed "s|@AGENT@|$stripped|" "$root/guest/initramfs/agent.spec")
  mv "$initramfs.tmp" "$initramfs"
fi
[ $test = 0 ] && { echo "$initramfs"; exit 0; }

testroot=$out/testroot.cpio
if [ ! -f "$testroot" ] || [ /bin/busybox -nt "$testroot" ] || [ "$0" -nt "$testroot" ]; then
  {
    cat "$root/guest/initramfs/testroot.spec"
    # One symlink per applet, as `busybox --install -s` would make.
    /bin/busybox --list-full | while read -r applet; do
      case $applet in bin/busybox) continue ;; esac
      echo "slink /testroot/$applet /bin/busybox"
    done
  } | python3 "$root/scripts/mkcpio.py" "$testroot.tmp"
  mv "$testroot.tmp" "$testroot"
fi
combined=$out/initramfs-test.cpio
if [ ! -f "$combined" ] || [ "$initramfs" -nt "$combined" ] || [ "$testroot" -nt "$combined" ]; then
  cat "$initramfs" "$testroot" > "$combined.tmp" && mv "$combined.tmp" "$combined"
fi
echo "$combined"
