#!/usr/bin/env bash
# Kubernetes in the dev stack (`scripts/stack up --k8s`): a one-node cluster
# of real components built by `scripts/stack install --k8s` (k8s-build.sh,
# versions pinned in k8s-versions).
#  - central: a PKI made with openssl, etcd, kube-apiserver,
#    kube-controller-manager, kube-scheduler (k8s_start_central, k8s_stop_central)
#  - node: containerd on its own socket and root, the CNI config, the images,
#    and the kubelet, named as this node's OVN chassis (k8s_start_node HOST,
#    k8s_stop_node)
# Everything listens on 127.0.0.1; files live in $STATE/k8s and /run/kuryr-k8s.
# Sourced by scripts/stack.
# shellcheck shell=bash

# shellcheck source=k8s-versions
source "$STACK_D/k8s-versions"
K8S_CACHE=${KURYR_K8S_CACHE:-/var/cache/kuryr-k8s}
K8S_STATE=$STATE/k8s
K8S_PKI=$K8S_STATE/pki
K8S_RUN=/run/kuryr-k8s
# Where containerd mounts pods' netns files (netns_mounts_under_state_dir).
K8S_NETNS_DIR=$K8S_RUN/containerd/io.containerd.grpc.v1.cri/netns
K8S_BIN=$K8S_CACHE/kubernetes-$K8S_VERSION/bin
ETCD_BIN=$K8S_CACHE/etcd-$ETCD_VERSION/bin
CONTAINERD_BIN=$K8S_CACHE/containerd-$CONTAINERD_VERSION/bin
CRICTL_BIN=$K8S_CACHE/crictl-$CRICTL_VERSION/bin
CONTAINERD_SOCK=$K8S_RUN/containerd.sock
ETCD_PORT=2379
ETCD_PEER_PORT=2380
APISERVER_PORT=6443
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
K8S_SERVICE_CIDR=${KURYR_K8S_SERVICE_CIDR:-10.96.0.0/16}
K8S_SERVICE_IP=${KURYR_K8S_SERVICE_IP:-10.96.0.1}
# The reference CNI (`--cni bridge`): Debian's bridge + host-local plugins.
CNI_CONF_DIR=/etc/cni/net.d
CNI_BIN_DIRS=(/opt/cni/bin /usr/lib/cni)
CNI_BRIDGE_CONF=$CNI_CONF_DIR/10-kuryr-stack-bridge.conflist
CNI_BRIDGE_NAME=kuryr-stack-bridge
CNI_BRIDGE_DEV=kstbr0
CNI_BRIDGE_SUBNET=${KURYR_K8S_BRIDGE_SUBNET:-10.244.0.0/24}
# Images: the stack's busybox rootfs (cache/kbox.tar), imported into
# containerd's k8s.io namespace as the workload image and as the pause image.
# Not Docker's kbox:latest: the import below goes through dockerd and removes
# what it tagged, which must not be the Docker tests' image.
K8S_IMAGE=docker.io/kuryr/kbox:k8s
K8S_PAUSE_IMAGE=docker.io/kuryr/pause:kbox
K8S_ADMIN_KUBECONFIG=$K8S_STATE/admin.kubeconfig
K8S_SERVICES=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)
# Sysctls the kubelet sets at start (protectKernelDefaults: false) to
# vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1
# kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000; their
# values before it starts go to $LOG/sysctl-before-kubelet; `down` does not
# restore them.
K8S_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

