//! Root tests against the real kernel: veth, netns, addresses/routes,
//! macvlan, bridge, and the missing-feature detection (vlan, ipvlan).
//! Each test creates uniquely named objects and removes them on drop.

use std::net::IpAddr;
use std::time::Duration;

use common::{or_skip, require_root, unique, LinkGuard, NetnsGuard};
use netplumb::{
    Deleted, Error, IpNet, IpvlanMode, IpvlanSpec, MacAddr, MacvlanMode, MacvlanSpec, Netlink,
    Netns, OperState, RouteOrigin, RouteSpec, Scope, VethSpec, VlanSpec,
};

#[path = "../common/mod.rs"]
mod common;
mod sublinks;

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The host's netlink handle, for a test that needs root; `None` when the
/// test is skipped.
async fn root_host(test: &str) -> Option<Netlink> {
    if !require_root(test) {
        return None;
    }
    Some(Netlink::host().await.unwrap())
}

#[tokio::test]
async fn veth_create_read_delete() {
    let nl = or_skip!(root_host("veth_create_read_delete").await);
    let (host, _g) = LinkGuard::unique("knp-h");
    let peer = unique("knp-p");

    let spec = VethSpec::new(&host, &peer)
        .mtu(1442)
        .host_mac(mac("fe:16:3e:00:00:01"))
        .peer_mac(mac("fa:16:3e:00:00:02"));
    let started = std::time::Instant::now();
    let pair = nl.create_veth(&spec).await.unwrap();
    eprintln!("veth create+readback took {:?}", started.elapsed());

    assert_eq!(pair.host.name, host);
    assert_eq!(pair.host.mtu, 1442);
    assert_eq!(pair.peer.mtu, 1442, "MTU must be set on the peer end too");
    assert_eq!(pair.host.mac, Some(mac("fe:16:3e:00:00:01")));
    assert_eq!(pair.peer.mac, Some(mac("fa:16:3e:00:00:02")));
    assert!(pair.host.admin_up, "host end must be up");
    assert!(!pair.peer.admin_up, "peer end stays down for Docker to move");
    assert_eq!(pair.host.kind.as_deref(), Some("veth"));
    assert_eq!(pair.host.parent, Some(pair.peer.index));

    // Read back independently.
    let again = nl.link(&peer).await.unwrap();
    assert_eq!(again.mtu, 1442);
    assert!(nl.link_exists(&host).await.unwrap());

    // Same names again: distinct error, existing pair untouched.
    let err = nl.create_veth(&spec).await.unwrap_err();
    assert!(matches!(err, Error::LinkExists { ref name } if *name == host), "{err}");
    let err = nl.create_veth(&VethSpec::new(unique("knp-x"), &peer)).await.unwrap_err();
    assert!(matches!(err, Error::LinkExists { ref name } if *name == peer), "{err}");
    assert!(nl.link_exists(&host).await.unwrap());

    // Delete one end: both go; deleting again is Absent.
    assert_eq!(nl.delete_link(&host).await.unwrap(), Deleted::Removed);
    assert!(!nl.link_exists(&host).await.unwrap());
    assert!(!nl.link_exists(&peer).await.unwrap());
    assert_eq!(nl.delete_link(&host).await.unwrap(), Deleted::Absent);
    assert!(nl.get_link(&peer).await.unwrap().is_none());
    assert!(matches!(nl.link(&peer).await.unwrap_err(), Error::LinkNotFound { .. }));
}

#[tokio::test]
async fn invalid_input_changes_nothing() {
    let nl = or_skip!(root_host("invalid_input_changes_nothing").await);
    let ok = unique("knp-p");
    let err = nl.create_veth(&VethSpec::new("bad name", &ok)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    assert!(!nl.link_exists(&ok).await.unwrap());
    let (h, p) = (unique("knp-h"), unique("knp-p"));
    let err = nl.create_veth(&VethSpec::new(&h, &p).mtu(20)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidValue { what: "mtu", .. }), "{err}");
    let err = nl.get_link("x/y").await.unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    assert!(matches!(nl.set_mtu("lo", 1).await.unwrap_err(), Error::InvalidValue { .. }));
    assert!(!nl.link_exists(&h).await.unwrap());
    assert!(!nl.link_exists(&p).await.unwrap());
}

