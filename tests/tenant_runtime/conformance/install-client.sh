#!/usr/bin/env bash
# Installs Backstage's own @backstage/catalog-client, pinned exactly by package.json and
# package-lock.json beside this script, into ~/.cache/backlot/npm/ for the conformance
# tests. A no-op when that exact lock is already installed. Prints the install directory.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${BACKLOT_CACHE_DIR:-$HOME/.cache/backlot}/npm

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || { echo "npm: need root or sudo to install nodejs and npm" >&2; exit 1; }
    as_root=(sudo --non-interactive)
  fi
  echo "npm: installing Debian's nodejs and npm" >&2
  "${as_root[@]}" apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if ((major < 18)); then
  echo "npm: @backstage/catalog-client needs Node 18 or newer, found $(node --version)" >&2
  exit 1
fi

digest=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
target=$cache/catalog-conformance-$digest
if [[ -f $target/.installed ]]; then
  echo "$target"
  exit 0
fi
mkdir -p "$cache"
staging=$(mktemp -d "$cache/.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$staging/"
# The lock pins every version and integrity hash; scripts are not run.
(cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
touch "$staging/.installed"
# Another run may have finished first; either copy is the same lock.
if mv -T "$staging" "$target" 2>/dev/null; then
  trap - EXIT
fi
echo "$target"
