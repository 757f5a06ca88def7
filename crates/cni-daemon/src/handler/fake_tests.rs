//! The handler against the shared fake Neutron (`openstack::fake`) and a
//! fake OVS switch: the Neutron calls of DEL, GC and STATUS, and that bad
//! input and Neutron's refusals become CNI errors with nothing made. ADD's
//! plumbing (veth, netns, ACTIVE) is exercised against the real stack in
//! crates/kuryr/tests/cni/.

use std::sync::Arc;
use std::time::Duration;

use kuryr_core::binding::Binder;
use kuryr_core::naming::cni as tags;
use kuryr_core::vif_pool::PoolSettings;
use netplumb::ovs::fake::FakeSwitch;
use netplumb::Netlink;
use openstack::fake::FakeNeutron;
use openstack::neutron::Neutron;
use openstack::AuthOptions;
use serde_json::{json, Value};

use super::NeutronCni;
use crate::proto::Request;
use crate::{Call, CniHandler, ErrorCode, Settings};

const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const STALE: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

async fn handler(neutron: Neutron) -> NeutronCni {
    let netlink = Netlink::host().await.expect("a netlink socket");
    let binder = Binder::new(netlink, Arc::new(FakeSwitch::with_bridge("br-int")), "br-int");
    NeutronCni::new(
        neutron,
        binder,
        Settings {
            lifecycle: kuryr_core::lifecycle::LifecycleSettings {
                host: "test-host".into(),
                active_timeout: Duration::from_secs(1),
                active_is_fatal: true,
                pool_owner_tag: "kuryr.pool.cni:test".into(),
            },
            pool: PoolSettings::default(),
        },
    )
}

/// A validated call, as the server hands it to the handler.
fn call(command: &str, container_id: &str, neutron: Value) -> Call {
    let request: Request = serde_json::from_value(json!({
        "command": command,
        "container_id": container_id,
        "netns": "/proc/self/ns/net",
        "ifname": "eth0",
        "path": ["/opt/cni/bin"],
        "config": {"cniVersion": "1.1.0", "name": "kn", "type": "kuryr-cni", "neutron": neutron},
    }))
    .expect("request");
    request.validate().expect("valid")
}

fn attachment(command: &str, container_id: &str, neutron: Value) -> crate::AttachmentRequest {
    match call(command, container_id, neutron) {
        Call::Add(r) | Call::Del(r) | Call::Check(r) => r,
        other => panic!("not an attachment call: {other:?}"),
    }
}

fn cni_port(id: &str, container_id: &str) -> Value {
    json!({"id": id, "network_id": "n1", "device_owner": "compute:kuryr",
           "device_id": container_id, "binding:host_id": "test-host",
           "tags": tags::port_tags(container_id, "eth0", "kn")})
}

/// A network name Neutron does not know: error 7 naming the option, and
/// no port is made.
#[tokio::test]
async fn add_on_an_unknown_network_is_a_configuration_error() {
    let fake = FakeNeutron::start().await;
    fake.get("/v2.0/networks", json!({"networks": []}));
    let cni = handler(fake.client()).await;
    let err = cni
        .add(attachment("ADD", CID, json!({"network": "nope"})))
        .await
        .expect_err("no such network");
    assert_eq!(err.code, ErrorCode::InvalidNetworkConfig);
    assert!(err.msg.contains("neutron.network = \"nope\""), "{err:?}");
    assert_eq!(fake.lines(), vec!["GET /v2.0/networks"]);
}

/// Neutron refusing the port (quota) is error 100 with Neutron's words;
/// a conflict is 11 (try again). Either way nothing is left to undo.
#[tokio::test]
async fn a_refused_port_is_a_cni_error_and_leaves_nothing() {
    for (status, kind, code) in [
        (409, "IpAddressGenerationFailure", ErrorCode::TryAgainLater),
        (403, "OverQuota", ErrorCode::Other(100)),
    ] {
        let fake = FakeNeutron::start().await;
        fake.get(
            "/v2.0/networks",
            json!({"networks": [{"id": "n1", "name": "net-a", "mtu": 1442}]}),
        );
        fake.on(
            "POST",
            "/v2.0/ports",
            status,
            json!({"NeutronError": {"type": kind, "message": "no", "detail": ""}}),
        );
        let cni = handler(fake.client()).await;
        let err = cni
            .add(attachment("ADD", CID, json!({"network": "net-a"})))
            .await
            .expect_err("refused");
        assert_eq!(err.code, code, "{kind}: {err:?}");
        assert!(err.msg.contains(kind), "{err:?}");
        let post = fake.calls().into_iter().find(|c| c.method == "POST").expect("one POST");
        let port = &post.body["port"];
        assert_eq!(port["device_id"], CID);
        assert_eq!(port["binding:host_id"], "test-host");
        assert_eq!(port["name"], tags::port_name(CID, "eth0"));
        fake.assert_no("DELETE");
    }
}

