//! `K8sCni` over netplumb's fake switch, a real veth into a netns the test
//! makes (`nd-<hex>`; root only, skipped otherwise), a fake Neutron that
//! must see no call, and a KuryrPort cache fed by hand: ADD binds the
//! vif, waits for it event-driven, refuses another pod's (code 11, nothing
//! plugged), DEL finds the port in OVSDB, GC, STATUS, bad CNI_ARGS.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::watcher::Event;
use kuryr_cni_daemon::proto::Request;
use kuryr_cni_daemon::{Call, CniHandler, ErrorCode};
use kuryr_core::binding::{Binder, IFACE_ID_KEY, OWNER_KEY};
use kuryr_core::lifecycle::{Lifecycle, LifecycleSettings};
use kuryr_core::naming::pod as naming;
use netplumb::ovs::fake::FakeSwitch;
use netplumb::Netlink;
use openstack::fake::FakeNeutron;
use serde_json::{json, Value};

use super::ports::{cache, PortFeed};
use super::{K8sCni, Settings};
use crate::crds::{KuryrPort, KuryrPortSpec, KuryrPortStatus};
use crate::vif::Vif;

const NS: &str = "shop";
const POD: &str = "web-0";
const UID: &str = "0b0e7c2a-1111-2222-3333-444455556666";

/// A fresh `xxxxxxxx-...` port id (its host veth `tap<id[:11]>` is unique).
fn fresh_port_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:08x}-{:04x}-4bbb-8ccc-0000000000{:02x}", t ^ std::process::id(), n, n % 256)
}

/// The test's world; dropping it removes its netns and host devices.
struct World {
    cni: Arc<K8sCni>,
    feed: Mutex<PortFeed>,
    switch: Arc<FakeSwitch>,
    neutron: FakeNeutron,
    netlink: Netlink,
    netns_name: String,
    netns_path: String,
    port_id: String,
}

impl World {
    /// `None` (skip) without the privileges to make a netns.
    /// A world (ADD waits up to 5 s, no ACTIVE wait) whose pod `UID` has
    /// its KuryrPort and is bound.
    async fn bound() -> Option<World> {
        let w = World::new(Duration::from_secs(5), Duration::ZERO).await?;
        w.synced(vec![w.kuryrport(UID, true)]);
        w.cni.add(w.call("ADD", World::pod_args(UID))).await.expect("bound");
        Some(w)
    }

    async fn new(timeout: Duration, active_timeout: Duration) -> Option<World> {
        let netlink = Netlink::host().await.ok()?;
        let port_id = fresh_port_id();
        let netns_name = format!("nd-{}", &port_id[..8]);
        if let Err(err) = netplumb::netns::create_named(&netns_name) {
            eprintln!("skipped: cannot make a netns ({err})");
            return None;
        }
        let switch = Arc::new(FakeSwitch::with_bridge("br-int"));
        let neutron = FakeNeutron::start().await;
        let binder = Binder::new(netlink.clone(), switch.clone(), "br-int");
        let lifecycle = Lifecycle::new(
            neutron.client(),
            binder,
            LifecycleSettings {
                host: "node-1".into(),
                active_timeout,
                active_is_fatal: true,
                pool_owner_tag: "kuryr.pool.k8s:test".into(),
            },
        );
        let (ports, feed) = cache();
        let settings = Settings { node: "node-1".into(), kuryrport_timeout: timeout };
        Some(World {
            cni: Arc::new(K8sCni::new(lifecycle, ports, settings)),
            feed: Mutex::new(feed),
            switch,
            neutron,
            netlink,
            netns_path: format!("/run/netns/{netns_name}"),
            netns_name,
            port_id,
        })
    }

    fn apply(&self, event: Event<KuryrPort>) {
        self.feed.lock().expect("feed").apply(&event);
    }

    /// The cache's first listing, with `kuryrports` in it.
    fn synced(&self, kuryrports: Vec<KuryrPort>) {
        self.apply(Event::Init);
        for kp in kuryrports {
            self.apply(Event::InitApply(kp));
        }
        self.apply(Event::InitDone);
    }

