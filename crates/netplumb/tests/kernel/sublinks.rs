//! Sub-interfaces and bridges: macvlan on a veth parent, VLAN and ipvlan
//! (or a clear unsupported error), into a netns, Linux bridge ports.

use super::*;

/// A fresh veth pair whose host end is the parent of the sub-interfaces
/// under test; the guard removes the pair.
async fn veth_parent(nl: &Netlink, mtu: Option<u32>) -> (String, LinkGuard) {
    let (parent, guard) = LinkGuard::unique("knp-h");
    let peer = unique("knp-p");
    let mut spec = VethSpec::new(&parent, &peer);
    spec.mtu = mtu;
    nl.create_veth(&spec).await.unwrap();
    (parent, guard)
}

#[tokio::test]
async fn macvlan_on_veth_parent() {
    let nl = or_skip!(root_host("macvlan_on_veth_parent").await);
    let (parent, _g) = veth_parent(&nl, Some(1500)).await;
    let parent_idx = nl.link(&parent).await.unwrap().index;

    for mode in [MacvlanMode::Bridge, MacvlanMode::Private, MacvlanMode::Vepa] {
        let (name, _m) = LinkGuard::unique("knp-m");
        let link = nl
            .create_macvlan(
                &MacvlanSpec::new(&name, &parent, mode).mac(mac("fa:16:3e:00:11:22")).mtu(1400),
            )
            .await
            .unwrap();
        assert_eq!(link.kind.as_deref(), Some("macvlan"), "{mode:?}");
        assert_eq!(link.parent, Some(parent_idx));
        assert_eq!(link.mac, Some(mac("fa:16:3e:00:11:22")));
        assert_eq!(link.mtu, 1400);
        assert_eq!(nl.delete_link(&name).await.unwrap(), Deleted::Removed);
    }

    // Passthru takes the parent over: only one allowed.
    let (pt, _pt) = LinkGuard::unique("knp-m");
    nl.create_macvlan(&MacvlanSpec::new(&pt, &parent, MacvlanMode::Passthru)).await.unwrap();
    let (pt2, _pt2) = LinkGuard::unique("knp-m");
    assert!(nl
        .create_macvlan(&MacvlanSpec::new(&pt2, &parent, MacvlanMode::Passthru))
        .await
        .is_err());
    nl.delete_link(&pt).await.unwrap();

    // MTU above the parent's is refused by the kernel.
    let (big, _b) = LinkGuard::unique("knp-m");
    let err = nl
        .create_macvlan(&MacvlanSpec::new(&big, &parent, MacvlanMode::Bridge).mtu(9000))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Netlink { .. }), "{err}");

    // Nested mode: created straight into the container netns.
    let ns = NetnsGuard::new();
    let inner_link = nl
        .create_macvlan(
            &MacvlanSpec::new("eth0", &parent, MacvlanMode::Bridge)
                .mac(mac("fa:16:3e:00:11:33"))
                .netns(ns.ns.clone()),
        )
        .await
        .unwrap();
    assert_eq!(inner_link.name, "eth0");
    let inner = Netlink::in_netns(&ns.ns).await.unwrap();
    assert_eq!(inner.link("eth0").await.unwrap().mac, Some(mac("fa:16:3e:00:11:33")));

    // Missing parent: typed not-found.
    let err = nl
        .create_macvlan(&MacvlanSpec::new(unique("knp-m"), "knp-nope0", MacvlanMode::Bridge))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LinkNotFound { .. }), "{err}");
}

