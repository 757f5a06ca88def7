//! Tests against the real ovsdb-server (started by `scripts/stack up`).
//!
//! They only touch a bridge of their own (`knp-br…`, datapath netdev),
//! created and deleted through the client under test; never br-int.
//! Without `/var/run/openvswitch/db.sock` they skip, unless
//! `KURYR_STACK_AUTH` is set (as by `scripts/test`), where they fail.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cleanup_on_private_runtime, or_skip, require_root, unique, LinkGuard};
use netplumb::ovs::{
    AddPortOutcome, BridgeOutcome, DatapathType, InterfaceType, OvsdbClient, PortSpec, Switch,
    DEFAULT_OVSDB_SOCKET, OVN_INSTALLED,
};
use netplumb::{Deleted, Error, MacAddr, Netlink, VethSpec};

async fn client(test: &str) -> Option<OvsdbClient> {
    if !Path::new(DEFAULT_OVSDB_SOCKET).exists() {
        if std::env::var_os("KURYR_STACK_AUTH").is_some() {
            panic!(
                "{test}: KURYR_STACK_AUTH is set but there is no ovsdb at {DEFAULT_OVSDB_SOCKET}"
            );
        }
        eprintln!("skipped: no ovsdb (run via scripts/test) [{test}]");
        return None;
    }
    let c = OvsdbClient::default_socket();
    c.connect().await.expect("connect to ovsdb-server");
    Some(c)
}

/// An OVS bridge of our own, deleted (with its ports) on drop.
struct BridgeGuard(String);

impl BridgeGuard {
    async fn new(ovs: &OvsdbClient) -> Self {
        let name = unique("knp-br");
        assert_eq!(
            ovs.ensure_bridge(&name, DatapathType::Netdev).await.unwrap(),
            BridgeOutcome::Created
        );
        BridgeGuard(name)
    }
}

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        cleanup_on_private_runtime(async move {
            OvsdbClient::default_socket().delete_bridge(&name).await.ok()
        });
    }
}

/// What the internal-port tests start from: a client, a bridge of their
/// own and a fresh port name; `None` when the test is skipped.
async fn internal_port_test(test: &str) -> Option<(Arc<OvsdbClient>, BridgeGuard, String)> {
    let ovs = Arc::new(client(test).await?);
    let br = BridgeGuard::new(&ovs).await;
    Some((ovs, br, unique("knp-i")))
}

