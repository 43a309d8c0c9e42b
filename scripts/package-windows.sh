#!/usr/bin/env bash
# package-windows.sh: build the Windows release programs (x86_64-pc-windows-gnu) and the guest
# kernel and initramfs, and zip them with a sample lcow.toml and the install page into
# dist/lcow-<version>-windows-x86_64.zip; print its path. The programs find the kernel,
# initramfs and lcow-vmm.exe beside containerd-shim-lcow-v1.exe, so the zip unpacks anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf 'package-windows: %s\n' "$*" >&2; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' crates/shim/Cargo.toml | head -n1)
[ -n "$version" ] || { log "no version in crates/shim/Cargo.toml"; exit 1; }
name=lcow-$version-windows-x86_64
scripts/windows-toolchain.sh
log "release build of containerd-shim-lcow-v1.exe, lcow-vmm.exe, lcow-ctl.exe"
scripts/cargo-windows build --release --quiet -p lcow-shim -p lcow-vmm -p lcow-ctl >&2
kernel=$(scripts/build-kernel.sh guest)
initramfs=$(scripts/build-guest.sh)

stage=$root/target/package-windows/$name
rm -rf "$stage"
mkdir -p "$stage"
bin=$root/target/x86_64-pc-windows-gnu/release
for exe in containerd-shim-lcow-v1.exe lcow-vmm.exe lcow-ctl.exe; do
  cp "$bin/$exe" "$stage/"
done
cp "$kernel" "$stage/vmlinux"
cp "$initramfs" "$stage/initramfs.cpio"
cp packaging/windows/lcow.toml "$stage/lcow.toml"
cp docs/windows-install.md "$stage/README.md"
mkdir -p dist
out=$root/dist/$name.zip
python3 scripts/mkzip.py "$out" "$stage" "$name"
log "$out ($(du -h "$out" | cut -f1))"
echo "$out"
