#!/usr/bin/env bash
# Builds Dex (the OpenID provider the SSO tests log in through) from a pinned commit through
# the Go module proxy.
#
# The binary lands in $BACKLOT_CACHE_DIR/dex/<version>/dex (default cache ~/.cache/backlot)
# and the build is skipped when it is already there.
#
# `go install github.com/dexidp/dex/cmd/dex@…` is refused: Dex's go.mod replaces its api/v2
# module with a path inside its own tree, and its v2.x tags are not valid versions of a
# module path without a /v2 suffix. So a throw-away wrapper module requires the release's
# commit as a pseudo-version and pins api/v2 to a published version.
set -euo pipefail

DEX_RELEASE=v2.41.1
# The commit tagged v2.41.1, as the module proxy names it (go 1.21 in its go.mod).
DEX_VERSION=v0.0.0-20240807174518-43956db7fd75
# Its go.mod requires api/v2 v2.1.0 but replaces it with its own tree, which already had the
# types published later in v2.2.0 (GetClientReq, CreateConnectorReq...).
DEX_API_VERSION=v2.2.0

export GOTOOLCHAIN=local # never download a newer Go toolchain
export GOFLAGS=-mod=mod
# cmd/dex names the sqlite3 storage, which only exists in cgo builds (gcc is needed).
export CGO_ENABLED=1

CACHE_DIR=${BACKLOT_CACHE_DIR:-$HOME/.cache/backlot}/dex/$DEX_RELEASE
TARGET=$CACHE_DIR/dex
WORK_DIR=$CACHE_DIR/build

log() { printf '[dex-build] %s\n' "$*" >&2; }

if [[ -x $TARGET ]]; then
    log "dex $DEX_RELEASE already built: $TARGET"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    log "go is not installed; install Go >= 1.22 (the Debian package is too old)"
    exit 1
fi

start=$SECONDS
rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR"
cd "$WORK_DIR"
go mod init tools.local/dex >/dev/null 2>&1
go mod edit \
    -require="github.com/dexidp/dex@$DEX_VERSION" \
    -require="github.com/dexidp/dex/api/v2@$DEX_API_VERSION"
log "downloading dex $DEX_RELEASE ($DEX_VERSION)"
go get "github.com/dexidp/dex/cmd/dex@$DEX_VERSION"
log "building dex $DEX_RELEASE"
# Into a temporary name, then moved into place: an interrupted build never leaves a binary
# that looks complete.
go build -trimpath -ldflags "-s -w -X main.version=$DEX_RELEASE" \
    -o "$TARGET.tmp" github.com/dexidp/dex/cmd/dex
mv -f "$TARGET.tmp" "$TARGET"
log "built $TARGET in $((SECONDS - start))s"
"$TARGET" version >&2
