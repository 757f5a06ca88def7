#!/usr/bin/env bash
# scripts/stack selftest-k8s: prove the stack's Kubernetes cluster works, end to
# end, and clean up after itself (run by scripts/test when the cluster is up).
#  - the node (named as the OVN chassis, $HOST) is Ready
#  - with --cni bridge: a pod (the kbox image, imagePullPolicy Never) becomes
#    Running and answers an exec; its IP is in the bridge's subnet
#  - a Deployment scales to 3 (all Running) and back to 0
#  - a namespace is created and deleted (the controller-manager's namespace
#    controller empties it)
#
#   scripts/stack selftest-k8s                 the checks above
#   scripts/stack selftest-k8s --up-down N     N times: `up --k8s`, the
#       checks above, `down`, then prove nothing is left behind (no process,
#       mount, netns, veth, cgroup, CNI file). Needs the stack down when called;
#       leaves it down.
# Prints timings.
set -euo pipefail
KURYR_STACK_LIB=1 source "$(dirname "${BASH_SOURCE[0]}")/../stack"

TAG=kst$$
NS=$TAG
RESULT=1
CHECKS_ONLY=1
up_down=0
while (($#)); do
    case $1 in
        --up-down) up_down=${2:?--up-down N}; shift ;;
        *) die "selftest-k8s: unknown option $1" ;;
    esac
    shift
done

k() { kubectl_admin "$@"; }

check() { # description, then command
    local what=$1; shift
    if "$@"; then echo "  ok   $what"; else echo "  FAIL $what"; exit 1; fi
}

cleanup() {
    local rc=$?
    set +e
    if ((CHECKS_ONLY)) && svc_pid kube-apiserver >/dev/null; then
        k delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1
    fi
    selftest_verdict selftest-k8s "$RESULT" "$rc"
}
trap cleanup EXIT