#[tokio::test]
async fn cni_flow_peer_created_in_netns_with_addresses_and_routes() {
    let nl = or_skip!(root_host("cni_flow_peer_created_in_netns_with_addresses_and_routes").await);
    let ns = NetnsGuard::new();
    let (host, _g) = LinkGuard::unique("knp-h");

    // "eth0" is created directly inside the netns: no clash with the host.
    let pair = nl
        .create_veth(
            &VethSpec::new(&host, "eth0")
                .mtu(1400)
                .peer_mac(mac("fa:16:3e:12:34:56"))
                .peer_netns(ns.ns.clone())
                .peer_up(true),
        )
        .await
        .unwrap();
    assert_eq!(pair.peer.name, "eth0");
    assert_eq!(pair.peer.mtu, 1400);
    assert!(pair.peer.admin_up);

    let inner = Netlink::in_netns(&ns.ns).await.unwrap();
    let eth0 = inner.link("eth0").await.unwrap();
    assert_eq!(eth0.mac, Some(mac("fa:16:3e:12:34:56")));
    assert_eq!(eth0.mtu, 1400);
    assert!(inner.link(&host).await.is_err(), "host end is not in the netns");
    inner.set_up("lo").await.unwrap();

    inner.add_address("eth0", net("10.77.0.5/24")).await.unwrap();
    inner.add_address("eth0", net("fd77::5/64")).await.unwrap();
    let err = inner.add_address("eth0", net("10.77.0.5/24")).await.unwrap_err();
    assert!(matches!(err, Error::AddressExists { .. }), "{err}");

    let wanted = [
        RouteSpec::default_via(ip("10.77.0.1")),
        RouteSpec::default_via(ip("fd77::1")),
        RouteSpec::new(net("192.0.2.0/24")).via(ip("10.77.0.254")).metric(50),
        RouteSpec::new(net("198.51.100.7/32")),
        RouteSpec::new(net("2001:db8:9::/48")).via(ip("fd77::fe")),
        // Gateway outside every subnet: needs onlink.
        RouteSpec::new(net("203.0.113.0/24")).via(ip("172.31.0.1")).onlink(),
    ];
    for route in &wanted {
        inner.add_route("eth0", route).await.unwrap();
    }
    let err = inner.add_route("eth0", &wanted[0]).await.unwrap_err();
    assert!(matches!(err, Error::RouteExists { .. }), "{err}");

    let addrs = inner.addresses("eth0").await.unwrap();
    let v4 = addrs.iter().find(|a| a.addr == net("10.77.0.5/24")).expect("v4 read back");
    assert_eq!(v4.scope, Scope::Universe);
    let v6 = addrs.iter().find(|a| a.addr == net("fd77::5/64")).expect("v6 read back");
    assert!(!v6.tentative, "nodad: the v6 address must be usable at once");
    assert!(!v6.dad_failed);

    let routes = inner.routes("eth0").await.unwrap();
    let has = |dest: &str, gw: Option<&str>| {
        routes.iter().any(|r| r.dest == net(dest) && r.gateway == gw.map(ip))
    };
    assert!(has("0.0.0.0/0", Some("10.77.0.1")), "{routes:#?}");
    assert!(has("::/0", Some("fd77::1")), "{routes:#?}");
    assert!(has("192.0.2.0/24", Some("10.77.0.254")), "{routes:#?}");
    assert!(has("198.51.100.7/32", None), "{routes:#?}");
    assert!(has("2001:db8:9::/48", Some("fd77::fe")), "{routes:#?}");
    assert!(has("10.77.0.0/24", None), "connected route: {routes:#?}");
    let route_to = |dest: &str| routes.iter().find(|r| r.dest == net(dest)).unwrap();
    let metric = route_to("192.0.2.0/24");
    assert_eq!(metric.metric, Some(50));
    assert_eq!(metric.origin, RouteOrigin::Static);
    let onlink = route_to("203.0.113.0/24");
    assert!(onlink.onlink);
    let host_route = route_to("198.51.100.7/32");
    assert_eq!(host_route.scope, Scope::Link);
    let connected = route_to("10.77.0.0/24");
    assert_eq!(connected.origin, RouteOrigin::Kernel);

    // Delete inside the netns removes the host end too.
    assert_eq!(inner.delete_link("eth0").await.unwrap(), Deleted::Removed);
    assert!(!nl.link_exists(&host).await.unwrap());
    assert_eq!(inner.delete_link("eth0").await.unwrap(), Deleted::Absent);
}

