#!/usr/bin/env bash
# `scripts/stack install`: Debian packages and the Neutron/Keystone venv, idempotent.
# Sourced by scripts/stack; installs, starts nothing.
# shellcheck shell=bash

apt_install() {
    local pkgs=(openvswitch-switch ovn-central ovn-host docker.io busybox-static
        iputils-ping iproute2 containernetworking-plugins golang-go
        golang-github-appc-cni-dev sqlite3 jq curl python3-venv python3-dev
        procps ethtool podman openssl binutils bc)
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        say "apt: all ${#pkgs[@]} packages present"
        return 0
    fi
    say "apt: installing ${missing[*]}"
    # No init system here: keep maintainer scripts from starting services.
    local prc=/usr/sbin/policy-rc.d had_prc=0
    [[ -e $prc ]] && { had_prc=1; cp -a "$prc" "$prc.kuryr-stack-save"; }
    printf '#!/bin/sh\nexit 101\n' >"$prc"
    chmod 755 "$prc"
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$CACHE/apt.log" 2>&1; then
        say "apt: install failed; running apt-get update first"
        { apt-get update >>"$CACHE/apt.log" 2>&1 &&
            apt-get install -y --no-install-recommends "${missing[@]}" >>"$CACHE/apt.log" 2>&1; } || rc=$?
    fi
    if ((had_prc)); then mv -f "$prc.kuryr-stack-save" "$prc"; else rm -f "$prc"; fi
    if ((rc)); then tail -n 30 "$CACHE/apt.log" >&2; die "apt-get install failed"; fi
    stop_distro_services
}

# If a postinst started a daemon anyway (no policy-rc.d honoured), stop it:
# only processes whose pidfile is the distribution's and that we did not start.
stop_distro_services() {
    local s pid
    for s in ovn-controller ovn-northd ovn-nb ovn-sb ovs-vswitchd ovsdb-server dockerd; do
        if pid=$(svc_foreign_pid "$s"); then
            say "stopping $s (pid $pid) started by the package's postinst"
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    pid=$(pgrep -x containerd || true)
    [[ -n $pid ]] && say "note: a system containerd is running (pid $pid); dockerd will use it"
    return 0
}

venv_stamp() {
    { cat "$CONSTRAINTS"; echo "neutron==$NEUTRON_VERSION keystone==$KEYSTONE_VERSION";
      "$SYS_PYTHON" --version; } | sha256sum | cut -d' ' -f1
}

venv_install() {
    local stamp want
    want=$(venv_stamp)
    stamp=$VENV/.kuryr-stack-stamp
    if [[ -x $VENV/bin/python && -r $stamp && $(<"$stamp") == "$want" ]]; then
        say "venv: $VENV up to date"
        return 0
    fi
    local t0
    t0=$(now)
    mkdir -p "$(dirname "$VENV")"
    [[ -x $VENV/bin/python ]] || "$SYS_PYTHON" -m venv "$VENV"
    say "venv: pip install neutron==$NEUTRON_VERSION keystone==$KEYSTONE_VERSION (pinned) into $VENV"
    "$VENV/bin/pip" install -q -c "$CONSTRAINTS" \
        "neutron==$NEUTRON_VERSION" "keystone==$KEYSTONE_VERSION" \
        || die "pip install failed"
    "$VENV/bin/pip" check || die "pip check failed"
    echo "$want" >"$stamp"
    say "venv: done in $(since "$t0") s"
}

# Kubernetes, etcd, containerd and crictl built from the Go module proxy into
# /var/cache/kuryr-k8s (stack.d/k8s-build.sh, versions in stack.d/k8s-versions);
# seconds when cached. KURYR_K8S_BUILD_LOG sends the build's output to a file.
k8s_install() {
    local t0 log=${KURYR_K8S_BUILD_LOG:-}
    t0=$(now)
    if [[ -n $log ]]; then
        "$STACK_D/k8s-build.sh" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; die "k8s build failed (log $log)"; }
    else
        "$STACK_D/k8s-build.sh" || die "k8s build failed"
    fi
    say "k8s: binaries ready in $(since "$t0") s ($("$STACK_D/k8s-build.sh" bin-dirs | head -n 1))"
}

cmd_install() {
    [[ $(id -u) == 0 ]] || die "install needs root"
    local k8s=0 only_k8s=0
    while (($#)); do
        case $1 in
            --k8s) k8s=1 ;;
            --k8s-only) k8s=1; only_k8s=1 ;;  # the Go builds alone (scripts/test overlaps them with cargo)
            *) die "install: unknown option $1" ;;
        esac
        shift
    done
    mkdir -p "$CACHE"
    local t0
    t0=$(now)
    if ((!only_k8s)); then
        apt_install
        venv_install
    fi
    ((k8s)) && k8s_install
    say "install: done in $(since "$t0") s"
}