#[tokio::test]
async fn vlan_subinterface_or_clear_unsupported() {
    let nl = or_skip!(root_host("vlan_subinterface_or_clear_unsupported").await);
    let (parent, _g) = veth_parent(&nl, None).await;
    let (name, _v) = LinkGuard::unique("knp-v");
    match nl.create_vlan(&VlanSpec::new(&name, &parent, 100).mac(mac("fa:16:3e:00:00:64"))).await {
        Err(e @ Error::Unsupported { feature: "vlan (8021q)", .. }) => {
            assert!(e.to_string().contains("kernel lacks vlan (8021q) support"), "{e}");
            assert!(!nl.link_exists(&name).await.unwrap());
            eprintln!("skipped vlan_subinterface: {e}");
        }
        Ok(link) => {
            assert_eq!(link.kind.as_deref(), Some("vlan"));
            assert_eq!(link.mac, Some(mac("fa:16:3e:00:00:64")));
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn ipvlan_or_clear_unsupported() {
    let nl = or_skip!(root_host("ipvlan_or_clear_unsupported").await);
    let (parent, _g) = veth_parent(&nl, None).await;
    for mode in [IpvlanMode::L2, IpvlanMode::L3] {
        let (name, _i) = LinkGuard::unique("knp-i");
        match nl.create_ipvlan(&IpvlanSpec::new(&name, &parent, mode)).await {
            Err(e @ Error::Unsupported { feature: "ipvlan", .. }) => {
                assert!(e.to_string().contains("kernel lacks ipvlan support"), "{e}");
                eprintln!("skipped ipvlan {mode:?}: {e}");
            }
            Ok(link) => assert_eq!(link.kind.as_deref(), Some("ipvlan")),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

/// Nested CNI: VLAN subinterface and ipvlan created straight in the
/// container's netns (with MTU), or the kernel's missing feature named and
/// nothing left in either namespace.
#[tokio::test]
async fn vlan_and_ipvlan_into_netns_or_clear_unsupported() {
    let nl = or_skip!(root_host("vlan_and_ipvlan_into_netns_or_clear_unsupported").await);
    let (parent, _g) = veth_parent(&nl, Some(1500)).await;
    let ns = NetnsGuard::new();
    let inner = Netlink::in_netns(&ns.ns).await.unwrap();
    let vlan = VlanSpec::new("eth0", &parent, 42)
        .mac(mac("fa:16:3e:00:00:2a"))
        .mtu(1400)
        .netns(ns.ns.clone());
    let ipvlan = IpvlanSpec::new("eth1", &parent, IpvlanMode::L2).mtu(1400).netns(ns.ns.clone());
    for (name, result, feature) in [
        ("eth0", nl.create_vlan(&vlan).await, "vlan (8021q)"),
        ("eth1", nl.create_ipvlan(&ipvlan).await, "ipvlan"),
    ] {
        match result {
            Ok(link) => {
                assert_eq!(link.name, name);
                assert_eq!(link.mtu, 1400);
                assert!(inner.link_exists(name).await.unwrap());
            }
            Err(e @ Error::Unsupported { .. }) => {
                assert!(e.to_string().contains(feature), "{e}");
                assert!(!inner.link_exists(name).await.unwrap());
                eprintln!("skipped {feature} into netns: {e}");
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

#[tokio::test]
async fn linux_bridge_attach_detach() {
    let nl = or_skip!(root_host("linux_bridge_attach_detach").await);
    let (br, _b) = LinkGuard::unique("knp-b");
    let bridge = nl.ensure_bridge(&br).await.unwrap();
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    assert!(bridge.admin_up);
    // Idempotent.
    assert_eq!(nl.ensure_bridge(&br).await.unwrap().index, bridge.index);
    // Down bridge is brought back up.
    nl.set_down(&br).await.unwrap();
    assert!(nl.ensure_bridge(&br).await.unwrap().admin_up);

    let (host, _g) = LinkGuard::unique("knp-h");
    let peer = unique("knp-p");
    nl.create_veth(&VethSpec::new(&host, &peer)).await.unwrap();
    nl.set_master(&host, &br).await.unwrap();
    assert_eq!(nl.link(&host).await.unwrap().master, Some(bridge.index));
    nl.set_nomaster(&host).await.unwrap();
    assert_eq!(nl.link(&host).await.unwrap().master, None);

    // A name taken by a non-bridge.
    let err = nl.ensure_bridge(&host).await.unwrap_err();
    assert!(matches!(err, Error::WrongLinkKind { expected: "bridge", .. }), "{err}");

    assert_eq!(nl.delete_link(&br).await.unwrap(), Deleted::Removed);
}