/// DEL of an attachment Neutron does not know succeeds (CNI: DEL is
/// idempotent), and one whose port is gone meanwhile (404) too.
#[tokio::test]
async fn del_is_idempotent() {
    let fake = FakeNeutron::start().await;
    fake.get("/v2.0/ports", json!({"ports": []}));
    let cni = handler(fake.client()).await;
    cni.del(attachment("DEL", CID, json!({"network": "net-a"}))).await.expect("nothing to delete");
    assert_eq!(fake.lines(), vec!["GET /v2.0/ports"]);
    let query = &fake.calls()[0].query;
    assert!(query.contains(&format!("device_id={CID}")), "{query}");
    assert!(query.contains("binding%3Ahost_id=test-host"), "{query}");
    assert!(query.contains("tags=kuryr.cni.ifname%3Aeth0"), "{query}");

    fake.get("/v2.0/ports", json!({"ports": [cni_port("p1", CID)]}));
    fake.on(
        "DELETE",
        "/v2.0/ports/p1",
        404,
        json!({"NeutronError": {"type": "PortNotFound", "message": "gone", "detail": ""}}),
    );
    cni.del(attachment("DEL", CID, json!({"network": "net-a"})))
        .await
        .expect("already gone is fine");
    assert_eq!(fake.lines().last().map(String::as_str), Some("DELETE /v2.0/ports/p1"));
}

/// GC deletes this host's ports of the network whose attachment is not in
/// the runtime's list, and only those.
#[tokio::test]
async fn gc_removes_only_stale_attachments() {
    let fake = FakeNeutron::start().await;
    fake.get(
        "/v2.0/ports",
        json!({"ports": [cni_port("p-live", CID), cni_port("p-stale", STALE)]}),
    );
    fake.on("DELETE", "/v2.0/ports/p-stale", 204, Value::Null);
    let cni = handler(fake.client()).await;
    let request: Request = serde_json::from_value(json!({
        "command": "GC",
        "path": ["/opt/cni/bin"],
        "config": {"cniVersion": "1.1.0", "name": "kn", "type": "kuryr-cni",
                   "neutron": {"network": "net-a"},
                   "cni.dev/valid-attachments": [{"containerID": CID, "ifname": "eth0"}]},
    }))
    .expect("request");
    let Call::Gc(gc) = request.validate().expect("valid") else {
        panic!("not GC");
    };
    cni.gc(gc).await.expect("collected");
    assert_eq!(fake.lines(), vec!["GET /v2.0/ports", "DELETE /v2.0/ports/p-stale"]);
    let query = &fake.calls()[0].query;
    assert!(query.contains("binding%3Ahost_id=test-host"), "this host only: {query}");
    assert!(query.contains("tags=kuryr.cni.net%3Akn"), "this network only: {query}");
}

/// STATUS asks Neutron; no answer is error 50 (plugin not available), so
/// the runtime stops scheduling ADDs here.
#[tokio::test]
async fn status_follows_neutron() {
    let fake = FakeNeutron::start().await;
    fake.get("/v2.0/extensions", json!({"extensions": []}));
    let cni = handler(fake.client()).await;
    cni.status(crate::testing::status_request("kn")).await.expect("Neutron answers");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("addr")
    };
    let dead = Neutron::new(AuthOptions::noauth(format!("http://{closed}"))).expect("client");
    let cni = handler(dead).await;
    let err = cni.status(crate::testing::status_request("kn")).await.expect_err("no Neutron");
    assert_eq!(err.code, ErrorCode::PluginNotAvailable);
}