k8s_enabled() { [[ -r $STATE/k8s.cni ]]; }
k8s_cni() { cat "$STATE/k8s.cni" 2>/dev/null || echo none; }

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$K8S_ADMIN_KUBECONFIG" "$@"; }
crictl_ours() { "$CRICTL_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --image-endpoint "unix://$CONTAINERD_SOCK" --timeout 20s "$@"; }
ctr_ours() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" "$@"; }

k8s_built() {
    [[ -r $K8S_CACHE/kubernetes-$K8S_VERSION/.stamp && -r $K8S_CACHE/etcd-$ETCD_VERSION/.stamp &&
        -r $K8S_CACHE/containerd-$CONTAINERD_VERSION/.stamp && -r $K8S_CACHE/crictl-$CRICTL_VERSION/.stamp ]]
}

k8s_check_prereqs() {
    local b
    for b in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kubectl} \
        "$ETCD_BIN/etcd" "$CONTAINERD_BIN"/{containerd,containerd-shim-runc-v2,ctr} "$CRICTL_BIN/crictl"; do
        [[ -x $b ]] || die "$b missing: run scripts/stack install --k8s"
    done
    for b in /usr/sbin/runc openssl; do
        command -v "$b" >/dev/null || die "$b missing: run scripts/stack install"
    done
    if [[ $1 == bridge ]]; then
        k8s_cni_plugin bridge >/dev/null && k8s_cni_plugin host-local >/dev/null \
            || die "CNI plugins bridge/host-local missing (apt containernetworking-plugins): run scripts/stack install"
    fi
}

k8s_cni_plugin() { # name -> path of the first one found
    local d
    for d in "${CNI_BIN_DIRS[@]}"; do [[ -x $d/$1 ]] && { echo "$d/$1"; return 0; }; done
    return 1
}

