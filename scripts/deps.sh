#!/usr/bin/env bash
# Install the Debian packages a make target needs, only those that are missing.
# Usage: scripts/deps.sh GROUP...   (groups: kernel rig guest fs e2e lint)
set -euo pipefail

declare -A GROUP_PKGS=(
  [kernel]="build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils linux-source-6.1"
  [rig]="busybox-static cpio qemu-system-x86"
  [guest]="libseccomp-dev pkg-config busybox-static python3"
  [fs]="fuse3 file util-linux"
  # containerd 1.6 (Debian 12) for the end-to-end tests, runc as the reference runtime, and what
  # builds the test images offline.
  [e2e]="containerd runc umoci debootstrap busybox-static"
  # make lint: the shell scripts under tests/, bench/ and scripts/.
  [lint]="shellcheck"
)
# Packages that must come from bookworm-backports (RIG.md: QEMU 7.2 livelocks the rig).
declare -A BACKPORTS=([qemu-system-x86]=1)

log() { printf 'deps: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: $*; run 'make deps' as root (apt-get install needs root)"
    exit 1
  fi
}

# Add bookworm-backports with the same mirror and keyring as the existing Debian entry.
ensure_backports() {
  if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    return 0
  fi
  local uri="" key=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    key=$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  elif [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 ~ / bookworm / {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  uri=${uri:-http://deb.debian.org/debian}
  key=${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
  log "adding bookworm-backports ($uri)"
  cat > /etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: $key
SRC
  APT_UPDATED=0
}

APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# QEMU counts as present only when it is the backports version (>= 10).
qemu_ok() {
  installed qemu-system-x86 || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' qemu-system-x86)
  dpkg --compare-versions "$v" ge "1:10.0"
}

missing=() ; missing_bpo=()
for group in "$@"; do
  pkgs=${GROUP_PKGS[$group]:-}
  if [ -z "$pkgs" ]; then log "unknown group '$group' (known: ${!GROUP_PKGS[*]})"; exit 2; fi
  for p in $pkgs; do
    if [ -n "${BACKPORTS[$p]:-}" ]; then
      if [ "$p" = qemu-system-x86 ]; then qemu_ok && continue; else installed "$p" && continue; fi
      missing_bpo+=("$p")
    else
      installed "$p" || missing+=("$p")
    fi
  done
done

[ ${#missing[@]} -eq 0 ] && [ ${#missing_bpo[@]} -eq 0 ] && exit 0
need_root "${missing[@]}" "${missing_bpo[@]}"
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing_bpo[@]} -gt 0 ]; then ensure_backports; fi
apt_update
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [ ${#missing_bpo[@]} -gt 0 ]; then
  log "installing from bookworm-backports: ${missing_bpo[*]}"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing_bpo[@]}" >&2
fi