/// Adds an internal port `port` on `bridge` with one external id.
async fn add_internal_port(ovs: &OvsdbClient, bridge: &str, port: &str, id: (&str, &str)) {
    ovs.add_port(
        &PortSpec::new(bridge, port).iface_type(InterfaceType::Internal).external_id(id.0, id.1),
    )
    .await
    .unwrap();
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn bridge_lifecycle() {
    let ovs = or_skip!(client("bridge_lifecycle").await);
    let br = BridgeGuard::new(&ovs).await;
    assert_eq!(
        ovs.ensure_bridge(&br.0, DatapathType::Netdev).await.unwrap(),
        BridgeOutcome::Existing
    );
    assert_eq!(ovs.bridge_ports(&br.0).await.unwrap(), vec![br.0.clone()], "internal port");
    assert_eq!(ovs.delete_bridge(&br.0).await.unwrap(), Deleted::Removed);
    assert_eq!(ovs.delete_bridge(&br.0).await.unwrap(), Deleted::Absent);
    assert!(matches!(ovs.bridge_ports(&br.0).await.unwrap_err(), Error::BridgeNotFound { .. }));
}

#[tokio::test]
async fn plug_veth_may_exist_find_and_delete() {
    if !require_root("plug_veth_may_exist_find_and_delete") {
        return;
    }
    let ovs = or_skip!(client("plug_veth_may_exist_find_and_delete").await);
    let br = BridgeGuard::new(&ovs).await;
    let nl = Netlink::host().await.unwrap();
    let (tap, _g) = LinkGuard::unique("knp-t");
    let peer = unique("knp-p");
    let iface_id = format!("bogus-{}", unique("lsp"));

    let started = Instant::now();
    nl.create_veth(&VethSpec::new(&tap, &peer).mtu(1442).peer_mac(mac("fa:16:3e:00:00:09")))
        .await
        .unwrap();
    let spec = PortSpec::neutron(&br.0, &tap, &iface_id, mac("fa:16:3e:00:00:09"), "vm-123");
    assert_eq!(ovs.add_port(&spec).await.unwrap(), AddPortOutcome::Created);
    eprintln!("veth create + ovs plug took {:?}", started.elapsed());

    // vswitchd picks the device up.
    let t = Instant::now();
    let ofport = ovs.wait_ofport(&tap, Duration::from_secs(10)).await.unwrap();
    eprintln!("ofport {ofport} assigned after {:?}", t.elapsed());
    assert!(ofport > 0);

    let ids = ovs.interface_external_ids(&tap).await.unwrap().expect("interface exists");
    assert_eq!(ids["iface-id"], iface_id);
    assert_eq!(ids["attached-mac"], "fa:16:3e:00:00:09");
    assert_eq!(ids["iface-status"], "active");
    assert_eq!(ids["vm-uuid"], "vm-123");

    // A key written by someone else (like ovn-installed) survives a re-plug.
    let foreign = BTreeMap::from([("knp-foreign".to_string(), "keep".to_string())]);
    ovs.set_interface_external_ids(&tap, &foreign).await.unwrap();
    let replug =
        PortSpec::neutron(&br.0, &tap, &iface_id, mac("fa:16:3e:00:00:0a"), "vm-456").tag(42);
    assert_eq!(ovs.add_port(&replug).await.unwrap(), AddPortOutcome::Updated);
    let ids = ovs.interface_external_ids(&tap).await.unwrap().unwrap();
    assert_eq!(ids["attached-mac"], "fa:16:3e:00:00:0a");
    assert_eq!(ids["vm-uuid"], "vm-456");
    assert_eq!(ids["knp-foreign"], "keep");
    assert_eq!(ovs.bridge_ports(&br.0).await.unwrap().len(), 2, "no duplicate port");

    // Find by iface-id (value) and by key only.
    let found = ovs.find_interfaces("iface-id", Some(&iface_id)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, tap);
    assert_eq!(found[0].bridge.as_deref(), Some(br.0.as_str()));
    assert_eq!(found[0].iface_type, "");
    let all = ovs.find_interfaces("iface-id", None).await.unwrap();
    assert!(all.iter().any(|r| r.name == tap));
    assert!(all.iter().all(|r| r.external_ids.contains_key("iface-id")));

    // Port exists on our bridge: refuse to plug it elsewhere or delete it
    // from the wrong bridge.
    let other = BridgeGuard::new(&ovs).await;
    let err = ovs.add_port(&PortSpec::new(&other.0, &tap)).await.unwrap_err();
    assert!(matches!(err, Error::PortOnOtherBridge { ref actual, .. } if *actual == br.0), "{err}");
    let err = ovs.delete_port(Some(&other.0), &tap).await.unwrap_err();
    assert!(matches!(err, Error::PortOnOtherBridge { .. }), "{err}");

    assert_eq!(ovs.delete_port(Some(&br.0), &tap).await.unwrap(), Deleted::Removed);
    assert_eq!(ovs.delete_port(Some(&br.0), &tap).await.unwrap(), Deleted::Absent);
    assert_eq!(ovs.interface_external_ids(&tap).await.unwrap(), None);
    assert_eq!(ovs.bridge_ports(&br.0).await.unwrap(), vec![br.0.clone()]);
    let err = ovs.set_interface_external_ids(&tap, &foreign).await.unwrap_err();
    assert!(matches!(err, Error::InterfaceNotFound { .. }), "{err}");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let ovs = or_skip!(client("bad_input_is_refused_and_changes_nothing").await);
    let br = BridgeGuard::new(&ovs).await;
    let before = ovs.bridge_ports(&br.0).await.unwrap();
    let cases = [
        PortSpec::new(&br.0, "name with space"),
        PortSpec::new(&br.0, "much-too-long-name0"),
        PortSpec::new(&br.0, "knp-ok").external_id("bad key", "v"),
        PortSpec::new(&br.0, "knp-ok").external_id("k", "new\nline"),
        PortSpec::new(&br.0, "knp-ok").external_id("attached-mac", "not-a-mac"),
        PortSpec::new(&br.0, "knp-ok").tag(5000),
    ];
    for spec in &cases {
        let err = ovs.add_port(spec).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { .. } | Error::InvalidValue { .. }),
            "{spec:?}: {err}"
        );
    }
    let err = ovs.add_port(&PortSpec::new("knp-nobridge", "knp-ok")).await.unwrap_err();
    assert!(matches!(err, Error::BridgeNotFound { .. }), "{err}");
    assert!(matches!(ovs.delete_port(None, "a/b").await.unwrap_err(), Error::InvalidName { .. }));
    assert_eq!(ovs.delete_port(None, &unique("knp-n")).await.unwrap(), Deleted::Absent);
    assert_eq!(ovs.bridge_ports(&br.0).await.unwrap(), before);
}

