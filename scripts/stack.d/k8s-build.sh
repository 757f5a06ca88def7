#!/usr/bin/env bash
# Build the Kubernetes pieces pinned in k8s-versions from the Go module proxy
# into /var/cache/kuryr-k8s/<component>-<version>/bin. Nothing is vendored or
# committed; a component already built (stamp present) is skipped, so a second
# run takes seconds. Run by `scripts/stack install --k8s`, or alone:
#   scripts/stack.d/k8s-build.sh [etcd|containerd|crictl|kubernetes ...]
# KURYR_K8S_CACHE (default /var/cache/kuryr-k8s), KURYR_K8S_FALLBACK=1 builds
# K8S_FALLBACK_VERSION instead. Builds run under `nice` with `go build -p 2`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=k8s-versions
source "$HERE/k8s-versions"
[[ ${KURYR_K8S_FALLBACK:-0} == 1 ]] && K8S_VERSION=$K8S_FALLBACK_VERSION
KCACHE=${KURYR_K8S_CACHE:-/var/cache/kuryr-k8s}
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOMODCACHE=$KCACHE/gomod GOCACHE=$KCACHE/gocache GOPATH=$KCACHE/gopath
NICE=(nice -n 10)
GOBUILD=(go build -p "${KURYR_K8S_GO_P:-2}" -trimpath)

