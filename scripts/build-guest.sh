#!/usr/bin/env bash
# build-guest.sh [--test]: build the static guest agent and the initramfs that boots it (the
# agent as /init and nothing else but /dev/console and empty mount points); print its path.
#
# With --fs, additionally append the file-share checks (static pjdfstest and lcow-fstest under
# /testroot/usr/bin, their configuration and the users pjdfstest switches to) and print that
# archive's path: initramfs-fs.cpio, for the rig's share tests.
#
# With --test, also build the test container rootfs (static busybox under /testroot, the
# agent's default rootfs) and print the path of an initramfs that is the agent's archive with
# the rootfs archive appended (the kernel unpacks concatenated archives in turn).
#
# With --fstest, only build the static lcow-fstest and print its path (the e2e images carry it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
test=0; fs=0; fstest_only=0
case "${1:-}" in --test) test=1 ;; --fs) test=1; fs=1 ;; --fstest) fstest_only=1 ;; esac
"$root/scripts/deps.sh" guest
out=$root/target/guest; mkdir -p "$out"
triple=x86_64-unknown-linux-gnu

# The static lcow-fstest (guest/fstest, its own workspace); sets $fstest.
build_fstest() {
  (
    cd "$root/guest/fstest"
    # shellcheck disable=SC2030 # only this build gets the flag
    export RUSTFLAGS="-C target-feature=+crt-static"
    nice cargo build --quiet --release --locked --target "$triple" --target-dir "$root/target/fstest" >&2
  )
  fstest=$root/target/fstest/$triple/release/lcow-fstest
  file "$fstest" | grep -q 'static' || { echo "build-guest: $fstest is not static" >&2; exit 1; }
}
if [ $fstest_only = 1 ]; then build_fstest; echo "$fstest"; exit 0; fi

# Static glibc build: only the target artifacts get +crt-static (build scripts and proc macros
# are host artifacts, hence the explicit --target).
(
  cd "$root"
  export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu
  # shellcheck disable=SC2031 # only this build gets the flag
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
[ $fs = 0 ] && { echo "$combined"; exit 0; }

pjd=$out/pjdfstest
strip -o "$pjd" "$("$root/scripts/tool-pjdfstest.sh")"
build_fstest
fsroot=$out/fstools.cpio
python3 "$root/scripts/mkcpio.py" "$fsroot.tmp" <<SPEC
file /testroot/usr/bin/pjdfstest $pjd 0755
file /testroot/usr/bin/lcow-fstest $fstest 0755
file /testroot/etc/pjdfstest.toml $root/tests/fs/pjdfstest.toml 0644
file /testroot/etc/passwd $root/guest/initramfs/passwd 0644
file /testroot/etc/group $root/guest/initramfs/group 0644
file /fsrun $root/guest/fsrun/init 0755
file /testroot/sbin/lcow-fsrun $root/guest/fsrun/run 0755
dir /testroot/mnt 0755
SPEC
mv "$fsroot.tmp" "$fsroot"
fscombined=$out/initramfs-fs.cpio
cat "$combined" "$fsroot" > "$fscombined.tmp" && mv "$fscombined.tmp" "$fscombined"
echo "$fscombined"
