#!/usr/bin/env bash
# scripts/stack selftest: prove the running stack does what the project needs,
# end to end, and clean up after itself.
#  - geneve network + subnet (from the kuryr subnetpool)
#  - N ports with binding:host_id=<this host>, device_owner compute:kuryr:
#    binding:vif_type must be "ovs" (ML2/OVN bound them to our chassis)
#  - two of them plugged as veths into br-int (iface-id = port id), the other
#    ends in two netns we create: both must go ACTIVE, and ping each other
#  - keystone mode: a token works, a bad token gets 401, the member user gets
#    403 setting binding:host_id
# Prints timings: port create median, port show latency, time to ACTIVE.
set -euo pipefail
KURYR_STACK_LIB=1 source "$(dirname "${BASH_SOURCE[0]}")/../stack"

N_PORTS=${KURYR_SELFTEST_PORTS:-5}
TAG=kst$$
NETNS=()
OVS_PORTS=()
PORTS=()
NET_ID=""
DEMO_NET_ID=""
DEMO_TOKEN=""
DEMO_PORT_ID=""
RESULT=1

body() { printf '%s' "${1%$'\n'*}"; }
code() { printf '%s' "${1##*$'\n'}"; }

api() { # METHOD PATH [JSON] -> body; dies unless 2xx
    local out c
    out=$(neutron_api "$@") || { echo "curl failed: $1 $2" >&2; return 1; }
    c=$(code "$out")
    if [[ $c != 2* ]]; then
        echo "$1 $2 -> HTTP $c: $(body "$out")" >&2
        return 1
    fi
    body "$out"
}

api_as() { # TOKEN METHOD PATH [JSON] -> "body\ncode"
    local args=(-sS -X "$2" -H 'Content-Type: application/json' -w '\n%{http_code}')
    [[ -n $1 ]] && args+=(-H "X-Auth-Token: $1")
    [[ -n ${4:-} ]] && args+=(-d "$4")
    curl "${args[@]}" "$NEUTRON_URL$3"
}