#[tokio::test]
async fn docker_flow_move_rename_configure() {
    let nl = or_skip!(root_host("docker_flow_move_rename_configure").await);
    let ns = NetnsGuard::new();
    let (host, _g) = LinkGuard::unique("knp-h");
    let peer = unique("knp-p");
    nl.create_veth(&VethSpec::new(&host, &peer).mtu(1450)).await.unwrap();

    // Open the netns by its /proc/PID/ns/net-style path equivalent too.
    let by_path = Netns::from_path(format!("/var/run/netns/{}", ns.name)).unwrap();
    assert_eq!(by_path.id().unwrap(), ns.ns.id().unwrap());

    nl.move_to_netns(&peer, &by_path).await.unwrap();
    assert!(!nl.link_exists(&peer).await.unwrap());

    let inner = Netlink::in_netns(&by_path).await.unwrap();
    inner.rename(&peer, "eth0").await.unwrap();
    inner.set_mac("eth0", mac("fa:16:3e:ab:cd:ef")).await.unwrap();
    inner.set_mtu("eth0", 1400).await.unwrap();
    inner.set_up("eth0").await.unwrap();
    let eth0 = inner.link("eth0").await.unwrap();
    assert_eq!(eth0.mac, Some(mac("fa:16:3e:ab:cd:ef")));
    assert_eq!(eth0.mtu, 1400);
    assert!(eth0.admin_up);

    // Recent kernels (6.x) rename up links too; round-trip the name.
    inner.set_down("eth0").await.unwrap();
    inner.rename("eth0", "eth1").await.unwrap();
    inner.rename("eth1", "eth0").await.unwrap();
    assert!(!inner.link("eth0").await.unwrap().admin_up);
    inner.set_up("eth0").await.unwrap();

    // Host end's operational state follows the peer (linkwatch is async).
    let mut state = OperState::Unknown;
    for _ in 0..50 {
        state = nl.link(&host).await.unwrap().oper_state;
        if state == OperState::Up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, OperState::Up);

    // Moving a link whose name exists in the target netns: distinct error.
    let (h2, _g2) = LinkGuard::unique("knp-h");
    let p2 = "eth0".to_string();
    let other = unique("knp-q");
    nl.create_veth(&VethSpec::new(&h2, &other)).await.unwrap();
    nl.set_down(&other).await.unwrap();
    let err = inner.rename("lo", "lo").await; // no-op rename is allowed
    assert!(err.is_ok(), "{err:?}");
    // Rename to a clashing name inside the netns is refused with LinkExists.
    nl.move_to_netns(&other, &by_path).await.unwrap();
    let err = inner.rename(&other, &p2).await.unwrap_err();
    assert!(matches!(err, Error::LinkExists { .. }), "{err}");
}

#[tokio::test]
async fn failed_veth_in_netns_leaves_nothing_behind() {
    let nl = or_skip!(root_host("failed_veth_in_netns_leaves_nothing_behind").await);
    let ns = NetnsGuard::new();
    let (h1, _g1) = LinkGuard::unique("knp-h");
    let (h2, _g2) = LinkGuard::unique("knp-h");
    nl.create_veth(&VethSpec::new(&h1, "eth0").peer_netns(ns.ns.clone())).await.unwrap();
    // eth0 is taken inside the netns: EEXIST, reported on the peer name, and
    // no host end left over.
    let err =
        nl.create_veth(&VethSpec::new(&h2, "eth0").peer_netns(ns.ns.clone())).await.unwrap_err();
    assert!(matches!(err, Error::LinkExists { ref name } if name == "eth0"), "{err}");
    assert!(!nl.link_exists(&h2).await.unwrap());
}