    /// The pod's KuryrPort for `pod_uid`, with this world's vif when `vif`.
    fn kuryrport(&self, pod_uid: &str, vif: bool) -> KuryrPort {
        let mut kp = KuryrPort::new(
            POD,
            KuryrPortSpec {
                pod_uid: pod_uid.into(),
                pod_node_name: "node-1".into(),
                pod_static: false,
            },
        );
        kp.metadata.namespace = Some(NS.into());
        if vif {
            let vif: Vif = serde_json::from_value(json!({
                "portId": self.port_id, "networkId": "n1", "mac": "fa:16:3e:00:00:0a", "mtu": 1442,
                "addresses": [{"address": "10.77.0.5/24", "gateway": "10.77.0.1", "subnetId": "s1"}],
                "routes": [{"destination": "0.0.0.0/0", "gateway": "10.77.0.1"}],
                "dns": ["10.77.0.53"], "binding": {"mode": "ovs"}, "active": false
            }))
            .expect("vif");
            kp.status = Some(KuryrPortStatus { vifs: BTreeMap::from([("eth0".into(), vif)]) });
        }
        kp
    }

    /// A validated attachment call with these `CNI_ARGS`.
    fn call(&self, command: &str, args: Value) -> kuryr_cni_daemon::AttachmentRequest {
        self.call_after(command, args, Value::Null)
    }

    /// The same, chained after `prev` (CHECK needs the ADD's result).
    fn call_after(
        &self,
        command: &str,
        args: Value,
        prev: Value,
    ) -> kuryr_cni_daemon::AttachmentRequest {
        let mut config = json!({"cniVersion": "1.1.0", "name": "kuryr", "type": "kuryr-cni"});
        if !prev.is_null() {
            config["prevResult"] = prev;
        }
        let request: Request = serde_json::from_value(json!({
            "command": command,
            "container_id": "sandbox-1",
            "netns": self.netns_path,
            "ifname": "eth0",
            "args": args,
            "path": ["/opt/cni/bin"],
            "config": config,
        }))
        .expect("request");
        match request.validate().expect("valid") {
            Call::Add(r) | Call::Del(r) | Call::Check(r) => r,
            other => panic!("not an attachment call: {other:?}"),
        }
    }

    fn pod_args(uid: &str) -> Value {
        json!({"K8S_POD_NAMESPACE": NS, "K8S_POD_NAME": POD, "K8S_POD_UID": uid})
    }

    fn host_veth(&self) -> String {
        kuryr_core::naming::host_veth_name(&self.port_id)
    }

    async fn plugged(&self) -> bool {
        let veth = self.netlink.link_exists(&self.host_veth()).await.expect("netlink");
        let ovs = self.switch.snapshot().interfaces.contains_key(&self.host_veth());
        assert_eq!(veth, ovs, "veth and OVS port go together");
        veth
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = netplumb::netns::delete_named(&self.netns_name);
        let veth = self.host_veth();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &veth])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// ADD binds the vif into the netns without asking Neutron (OVN's
/// `ovn-installed` answers the ACTIVE wait), records the attachment in
/// OVSDB and answers the vif's addresses; DEL unbinds, twice over.
#[tokio::test]
async fn add_binds_the_vif_and_del_unbinds_it() {
    let Some(w) = World::new(Duration::from_secs(5), Duration::from_secs(10)).await else {
        return;
    };
    w.synced(vec![w.kuryrport(UID, true)]);
    let (switch, veth) = (w.switch.clone(), w.host_veth());
    // Play ovn-controller.
    let marker = tokio::spawn(async move {
        while !switch.snapshot().interfaces.contains_key(&veth) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        switch.mark_ovn_installed(&veth);
    });
    let result = w.cni.add(w.call("ADD", World::pod_args(UID))).await.expect("bound");
    marker.await.expect("marker");
    let result =
        serde_json::to_value(result.to_json(kuryr_cni_daemon::CniVersion::LATEST)).expect("json");
    assert_eq!(result["ips"][0]["address"], "10.77.0.5/24", "{result}");
    assert_eq!(result["ips"][0]["gateway"], "10.77.0.1", "{result}");
    assert_eq!(result["dns"]["nameservers"][0], "10.77.0.53", "{result}");
    let container = &result["interfaces"][1];
    assert_eq!(container["name"], "eth0");
    assert_eq!(container["mac"], "fa:16:3e:00:00:0a");
    assert_eq!(container["sandbox"], w.netns_path.as_str());

    let ids = w.switch.snapshot().interfaces[&w.host_veth()].external_ids.clone();
    assert_eq!(ids[IFACE_ID_KEY], w.port_id);
    assert_eq!(ids[OWNER_KEY], UID, "vm-uuid is the pod's uid, as its device_id");
    assert_eq!(ids[naming::OVS_CONTAINER_KEY], "sandbox-1");
    assert_eq!(ids[naming::OVS_IFNAME_KEY], "eth0");
    assert_eq!(ids[naming::OVS_POD_KEY], "shop/web-0");
    let inside =
        Netlink::in_netns(&netplumb::Netns::from_path(&w.netns_path).expect("netns")).await;
    let addresses = inside.expect("netlink inside").addresses("eth0").await.expect("eth0");
    assert!(addresses.iter().any(|a| a.addr.to_string() == "10.77.0.5/24"), "{addresses:?}");

    w.cni
        .check(w.call_after("CHECK", World::pod_args(UID), result.clone()))
        .await
        .expect("CHECK passes");

    w.cni.del(w.call("DEL", World::pod_args(UID))).await.expect("unbound");
    assert!(!w.plugged().await);
    w.cni.del(w.call("DEL", World::pod_args(UID))).await.expect("DEL is idempotent");
    assert!(w.neutron.lines().is_empty(), "no Neutron call: {:?}", w.neutron.lines());
}

