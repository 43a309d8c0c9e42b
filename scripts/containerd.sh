#!/usr/bin/env bash
# Prints a directory holding `containerd` and `ctr` of the containerd release asked for:
#   1.6  Debian 12's own package (/usr/bin, installed by `make deps`)
#   1.7  Debian 13 (trixie)'s package
#   2.1  Debian unstable (sid)'s package
# The newer ones are fetched with `apt-get download` through a private sources list and lists
# directory, and unpacked with `dpkg -x` into $LCOW_CACHE/containerd/<version>/: the system's
# packages are never replaced. Usage: scripts/containerd.sh 1.6|1.7|2.1
set -euo pipefail
want=${1:?usage: containerd.sh 1.6|1.7|2.1}
cache=${LCOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lcow}/containerd
log() { printf 'containerd: %s\n' "$*" >&2; }

case $want in
  1.6) command -v containerd >/dev/null || { log "no containerd: run 'make deps'"; exit 1; }
       dirname "$(command -v containerd)"; exit 0 ;;
  1.7) suite=trixie ;;
  2.1) suite=sid ;;
  *) log "unknown release '$want' (1.6, 1.7 or 2.1)"; exit 2 ;;
esac

# A cached unpack is used as it is.
for d in "$cache/$want".*/usr/bin; do
  if [ -x "$d/containerd" ] && [ -x "$d/ctr" ]; then echo "$d"; exit 0; fi
done

apt_dir=$cache/apt-$suite
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
mirror=http://deb.debian.org/debian
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" > "$apt_dir/sources.list"
apt=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir" -o Dir::Cache::archives="$apt_dir/archives"
     -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
log "reading Debian $suite's package lists"
apt-get "${apt[@]}" update -qq >&2
version=$(apt-cache "${apt[@]}" madison containerd | awk -v s="$suite" '$0 ~ s {print $3; exit}')
case $version in
  "$want".*) ;;
  *) log "Debian $suite has containerd '${version:-none}', not $want.x"; exit 1 ;;
esac
upstream=${version%%[~+-]*}
dest=$cache/$upstream
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
log "downloading containerd $version from $suite"
(cd "$work" && apt-get "${apt[@]}" download "containerd=$version" >&2)
rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
dpkg -x "$work"/containerd_*.deb "$dest.tmp"
if [ ! -x "$dest.tmp/usr/bin/containerd" ] || [ ! -x "$dest.tmp/usr/bin/ctr" ]; then
  log "the package has no usr/bin/containerd and ctr"; exit 1
fi
rm -rf "$dest"; mv "$dest.tmp" "$dest"
log "containerd $("$dest/usr/bin/containerd" --version | awk '{print $3}') in $dest"
echo "$dest/usr/bin"
