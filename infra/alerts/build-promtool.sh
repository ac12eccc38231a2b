#!/usr/bin/env bash
# Builds promtool (which checks and unit-tests Prometheus rule files) from a pinned version
# through the Go module proxy into $BACKLOT_CACHE_DIR/alerts/bin/promtool-<version>; skipped
# when already there.
set -euo pipefail

# Prometheus v3.x is published as Go module v0.3xx.y.
PROMETHEUS_MODULE_VERSION=v0.316.0

export GOTOOLCHAIN=local # never download a newer Go toolchain
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

BIN_DIR=${BACKLOT_CACHE_DIR:-$HOME/.cache/backlot}/alerts/bin
TARGET=$BIN_DIR/promtool-$PROMETHEUS_MODULE_VERSION

if [[ -x $TARGET ]]; then
    echo "$TARGET"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "go is not installed; install Go >= 1.25 to build promtool" >&2
    exit 1
fi
mkdir -p "$BIN_DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
GOBIN=$WORK go install -trimpath -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
mv -f "$WORK/promtool" "$TARGET.tmp"
mv -f "$TARGET.tmp" "$TARGET"
echo "$TARGET"
