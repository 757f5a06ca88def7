//! Bad input: network options and raw requests on the socket get
//! Docker's error shape and leave nothing behind.
//!
//! Failures and restarts: a failed binding, a plugin restarted under a
//! running container, an address reused at once.

use super::*;

// ------------------------------------------------------------- bad input

/// Asserts Docker's `{"Err": "..."}` shape: one non-empty string field.
fn assert_err_shape(status: u16, body: &str, want_status: u16) -> String {
    assert_eq!(status, want_status, "status of {body}");
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    let obj = value.as_object().expect("an object");
    assert_eq!(obj.len(), 1, "only Err: {body}");
    let err = obj["Err"].as_str().expect("Err is a string").to_string();
    assert!(!err.is_empty());
    err
}

/// Unknown `-o neutron.*` option and a nonexistent `neutron.net.name`: a
/// clear message from `docker network create`, and nothing left behind.
#[test]
fn bad_network_options_give_clear_errors_and_leave_nothing() {
    let f = fixture_or_skip!("bad_network_options_give_clear_errors_and_leave_nothing");
    let s = &f.stack;
    let (_, cidr) = f.fresh_cidr();

    let n1 = f.name("n1");
    let err = f.create_network_fails(&n1, &["--subnet", &cidr, "-o", "neutron.foo=bar"]);
    eprintln!("unknown option: {err}");
    assert!(err.contains("neutron.foo"), "names the option: {err}");
    let missing = format!("{}-nonexistent", f.driver());
    let n2 = f.name("n2");
    let by_name = format!("neutron.net.name={missing}");
    let err = f.create_network_fails(&n2, &["--subnet", &cidr, "-o", &by_name]);
    eprintln!("nonexistent network: {err}");
    assert!(
        err.contains(&missing) && err.contains("no Neutron network"),
        "names the network: {err}"
    );
    for n in [&n1, &n2] {
        assert!(
            run("docker", &["network", "inspect", n]).status.code() != Some(0),
            "Docker network {n} must not exist"
        );
    }
    assert!(s.kuryr_pools(&cidr).is_empty(), "no subnetpool left");
    assert!(s.subnets_with_cidr(&cidr).is_empty(), "no subnet left");
    // Nothing half-made for a Docker network that never was.
    let calls = f.kuryr.neutron_calls_since(0);
    assert!(!calls.iter().any(|c| c == "POST /v2.0/networks"), "no network created: {calls:#?}");

    // A user's subnet named without its network: refused, and neither the
    // subnet nor its network is renamed, tagged or deleted.
    let (_, cidr2) = f.fresh_cidr();
    let user_net = s
        .block_on(s.neutron.create_network(&NetworkCreate {
            name: Some(format!("{}-user", f.driver())),
            ..NetworkCreate::default()
        }))
        .expect("creating the user's network");
    f.made(Resource::Networks, &user_net.id);
    let user_subnet = s
        .block_on(s.neutron.create_subnet(&SubnetCreate {
            name: Some(format!("{}-user-subnet", f.driver())),
            ..SubnetCreate::new(user_net.id.clone(), cidr2.clone())
        }))
        .expect("creating the user's subnet");
    let n3 = f.name("n3");
    let by_uuid = format!("neutron.subnet.uuid={}", user_subnet.id);
    let err = f.create_network_fails(&n3, &["--subnet", &cidr2, "--ipam-opt", &by_uuid]);
    eprintln!("subnet without its network: {err}");
    assert!(err.contains(&format!("-o neutron.net.uuid={}", user_net.id)), "says how: {err}");
    let net_after = s.network(&user_net.id).expect("the user's network stays");
    assert_eq!(net_after.name, user_net.name);
    assert!(net_after.tags.is_empty(), "untagged: {:?}", net_after.tags);
    let subnet_after = s.subnet(&user_subnet.id).expect("the user's subnet stays");
    assert_eq!(subnet_after.name, user_subnet.name);
    assert!(subnet_after.tags.is_empty(), "untagged: {:?}", subnet_after.tags);
    let made: Vec<String> = f
        .kuryr
        .neutron_calls_since(0)
        .into_iter()
        .filter(|c| c.starts_with("POST /v2.0/networks") || c.starts_with("DELETE /v2.0/networks/"))
        .collect();
    assert!(made.len().is_multiple_of(2), "every network made is deleted again: {made:#?}");
    assert!(run("docker", &["network", "inspect", &n3]).status.code() != Some(0));
}

/// Malformed JSON, wrong field types, foreign pool ids and unknown calls,
/// sent straight to the socket: the right status, `{"Err": ...}`, and no
/// Neutron object made.
#[test]
fn bad_requests_on_the_socket_get_docker_errors() {
    let f = fixture_or_skip!("bad_requests_on_the_socket_get_docker_errors");
    let k = &f.kuryr;
    let net_id = hex(64);
    let before = k.log_len();

    let (status, body) = k.post("/NetworkDriver.CreateNetwork", b"{\"NetworkID\": ");
    let err = assert_err_shape(status, &body, 400);
    eprintln!("malformed JSON: {err}");

    let wrong = json!({"NetworkID": 12, "Options": {}, "IPv4Data": [], "IPv6Data": []});
    let (status, body) = k.post("/NetworkDriver.CreateNetwork", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("NetworkID"), "names the field: {err}");

    let wrong = json!({"NetworkID": net_id, "Options": {}, "IPv4Data": "10.0.0.0/24"});
    let (status, body) = k.post("/NetworkDriver.CreateNetwork", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("IPv4Data"), "names the field: {err}");

    let wrong = json!({"AddressSpace": "no_address_space", "Pool": "not-a-cidr", "Options": {}, "V6": false});
    let (status, body) = k.post("/IpamDriver.RequestPool", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("Pool"), "names the field: {err}");

    let wrong = json!({"PoolID": "somebody-elses-pool", "Address": "", "Options": {}});
    let (status, body) = k.post("/IpamDriver.RequestAddress", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("somebody-elses-pool"), "{err}");

    let (status, body) = k.post("/NetworkDriver.CreateNetwork", b"");
    assert_err_shape(status, &body, 400);

    let (status, body) = k.post("/NetworkDriver.NoSuchCall", b"{}");
    assert_err_shape(status, &body, 404);

    // Neutron was not asked to make anything.
    let calls = k.neutron_calls_since(before);
    assert!(
        calls.iter().all(|c| c.starts_with("GET ")),
        "bad input made Neutron calls: {calls:#?}"
    );
    assert!(f.stack.networks_of_docker(&net_id).is_empty());
}

// ------------------------------------------------------------- failures and restarts

/// A port Neutron cannot bind here (`binding:host_id` of another host, so
/// `binding:vif_type=binding_failed`): `docker run` fails naming the
/// vif_type, and no port, veth or OVS port is left.
#[test]
fn failed_binding_fails_docker_run_and_leaves_nothing() {
    let f = fixture_or_skip!(
        "failed_binding_fails_docker_run_and_leaves_nothing",
        "[DEFAULT]\nhost = not-this-host\n"
    );
    let s = &f.stack;
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
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
        s.local().assert_unplugged(port);
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
        s.port(&port_a.id).map(|p| p.status.to_string()).as_deref(),
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
    assert!(neigh.contains(&old_att.mac.to_lowercase()), "anchor neighbours: {neigh}");
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
