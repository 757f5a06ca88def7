//! The user flow: a network, containers that ping each other, and
//! nothing left after `docker rm` and `docker network rm`.

use super::*;

// ------------------------------------------------------------- user flow

/// The user flow: network, a container, ping through OVN, cleanup.
#[test]
fn user_flow_network_containers_ping_and_cleanup() {
    let f = fixture_or_skip!("user_flow_network_containers_ping_and_cleanup");
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    let gw = format!("{p}.1");
    f.uses_cidr(&cidr);
    let (net, docker_net) = f.network_named("net", &["--subnet", &cidr, "--gateway", &gw]);

    // Neutron: the network, subnetpool and subnet, named and tagged.
    let network = s.network_of_docker(&docker_net);
    assert_eq!(network.name, format!("kuryr-net-{}", &docker_net[..8]));
    assert!(has_all_tags(&network.tags, &id_tags(&docker_net)));
    let pools = s.kuryr_pools(&cidr);
    assert_eq!(pools.len(), 1, "one subnetpool kuryrPool-{cidr}");
    let pool = &pools[0];
    assert_eq!(pool.prefixes, vec![cidr.clone()]);
    let subnets = s.subnets(Query::new().network_id(&network.id));
    assert_eq!(subnets.len(), 1, "one subnet: {subnets:#?}");
    let subnet = &subnets[0];
    assert_eq!(subnet.name, format!("kuryr-subnet-{cidr}"));
    assert_eq!(subnet.cidr, cidr);
    assert_eq!(subnet.gateway_ip, Some(ip(&gw)));
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool.id.as_str()));
    assert!(
        subnet.tags.contains(&pool.id),
        "subnet tagged with its subnetpool id (upstream's convention): {:?}",
        subnet.tags
    );

    // An operator's host route, set in Neutron before containers start.
    // Its nexthop is kept out of the allocation pool, as an operator would:
    // Neutron would otherwise hand it to a container.
    let route_dst = format!("{}.0/24", fresh_v4());
    let route_via = format!("{p}.254");
    s.block_on(s.neutron.update_subnet(
        &subnet.id,
        &SubnetUpdate {
            host_routes: Some(vec![HostRoute {
                destination: route_dst.clone(),
                nexthop: ip(&route_via),
            }]),
            allocation_pools: Some(vec![AllocationPool {
                start: ip(&format!("{p}.2")),
                end: ip(&format!("{p}.253")),
            }]),
            ..SubnetUpdate::default()
        },
    ))
    .expect("setting host_routes");

    let ca = f.name("ca");
    let a = f.run_detached(&ca, &net, &[]);
    let port_a = check_port(&f, &a, &network.id);
    assert_eq!(port_a.name, format!("{}-port", a.endpoint));
    assert!(port_a.tags.contains(&"compute:kuryr".to_string()));
    assert_eq!(port_a.fixed_ips[0].subnet_id, subnet.id);
    check_plugged(&f, &port_a, &a.endpoint);
    assert_eq!(a.gateway, Some(ip(&gw)));
    assert_eq!(a.prefix, 24);

    // Inside the container.
    let e = eth0(&ca);
    assert_eq!(e.mac, port_a.mac_address.to_ascii_lowercase());
    assert_eq!(Some(e.mtu), network.mtu, "eth0 MTU is the network's");
    let a_ip = a.ip.expect("IPv4 address");
    e.assert_address(&format!("{a_ip}/24"));
    e.assert_route(&format!("default via {gw} dev eth0"));
    assert!(
        e.routes
            .contains(&format!("{route_dst} via {route_via} dev eth0")),
        "host route missing: {:?}",
        e.routes
    );

    // A second container; the two talk through OVN.
    let cb = f.name("cb");
    let b = f.run_detached(&cb, &net, &[]);
    let port_b = check_port(&f, &b, &network.id);
    ping(&ca, b.ip.expect("b's address"));
    ping(&cb, a_ip);
    // As in the issue: a throwaway container pings a.
    ping_from_new_container(&net, a_ip);

    f.remove_container(&ca);
    f.assert_port_gone(&port_a.id);
    f.remove_container(&cb);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port_a.id, &port_b.id]);
    assert!(s.network(&network.id).is_none(), "network deleted");
    assert!(s.subnet(&subnet.id).is_none(), "subnet deleted");
    assert!(s.subnetpool(&pool.id).is_none(), "subnetpool deleted");
}

/// The Neutron calls of one `docker run --rm` on an existing network,
/// printed for docs/benchmarks.md: the port is created once and deleted once.
#[test]
fn run_rm_lifecycle_neutron_calls() {
    let f = fixture_or_skip!("run_rm_lifecycle_neutron_calls");
    let (cidr, net, docker_net) = f.fresh_network();
    let from = f.kuryr.log_len();
    docker(&["run", "--rm", "--network", &net, "kbox", "true"]);
    let calls = wait_for("the port's DELETE in the log", WAIT, || {
        let calls = f.kuryr.neutron_calls_since(from);
        calls
            .iter()
            .any(|c| c.starts_with("DELETE /v2.0/ports/"))
            .then_some(calls)
    });
    eprintln!("Neutron calls of one `docker run --rm` lifecycle:");
    for c in &calls {
        eprintln!("  {c}");
    }
    let posts: Vec<_> = calls.iter().filter(|c| *c == "POST /v2.0/ports").collect();
    let deletes: Vec<_> = calls
        .iter()
        .filter(|c| c.starts_with("DELETE /v2.0/ports/"))
        .collect();
    assert_eq!(posts.len(), 1, "{calls:#?}");
    assert_eq!(deletes.len(), 1, "{calls:#?}");
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[]);
}
