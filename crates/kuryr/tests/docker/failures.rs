//! Failures and restarts: a failed binding, a plugin restarted under a
//! running container, an address reused at once.

use super::*;

// ------------------------------------------------------------- failures and restarts

/// A port Neutron cannot bind here (`binding:host_id` of another host, so
/// `binding:vif_type=binding_failed`): `docker run` fails naming the
/// vif_type, and no port, veth or OVS port is left.
#[test]
fn failed_binding_fails_docker_run_and_leaves_nothing() {
    let Some(f) = Fixture::with_config(
        "failed_binding_fails_docker_run_and_leaves_nothing",
        "[DEFAULT]\nhost = not-this-host\n",
    ) else {
        return;
    };
    let s = &f.stack;
    let (cidr, net, docker_net) = f.fresh_network();
    let network = s.network_of_docker(&docker_net);
    let c = f.name("c1");
    let out = f.try_run_detached(&c, &net, &[]);
    assert!(!out.status.success(), "docker run must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("binding failed: {err}");
    assert!(err.contains("binding_failed"), "names the vif_type: {err}");
    assert!(err.contains("vif_type"), "{err}");

    let ports_made: Vec<String> = f
        .kuryr
        .log_text()
        .lines()
        .filter(|l| l.contains("address allocated"))
        .filter_map(|l| l.split("port_id=").nth(1)?.split_whitespace().next())
        .map(|id| id.trim_matches('"').to_string())
        .collect();
    assert!(!ports_made.is_empty(), "the log names the port it made");
    eventually("no port left on the network", || {
        s.non_neutron_ports(&network.id)
            .into_iter()
            .map(|p| format!("port {} {} {}", p.id, p.name, p.binding_vif_type))
            .collect()
    });
    for port in &ports_made {
        assert_unplugged(&s.bridge, port);
    }
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(
        &docker_net,
        &[&cidr],
        &ports_made.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

/// `kill -9` of the plugin while a container runs: the container keeps
/// its connectivity, a new container joins the same network, and removing
/// both cleans up everything.
#[test]
fn plugin_restart_mid_container_life() {
    let mut f = fixture_or_skip!("plugin_restart_mid_container_life");
    let (p, cidr) = f.fresh_cidr();
    let (net, docker_net) =
        f.network_named("net", &["--subnet", &cidr, "--gateway", &format!("{p}.1")]);
    let network = f.stack.network_of_docker(&docker_net);
    let ca = f.name("ca");
    let a = f.run_detached(&ca, &net, &[]);
    let port_a = check_port(&f, &a, &network.id);

    let old_pid = f.kuryr.pid();
    f.kuryr.crash_and_restart();
    assert_ne!(old_pid, f.kuryr.pid());
    let s = &f.stack;
    assert_eq!(
        s.port(&port_a.id).map(|p| p.status).as_deref(),
        Some("ACTIVE"),
        "the running container's port is untouched"
    );

    let cb = f.name("cb");
    let b = f.run_detached(&cb, &net, &[]);
    let port_b = check_port(&f, &b, &network.id);
    check_plugged(&f, &port_b, &b.endpoint);
    ping(&ca, b.ip.expect("v4"));
    ping(&cb, a.ip.expect("v4"));

    f.remove_container(&ca);
    f.remove_container(&cb);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port_a.id, &port_b.id]);
}

/// An address that moves to a new container at once (Neutron reuses freed
/// addresses): a peer that just answered the old holder learns the new MAC
/// from Kuryr's gratuitous ARP, instead of answering into the void for up
/// to 45 s (OVN answers the new holder's own ARP requests itself).
#[test]
fn reused_address_reaches_a_peer_at_once() {
    let f = fixture_or_skip!("reused_address_reaches_a_peer_at_once");
    let (p, cidr) = f.fresh_cidr();
    let net = f.name("net");
    f.create_network(&net, &["--subnet", &cidr, "--gateway", &format!("{p}.1")]);
    let anchor = f.name("anchor");
    let anchor_ip = f.run_detached(&anchor, &net, &[]).ip.expect("anchor IP");
    let reused = format!("{p}.77");

    let old = f.name("old");
    let old_att = f.run_detached(&old, &net, &["--ip", &reused]);
    ping(&old, anchor_ip);
    // The anchor now maps the address to the old container's MAC.
    let neighbour = |c: &str| {
        exec(c, &["ip", "neigh", "show"])
            .lines()
            .filter(|l| l.starts_with(&format!("{reused} ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let neigh = neighbour(&anchor);
    assert!(
        neigh.contains(&old_att.mac.to_lowercase()),
        "anchor neighbours: {neigh}"
    );
    f.remove_container(&old);

    let new = f.name("new");
    let new_att = f.run_detached(&new, &net, &["--ip", &reused]);
    assert_ne!(new_att.mac, old_att.mac, "a new port, a new MAC");
    // Within 3 s: the anchor's entry for the address would stay REACHABLE
    // (old MAC) for 15-45 s without the announcement, which Kuryr sends as
    // soon as Docker has configured the interface in the sandbox.
    let mut neigh = neighbour(&anchor);
    for _ in 0..30 {
        if neigh.contains(&new_att.mac.to_lowercase()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        neigh = neighbour(&anchor);
    }
    assert!(
        neigh.contains(&new_att.mac.to_lowercase()),
        "the anchor still maps {reused} to the old MAC: {neigh}\n{}",
        f.kuryr
            .log_text()
            .lines()
            .filter(|l| l.contains("gratuitous") || l.contains("ExternalConnectivity"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    ping(&new, anchor_ip);
}
