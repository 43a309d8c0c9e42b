#!/usr/bin/env bash
# What `make check-windows` and `make test-windows` need, installed when missing: Debian's mingw
# and wine64 (scripts/deps.sh windows) and rustup's x86_64-pc-windows-gnu standard library.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu
scripts/deps.sh windows
if ! rustup target list --installed | grep -qx "$target"; then
  echo "windows-toolchain: rustup target add $target" >&2
  rustup target add "$target" >&2
fi
