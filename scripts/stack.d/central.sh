#!/usr/bin/env bash
# The central services: OVN's NB/SB databases and northd, Keystone, Neutron (ML2/OVN on SQLite).
# Sourced by scripts/stack; one set per stack, whatever the number of nodes.
# shellcheck shell=bash

start_ovn_central() {
    mkdir -p "$OVN_DBDIR"
    rm -f "$OVN_DBDIR"/ovn[ns]b_db.db "$OVN_DBDIR"/.ovn[ns]b_db.db.~lock~
    "$OVN_CTL" start_northd >>"$LOG/ovn-ctl.log" 2>&1 || fail ovn-northd "ovn-ctl start_northd failed"
    record_pid ovn-nb || fail ovn-nb "no pid"
    record_pid ovn-sb || fail ovn-sb "no pid"
    record_pid ovn-northd || fail ovn-northd "no pid"
}

keystone_conf() {
    mkdir -p "$STATE/keystone"
    cat >"$STATE/keystone/keystone.conf" <<EOF
[DEFAULT]
debug = false
use_stderr = true
[database]
connection = sqlite:///$STATE/keystone/keystone.db
[token]
provider = fernet
expiration = 43200
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[fernet_receipts]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
[identity]
password_hash_rounds = 4
[cache]
enabled = false
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
EOF
}

keystone_manage() {
    "$VENV/bin/keystone-manage" --config-file "$STATE/keystone/keystone.conf" "$@" \
        >>"$LOG/keystone.log" 2>&1
}

start_keystone() {
    keystone_conf
    local tpl=$CACHE/keystone-template fresh=0
    if [[ -s $tpl/keystone.db && -s $tpl/stamp && $(<"$tpl/stamp") == "$(keystone_tpl_stamp)" ]]; then
        cp "$tpl/keystone.db" "$STATE/keystone/keystone.db"
        cp -a "$tpl/fernet-keys" "$tpl/credential-keys" "$STATE/keystone/"
    else
        fresh=1
        rm -rf "$STATE/keystone/keystone.db"* "$STATE/keystone/fernet-keys" "$STATE/keystone/credential-keys"
        keystone_manage db_sync || fail keystone "keystone-manage db_sync failed"
        keystone_manage fernet_setup --keystone-user root --keystone-group root || fail keystone "fernet_setup failed"
        keystone_manage credential_setup --keystone-user root --keystone-group root || fail keystone "credential_setup failed"
        keystone_manage bootstrap --bootstrap-password "$(secret admin)" \
            --bootstrap-username admin --bootstrap-project-name admin \
            --bootstrap-role-name admin --bootstrap-service-name keystone \
            --bootstrap-region-id "$REGION" \
            --bootstrap-admin-url "$KEYSTONE_URL/v3/" \
            --bootstrap-internal-url "$KEYSTONE_URL/v3/" \
            --bootstrap-public-url "$KEYSTONE_URL/v3/" || fail keystone "bootstrap failed"
    fi
    mkdir -p "$STATE/keystone/tmp"
    OS_KEYSTONE_CONFIG_DIR=$STATE/keystone OS_KEYSTONE_CONFIG_FILES=keystone.conf \
        TMPDIR=$STATE/keystone/tmp \
        setsid "$VENV/bin/python" "$STACK_D/wsgi_server.py" keystone "$KEYSTONE_PORT" \
        </dev/null >>"$LOG/keystone.log" 2>&1 &
    echo $! >"$PIDS/keystone.pid"
    wait_svc keystone 60 curl -sf "$KEYSTONE_URL/v3"
    if ((fresh)); then
        "$VENV/bin/python" "$STACK_D/keystone_setup.py" "$KEYSTONE_URL/v3" "$REGION" \
            "$(secret admin)" "$(secret demo)" "$(secret neutron)" "$NEUTRON_URL" \
            >>"$LOG/keystone.log" 2>&1 || fail keystone "creating users/projects/catalog failed"
        rm -rf "$tpl"; mkdir -p "$tpl"
        sqlite3 "$STATE/keystone/keystone.db" ".backup '$tpl/keystone.db'"
        cp -a "$STATE/keystone/fernet-keys" "$STATE/keystone/credential-keys" "$tpl/"
        keystone_tpl_stamp >"$tpl/stamp"
    fi
}

keystone_tpl_stamp() {
    cat "$STACK_D/keystone_setup.py" "$CACHE/admin-password" "$CACHE/demo-password" \
        "$CACHE/neutron-password" "$VENV/.kuryr-stack-stamp" 2>/dev/null | sha256sum | cut -d' ' -f1
}