k8s_check_foreign() {
    local port
    for port in $ETCD_PORT $ETCD_PEER_PORT $APISERVER_PORT 10248 10250 10257 10259; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "127.0.0.1:$port is already in use by a process this stack did not start"
        fi
    done
    # One our own `down` just killed may still be exiting, or a zombie that
    # PID 1 has not reaped yet: give it 15 s before calling it foreign.
    local pid live deadline=$((SECONDS + 15))
    while :; do
        live=()
        for pid in $(pgrep -x kubelet || true) $(pgrep -x kube-apiserver || true); do
            grep -q '^State:.*zombie' "/proc/$pid/status" 2>/dev/null || live+=("$pid")
        done
        ((${#live[@]} == 0)) && break
        ((SECONDS < deadline)) || die "a kubelet/kube-apiserver this stack did not start runs as pid ${live[0]}"
        sleep 0.5
    done
}

# Start a daemon in its own session, log to $LOG/<name>.log, record its PID.
k8s_spawn() { # name command...
    local name=$1; shift
    setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
    echo $! >"$PIDS/$name.pid"
}

# ---------------------------------------------------------------- PKI

# k8s_cert NAME SUBJECT [SAN]: an EC P-256 key and a cert signed by the CA.
k8s_cert() {
    local name=$1 subj=$2 san=${3:-} ext=$K8S_PKI/$1.ext
    openssl ecparam -name prime256v1 -genkey -noout -out "$K8S_PKI/$name.key" 2>/dev/null
    openssl req -new -key "$K8S_PKI/$name.key" -subj "$subj" -out "$K8S_PKI/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [[ -n $san ]]; then
            echo "extendedKeyUsage=serverAuth,clientAuth"
            echo "subjectAltName=$san"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$ext"
    openssl x509 -req -in "$K8S_PKI/$name.csr" -CA "$K8S_PKI/ca.crt" -CAkey "$K8S_PKI/ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$K8S_PKI/$name.crt" 2>/dev/null \
        || die "openssl: cannot sign $name"
    rm -f "$K8S_PKI/$name.csr" "$ext"
}

k8s_kubeconfig() { # file cert-name
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kuryr-stack
  cluster:
    server: $APISERVER_URL
    certificate-authority: $K8S_PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $K8S_PKI/$2.crt
    client-key: $K8S_PKI/$2.key
contexts:
- name: kuryr-stack
  context: {cluster: kuryr-stack, user: $2}
current-context: kuryr-stack
EOF
    chmod 600 "$1"
}

k8s_pki() { # host
    local host=$1
    rm -rf "$K8S_PKI"; mkdir -p "$K8S_PKI"; chmod 700 "$K8S_PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out "$K8S_PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$K8S_PKI/ca.key" -subj "/CN=kuryr-stack-ca" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "$K8S_PKI/ca.crt" 2>/dev/null || die "openssl: cannot make the CA"
    k8s_cert apiserver "/CN=kube-apiserver" \
        "IP:127.0.0.1,IP:$K8S_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    k8s_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    k8s_cert admin "/O=system:masters/CN=kubernetes-admin"
    k8s_cert kube-controller-manager "/CN=system:kube-controller-manager"
    k8s_cert kube-scheduler "/CN=system:kube-scheduler"
    k8s_cert kubelet "/O=system:nodes/CN=system:node:$host"
    k8s_cert kubelet-server "/CN=$host" "DNS:$host,DNS:localhost,IP:127.0.0.1"
    # The Kuryr controller (ours or upstream's): bound by the ClusterRole
    # kuryr-controller (k8s_rbac), like upstream's deployment.
    k8s_cert kuryr-controller "/CN=kuryr-controller"
    # The service-account token signing pair.
    openssl ecparam -name prime256v1 -genkey -noout -out "$K8S_PKI/sa.key" 2>/dev/null
    openssl ec -in "$K8S_PKI/sa.key" -pubout -out "$K8S_PKI/sa.pub" 2>/dev/null
    rm -f "$K8S_PKI/ca.srl"
    local c
    for c in admin kube-controller-manager kube-scheduler kubelet kuryr-controller; do
        k8s_kubeconfig "$K8S_STATE/$c.kubeconfig" "$c"
    done
}

# ---------------------------------------------------------------- central

k8s_start_etcd() {
    mkdir -p "$K8S_STATE/etcd"; chmod 700 "$K8S_STATE/etcd"
    # Loopback, plain HTTP, no fsync: a throw-away dev cluster.
    k8s_spawn etcd "$ETCD_BIN/etcd" --name kuryr-stack --data-dir "$K8S_STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "kuryr-stack=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
        --unsafe-no-fsync --log-level warn --quota-backend-bytes 2147483648
    wait_svc etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

k8s_start_apiserver() {
    local p=$K8S_PKI
    k8s_spawn kube-apiserver "$K8S_BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
        --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
        --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
        --client-ca-file "$p/ca.crt" \
        --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
        --kubelet-client-key "$p/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types Hostname,InternalIP \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
        --service-cluster-ip-range "$K8S_SERVICE_CIDR" \
        --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
        --allow-privileged=true --profiling=false --v 1
    wait_svc kube-apiserver 90 kubectl_admin get --raw /readyz
}

k8s_start_controllers() {
    local p=$K8S_PKI
    k8s_spawn kube-controller-manager "$K8S_BIN/kube-controller-manager" \
        --kubeconfig "$K8S_STATE/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig "$K8S_STATE/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig "$K8S_STATE/kube-controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 10257 \
        --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
        --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
        --use-service-account-credentials=true --leader-elect=false \
        --service-cluster-ip-range "$K8S_SERVICE_CIDR" --profiling=false --v 1
    k8s_spawn kube-scheduler "$K8S_BIN/kube-scheduler" \
        --kubeconfig "$K8S_STATE/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig "$K8S_STATE/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig "$K8S_STATE/kube-scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false --v 1
    wait_svc kube-controller-manager 60 curl -fsSk https://127.0.0.1:10257/healthz
    wait_svc kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz
    # Pods are refused until the controller-manager made the namespace's
    # default ServiceAccount: a `kubectl run` right after `up` must work.
    wait_svc kube-controller-manager 60 kubectl_admin -n default get serviceaccount default
}

# RBAC for the Kuryr controller's identity (CN=kuryr-controller): upstream
# kuryr-kubernetes' ClusterRole (devstack/lib/kuryr_kubernetes, 10.0.0), plus
# pods/status, EndpointSlices, reading CRDs, and leases (leader election).
# Upstream's CNI daemon runs under the same identity here. The objects are
# named kuryr-stack-controller: deploy/kubernetes/rbac.yaml's own
# (kuryr-controller, for its service account) come and go with a deployment.
k8s_rbac() {
    kubectl_admin apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kuryr-stack-controller}
rules:
- apiGroups: [""]
  resources: [endpoints, pods, pods/status, services, services/status, namespaces]
  verbs: ["*"]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [openstack.org]
  resources: [kuryrnetworks, kuryrnetworkpolicies, kuryrloadbalancers, kuryrports]
  verbs: ["*"]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, update, patch]
- apiGroups: [k8s.cni.cncf.io]
  resources: [network-attachment-definitions]
  verbs: [get]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kuryr-stack-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kuryr-stack-controller}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: kuryr-controller}
EOF
}

