#!/usr/bin/env bash
# Builds the Helm v3 binary the deploy tests use, from a pinned tag through the Go module proxy.
#
# The binary lands in $BACKLOT_CACHE_DIR/deploy/bin/helm-<version> (default cache
# ~/.cache/backlot) and the build is skipped when it is already there.
#
# Helm's Makefile sets the default Kubernetes version of `helm template` / `helm lint` by
# ldflags; a plain `go install` would render and lint as Kubernetes v1.20 (the source
# default). We set the same variables to the version the test cluster runs.
set -euo pipefail

HELM_VERSION=v3.21.4 # go 1.26.0 in its go.mod; k8s.io libraries v0.36
KUBE_MAJOR=1
KUBE_MINOR=34 # the test cluster's minor (infra/cluster/versions.env)

export GOTOOLCHAIN=local # never download a newer Go toolchain
export CGO_ENABLED=0

BIN_DIR=${BACKLOT_CACHE_DIR:-$HOME/.cache/backlot}/deploy/bin
TARGET=$BIN_DIR/helm-$HELM_VERSION

log() { printf '[helm-build] %s\n' "$*" >&2; }

if [[ -x $TARGET ]]; then
    log "helm $HELM_VERSION already built: $TARGET"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    log "go is not installed; install Go >= 1.26 (the Debian package is too old)"
    exit 1
fi

mkdir -p "$BIN_DIR"
start=$SECONDS
module=helm.sh/helm/v3
ldflags=(
    -s -w
    "-X $module/internal/version.version=$HELM_VERSION"
    "-X $module/pkg/chartutil.k8sVersionMajor=$KUBE_MAJOR"
    "-X $module/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR"
    "-X $module/pkg/lint/rules.k8sVersionMajor=$KUBE_MAJOR"
    "-X $module/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR"
)
# go install into a scratch GOBIN, then move into place, so an interrupted build never leaves
# a binary that looks complete.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
log "building helm $HELM_VERSION (Kubernetes default v$KUBE_MAJOR.$KUBE_MINOR)"
GOBIN=$scratch GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags "${ldflags[*]}" "$module/cmd/helm@$HELM_VERSION"
mv -f "$scratch/helm" "$TARGET"
log "built $TARGET in $((SECONDS - start))s"
"$TARGET" version --short >&2
