//! Namespaces: named netns lifecycle, handles that never move runtime
//! threads, and a gratuitous ARP reaching a peer.

use super::*;

#[test]
fn named_netns_lifecycle() {
    if !require_root("named_netns_lifecycle") {
        return;
    }
    let name = unique("knp-");
    let ns = netplumb::netns::create_named(&name).unwrap();
    let path = format!("/var/run/netns/{name}");
    assert_eq!(
        Netns::from_path(&path).unwrap().id().unwrap(),
        ns.id().unwrap()
    );
    assert_ne!(ns.id().unwrap(), Netns::current().unwrap().id().unwrap());
    // Name in use.
    assert!(netplumb::netns::create_named(&name).is_err());
    assert_eq!(
        netplumb::netns::delete_named(&name).unwrap(),
        Deleted::Removed
    );
    assert_eq!(
        netplumb::netns::delete_named(&name).unwrap(),
        Deleted::Absent
    );
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
            let names: Vec<String> = inner
                .links()
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect();
            assert_eq!(names, vec!["lo".to_string()]);
            // And this runtime thread is still in the host netns.
            Netns::from_path("/proc/thread-self/ns/net")
                .unwrap()
                .id()
                .unwrap()
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
    let link = unique("knp-g");
    let _g = LinkGuard(link.clone());
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
    in_peer
        .add_address(&link, net("10.99.7.1/24"))
        .await
        .unwrap();
    let in_holder = Netlink::in_netns(&holder.ns).await.unwrap();
    in_holder.set_up("eth0").await.unwrap();
    in_holder
        .add_address("eth0", net("10.99.7.2/24"))
        .await
        .unwrap();

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