median() { sort -n | awk '{a[NR]=$1} END{ if (NR%2) printf "%.3f", a[(NR+1)/2]; else printf "%.3f", (a[NR/2]+a[NR/2+1])/2 }'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

cleanup() {
    local rc=$?
    set +e
    local p n
    for p in "${OVS_PORTS[@]}"; do
        ovs-vsctl --timeout=10 --if-exists del-port "$BRIDGE" "$p" >/dev/null 2>&1
        ip link del "$p" >/dev/null 2>&1
    done
    for n in "${NETNS[@]}"; do ip netns del "$n" >/dev/null 2>&1; done
    for p in "${PORTS[@]}"; do neutron_api DELETE "/v2.0/ports/$p" >/dev/null; done
    [[ -n $NET_ID ]] && neutron_api DELETE "/v2.0/networks/$NET_ID" >/dev/null
    if [[ -n $DEMO_PORT_ID ]]; then
        api_as "$DEMO_TOKEN" DELETE "/v2.0/ports/$DEMO_PORT_ID" >/dev/null 2>&1
    fi
    if [[ -n $DEMO_NET_ID ]]; then
        api_as "$DEMO_TOKEN" DELETE "/v2.0/networks/$DEMO_NET_ID" >/dev/null 2>&1
    fi
    selftest_verdict selftest "$RESULT" "$rc"
}
trap cleanup EXIT

check() { # description, then command
    local what=$1; shift
    if "$@"; then echo "  ok   $what"; else echo "  FAIL $what"; exit 1; fi
}

[[ $(id -u) == 0 ]] || die "selftest needs root"
stack_is_up "$(mode)" || die "the stack is not up ($(mode)); run scripts/stack up"
admin_token_if_needed
echo "selftest: host $HOST, auth $(mode), Neutron $NEUTRON_URL"
T_ALL=$(now)

# ---- network and subnet
t=$(now)
net=$(api POST /v2.0/networks "{\"network\":{\"name\":\"$TAG\",\"provider:network_type\":\"geneve\"}}")
NET_ID=$(jq -r .network.id <<<"$net")
MTU=$(jq -r .network.mtu <<<"$net")
echo "  network $NET_ID (geneve, mtu $MTU) in $(since "$t") s"
pool=$(api GET "/v2.0/subnetpools?name=kuryr" | jq -r '.subnetpools[0].id')
t=$(now)
sub=$(api POST /v2.0/subnets "{\"subnet\":{\"network_id\":\"$NET_ID\",\"ip_version\":4,\"subnetpool_id\":\"$pool\",\"name\":\"$TAG\"}}")
CIDR=$(jq -r .subnet.cidr <<<"$sub")
PLEN=${CIDR#*/}
echo "  subnet $CIDR from subnetpool kuryr in $(since "$t") s"

# ---- ports bound to this host
CREATE_TIMES=()
MACS=(); IPS=()
for i in $(seq "$N_PORTS"); do
    t=$(now)
    p=$(api POST /v2.0/ports "{\"port\":{\"network_id\":\"$NET_ID\",\"name\":\"$TAG-$i\",\"binding:host_id\":\"$HOST\",\"device_owner\":\"compute:kuryr\",\"device_id\":\"$TAG-$i\"}}")
    CREATE_TIMES+=("$(since "$t")")
    id=$(jq -r .port.id <<<"$p")
    PORTS+=("$id")
    MACS+=("$(jq -r .port.mac_address <<<"$p")")
    IPS+=("$(jq -r '.port.fixed_ips[0].ip_address' <<<"$p")")
    vif=$(jq -r '.port["binding:vif_type"]' <<<"$p")
    check "port $i ${id:0:8} bound: binding:vif_type=$vif bridge=$(jq -r '.port["binding:vif_details"].bridge_name' <<<"$p")" \
        test "$vif" = ovs
done
CREATE_MEDIAN=$(printf '%s\n' "${CREATE_TIMES[@]}" | median)
echo "  port create (with binding:host_id): median $CREATE_MEDIAN s over $N_PORTS (${CREATE_TIMES[*]})"

SHOW_TIMES=()
for _ in 1 2 3 4 5; do
    t=$(now); api GET "/v2.0/ports/${PORTS[0]}" >/dev/null; SHOW_TIMES+=("$(since "$t")")
done
SHOW_MEDIAN=$(printf '%s\n' "${SHOW_TIMES[@]}" | median)
echo "  port show: median $SHOW_MEDIAN s"
check "port is DOWN before plugging" test "$(api GET "/v2.0/ports/${PORTS[0]}" | jq -r .port.status)" = DOWN

# ---- plug two ports: veth host end on br-int, other end in our own netns
plug() { # index
    local i=$1 id=${PORTS[$1]} tap ns peer
    tap=tap${id:0:11}
    peer=kst${id:0:11}
    ns=$TAG-$i
    ip netns add "$ns"; NETNS+=("$ns")
    ip link add "$tap" type veth peer name "$peer"; OVS_PORTS+=("$tap")
    ip link set "$peer" netns "$ns"
    ip -n "$ns" link set "$peer" name eth0
    ip -n "$ns" link set eth0 address "${MACS[$i]}" mtu "$MTU"
    ip -n "$ns" addr add "${IPS[$i]}/$PLEN" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip link set "$tap" mtu "$MTU" up
    ovs-vsctl --timeout=10 add-port "$BRIDGE" "$tap" -- set Interface "$tap" \
        external_ids:iface-id="$id" external_ids:attached-mac="${MACS[$i]}" \
        external_ids:iface-status=active
}

wait_active() { # index -> prints seconds
    local id=${PORTS[$1]} t0=$2 st
    for _ in $(seq 600); do
        st=$(api GET "/v2.0/ports/$id" | jq -r .port.status)
        if [[ $st == ACTIVE ]]; then since "$t0"; return 0; fi
        sleep 0.05
    done
    echo "port $id still $st after 30 s" >&2
    return 1
}

ACTIVE_TIMES=()
for i in 0 1; do
    t=$(now)
    plug "$i"
    a=$(wait_active "$i" "$t") || { echo "  FAIL port $i never went ACTIVE"; exit 1; }
    ACTIVE_TIMES+=("$a")
    check "port ${PORTS[$i]:0:8} ACTIVE $a s after add-port ($(ovs-vsctl get Interface "tap${PORTS[$i]:0:11}" external_ids:ovn-installed 2>/dev/null || echo '?') ovn-installed)" true
done

t=$(now)
check "netns $TAG-0 (${IPS[0]}) pings $TAG-1 (${IPS[1]}) through OVN" \
    ip netns exec "$TAG-0" ping -c 3 -i 0.2 -W 2 -q "${IPS[1]}" >/dev/null
echo "  ping in $(since "$t") s"
# port security: a spoofed source address must not get through
ip -n "$TAG-0" addr add "${IPS[0]%.*}.250/32" dev eth0
check "port security drops a spoofed source" \
    bash -c "! ip netns exec $TAG-0 ping -c 2 -i 0.2 -W 1 -q -I ${IPS[0]%.*}.250 ${IPS[1]} >/dev/null 2>&1"

# unplug -> DOWN
t=$(now)
ovs-vsctl --timeout=10 del-port "$BRIDGE" "tap${PORTS[1]:0:11}"
for _ in $(seq 600); do
    st=$(api GET "/v2.0/ports/${PORTS[1]}" | jq -r .port.status)
    [[ $st == DOWN ]] && break
    sleep 0.05
done
check "unplugged port goes DOWN ($(since "$t") s)" test "$st" = DOWN

# ---- keystone checks
if [[ $(mode) == keystone ]]; then
    out=$(api_as "$OS_TOKEN_CACHE" GET /v2.0/networks)
    check "admin token: GET /v2.0/networks -> $(code "$out")" test "$(code "$out")" = 200
    out=$(api_as "gAAAAAbogus-token" GET /v2.0/networks)
    check "bad token -> $(code "$out")" test "$(code "$out")" = 401
    out=$(api_as "" GET /v2.0/networks)
    check "no token -> $(code "$out")" test "$(code "$out")" = 401
    DEMO_TOKEN=$(keystone_token demo "$(secret demo)" demo)
    check "member user demo gets a token" test -n "$DEMO_TOKEN"
    out=$(api_as "$DEMO_TOKEN" POST /v2.0/networks "{\"network\":{\"name\":\"$TAG-demo\"}}")
    check "member creates a network in its project -> $(code "$out")" test "$(code "$out")" = 201
    DEMO_NET_ID=$(body "$out" | jq -r .network.id)
    out=$(api_as "$DEMO_TOKEN" POST /v2.0/ports "{\"port\":{\"network_id\":\"$DEMO_NET_ID\",\"binding:host_id\":\"$HOST\"}}")
    check "member setting binding:host_id -> $(code "$out")" test "$(code "$out")" = 403
    out=$(api_as "$DEMO_TOKEN" POST /v2.0/ports "{\"port\":{\"network_id\":\"$DEMO_NET_ID\"}}")
    check "member creates a port without binding -> $(code "$out")" test "$(code "$out")" = 201
    DEMO_PORT_ID=$(body "$out" | jq -r .port.id)
    has_binding=$(body "$out" | jq -r '.port | has("binding:host_id")')
    check "member does not see binding:* fields" test "$has_binding" = false
fi

echo "selftest timings: port create median ${CREATE_MEDIAN} s; port show median ${SHOW_MEDIAN} s; time to ACTIVE ${ACTIVE_TIMES[*]} s; total $(since "$T_ALL") s"
RESULT=0
