//! Functional tests of `kuryr daemon` in Kubernetes mode against the real
//! stack (Neutron ML2/OVN, OVS `br-int`, the Kubernetes cluster of
//! `scripts/stack up --k8s`), without the controller: each test plays it,
//! making Neutron ports bound to the node on a network of its own and
//! writing their KuryrPorts by hand (`kuryr_testkit::k8s_node`), then
//! drives the real `kuryr-cni` with the kubelet's `CNI_ARGS` into netns it
//! makes.
//!
//! `eval "$(scripts/stack env)"; cargo build -p kuryr-cni; cargo test -p kuryr --test k8s_node`.
//! Without the stack or its cluster every test prints a skip notice and
//! passes. Names: namespaces `nd-<hex>`, Neutron objects and netns
//! `nd<hex>…`. ADD latencies are printed, never asserted.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kuryr_k8s::vif::{Binding, Vif};
use kuryr_testkit::cni_util::{cni_invoke, CniCall, CniOut, Daemon};
use kuryr_testkit::k8s::{Cluster, TestNamespace};
use kuryr_testkit::k8s_node::{delete_kuryrport, write_kuryrport};
use kuryr_testkit::*;
use openstack::neutron::{Port, PortCreate, Query};
use serde_json::{json, Value};

/// How long the daemon's ADD waits for a KuryrPort in these tests
/// (`[cni_daemon] vif_annotation_timeout`).
const KURYRPORT_TIMEOUT_S: u64 = 6;

/// One pod as the test plays it: its uid, its Neutron port, its netns and
/// sandbox (container) id.
struct TestPod {
    name: String,
    uid: String,
    port: Port,
    netns: String,
    container_id: String,
}

impl TestPod {
    fn netns_name(&self) -> &str {
        self.netns.trim_start_matches("/var/run/netns/")
    }

    fn ip(&self) -> String {
        self.port.fixed_ips[0].ip_address.to_string()
    }
}

/// A test's world: the cluster, a namespace, a Neutron network with a /24
/// subnet, a daemon in Kubernetes mode; everything removed on drop.
struct World {
    stack: Stack,
    cluster: Cluster,
    ns: TestNamespace,
    suffix: String,
    dir: PathBuf,
    network_id: String,
    daemon: Option<Daemon>,
    netns: Vec<String>,
}

impl World {
    /// `None` (skip) without a stack with Kubernetes.
    fn new(test: &str) -> Option<World> {
        let cluster = Cluster::or_skip(test)?;
        let stack = stack(test)?;
        let _ = kuryr_cni_bin();
        cluster.install_crds();
        let ns = cluster.namespace("nd");
        let (suffix, dir) = fresh_dir("kuryr-nd");
        let net = stack.create_network_named(format!("nd{suffix}"));
        let network_id = net.id.to_string();
        let prefix = fresh_v4();
        stack.create_subnet_named(
            &network_id,
            Some(format!("nd{suffix}-v4")),
            &format!("{prefix}.0/24"),
            format!("{prefix}.1").parse().ok(),
        );
        let mut world =
            World { stack, cluster, ns, suffix, dir, network_id, daemon: None, netns: Vec::new() };
        world.start_daemon();
        Some(world)
    }

    fn node(&self) -> &Node {
        self.stack.local()
    }

    /// `kuryr daemon` with `[kubernetes]` (the apiserver from `KUBECONFIG`),
    /// as this node.
    fn start_daemon(&mut self) {
        let node = self.node();
        let config = format!(
            "[DEFAULT]\nhost = {host}\n\
             [binding]\nintegration_bridge = {bridge}\novsdb_socket = {ovsdb}\n\
             [kubernetes]\n\
             [namespace_subnet]\npod_subnet_pool = unused-by-the-node-daemon\n\
             pod_router = unused-by-the-node-daemon\n\
             [cni_daemon]\nvif_annotation_timeout = {KURYRPORT_TIMEOUT_S}\n",
            host = node.host,
            bridge = node.bridge,
            ovsdb = node.ovsdb_socket.display(),
        );
        self.daemon = Some(Daemon::start_with_config(&self.dir, &config, &["--debug"], &[]));
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("the daemon")
    }