say() { printf '[k8s-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Copy the dependency's go.mod `exclude` lines and its non-local `replace`
# lines into the wrapper module (replace/exclude only apply in the main module).
copy_mod_directives() { # module@version
    local gomod
    gomod=$(go mod download -json "$1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
    go mod edit -json "$gomod" | python3 -c '
import json, sys
m = json.load(sys.stdin)
for e in m.get("Exclude") or []:
    print("-exclude=%s@%s" % (e["Path"], e["Version"]))
for r in m.get("Replace") or []:
    new = r["New"]
    if not new.get("Version"):
        continue  # a local path inside the repository: not usable here
    old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
    print("-replace=%s=%s@%s" % (old, new["Path"], new["Version"]))
' | while read -r arg; do go mod edit "$arg"; done
}

# new_wrapper DIR: a fresh wrapper module
new_wrapper() {
    rm -rf "$1"; mkdir -p "$1"; cd "$1"
    go mod init kuryr.test/k8sbuild >/dev/null 2>&1
}

done_stamp() { [[ -r $1/.stamp && -n $(ls -A "$1/bin" 2>/dev/null) ]]; }

build_etcd() {
    local d=$KCACHE/etcd-$ETCD_VERSION
    done_stamp "$d" && { say "etcd $ETCD_VERSION cached"; return 0; }
    local t0=$SECONDS
    new_wrapper "$d/src"
    cat >main.go <<'GO'
// etcd built from go.etcd.io/etcd/server/v3: its own cmd module has local
// replace directives, so a wrapper main calls etcdmain directly.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    copy_mod_directives "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    go mod tidy
    mkdir -p "$d/bin"
    "${NICE[@]}" "${GOBUILD[@]}" -ldflags "-s -w" -o "$d/bin/etcd" .
    "${NICE[@]}" "${GOBUILD[@]}" -ldflags "-s -w" -o "$d/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3 2>/dev/null \
        || { go get "go.etcd.io/etcd/etcdctl/v3@v$ETCD_VERSION" && "${NICE[@]}" "${GOBUILD[@]}" -ldflags "-s -w" -o "$d/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3; } \
        || say "etcdctl not built (optional)"
    echo "etcd $ETCD_VERSION built in $((SECONDS - t0)) s" | tee "$d/.stamp" >&2
}

# build_module NAME VERSION MODULE GO-BUILD-ARGS...: a Go module built from
# the proxy in a wrapper module into $KCACHE/NAME-VERSION/bin (containerd, crictl).
build_module() {
    local name=$1 version=$2 m=$3 d=$KCACHE/$1-$2
    shift 3
    done_stamp "$d" && { say "$name $version cached"; return 0; }
    local t0=$SECONDS
    new_wrapper "$d/src"
    go get "$m@v$version"
    copy_mod_directives "$m@v$version"
    mkdir -p "$d/bin"
    "${NICE[@]}" "${GOBUILD[@]}" "$@"
    echo "$name $version built in $((SECONDS - t0)) s" | tee "$d/.stamp" >&2
}

build_containerd() {
    local m=github.com/containerd/containerd/v2 v=$CONTAINERD_VERSION
    build_module containerd "$v" "$m" -tags "no_btrfs no_devmapper no_zfs" \
        -ldflags "-s -w -X $m/version.Version=v$v -X $m/version.Package=github.com/containerd/containerd" \
        -o "$KCACHE/containerd-$v/bin/" "$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/ctr"
}

build_crictl() {
    local m=sigs.k8s.io/cri-tools v=$CRICTL_VERSION
    build_module crictl "$v" "$m" -ldflags "-s -w -X $m/pkg/version.Version=v$v" \
        -o "$KCACHE/crictl-$v/bin/crictl" "$m/cmd/crictl"
}

# Only fetch the modules (network bound): `fetch` mode, used to overlap the
# download with other work and to fail early on a module the proxy lacks.
k8s_prepare() {
    local d=$KCACHE/kubernetes-$K8S_VERSION S=0.${K8S_VERSION#1.} gomod m
    new_wrapper "$d/src"
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
    # Each staging module k8s.io/kubernetes requires at v0.0.0 (replaced by a
    # local path upstream) comes from its published v0.MINOR.PATCH.
    # (Not the pseudo-versions v0.0.0-<date>-<hash> of kube-openapi, utils...)
    for m in $(sed -n 's#^\t\(k8s\.io/[a-z0-9-]*\) v0\.0\.0$#\1#p' "$gomod"); do
        go mod edit "-replace=$m=$m@v$S"
    done
    copy_mod_directives "k8s.io/kubernetes@v$K8S_VERSION"
    go get "k8s.io/kubernetes@v$K8S_VERSION"
}

build_kubernetes() {
    local d=$KCACHE/kubernetes-$K8S_VERSION K=$K8S_VERSION
    done_stamp "$d" && { say "kubernetes $K cached"; return 0; }
    local t0=$SECONDS
    k8s_prepare
    say "kubernetes $K modules fetched in $((SECONDS - t0)) s; building"
    mkdir -p "$d/bin"
    local c v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version minor=${K#1.}
    minor=${minor%%.*}
    local ld="-s -w -X $v.gitVersion=v$K -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $cv.gitVersion=v$K -X $cv.gitMajor=1 -X $cv.gitMinor=$minor"
    for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
        local tc=$SECONDS
        "${NICE[@]}" "${GOBUILD[@]}" -ldflags "$ld" -o "$d/bin/$c" "k8s.io/kubernetes/cmd/$c"
        say "  $c built in $((SECONDS - tc)) s"
        echo "$c $((SECONDS - tc))" >>"$d/build-times"
    done
    echo "kubernetes $K built in $((SECONDS - t0)) s" | tee "$d/.stamp" >&2
}

# Print the bin dirs (for PATH) of the pinned versions.
bin_dirs() {
    printf '%s\n' "$KCACHE/kubernetes-$K8S_VERSION/bin" "$KCACHE/etcd-$ETCD_VERSION/bin" \
        "$KCACHE/containerd-$CONTAINERD_VERSION/bin" "$KCACHE/crictl-$CRICTL_VERSION/bin"
}

main() {
    (($#)) || set -- kubernetes etcd containerd crictl
    [[ $1 == bin-dirs ]] && { bin_dirs; return; }
    if [[ $1 == _one ]]; then
        case $2 in fetch) k8s_prepare ;; *) "build_$2" ;; esac
        return
    fi
    command -v go >/dev/null || die "no Go at /usr/local/go"
    mkdir -p "$KCACHE"
    local t0=$SECONDS c
    for c in "$@"; do
        case $c in
            # A fresh shell per component: `set -e` holds inside it (it would
            # not inside `( ... ) || die`).
            kubernetes|etcd|containerd|crictl|fetch) "$HERE/k8s-build.sh" _one "$c" || die "$c failed" ;;
            *) die "unknown component $c" ;;
        esac
    done
    say "all done in $((SECONDS - t0)) s; cache $KCACHE"
}
main "$@"