/// Another pod's KuryrPort of the same name (the pod before, uid X) is
/// never bound: the ADD waits its full timeout, then fails with 11 naming
/// both uids, and nothing is plugged.
#[tokio::test]
async fn another_pods_kuryrport_waits_then_fails_with_11_and_binds_nothing() {
    let timeout = Duration::from_millis(400);
    let Some(w) = World::new(timeout, Duration::ZERO).await else {
        return;
    };
    w.synced(vec![w.kuryrport("X", true)]);
    let started = Instant::now();
    let err = w.cni.add(w.call("ADD", World::pod_args(UID))).await.expect_err("not this pod's");
    assert!(started.elapsed() >= timeout, "waited {:?}", started.elapsed());
    assert_eq!(err.code, ErrorCode::TryAgainLater, "{err:?}");
    assert!(
        err.msg.contains(&format!("KuryrPort shop/web-0 belongs to pod uid X, not {UID}")),
        "{err:?}"
    );
    assert!(err.msg.contains("vif_annotation_timeout"), "{err:?}");
    assert!(!w.plugged().await, "nothing plugged");
    assert!(w.switch.snapshot().interfaces.is_empty());

    // No KuryrPort at all: the message asks after the controller.
    w.apply(Event::Delete(w.kuryrport("X", true)));
    let err = w.cni.add(w.call("ADD", World::pod_args(UID))).await.expect_err("none");
    assert_eq!(err.code, ErrorCode::TryAgainLater);
    assert!(err.msg.contains("pod shop/web-0 has no KuryrPort yet: is kuryr-controller running?"));
}