#[tokio::test]
async fn ovn_installed_waiter_wakes_on_monitor_update() {
    let (ovs, br, port) =
        or_skip!(internal_port_test("ovn_installed_waiter_wakes_on_monitor_update").await);
    add_internal_port(&ovs, &br.0, &port, ("iface-id", "bogus")).await;

    // Play ovn-controller from a separate connection after a delay.
    let setter_port = port.clone();
    let setter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let other = OvsdbClient::default_socket();
        let ids = BTreeMap::from([(OVN_INSTALLED.to_string(), "true".to_string())]);
        other.set_interface_external_ids(&setter_port, &ids).await.unwrap();
        Instant::now()
    });
    let switch: Arc<dyn Switch> = ovs.clone();
    let state = switch.wait_ovn_installed(&port, Duration::from_secs(20)).await.unwrap();
    let woke = Instant::now();
    let set_at = setter.await.unwrap();
    assert!(state.ovn_installed());
    assert_eq!(state.name, port);
    eprintln!(
        "ovn-installed waiter woke {:?} after the external_id was set",
        woke.saturating_duration_since(set_at)
    );

    // Already installed: returns at once from the monitor's initial state.
    assert!(ovs.wait_ovn_installed(&port, Duration::from_secs(5)).await.unwrap().ovn_installed());
    ovs.delete_port(None, &port).await.unwrap();
}

#[tokio::test]
async fn waiter_started_before_the_port_exists() {
    let (ovs, br, port) =
        or_skip!(internal_port_test("waiter_started_before_the_port_exists").await);
    let (o2, b2, p2) = (Arc::clone(&ovs), br.0.clone(), port.clone());
    let plugger = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        add_internal_port(&o2, &b2, &p2, (OVN_INSTALLED, "true")).await;
    });
    let state = ovs.wait_ovn_installed(&port, Duration::from_secs(20)).await.unwrap();
    assert!(state.ovn_installed());
    plugger.await.unwrap();
}

#[tokio::test]
async fn ovn_installed_wait_times_out() {
    let (ovs, br, port) = or_skip!(internal_port_test("ovn_installed_wait_times_out").await);
    add_internal_port(&ovs, &br.0, &port, (OVN_INSTALLED, "false")).await;
    let err = ovs.wait_ovn_installed(&port, Duration::from_millis(300)).await.unwrap_err();
    match &err {
        Error::Timeout { last: Some(last), .. } => assert!(last.contains("ovn-installed"), "{err}"),
        other => panic!("expected a timeout, got {other}"),
    }
    // Missing interface: times out too, saying so.
    let err = ovs.wait_ovn_installed("knp-missing0", Duration::from_millis(100)).await.unwrap_err();
    assert!(err.to_string().contains("no interface named"), "{err}");
    // The connection is still usable after cancelled monitors.
    assert!(ovs.interface_external_ids(&port).await.unwrap().is_some());
}
