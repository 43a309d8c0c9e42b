#!/usr/bin/env bash
# make lint's shell half: shellcheck every shell script under tests/, bench/ and scripts/ (those
# with a sh or bash shebang, and the sourced libraries), with the settings of .shellcheckrc.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <({ grep -rlE '^#!.*(bash|sh)' tests bench scripts; ls bench/lib.sh tests/e2e/lib.sh; } | sort -u)
shellcheck "${files[@]}"
echo "shellcheck: ${#files[@]} scripts clean"
