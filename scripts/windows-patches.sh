#!/usr/bin/env bash
# scripts/windows-patches.sh: prints the cargo --config arguments that Windows builds add, after
# making (once, under target/windows-patches/) the patched copies they point at. Linux builds
# never use them, and nothing of the crates' is committed: each copy is the registry's own
# crate with the smallest change, remade when this script changes.
#
# - vm-memory 0.18.0: its default `rawfd` feature is a compile_error! on Windows, and
#   virtio-queue, virtio-vsock and linux-loader turn it on. The copy makes `rawfd` do nothing
#   off unix, which is what upstream proposes (rust-vmm/vm-memory#373, moved to
#   rust-vmm/rust-vmm#63: "vm-memory: Make the 'rawfd' feature a NOP on windows").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/target/windows-patches
stamp=$(sha256sum "$0" | cut -c1-16)

# patch NAME VERSION: the registry's copy of NAME-VERSION (fetched if absent) to $root.
patch_crate() {
  local name=$1 version=$2 src dst
  dst=$root/$name-$version
  if [ -e "$dst/.lcow-patched-$stamp" ]; then
    return
  fi
  src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "$name-$version" | head -n1)
  if [ -z "$src" ]; then
    cargo fetch --target x86_64-pc-windows-gnu >&2
    src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "$name-$version" | head -n1)
  fi
  [ -n "$src" ] || { echo "windows-patches: $name $version is not in the cargo registry" >&2; exit 1; }
  rm -rf "$dst.new"
  mkdir -p "$root"
  cp -r "$src" "$dst.new"
  case $name in
    vm-memory)
      grep -rl 'feature = "rawfd"' "$dst.new/src" |
        xargs sed -i 's/feature = "rawfd"/all(feature = "rawfd", unix)/g'
      ;;
  esac
  touch "$dst.new/.lcow-patched-$stamp"
  rm -rf "$dst"
  mv "$dst.new" "$dst"
  echo "windows-patches: made $dst" >&2
}

patch_crate vm-memory 0.18.0
printf -- '--config\npatch.crates-io.vm-memory.path="%s"\n' "$root/vm-memory-0.18.0"