# What a cluster leaves on the machine while up (or after a bad down).
leftovers() {
    local s pid
    for s in "${K8S_SERVICES[@]}"; do
        pid=$(cat "$PIDS/$s.pid" 2>/dev/null || true)
        [[ -n $pid && -d /proc/$pid ]] && echo "process $s (pid $pid)"
    done
    # any process running a binary of ours (shims included), whatever its PID file says
    local p exe
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        [[ $exe == "$K8S_CACHE"/* ]] && echo "process ${exe##*/} (pid ${p#/proc/})"
    done
    awk -v a="$K8S_STATE" -v b="$K8S_RUN" 'index($2, a) == 1 || index($2, b) == 1 {print "mount " $2}' /proc/mounts
    for s in /var/run/netns/cni-*; do [[ -e $s ]] && echo "netns ${s##*/}"; done
    ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^veth' | sed 's/^/veth /'
    ip link show "$CNI_BRIDGE_DEV" >/dev/null 2>&1 && echo "link $CNI_BRIDGE_DEV"
    for s in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/k8s.io; do [[ -d $s ]] && echo "cgroup $s"; done
    [[ -e $CNI_BRIDGE_CONF ]] && echo "file $CNI_BRIDGE_CONF"
    [[ -e $K8S_RUN ]] && echo "dir $K8S_RUN"
    return 0
}

wait_for() { # timeout_s description command...
    local t=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "  FAIL $what (not after $t s)"; return 1; }
        sleep 0.5
    done
}

running_pods() { # selector -> count of Running pods
    k -n "$NS" get pods -l "$1" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Running$' || true
}
pods_count() { k -n "$NS" get pods -l "$1" -o name | wc -l; }

checks() {
    stack_is_up "$(mode)" "$(k8s_cni)" || die "the stack is not up with --k8s; run scripts/stack up --k8s"
    local cni t t0
    cni=$(k8s_cni)
    t0=$(now)
    echo "selftest-k8s: node $HOST, Kubernetes v$K8S_VERSION, cni $cni"
    check "node $HOST Ready" k wait --for=condition=Ready "node/$HOST" --timeout=60s
    check "node version v$K8S_VERSION" test "$(k get node "$HOST" -o jsonpath='{.status.nodeInfo.kubeletVersion}')" = "v$K8S_VERSION"

    t=$(now)
    k create namespace "$NS" >/dev/null
    check "namespace $NS has its default ServiceAccount (controller-manager)" \
        wait_for 60 "default ServiceAccount" k -n "$NS" get serviceaccount default
    echo "  namespace ready in $(since "$t") s"

    if [[ $cni == bridge ]]; then
        t=$(now)
        # sleep as PID 1 ignores SIGTERM: a 1 s grace period, not 30.
        k -n "$NS" run kbox --image "$K8S_IMAGE" --image-pull-policy Never --restart Never \
            --overrides '{"spec":{"terminationGracePeriodSeconds":1}}' --command -- sleep 3600 >/dev/null
        check "pod kbox Running" k -n "$NS" wait --for=condition=Ready pod/kbox --timeout=90s
        echo "  pod Running in $(since "$t") s"
        local ip out
        ip=$(k -n "$NS" get pod kbox -o jsonpath='{.status.podIP}')
        check "pod IP $ip in the bridge's subnet $CNI_BRIDGE_SUBNET" test "${ip%.*}" = "$(cut -d/ -f1 <<<"$CNI_BRIDGE_SUBNET" | cut -d. -f1-3)"
        t=$(now)
        # shellcheck disable=SC2016 # expanded in the pod
        out=$(k -n "$NS" exec kbox -- sh -c 'echo hello-$(hostname); ip -4 -o addr show eth0')
        check "exec answers ($(head -n 1 <<<"$out"))" grep -q '^hello-kbox$' <<<"$out"
        check "pod's eth0 has $ip" grep -q "inet $ip/" <<<"$out"
        echo "  exec round trip $(since "$t") s"

        t=$(now)
        k -n "$NS" create deployment kboxes --image "$K8S_IMAGE" --replicas 0 -- sleep 3600 >/dev/null
        k -n "$NS" patch deployment kboxes --type json \
            -p '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"},{"op":"add","path":"/spec/template/spec/terminationGracePeriodSeconds","value":1}]' >/dev/null
        k -n "$NS" scale deployment kboxes --replicas 3 >/dev/null
        check "Deployment scaled to 3, all Running" wait_for 120 "3 Running" test_count app=kboxes 3 running
        echo "  3 replicas Running in $(since "$t") s"
        t=$(now)
        k -n "$NS" scale deployment kboxes --replicas 0 >/dev/null
        check "Deployment scaled back to 0, pods gone" wait_for 120 "0 pods" test_count app=kboxes 0 all
        echo "  scaled to 0 in $(since "$t") s"
    else
        echo "  skip pods: cni $cni (Kuryr's CNI is tested by its own tests)"
    fi

    t=$(now)
    k delete namespace "$NS" --wait=false >/dev/null
    check "namespace $NS deleted (namespace controller emptied it)" \
        wait_for 120 "namespace gone" bash -c "! $K8S_BIN/kubectl --kubeconfig $K8S_ADMIN_KUBECONFIG get namespace $NS"
    echo "  namespace deleted in $(since "$t") s"
    echo "  total $(since "$t0") s"
}

test_count() { # selector n running|all
    local c
    if [[ $3 == running ]]; then c=$(running_pods "$1"); else c=$(pods_count "$1"); fi
    [[ $c == "$2" ]]
}

[[ $(id -u) == 0 ]] || die "selftest-k8s needs root"

if ((up_down == 0)); then
    checks
    RESULT=0
    exit 0
fi

# ---- up --k8s && down, N times, and nothing left behind
any_up && die "--up-down needs the stack down first (scripts/stack down)"
before=$(leftovers)
[[ -z $before ]] || { echo "leftovers before the first up:"; echo "$before"; }
for i in $(seq "$up_down"); do
    echo "selftest-k8s: cycle $i/$up_down: up --k8s"
    t=$(now)
    "$SCRIPT_DIR/stack" up --k8s --cni bridge 2>&1 | sed 's/^/    /'
    echo "  up --k8s in $(since "$t") s"
    checks
    t=$(now)
    "$SCRIPT_DIR/stack" down 2>&1 | sed 's/^/    /'
    echo "  down in $(since "$t") s"
    after=$(comm -13 <(sort <<<"$before") <(leftovers | sort))
    if [[ -n $after ]]; then
        echo "  FAIL left behind after down (cycle $i):"
        sed 's/^/    /' <<<"$after"
        exit 1
    fi
    echo "  ok   nothing left behind (process, mount, netns, veth, cgroup, CNI file)"
done
CHECKS_ONLY=0
RESULT=0