// ------------- namespaces

#[test]
fn named_netns_lifecycle() {
    if !require_root("named_netns_lifecycle") {
        return;
    }
    let name = unique("knp-");
    let ns = netplumb::netns::create_named(&name).unwrap();
    let path = format!("/var/run/netns/{name}");
    assert_eq!(Netns::from_path(&path).unwrap().id().unwrap(), ns.id().unwrap());
    assert_ne!(ns.id().unwrap(), Netns::current().unwrap().id().unwrap());
    // Name in use.
    assert!(netplumb::netns::create_named(&name).is_err());
    assert_eq!(netplumb::netns::delete_named(&name).unwrap(), Deleted::Removed);
    assert_eq!(netplumb::netns::delete_named(&name).unwrap(), Deleted::Absent);
    let err = Netns::from_path(&path).unwrap_err();
    assert!(matches!(err, Error::NetnsNotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_handles_never_move_runtime_threads() {
    if !require_root("netns_handles_never_move_runtime_threads") {
        return;
    }
    let host_id = Netns::current().unwrap().id().unwrap();
    let ns = NetnsGuard::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let netns = ns.ns.clone();
        tasks.push(tokio::spawn(async move {
            let inner = Netlink::in_netns(&netns).await.unwrap();
            // Only lo exists inside: proves the socket is in the netns.
            let names: Vec<String> =
                inner.links().await.unwrap().into_iter().map(|l| l.name).collect();
            assert_eq!(names, vec!["lo".to_string()]);
            // And this runtime thread is still in the host netns.
            Netns::from_path("/proc/thread-self/ns/net").unwrap().id().unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), host_id);
    }
    // /proc/PID/ns/net paths work too.
    let me = Netns::from_path(format!("/proc/{}/ns/net", std::process::id())).unwrap();
    assert_eq!(me.id().unwrap(), host_id);
}

/// A peer that maps an address to a previous holder's MAC learns the new
/// MAC from one gratuitous ARP (what a reused Neutron address needs).
#[tokio::test]
async fn gratuitous_arp_updates_a_peers_stale_entry() {
    if !require_root("gratuitous_arp_updates_a_peers_stale_entry") {
        return;
    }
    let (peer, holder) = (NetnsGuard::new(), NetnsGuard::new());
    let host = Netlink::host().await.unwrap();
    let (link, _g) = LinkGuard::unique("knp-g");
    // One end in each namespace: "eth0" in the holder, the other in the peer.
    host.create_veth(
        &VethSpec::new(&link, "eth0")
            .peer_netns(holder.ns.clone())
            .peer_mac(mac("fa:16:3e:00:00:aa")),
    )
    .await
    .unwrap();
    host.move_to_netns(&link, &peer.ns).await.unwrap();
    let in_peer = Netlink::in_netns(&peer.ns).await.unwrap();
    in_peer.set_up(&link).await.unwrap();
    in_peer.add_address(&link, net("10.99.7.1/24")).await.unwrap();
    let in_holder = Netlink::in_netns(&holder.ns).await.unwrap();
    in_holder.set_up("eth0").await.unwrap();
    in_holder.add_address("eth0", net("10.99.7.2/24")).await.unwrap();

    let ip_in_peer = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &peer.name, "ip"])
            .args(args)
            .output()
            .expect("ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // The previous holder's MAC, as fresh as an entry can be.
    ip_in_peer(&[
        "neigh",
        "replace",
        "10.99.7.2",
        "lladdr",
        "fa:16:3e:00:00:01",
        "nud",
        "reachable",
        "dev",
        &link,
    ]);
    // Past the neighbour locktime (1 s), within which Linux ignores updates.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    netplumb::garp::send_gratuitous_arp(
        Some(&holder.ns),
        "eth0",
        mac("fa:16:3e:00:00:aa"),
        "10.99.7.2".parse().unwrap(),
    )
    .await
    .unwrap();

    let mut seen = String::new();
    for _ in 0..50 {
        seen = ip_in_peer(&["neigh", "show", "10.99.7.2", "dev", &link]);
        if seen.contains("fa:16:3e:00:00:aa") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the peer still has {seen:?}");
}
