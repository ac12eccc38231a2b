#!/usr/bin/env bash
# Builds the test cluster's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) from pinned versions through the Go module proxy.
#
# Each binary lands in $BACKLOT_CACHE_DIR/cluster/bin/<name>-<version> (default cache
# ~/.cache/backlot) and is skipped when already there. GOCACHE and GOMODCACHE stay at their
# defaults under $HOME, so a rebuild after a version bump only recompiles what changed.
#
# None of these can be `go install`ed: k8s.io/kubernetes and etcd's server module carry
# replace directives that point into their own source trees. Each is built from a throw-away
# wrapper module instead.
set -euo pipefail

# KUBERNETES_VERSION, ETCD_VERSION, KWOK_VERSION: shared with cluster.py.
# shellcheck source=infra/cluster/versions.env
source "$(dirname "${BASH_SOURCE[0]}")/versions.env"

export GOTOOLCHAIN=local # never download a newer Go toolchain
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

CACHE_DIR=${BACKLOT_CACHE_DIR:-$HOME/.cache/backlot}/cluster
BIN_DIR=$CACHE_DIR/bin
WORK_DIR=$CACHE_DIR/build

log() { printf '[cluster-build] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
    log "go is not installed; install Go >= 1.26 (the Debian package is too old)"
    exit 1
fi

mkdir -p "$BIN_DIR" "$WORK_DIR"
declare -a TIMINGS=()
TOTAL_START=$SECONDS

have() { [[ -x "$BIN_DIR/$1-$2" ]]; }

# Fresh wrapper module in $WORK_DIR/<dir>; prints its path.
new_wrapper() {
    local dir=$WORK_DIR/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && go mod init "tools.local/$1" >/dev/null 2>&1)
    printf '%s\n' "$dir"
}

# go build into a temporary name, then move it into place, so an interrupted build never
# leaves a binary that looks complete.
build_one() {
    local dir=$1 name=$2 version=$3 pkg=$4 ldflags=${5:-}
    local target=$BIN_DIR/$name-$version start=$SECONDS
    log "building $name $version ($pkg)"
    (cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$target.tmp" "$pkg")
    mv -f "$target.tmp" "$target"
    local took=$((SECONDS - start))
    TIMINGS+=("$(printf '%-24s %-9s %4ds' "$name" "$version" "$took")")
    log "built $target in ${took}s"
}

build_etcd() {
    if have etcd "$ETCD_VERSION"; then
        log "etcd $ETCD_VERSION already built"
        return
    fi
    local dir start=$SECONDS
    dir=$(new_wrapper "etcd-$ETCD_VERSION")
    # server/v3's own requires name the published sibling modules at the same version, so the
    # wrapper needs no replace lines (server/v3's relative replaces are ignored here).
    (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
    TIMINGS+=("$(printf '%-24s %-9s %4ds' "etcd (download)" "$ETCD_VERSION" $((SECONDS - start)))")
    build_one "$dir" etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3
}

KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

build_kubernetes() {
    local missing=()
    local name
    for name in "${KUBE_BINARIES[@]}"; do
        have "$name" "$KUBERNETES_VERSION" || missing+=("$name")
    done
    if ((${#missing[@]} == 0)); then
        log "Kubernetes $KUBERNETES_VERSION binaries already built"
        return
    fi

    local dir start=$SECONDS gomod staging_version
    dir=$(new_wrapper "kubernetes-$KUBERNETES_VERSION")
    staging_version=v0.${KUBERNETES_VERSION#v1.}
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    if [[ -z "$gomod" || ! -f "$gomod" ]]; then
        log "could not download the go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION"
        exit 1
    fi

    # k/k requires every staging module at v0.0.0 (which is not on the proxy) and maps it into
    # ./staging; only the main module's replace lines count, so pin each one here.
    local staging=()
    mapfile -t staging < <(awk '/^require \(/{r=1; next} r && /^\)/{r=0} r && $1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod")
    if ((${#staging[@]} < 20)); then
        log "found only ${#staging[@]} staging modules in $gomod; the go.mod layout changed"
        exit 1
    fi
    local mod edits=()
    for mod in "${staging[@]}"; do
        edits+=("-replace=$mod=$mod@$staging_version")
    done
    # k/k sets its GODEBUG defaults in go.mod; they come from the main module, so copy them.
    local godebug
    while read -r godebug; do
        [[ -n "$godebug" ]] && edits+=("-godebug=$godebug")
    done < <(awk '/^godebug [^(]/{print $2}' "$gomod")
    (cd "$dir" && go mod edit "${edits[@]}" -require="k8s.io/kubernetes@$KUBERNETES_VERSION")
    log "pinned ${#staging[@]} staging modules to $staging_version"

    local pkgs=()
    for name in "${KUBE_BINARIES[@]}"; do
        pkgs+=("k8s.io/kubernetes/cmd/$name@$KUBERNETES_VERSION")
    done
    (cd "$dir" && go get "${pkgs[@]}")
    TIMINGS+=("$(printf '%-24s %-9s %4ds' "kubernetes (download)" "$KUBERNETES_VERSION" $((SECONDS - start)))")

    # Without these the binaries report v0.0.0-master+$Format:%H$, and kwokctl and Helm read
    # the version.
    local minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    local ldflags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
    ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
    ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitTreeState=clean"
    for name in "${missing[@]}"; do
        build_one "$dir" "$name" "$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/$name" "$ldflags"
    done
}

build_kwok() {
    if have kwok "$KWOK_VERSION"; then
        log "kwok $KWOK_VERSION already built"
        return
    fi
    local dir start=$SECONDS
    dir=$(new_wrapper "kwok-$KWOK_VERSION")
    (cd "$dir" && go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    TIMINGS+=("$(printf '%-24s %-9s %4ds' "kwok (download)" "$KWOK_VERSION" $((SECONDS - start)))")
    build_one "$dir" kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
        "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
}

log "$(go version); cache $CACHE_DIR"
build_etcd
build_kubernetes
build_kwok

log "timings:"
for line in "${TIMINGS[@]}"; do
    log "  $line"
done
log "  $(printf '%-24s %-9s %4ds' total '' $((SECONDS - TOTAL_START)))"
