#!/usr/bin/env bash
# A node's services: OVS (userspace datapath) with br-int, ovn-controller (its own chassis), dockerd.
# Sourced by scripts/stack; the node's host name and tunnel IP are parameters (today one node: `$HOST`, `$TUNNEL_IP`).
# shellcheck shell=bash

# Kernel objects outlive killed processes (e.g. after CI ends a session).
remove_stale_links() {
    local l stale=()
    # Interfaces recorded in a conf.db left by a killed run (veths of tests).
    if [[ -s $OVS_DBDIR/conf.db ]]; then
        mapfile -t stale < <(ovsdb-tool query "$OVS_DBDIR/conf.db" \
            '["Open_vSwitch",{"op":"select","table":"Interface","where":[],"columns":["name"]}]' 2>/dev/null \
            | jq -r '.[0].rows[].name' 2>/dev/null || true)
    fi
    for l in "${stale[@]}" ovs-netdev "$BRIDGE"; do
        [[ -n $l ]] || continue
        if ip link show "$l" >/dev/null 2>&1; then
            say "removing stale link $l"
            ip link del "$l" 2>/dev/null || true
        fi
    done
}

start_ovs() { # host tunnel_ip: this node's chassis name and Geneve endpoint
    local host=$1 tunnel_ip=$2
    mkdir -p "$OVS_DBDIR" "$LOG"
    rm -f "$OVS_DBDIR"/conf.db "$OVS_DBDIR"/.conf.db.~lock~
    "$OVS_CTL" --no-ovs-vswitchd --system-id="$host" start >>"$LOG/ovs-ctl.log" 2>&1 \
        || fail ovsdb-server "ovs-ctl start (ovsdb-server) failed"
    record_pid ovsdb-server || fail ovsdb-server "no pid"
    # Read by ovs-vswitchd at start; --no-wait since vswitchd is not running.
    ovs-vsctl --no-wait set Open_vSwitch . \
        other_config:userspace-tso-enable=true \
        external_ids:system-id="$host" external_ids:hostname="$host" \
        external_ids:ovn-remote="unix:$OVN_RUN/ovnsb_db.sock" \
        external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip="$tunnel_ip" \
        external_ids:ovn-bridge=br-int \
        external_ids:ovn-bridge-datapath-type=netdev \
        || fail ovsdb-server "ovs-vsctl set failed"
    "$OVS_CTL" --no-ovsdb-server --system-id="$host" start >>"$LOG/ovs-ctl.log" 2>&1 \
        || fail ovs-vswitchd "ovs-ctl start (ovs-vswitchd) failed"
    record_pid ovs-vswitchd || fail ovs-vswitchd "no pid"
    ovs-vsctl --timeout=20 --may-exist add-br "$BRIDGE" -- set Bridge "$BRIDGE" \
        datapath_type=netdev fail-mode=secure >>"$LOG/ovs-ctl.log" 2>&1 \
        || fail ovs-vswitchd "cannot create $BRIDGE"
}

start_ovn_controller() { # host: the chassis name ovs registered
    local host=$1
    "$OVN_CTL" start_controller >>"$LOG/ovn-ctl.log" 2>&1 || fail ovn-controller "ovn-ctl start_controller failed"
    record_pid ovn-controller || fail ovn-controller "no pid"
    # ML2/OVN binds ports whose binding:host_id is the chassis hostname.
    ovn-sbctl --timeout=30 wait-until Chassis "$host" "hostname=$host" >/dev/null 2>&1 \
        || fail ovn-controller "chassis $host not registered in the OVN SB"
}

start_dockerd() {
    mkdir -p "$STATE/docker"
    rm -f "$DOCKER_PIDFILE"
    # Default exec-root (/var/run/docker) and socket: sandbox keys look like
    # /var/run/docker/netns/<id>, as tools and upstream Kuryr expect.
    setsid /usr/sbin/dockerd --data-root "$STATE/docker" \
        --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
        --host "unix://$DOCKER_SOCK" --pidfile "$DOCKER_PIDFILE" \
        </dev/null >>"$LOG/dockerd.log" 2>&1 &
    echo $! >"$PIDS/dockerd.pid"
}

wait_dockerd() {
    wait_svc dockerd 30 docker version
}

import_kbox() {
    if docker image inspect kbox:latest >/dev/null 2>&1; then return 0; fi
    local tar=$CACHE/kbox.tar
    if [[ ! -s $tar || /bin/busybox -nt $tar ]]; then
        local root
        root=$(mktemp -d "$STATE/kbox.XXXXXX")
        mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,var/run}
        cp /bin/busybox "$root/bin/busybox"
        local a
        for a in $(/bin/busybox --list); do
            [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
        done
        echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
        echo 'root:x:0:' >"$root/etc/group"
        tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
        rm -rf "$root"
    fi
    docker import -c 'ENV PATH=/bin:/sbin' -c 'CMD ["/bin/sh"]' "$tar" kbox:latest >>"$LOG/dockerd.log" 2>&1 \
        || fail dockerd "docker import kbox:latest failed"
}

# dockerd bind-mounts its data root onto itself, and netns files and shm under
# it; a killed dockerd leaves them behind.
unmount_docker_leftovers() {
    local m
    for m in $(awk -v r="$STATE/docker" '$2 ~ "^/(var/)?run/docker/netns/" || $2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}

# Containers of a dockerd that was killed keep running under orphaned shims
# (parent PID 1). Only called when no dockerd runs on this exec-root.
kill_orphan_shims() {
    local pid ppid child
    for pid in $(pgrep -f "containerd-shim-runc-v2 -namespace moby .*-address /var/run/docker/containerd/containerd.sock" || true); do
        ppid=$(awk '{print $4}' /proc/"$pid"/stat 2>/dev/null) || continue
        [[ $ppid == 1 ]] || continue
        say "killing orphaned container shim $pid (and its container) left by a killed dockerd"
        for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" 2>/dev/null || true; done
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
    done
}

stop_node() {
    if svc_pid dockerd >/dev/null; then
        local ids
        ids=$(timeout 20 docker ps -aq 2>/dev/null || true)
        if [[ -n $ids ]]; then
            say "removing $(wc -w <<<"$ids") container(s) left in our dockerd"
            # shellcheck disable=SC2086
            timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
        fi
        kill_svc dockerd 30
    fi
    rm -f "$PIDS/dockerd.pid"
    unmount_docker_leftovers
    # OVN's controller, then OVS, through their own ctl scripts when ours.
    if svc_pid ovn-controller >/dev/null; then
        "$OVN_CTL" stop_controller >>"$LOG/ovn-ctl.log" 2>&1 || true
    fi
    kill_svc ovn-controller 5
    local ports=() p
    if svc_pid ovsdb-server >/dev/null; then
        mapfile -t ports < <(ovs-vsctl --timeout=5 list-ports "$BRIDGE" 2>/dev/null || true)
        "$OVS_CTL" stop >>"$LOG/ovs-ctl.log" 2>&1 || true
    fi
    kill_svc ovs-vswitchd 10
    kill_svc ovsdb-server 5
    # Kernel leftovers: the netdev datapath's taps and the veths plugged into br-int.
    for p in "${ports[@]}" ovs-netdev "$BRIDGE"; do
        [[ -n $p ]] && ip link show "$p" >/dev/null 2>&1 && ip link del "$p" 2>/dev/null || true
    done
}
