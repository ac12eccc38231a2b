#!/usr/bin/env bash
# Builds Stripe's official stripe-mock (request-shape validation against Stripe's OpenAPI spec)
# from a pinned version through the Go module proxy.
#
# The binary lands in $BACKLOT_CACHE_DIR/stripe-mock/<version>/stripe-mock (default cache
# ~/.cache/backlot) and is skipped when already there. stripe-mock's go.mod has no replace
# directives, so `go install module@version` builds it directly.
set -euo pipefail

# STRIPE_MOCK_VERSION: shared with infra/stripe/servers.py.
# shellcheck source=infra/stripe/versions.env
source "$(dirname "${BASH_SOURCE[0]}")/versions.env"

export GOTOOLCHAIN=local # never download a newer Go toolchain
export CGO_ENABLED=0

TARGET_DIR=${BACKLOT_CACHE_DIR:-$HOME/.cache/backlot}/stripe-mock/$STRIPE_MOCK_VERSION
TARGET=$TARGET_DIR/stripe-mock

log() { printf '[stripe-build] %s\n' "$*" >&2; }

if [[ -x $TARGET ]]; then
    log "stripe-mock $STRIPE_MOCK_VERSION already built: $TARGET"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    log "go is not installed; install Go >= 1.22 to build stripe-mock"
    exit 1
fi

mkdir -p "$TARGET_DIR"
start=$SECONDS
log "building stripe-mock $STRIPE_MOCK_VERSION"
# GOBIN into a temporary directory, then move into place: an interrupted build never leaves
# a binary that looks complete.
tmp=$(mktemp -d "$TARGET_DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN=$tmp go install -trimpath -ldflags "-s -w" "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
mv -f "$tmp/stripe-mock" "$TARGET"
log "built $TARGET in $((SECONDS - start))s"
