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

cmd_install() {
    [[ $(id -u) == 0 ]] || die "install needs root"
    mkdir -p "$CACHE"
    local t0
    t0=$(now)
    apt_install
    venv_install
    say "install: done in $(since "$t0") s"
}