k8s_start_central() { # host
    mkdir -p "$K8S_STATE" "$K8S_RUN"
    local t
    t=$(now); k8s_pki "$1"; say "k8s pki  made in $(since "$t") s (openssl, EC P-256, in $K8S_PKI)"
    t=$(now); k8s_start_etcd; say "etcd      up in $(since "$t") s (http://127.0.0.1:$ETCD_PORT, v$ETCD_VERSION)"
    t=$(now); k8s_start_apiserver; say "kube-apiserver up in $(since "$t") s ($APISERVER_URL, v$K8S_VERSION)"
    t=$(now); k8s_start_controllers; say "kube-controller-manager, kube-scheduler up in $(since "$t") s"
    k8s_rbac || fail kube-apiserver "cannot apply the kuryr-controller RBAC"
    # Kuryr's CRDs (generated from the Rust types), so tests and the
    # controller find them; deploy/kubernetes/ applies them again, unchanged.
    kubectl_admin apply -f "$REPO/deploy/kubernetes/crds.yaml" >/dev/null \
        || fail kube-apiserver "cannot apply deploy/kubernetes/crds.yaml"
}

k8s_stop_central() {
    kill_svc kube-scheduler 10
    kill_svc kube-controller-manager 10
    kill_svc kube-apiserver 20
    kill_svc etcd 10
}

# ---------------------------------------------------------------- node

k8s_containerd_config() {
    local bins
    bins=$(printf "'%s'," "${CNI_BIN_DIRS[@]}")
    cat >"$K8S_STATE/containerd.toml" <<EOF
# containerd for the stack's kubelet: its own socket, root and state, so
# Docker's containerd is untouched. Written by scripts/stack.d/k8s.sh.
version = 3
root = '$K8S_STATE/containerd'
state = '$K8S_RUN/containerd'
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.tracing', 'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs']

[grpc]
  address = '$CONTAINERD_SOCK'
[ttrpc]
  address = '$CONTAINERD_SOCK.ttrpc'
[debug]
  address = ''
[metrics]
  address = ''

[plugins.'io.containerd.internal.v1.opt']
  path = '$K8S_STATE/containerd-opt'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = '${KURYR_K8S_SNAPSHOTTER:-overlayfs}'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$K8S_PAUSE_IMAGE'

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # No CAP_SYS_RESOURCE here: never lower a process's oom_score_adj.
  restrict_oom_score_adj = true
  # Pod netns files under our state dir (not /var/run/netns), so down
  # finds a killed containerd's leftovers there.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/sbin/runc'
        Root = '$K8S_RUN/runc'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${bins%,}]
    conf_dir = '$CNI_CONF_DIR'
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
EOF
}

k8s_cni_config() { # cni
    case $1 in
        bridge)
            mkdir -p "$CNI_CONF_DIR"
            cat >"$CNI_BRIDGE_CONF" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_BRIDGE_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE_DEV",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$CNI_BRIDGE_SUBNET"}]],
        "dataDir": "$K8S_RUN/cni-ipam"
      }
    }
  ]
}
EOF
            ;;
        kuryr) # the conflist is Kuryr's to install (ours or upstream's, scripts/bench.d)
            rm -f "$CNI_BRIDGE_CONF" ;;
        *) die "unknown --cni $1 (bridge | kuryr)" ;;
    esac
}