neutron_conf() {
    local auth=$1 d=$STATE/neutron plugins="ovn-router,trunk"
    [[ ${KURYR_STACK_SEGMENTS:-0} == 1 ]] && plugins+=",segments"
    mkdir -p "$d/lock" "$d/tmp"
    cp "$VENV/etc/neutron/api-paste.ini" "$d/api-paste.ini"
    cat >"$d/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = $plugins
auth_strategy = $auth
transport_url = fake://
allow_overlapping_ips = true
host = $HOST
bind_host = 127.0.0.1
bind_port = $NEUTRON_PORT
state_path = $d
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false
debug = false
use_stderr = true
[database]
connection = sqlite:///$d/neutron.db?timeout=60
[oslo_concurrency]
lock_path = $d/lock
[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_router = -1
quota_floatingip = -1
quota_security_group = -1
quota_security_group_rule = -1
EOF
    if [[ $auth == keystone ]]; then
        cat >>"$d/neutron.conf" <<EOF
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = neutron
password = $(secret neutron)
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = $REGION
service_token_roles_required = true
EOF
    fi
    cat >"$d/ml2_conf.ini" <<EOF
[ml2]
mechanism_drivers = ovn
type_drivers = local,flat,vlan,geneve
project_network_types = geneve
extension_drivers = port_security,tag_ports_during_bulk_creation
overlay_ip_version = 4
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[ml2_type_flat]
flat_networks = *
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:199
[securitygroup]
enable_security_group = true
[ovn]
ovn_nb_connection = unix:$OVN_RUN/ovnnb_db.sock
ovn_sb_connection = unix:$OVN_RUN/ovnsb_db.sock
ovn_l3_scheduler = leastloaded
ovn_metadata_enabled = true
neutron_sync_mode = log
EOF
}

start_neutron() {
    local d=$STATE/neutron
    neutron_conf "$1"
    rm -rf "$d/neutron.db" "$d/neutron.db-wal" "$d/neutron.db-shm" "$d/tmp"
    mkdir -p "$d/tmp"
    # The schema (from the models) depends only on the venv: build it once.
    local tpl=$CACHE/neutron-template.db want
    want=$(cat "$VENV/.kuryr-stack-stamp" "$STACK_D/neutron_db_init.py" | sha256sum | cut -d' ' -f1)
    if [[ ! -s $tpl || ! -s $tpl.stamp || $(<"$tpl.stamp") != "$want" ]]; then
        rm -f "$tpl" "$tpl.stamp"
        "$VENV/bin/python" -W ignore "$STACK_D/neutron_db_init.py" "$tpl.tmp" >>"$LOG/neutron.log" 2>&1 \
            || fail neutron "creating the schema failed"
        sqlite3 "$tpl.tmp" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
        mv "$tpl.tmp" "$tpl"; rm -f "$tpl.tmp-wal" "$tpl.tmp-shm"
        echo "$want" >"$tpl.stamp"
    fi
    cp "$tpl" "$d/neutron.db"
    ASGI_WORKERS=1 TMPDIR=$d/tmp OS_NEUTRON_CONFIG_DIR=$d \
        OS_NEUTRON_CONFIG_FILES="neutron.conf;ml2_conf.ini" PYTHONWARNINGS=ignore \
        setsid "$VENV/bin/python" "$STACK_D/wsgi_server.py" neutron "$NEUTRON_PORT" \
        </dev/null >>"$LOG/neutron.log" 2>&1 &
    echo $! >"$PIDS/neutron.pid"
}

neutron_ready() {
    local out
    out=$(neutron_api GET /v2.0/agents) || return 1
    [[ ${out##*$'\n'} == 200 ]] || return 1
    # ready once the OVN controller agent of this chassis is reported alive
    printf '%s' "${out%$'\n'*}" | jq -e --arg h "$HOST" \
        '[.agents[] | select(.host == $h and .alive == true and .agent_type == "OVN Controller agent")] | length > 0' >/dev/null
}

wait_neutron() {
    local pid
    admin_token_if_needed
    local deadline=$(( $(date +%s) + 120 ))
    until neutron_ready; do
        pid=$(svc_pid neutron) || fail neutron "neutron exited"
        (( $(date +%s) < deadline )) || fail neutron "the API did not become ready (agents of $HOST alive) within 120 s"
        sleep 0.2
    done
}

# ensure_named COLLECTION NAME BODY: a Neutron object named NAME (POST
# /v2.0/COLLECTION with BODY when there is none).
ensure_named() {
    local out code
    out=$(neutron_api GET "/v2.0/$1?name=$2")
    code=${out##*$'\n'}
    [[ $code == 200 ]] || fail neutron "GET $1: $code"
    if printf '%s' "${out%$'\n'*}" | jq -e --arg c "$1" '.[$c] | length > 0' >/dev/null; then
        return 0
    fi
    out=$(neutron_api POST "/v2.0/$1" "$3")
    code=${out##*$'\n'}
    [[ $code == 201 ]] || fail neutron "creating $1 $2: HTTP $code ${out%$'\n'*}"
}

ensure_subnetpool() { # name cidr prefixlen
    ensure_named subnetpools "$1" \
        "{\"subnetpool\":{\"name\":\"$1\",\"prefixes\":[\"$2\"],\"default_prefixlen\":$3,\"shared\":true}}"
}

# ensure_router NAME: the router Kubernetes namespaces' subnets are attached
# to ([namespace_subnet] pod_router of deploy/kubernetes/config.yaml).
ensure_router() {
    ensure_named routers "$1" "{\"router\":{\"name\":\"$1\"}}"
}

stop_central() {
    kill_svc neutron 15
    kill_svc keystone 10
    if svc_pid ovn-northd >/dev/null || svc_pid ovn-nb >/dev/null || svc_pid ovn-sb >/dev/null; then
        "$OVN_CTL" stop_northd >>"$LOG/ovn-ctl.log" 2>&1 || true
    fi
    kill_svc ovn-northd 5; kill_svc ovn-nb 5; kill_svc ovn-sb 5
}
