#!/usr/bin/env bash
# Installs the Debian packages listed in deploy/packages/*.txt that are missing.
# Run by `npm test` and `npm start` (through scripts/ensure-host.ts); safe to run again.
# As root on Debian it installs them; anywhere else it prints exactly what to install.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wanted=()
for list in "$here"/packages/*.txt; do
  while read -r pkg _; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    wanted+=("$pkg")
  done <"$list"
done
missing=()
for pkg in "${wanted[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "shellwego: missing host packages: ${missing[*]}" >&2
  echo "shellwego: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "shellwego: installing host packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
