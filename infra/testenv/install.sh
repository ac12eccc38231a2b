#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real: PostgreSQL, Redis and
# Debian's Chromium (Playwright drives it through executable_path; it never downloads a
# browser). Idempotent, and a fast no-op when everything is already there.
set -euo pipefail

# Debian package -> a command it provides (empty: check the package status only).
# The server binaries live under /usr/lib/postgresql/*/bin, not on PATH, so the
# PostgreSQL packages are checked through dpkg.
PACKAGES=(
  "postgresql:"
  "postgresql-contrib:"
  "postgresql-client:psql"
  "redis-server:redis-server"
  "redis-tools:redis-cli"
  "chromium:chromium"
  "fonts-liberation:"
  "xmlsec1:xmlsec1" # pysaml2 signs and verifies SAML messages with it
)

is_installed() {
  local package=$1 command=$2
  if [[ -n $command ]] && ! command -v "$command" >/dev/null 2>&1; then
    return 1
  fi
  [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true) == "install ok installed" ]]
}

missing=()
for entry in "${PACKAGES[@]}"; do
  package=${entry%%:*}
  command=${entry#*:}
  if is_installed "$package" "$command"; then
    echo "testenv: $package already installed"
  else
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "testenv: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  as_root=(sudo --non-interactive)
fi

export DEBIAN_FRONTEND=noninteractive
echo "testenv: apt-get update"
"${as_root[@]}" apt-get update -qq
echo "testenv: apt-get install ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends "${missing[@]}" >/dev/null
# apt may start Debian's own postgresql/redis services on 5432/6379; they are left alone:
# the test instances run privately on their own ports (infra/testenv/services.py).
echo "testenv: installed ${missing[*]}"