k8s_start_containerd() {
    mkdir -p "$K8S_STATE/containerd" "$K8S_RUN" "$K8S_NETNS_DIR"
    # A shared mount, as `ip netns` makes /run/netns: a node daemon in a pod
    # (deploy/kubernetes/daemon.yaml) mounts it with HostToContainer
    # propagation, which the kubelet allows only on a shared or slave mount,
    # and this host's / is private. `down` unmounts it with the rest.
    mountpoint -q "$K8S_NETNS_DIR" || mount --bind "$K8S_NETNS_DIR" "$K8S_NETNS_DIR"
    mount --make-shared "$K8S_NETNS_DIR"
    k8s_containerd_config
    PATH=$CONTAINERD_BIN:$PATH k8s_spawn containerd "$CONTAINERD_BIN/containerd" \
        --config "$K8S_STATE/containerd.toml" --log-level warn
    wait_svc containerd 30 ctr_ours version
}

# The stack's busybox rootfs (made by import_kbox into $CACHE/kbox.tar) as two
# images in the k8s.io namespace: the workload image and a pause image whose
# command blocks.
k8s_import_images() {
    [[ -s $CACHE/kbox.tar ]] || fail containerd "no $CACHE/kbox.tar (made by dockerd's import_kbox)"
    local stamp=$CACHE/k8s-images.stamp tar
    # Named after the images it holds, so renaming them makes a new one.
    tar=$CACHE/k8s-images-$(printf '%s %s' "$K8S_IMAGE" "$K8S_PAUSE_IMAGE" | md5sum | cut -c1-8).tar
    if [[ ! -s $tar || $CACHE/kbox.tar -nt $tar ]]; then
        docker import -c 'ENV PATH=/bin:/sbin' -c 'CMD ["/bin/sh"]' "$CACHE/kbox.tar" "$K8S_IMAGE" >/dev/null \
            || fail dockerd "docker import $K8S_IMAGE failed"
        docker import -c 'ENV PATH=/bin:/sbin' \
            -c "ENTRYPOINT [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM INT; while :; do sleep 3600 & wait \$!; done\"]" \
            "$CACHE/kbox.tar" "$K8S_PAUSE_IMAGE" >/dev/null || fail dockerd "docker import $K8S_PAUSE_IMAGE failed"
        docker save "$K8S_IMAGE" "$K8S_PAUSE_IMAGE" >"$tar.tmp" && mv "$tar.tmp" "$tar" \
            || fail dockerd "docker save failed"
        docker rmi "$K8S_IMAGE" "$K8S_PAUSE_IMAGE" >/dev/null 2>&1 || true
        rm -f "$stamp"
    fi
    ctr_ours -n k8s.io images import --snapshotter "${KURYR_K8S_SNAPSHOTTER:-overlayfs}" "$tar" >>"$LOG/containerd.log" 2>&1 \
        || fail containerd "ctr images import failed"
}

k8s_kubelet_config() { # host
    local p=$K8S_PKI
    cat >"$K8S_STATE/kubelet.yaml" <<EOF
# The stack's kubelet. Written by scripts/stack.d/k8s.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $p/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $p/kubelet-server.crt
tlsPrivateKeyFile: $p/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
# cgroup v1 without systemd (the kubelet refuses v1 unless told).
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# No CAP_SYS_RESOURCE: the kubelet cannot lower its own oom_score_adj.
oomScoreAdj: 0
clusterDomain: cluster.local
podLogsDir: $K8S_STATE/pod-logs
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
maxPods: 110
EOF
}

k8s_start_kubelet() { # host
    local host=$1
    mkdir -p "$K8S_STATE/kubelet" "$K8S_STATE/pod-logs"
    k8s_kubelet_config "$host"
    local s
    for s in "${K8S_SYSCTLS[@]}"; do
        printf '%s = %s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo '?')"
    done >"$LOG/sysctl-before-kubelet"
    k8s_spawn kubelet "$K8S_BIN/kubelet" --config "$K8S_STATE/kubelet.yaml" \
        --kubeconfig "$K8S_STATE/kubelet.kubeconfig" --root-dir "$K8S_STATE/kubelet" \
        --hostname-override "$host" --v 1
    wait_svc kubelet 60 curl -fsS http://127.0.0.1:10248/healthz
}