    /// A pod `<tag>`: a Neutron port bound to this node (as the controller
    /// makes it), a netns and a sandbox id; its KuryrPort is written by
    /// [`World::write_kuryrport`].
    fn pod(&mut self, tag: &str) -> TestPod {
        let uid = fresh_uuid();
        let name = format!("pod-{tag}");
        let create = PortCreate {
            name: Some(format!("nd{}-{tag}", self.suffix)),
            device_owner: Some("compute:kuryr".into()),
            device_id: Some(uid.clone()),
            binding_host_id: Some(self.node().host.clone()),
            admin_state_up: Some(true),
            ..PortCreate::new(self.network_id.clone())
        };
        let port = self
            .stack
            .block_on(self.stack.neutron.create_port(&create))
            .unwrap_or_else(|e| panic!("creating pod {tag}'s port: {e}"));
        let netns_name = format!("nd{}-{tag}", self.suffix);
        ok("ip", &["netns", "add", &netns_name]);
        self.netns.push(netns_name.clone());
        TestPod {
            name,
            uid,
            port,
            netns: format!("/var/run/netns/{netns_name}"),
            container_id: format!("{tag}{}{}", self.suffix, hex(40)),
        }
    }

    /// The vif the controller would write for `pod`'s port.
    fn vif(&self, pod: &TestPod) -> Value {
        let port = self.stack.port(&pod.port.id).expect("the pod's port");
        let subnets = self.stack.subnets(Query::new().network_id(&self.network_id));
        let mtu = self.stack.network(&self.network_id).and_then(|n| n.mtu);
        let binding = Binding::of_vif_type(&port).expect("the port is bound to the node");
        let vif = Vif::of_port(&port, &subnets, mtu, binding).expect("a vif");
        serde_json::to_value(vif).expect("vif JSON")
    }

    /// `pod`'s KuryrPort for pod uid `uid`, with its vif.
    fn write_kuryrport(&self, pod: &TestPod, uid: &str) {
        self.write_kuryrport_with(pod, uid, self.vif(pod));
    }

    /// The same with the vif given.
    fn write_kuryrport_with(&self, pod: &TestPod, uid: &str, vif: Value) {
        let vifs = json!({"eth0": vif});
        write_kuryrport(
            &self.cluster,
            &self.ns.name,
            &pod.name,
            uid,
            &self.node().host,
            Some(vifs),
        );
    }

    fn conf(&self) -> Value {
        json!({"cniVersion": "1.1.0", "name": format!("nd{}", self.suffix), "type": "kuryr-cni"})
    }

