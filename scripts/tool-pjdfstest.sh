#!/usr/bin/env bash
# tool-pjdfstest.sh: build (once, cached outside the repository) a static pjdfstest, the Rust
# POSIX file-system suite from the crate registry, and print its path. The same binary runs on
# the host and inside the guest's busybox test rootfs.
set -euo pipefail
version=0.2.2
cache=${LCOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lcow}
dir=$cache/tools/pjdfstest-$version
bin=$dir/bin/pjdfstest
if [ ! -x "$bin" ]; then
  mkdir -p "$cache/tools"
  echo "tool-pjdfstest: building pjdfstest $version (static) into $dir" >&2
  RUSTFLAGS="-C target-feature=+crt-static" nice cargo install --quiet --locked \
    "pjdfstest@$version" --target x86_64-unknown-linux-gnu --root "$dir" >&2
fi
file "$bin" | grep -q 'static' || { echo "tool-pjdfstest: $bin is not static" >&2; exit 1; }
echo "$bin"