k8s_wait_node_ready() { # host timeout
    wait_svc kubelet "$2" kubectl_admin wait --for=condition=Ready "node/$1" --timeout=2s
}

k8s_start_node() { # host cni
    local t host=$1 cni=$2
    k8s_cni_config "$cni"
    t=$(now); k8s_start_containerd; k8s_import_images
    say "containerd up in $(since "$t") s (unix://$CONTAINERD_SOCK, v$CONTAINERD_VERSION; $K8S_IMAGE and $K8S_PAUSE_IMAGE imported)"
    t=$(now); k8s_start_kubelet "$host"
    if [[ $cni == bridge ]]; then
        k8s_wait_node_ready "$host" 60
        say "kubelet   up in $(since "$t") s (node $host Ready, CNI bridge+host-local $CNI_BRIDGE_SUBNET)"
    else
        say "kubelet   up in $(since "$t") s (node $host; Ready once Kuryr's conflist is in $CNI_CONF_DIR)"
    fi
}

# Pods first (through the CRI, so the CNI DEL runs and netns/veths go), then
# the kubelet and containerd, then whatever a killed process left behind.
k8s_stop_node() {
    kill_svc kubelet 15
    k8s_remove_pods
    kill_svc containerd 15
    k8s_kill_orphan_shims
    k8s_unmount_leftovers
    k8s_remove_cgroups
    k8s_remove_net_leftovers
}

k8s_remove_pods() {
    if svc_pid containerd >/dev/null; then
        local ids
        ids=$(crictl_ours pods -q 2>/dev/null || true)
        if [[ -n $ids ]]; then
            say "removing $(wc -w <<<"$ids") pod sandbox(es) left in our containerd"
            local id
            for id in $ids; do
                crictl_ours stopp "$id" >/dev/null 2>&1 || true
                crictl_ours rmp -f "$id" >/dev/null 2>&1 || true
            done
        fi
    fi
}

# Shims of our containerd (their -address is our socket) that outlived it.
k8s_kill_orphan_shims() {
    local pid child
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
        say "killing containerd shim $pid (and its containers) left by our containerd"
        for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" 2>/dev/null || true; done
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    done
}