    /// `kuryr-cni` `command` for `pod`, as the kubelet calls it with the
    /// pod's uid `uid`.
    fn cni(&mut self, command: &str, pod: &TestPod, uid: &str) -> CniOut {
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={uid}",
            self.ns.name, pod.name, pod.container_id
        );
        let call = CniCall {
            args: Some(&args),
            ..CniCall::attachment(command, &pod.container_id, &pod.netns, "eth0")
        };
        let socket = self.daemon().socket.clone();
        let out = cni_invoke(&socket, &call, &self.conf());
        if command == "ADD" && out.success {
            eprintln!("latency ADD {} ms", out.elapsed.as_secs_f64() * 1000.0);
        }
        out
    }

    /// CHECK of `pod` after its ADD answered `result`.
    fn check(&mut self, pod: &TestPod, result: &Value) -> CniOut {
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_UID={}",
            self.ns.name, pod.name, pod.uid
        );
        let call = CniCall {
            args: Some(&args),
            ..CniCall::attachment("CHECK", &pod.container_id, &pod.netns, "eth0")
        };
        let mut conf = self.conf();
        conf["prevResult"] = result.clone();
        let socket = self.daemon().socket.clone();
        cni_invoke(&socket, &call, &conf)
    }

    fn status(&mut self) -> CniOut {
        let socket = self.daemon().socket.clone();
        cni_invoke(&socket, &CniCall { command: "STATUS", ..CniCall::default() }, &self.conf())
    }

    /// `ip -n <netns> -o addr show eth0`.
    fn addresses_in(&self, pod: &TestPod) -> String {
        ok("ip", &["-n", pod.netns_name(), "-o", "addr", "show", "eth0"])
    }

    fn pings(&self, from: &TestPod, to: &TestPod, count: &str) -> bool {
        run(
            "ip",
            &[
                "netns",
                "exec",
                from.netns_name(),
                "ping",
                "-c",
                count,
                "-i",
                "0.2",
                "-W",
                "1",
                &to.ip(),
            ],
        )
        .status
        .success()
    }

    fn host_veth(pod: &TestPod) -> String {
        veth_names(&pod.port.id).0
    }

    fn plugged(&self, pod: &TestPod) -> bool {
        self.node().link_exists(&Self::host_veth(pod))
            || self.node().ovs_ports_of(&self.node().bridge).contains(&Self::host_veth(pod))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Stopped first (by PID), so nothing races the cleanup.
        self.daemon.take();
        self.stack.remove_network_and_ports(&self.network_id);
        for ns in &self.netns {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two pods bound from their KuryrPorts: the addresses inside, a ping
/// through OVN, both Neutron ports ACTIVE and untouched (the daemon makes
/// and changes no port); a daemon restart keeps the first pod's veth and
/// traffic; DEL removes the veth and OVS port (twice: idempotent), and the
/// Neutron port stays for the controller to release.
#[test]
fn two_pods_bind_ping_survive_a_restart_and_unbind() {
    let Some(mut w) = World::new("two_pods_bind_ping_survive_a_restart_and_unbind") else {
        return;
    };
    let a = w.pod("a");
    let b = w.pod("b");
    w.write_kuryrport(&a, &a.uid);
    w.write_kuryrport(&b, &b.uid);
    wait_for("STATUS ok (KuryrPorts listed)", Duration::from_secs(30), || {
        w.status().success.then_some(())
    });
    // The kubelet always names the pod; without its uid ADD is error 4.
    let no_uid = format!("K8S_POD_NAMESPACE={};K8S_POD_NAME={}", w.ns.name, a.name);
    let call = CniCall {
        args: Some(&no_uid),
        ..CniCall::attachment("ADD", &a.container_id, &a.netns, "eth0")
    };
    let socket = w.daemon().socket.clone();
    let (code, msg) = cni_invoke(&socket, &call, &w.conf()).error();
    assert_eq!(code, 4, "{msg}");
    assert!(msg.contains("K8S_POD_UID"), "{msg}");
    assert!(!w.plugged(&a));

    for pod in [&a, &b] {
        let out = w.cni("ADD", pod, &pod.uid);
        out.expect_ok("ADD");
        let result = out.json();
        w.check(pod, &result).expect_ok("CHECK");
        let want = format!("{}/24", pod.ip());
        assert_eq!(result["ips"][0]["address"], want.as_str(), "{result}");
        assert_eq!(result["interfaces"][1]["mac"], pod.port.mac_address.as_str(), "{result}");
        assert_eq!(result["interfaces"][1]["sandbox"], pod.netns.as_str(), "{result}");
        let inside = w.addresses_in(pod);
        assert!(inside.contains(&want), "{inside}");
        assert_eq!(
            w.node().ovs_external_id(&World::host_veth(pod), "kuryr-k8s-container").as_deref(),
            Some(pod.container_id.as_str())
        );
        assert_eq!(
            w.node().ovs_external_id(&World::host_veth(pod), "vm-uuid").as_deref(),
            Some(pod.uid.as_str())
        );
    }
    wait_for("a ping through OVN", Duration::from_secs(15), || w.pings(&a, &b, "1").then_some(()));
    assert!(w.pings(&b, &a, "3"), "pings after the first one failed");
    for pod in [&a, &b] {
        let port = wait_for("the port ACTIVE", Duration::from_secs(30), || {
            w.stack.port(&pod.port.id).filter(|p| p.status == "ACTIVE")
        });
        assert_eq!(port.name, pod.port.name, "the daemon changes no port");
        assert_eq!(port.device_id, pod.uid);
        assert_eq!(port.binding_host_id, w.node().host);
    }

    let rss = w.daemon().rss_kib();
    eprintln!("rss kuryr daemon (Kubernetes mode, 2 pods) {} kB", rss.unwrap_or_default());
    w.daemon().restart();
    assert!(w.node().link_exists(&World::host_veth(&a)), "the veth outlives the daemon");
    assert!(w.pings(&a, &b, "3"), "traffic goes on across a daemon restart");
    wait_for("STATUS ok after the restart", Duration::from_secs(30), || {
        w.status().success.then_some(())
    });

    for pod in [&a, &b] {
        w.cni("DEL", pod, &pod.uid).expect_ok("DEL");
        assert!(!w.plugged(pod), "veth and OVS port removed");
        w.cni("DEL", pod, &pod.uid).expect_ok("DEL again");
        assert!(w.stack.port(&pod.port.id).is_some(), "the port is the controller's to delete");
    }
    let log = w.daemon().log_text();
    assert!(log.contains("mode=\"kubernetes\"") || log.contains("mode=kubernetes"), "{log}");
}

/// A KuryrPort of another pod of the same name (uid X, the ADD's Y) is
/// never bound: error 11 after the timeout naming both uids, nothing
/// plugged. Once the controller writes the pod's own KuryrPort the retry
/// binds; DEL without the KuryrPort finds the port through OVSDB.
#[test]
fn a_stale_kuryrport_is_never_bound() {
    let Some(mut w) = World::new("a_stale_kuryrport_is_never_bound") else {
        return;
    };
    let pod = w.pod("s");
    let stale = fresh_uuid();
    w.write_kuryrport(&pod, &stale);
    let started = Instant::now();
    let out = w.cni("ADD", &pod, &pod.uid);
    let (code, msg) = out.error();
    assert_eq!(code, 11, "{msg}");
    assert!(
        started.elapsed() >= Duration::from_secs(KURYRPORT_TIMEOUT_S),
        "{:?}",
        started.elapsed()
    );
    assert!(msg.contains(&format!("belongs to pod uid {stale}, not {}", pod.uid)), "{msg}");
    assert!(!w.plugged(&pod), "nothing plugged");
    let inside = run("ip", &["-n", pod.netns_name(), "link", "show", "eth0"]);
    assert!(!inside.status.success(), "no eth0 in the netns");

    // The controller catches up: the retry binds at once.
    w.write_kuryrport(&pod, &pod.uid);
    let out = wait_for("the ADD after the KuryrPort was fixed", Duration::from_secs(30), || {
        let out = w.cni("ADD", &pod, &pod.uid);
        out.success.then_some(out)
    });
    assert!(out.elapsed < Duration::from_secs(KURYRPORT_TIMEOUT_S), "{:?}", out.elapsed);
    assert!(w.plugged(&pod));

    // Gone from the apiserver: DEL still finds the port through OVSDB.
    delete_kuryrport(&w.cluster, &w.ns.name, &pod.name);
    w.cni("DEL", &pod, &pod.uid).expect_ok("DEL");
    assert!(!w.plugged(&pod), "veth and OVS port removed");
}

/// An ADD waiting for its KuryrPort binds as soon as the controller
/// writes it, well before the timeout.
#[test]
fn an_add_waits_for_its_kuryrport() {
    let Some(mut w) = World::new("an_add_waits_for_its_kuryrport") else {
        return;
    };
    let pod = w.pod("w");
    let vif = w.vif(&pod);
    let (socket, conf) = (w.daemon().socket.clone(), w.conf());
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_UID={}",
        w.ns.name, pod.name, pod.uid
    );
    let (cid, netns) = (pod.container_id.clone(), pod.netns.clone());
    let add = std::thread::spawn(move || {
        let call =
            CniCall { args: Some(&args), ..CniCall::attachment("ADD", &cid, &netns, "eth0") };
        cni_invoke(&socket, &call, &conf)
    });
    std::thread::sleep(Duration::from_millis(800));
    w.write_kuryrport_with(&pod, &pod.uid, vif);
    let out = add.join().expect("the ADD thread");
    out.expect_ok("ADD");
    eprintln!("latency ADD (waiting) {} ms", out.elapsed.as_secs_f64() * 1000.0);
    assert!(w.plugged(&pod));
    w.cni("DEL", &pod, &pod.uid).expect_ok("DEL");
}
