//! Unit tests of `binding`.

use super::*;
use netplumb::ovs::fake::FakeSwitch;

fn request(vif_type: &str) -> PlugRequest {
    PlugRequest {
        port_id: "0f0e0d0c-aaaa-bbbb-cccc-000000000001".into(),
        network_id: "net".into(),
        mac: "fa:16:3e:00:00:01".parse().expect("mac"),
        mtu: Some(1442),
        vif_type: vif_type.into(),
        owner_id: "ep".into(),
        fixed_ips: vec!["10.0.0.5".parse().expect("ip")],
    }
}

/// Nested: no host binding, no wait for a port that never goes ACTIVE,
/// a port without addresses refused before any Neutron call (the
/// endpoint here answers nothing).
#[tokio::test]
async fn nested_binder_dispatch() {
    let Ok(netlink) = Netlink::host().await else {
        return;
    };
    let neutron =
        Neutron::new(openstack::AuthOptions::noauth("http://127.0.0.1:9")).expect("client");
    let switch = Arc::new(FakeSwitch::with_bridge("br-int"));
    let veth = Binder::new(netlink.clone(), switch.clone(), "br-int");
    assert!(veth.binds_host() && veth.nested_mode().is_none());
    let binder = Binder::new(netlink, switch, "br-int").with_nested(
        neutron.clone(),
        NestedConfig { mode: NestedMode::Macvlan, link_iface: "eth0".into() },
    );
    assert!(!binder.binds_host());
    assert_eq!(binder.nested_mode(), Some(NestedMode::Macvlan));
    assert_eq!(binder.vm_port_client().map(|c| c.link_iface()), Some("eth0"));
    let mut req = request("unbound");
    req.fixed_ips.clear();
    let err = binder.plug(&req).await.expect_err("no addresses");
    assert!(matches!(err, BindError::Nested { .. }), "{err}");
    let plugged = Plugged {
        host_ifname: String::new(),
        container_ifname: "t_c0f0e0d0c-aa".into(),
        vif_type: PlugKind::Nested(NestedMode::Macvlan),
    };
    let via = binder
        .wait_active(&neutron, &req.port_id, &plugged, Duration::from_secs(5), Duration::ZERO)
        .await
        .expect("not awaited");
    assert_eq!(via, ActiveVia::NotAwaited);
    assert_eq!(binder.port_of_owner("ep").await.expect("ok"), None);
}

#[tokio::test]
async fn unsupported_vif_type_names_it_and_touches_nothing() {
    let Ok(netlink) = Netlink::host().await else {
        return;
    };
    let switch = Arc::new(FakeSwitch::with_bridge("br-int"));
    let binder = Binder::new(netlink, switch.clone(), "br-int");
    let err = binder.plug(&request("binding_failed")).await.expect_err("must fail");
    assert!(err.to_string().contains("binding_failed"), "{err}");
    assert!(switch.find_interfaces("iface-id", None).await.expect("fake").is_empty());
}