k8s_unmount_leftovers() {
    local m
    # The kubelet's rshared bind mount of its root dir and pod volumes,
    # containerd's rootfs overlays, sandbox shm, and the CRI's netns files.
    for m in $(awk -v a="$K8S_STATE/" -v b="$K8S_RUN/" 'index($2, a) == 1 || index($2, b) == 1 || $2 == substr(a, 1, length(a) - 1) {print $2}' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# The cgroups the kubelet made (cgroupfs driver): kubepods in every v1
# hierarchy and in the unified one; and k8s.io, where containerd puts the
# sandboxes of pods made through the CRI without the kubelet (crictl runp).
# Children first; only empty ones can go.
k8s_remove_cgroups() {
    local d
    for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/k8s.io; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [[ -d $d ]] && say "cgroup $d still there (processes in it?)"
    done
    return 0
}

k8s_remove_net_leftovers() {
    local l
    if [[ -r $CNI_BRIDGE_CONF ]] && grep -q "\"$CNI_BRIDGE_NAME\"" "$CNI_BRIDGE_CONF"; then
        rm -f "$CNI_BRIDGE_CONF"
    fi
    # The bridge plugin's bridge and any of its veths still attached.
    if ip link show "$CNI_BRIDGE_DEV" >/dev/null 2>&1; then
        for l in $(ip -o link show master "$CNI_BRIDGE_DEV" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
            ip link del "$l" 2>/dev/null || true
        done
        ip link del "$CNI_BRIDGE_DEV" 2>/dev/null || true
    fi
    rm -rf "$K8S_RUN/cni-ipam" /var/lib/cni/results/"$CNI_BRIDGE_NAME"-*
    # Directories made on first use and shared by convention, removed only
    # when empty: libcni's result cache, the kubelet's /var/log/containers
    # (hard-coded), and the shims' socket dir (hard-coded /run/containerd/s).
    rmdir /var/lib/cni/results /var/lib/cni /var/log/containers /run/containerd/s \
        /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
    local f
    for f in /var/log/containers/*.log; do
        [[ -L $f && $(readlink "$f") == "$K8S_STATE"/* ]] && rm -f "$f"
    done
    return 0
}

# ---------------------------------------------------------------- whole cluster

k8s_up() { # host cni
    k8s_check_prereqs "$2"
    k8s_check_foreign
    echo "$2" >"$STATE/k8s.cni"
    k8s_start_central "$1"
    k8s_start_node "$1" "$2"
}

k8s_down() {
    # The kubelet, then the pods while their CNI (maybe Kuryr's) still runs,
    # then upstream kuryr-kubernetes if scripts/bench.d/upstream-k8s started it.
    kill_svc kubelet 15
    k8s_remove_pods
    if compgen -G "$STATE/upstream-k8s/*.pid" >/dev/null; then
        "$SCRIPT_DIR/bench.d/upstream-k8s" stop || true
    fi
    k8s_stop_node
    k8s_stop_central
    k8s_stop_node_leftovers_after_central
}

k8s_stop_node_leftovers_after_central() {
    rm -rf "$K8S_STATE/etcd" "$K8S_STATE/containerd" "$K8S_STATE/kubelet" "$K8S_STATE/containerd-opt" \
        "$K8S_STATE/pod-logs" "$K8S_PKI" "$K8S_STATE"/*.kubeconfig "$STATE/k8s.cni" 2>/dev/null || true
    rm -rf "$K8S_RUN" 2>/dev/null || true
}

k8s_status() {
    local s pid
    for s in "${K8S_SERVICES[@]}"; do
        if pid=$(svc_pid "$s"); then
            printf '%-24s up    pid %s\n' "$s" "$pid"
        else
            printf '%-24s down\n' "$s"
        fi
    done
    printf '%-24s %s\n' cni "$(k8s_cni)"
}

k8s_env() {
    echo "export KUBECONFIG='$K8S_ADMIN_KUBECONFIG'"
    echo "export KURYR_STACK_K8S_API='$APISERVER_URL'"
    echo "export KURYR_STACK_K8S_CNI='$(k8s_cni)'"
    echo "export KURYR_STACK_K8S_KURYR_KUBECONFIG='$K8S_STATE/kuryr-controller.kubeconfig'"
    echo "export CONTAINER_RUNTIME_ENDPOINT='unix://$CONTAINERD_SOCK'"
    echo "export IMAGE_SERVICE_ENDPOINT='unix://$CONTAINERD_SOCK'"
    echo "export KURYR_STACK_K8S_CONTAINERD='$CONTAINERD_SOCK'"
    echo "export KURYR_STACK_K8S_CTR='$CONTAINERD_BIN/ctr'"
    # Where containerd mounts pods' netns files (under its state dir here,
    # not /var/run/netns): what a node daemon in a pod must see.
    echo "export KURYR_STACK_K8S_NETNS_DIR='$K8S_NETNS_DIR'"
    echo "export KURYR_STACK_K8S_IMAGE='$K8S_IMAGE'"
    # kubectl (and the other Kubernetes binaries) and crictl, not containerd's
    # or etcd's dirs: dockerd, started from such a shell, runs the
    # `containerd` it finds on PATH and must keep Debian's.
    # shellcheck disable=SC2016
    printf 'case ":$PATH:" in *":%s:"*) ;; *) export PATH="%s:%s:$PATH" ;; esac\n' "$K8S_BIN" "$K8S_BIN" "$CRICTL_BIN"
}