/// An ADD waiting for its KuryrPort binds as soon as the controller's
/// write reaches the cache (woken by the change, not a poll).
#[tokio::test]
async fn a_kuryrport_appearing_mid_wait_binds() {
    let Some(w) = World::new(Duration::from_secs(20), Duration::ZERO).await else {
        return;
    };
    let w = Arc::new(w);
    w.synced(vec![w.kuryrport(UID, false)]);
    let started = Instant::now();
    let add = {
        let w = w.clone();
        tokio::spawn(async move { w.cni.add(w.call("ADD", World::pod_args(UID))).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!add.is_finished(), "no vif yet: the ADD waits");
    assert!(!w.plugged().await);
    w.apply(Event::Apply(w.kuryrport(UID, true)));
    add.await.expect("task").expect("bound once the vif came");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(w.plugged().await);
    w.cni.del(w.call("DEL", World::pod_args(UID))).await.expect("unbound");
}

/// A DEL while the ADD still waits for its KuryrPort answers at once and
/// cancels the ADD (11, nothing bound), even when the KuryrPort comes
/// right after.
#[tokio::test]
async fn a_del_cancels_an_add_waiting_for_its_kuryrport() {
    let Some(w) = World::new(Duration::from_secs(20), Duration::ZERO).await else {
        return;
    };
    let w = Arc::new(w);
    w.synced(vec![]);
    let add = {
        let w = w.clone();
        tokio::spawn(async move { w.cni.add(w.call("ADD", World::pod_args(UID))).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    w.cni.del(w.call("DEL", World::pod_args(UID))).await.expect("nothing to unbind");
    assert!(started.elapsed() < Duration::from_secs(2), "DEL waited {:?}", started.elapsed());
    w.apply(Event::Apply(w.kuryrport(UID, true)));
    let err = add.await.expect("task").expect_err("cancelled");
    assert_eq!(err.code, ErrorCode::TryAgainLater, "{err:?}");
    assert!(err.msg.contains("a DEL of this attachment came"), "{err:?}");
    assert!(!w.plugged().await, "nothing bound");
}

/// DEL never needs the KuryrPort: with it gone (the controller was faster)
/// and no CNI_ARGS at all, OVSDB's record of the attachment names the port.
#[tokio::test]
async fn del_without_kuryrport_finds_the_port_in_ovsdb() {
    let Some(w) = World::bound().await else { return };
    assert!(w.plugged().await);
    w.apply(Event::Delete(w.kuryrport(UID, true)));
    w.cni.del(w.call("DEL", json!({}))).await.expect("unbound");
    assert!(!w.plugged().await);
}

/// A late DEL of an earlier sandbox of the pod leaves the port its
/// successor has plugged alone.
#[tokio::test]
async fn a_late_del_of_the_sandbox_before_leaves_its_successor_alone() {
    let Some(w) = World::bound().await else { return };
    let mut old = w.call("DEL", World::pod_args(UID));
    old.container_id = "sandbox-0".into();
    w.cni.del(old).await.expect("nothing of sandbox-0");
    assert!(w.plugged().await, "sandbox-1's port stays");
    w.cni.del(w.call("DEL", World::pod_args(UID))).await.expect("unbound");
}

/// ADD and CHECK need the pod's namespace, name and uid: error 4 naming
/// what is missing; DEL goes on without them.
#[tokio::test]
async fn missing_k8s_args_are_error_4() {
    let Some(w) = World::new(Duration::from_secs(5), Duration::ZERO).await else {
        return;
    };
    w.synced(vec![w.kuryrport(UID, true)]);
    let args = json!({"K8S_POD_NAMESPACE": NS, "K8S_POD_NAME": POD});
    let err = w.cni.add(w.call("ADD", args.clone())).await.expect_err("no uid");
    assert_eq!(err.code, ErrorCode::InvalidEnvironment, "{err:?}");
    assert!(err.msg.contains("CNI_ARGS lacks K8S_POD_UID"), "{err:?}");
    let err = w.cni.add(w.call("ADD", json!({}))).await.expect_err("nothing");
    assert!(err.msg.contains("K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID"), "{err:?}");
    let prev = json!({"cniVersion": "1.1.0", "interfaces": [{"name": "eth0"}]});
    let err = w.cni.check(w.call_after("CHECK", args.clone(), prev)).await.expect_err("no uid");
    assert_eq!(err.code, ErrorCode::InvalidEnvironment, "{err:?}");
    assert!(!w.plugged().await);
    w.cni.del(w.call("DEL", args)).await.expect("DEL needs none");
}

/// GC unplugs the pod attachments of its CNI network the runtime no
/// longer lists, and keeps the listed ones.
#[tokio::test]
async fn gc_unplugs_only_unlisted_attachments() {
    let Some(w) = World::bound().await else { return };
    let gc = |valid: Value| {
        let request: Request = serde_json::from_value(json!({
            "command": "GC",
            "path": ["/opt/cni/bin"],
            "config": {"cniVersion": "1.1.0", "name": "kuryr", "type": "kuryr-cni",
                       "cni.dev/valid-attachments": valid},
        }))
        .expect("request");
        match request.validate().expect("valid") {
            Call::Gc(gc) => gc,
            other => panic!("not GC: {other:?}"),
        }
    };
    w.cni.gc(gc(json!([{"containerID": "sandbox-1", "ifname": "eth0"}]))).await.expect("gc");
    assert!(w.plugged().await, "listed: kept");
    w.cni.gc(gc(json!([]))).await.expect("gc");
    assert!(!w.plugged().await, "unlisted: unplugged");
}

/// STATUS is 50 until the first listing of the node's KuryrPorts.
#[tokio::test]
async fn status_is_ready_once_synced() {
    let Some(w) = World::new(Duration::from_secs(5), Duration::ZERO).await else {
        return;
    };
    let status = || kuryr_cni_daemon::testing::status_request("kuryr");
    let err = w.cni.status(status()).await.expect_err("not synced");
    assert_eq!(err.code, ErrorCode::PluginNotAvailable);
    assert!(err.msg.contains("node-1"), "{err:?}");
    w.apply(Event::Init);
    assert!(w.cni.status(status()).await.is_err(), "a listing under way is not synced");
    w.apply(Event::InitDone);
    w.cni.status(status()).await.expect("synced");
}
