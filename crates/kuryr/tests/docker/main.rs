//! Functional tests of the Docker driver (`kuryr libnetwork`) through the
//! real Docker engine, Neutron ML2/OVN and OVS of `scripts/stack`.
//!
//! Run them with `scripts/test`, or by hand:
//! `eval "$(scripts/stack env)"; cargo test -p kuryr --test docker`.
//! Without `KURYR_STACK_AUTH` every test prints a skip notice and passes.
//!
//! Each test runs its own plugin under its own driver name (see
//! `kuryr_testkit::Fixture`), and checks what a user would: `docker` output, the
//! Neutron objects (names and tags as docs/mapping.md says), the host
//! devices and OVS ports, and the container's view of eth0.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use kuryr_testkit::*;
use openstack::neutron::{
    AllocationPool, HostRoute, NetworkCreate, Port, PortCreate, PortUpdate, Query, Resource,
    SubnetCreate, SubnetPoolCreate, SubnetUpdate,
};
use serde_json::{json, Value};

mod errors;
mod existing;
mod overlap;

const WAIT: Duration = Duration::from_secs(30);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("bad address {s}"))
}

fn has_all_tags(tags: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| tags.contains(w))
}

/// Two containers, `ca` then `cb`, run on `net`: their names and
/// attachments.
fn run_two(f: &Fixture, net: &str) -> [(String, Attachment); 2] {
    ["ca", "cb"].map(|what| {
        let name = f.name(what);
        let att = f.run_detached(&name, net, &[]);
        (name, att)
    })
}

/// The port of a container's endpoint, checked as a user would: one port,
/// owned by Kuryr, bound here, named and tagged, ACTIVE, holding the
/// addresses and MAC Docker reports.
fn check_port(f: &Fixture, att: &Attachment, network_id: &str) -> Port {
    // Flows are in (ovn-installed) when docker run returns; Neutron's
    // status and the endpoint's device_id follow within moments (the
    // owner is recorded after CreateEndpoint's reply: docs/benchmarks.md).
    let port = wait_for("the endpoint's port ACTIVE in Neutron", WAIT, || {
        let ports = f.stack.ports_of_endpoint(&att.endpoint);
        (ports.len() == 1 && ports[0].status == "ACTIVE").then(|| ports[0].clone())
    });
    assert_eq!(port.device_owner, "compute:kuryr");
    assert_eq!(port.device_id, att.endpoint);
    assert_eq!(port.binding_host_id, f.stack.local().host, "binding:host_id");
    assert_eq!(port.binding_vif_type, "ovs");
    assert_eq!(port.network_id, network_id);
    let mut wanted = id_tags(&att.endpoint);
    wanted.extend(docker_net_tags(&att.network_id));
    assert!(has_all_tags(&port.tags, &wanted), "port tags {:?} lack {wanted:?}", port.tags);
    assert!(port.mac_address.eq_ignore_ascii_case(&att.mac), "MAC");
    let port_ips: BTreeSet<IpAddr> = port.fixed_ips.iter().map(|f| f.ip_address).collect();
    let docker_ips: BTreeSet<IpAddr> = att.ip.into_iter().chain(att.ipv6).collect();
    assert_eq!(port_ips, docker_ips, "port addresses vs docker inspect");
    port
}

/// The host end of the port is on br-int, as ML2/OVN and upstream want it.
fn check_plugged(f: &Fixture, port: &Port, endpoint: &str) {
    let (tap, _) = veth_names(&port.id);
    assert!(link_exists(&tap), "host veth {tap} missing");
    assert!(
        f.stack.local().ovs_ports().contains(&tap),
        "{tap} is not on {}",
        f.stack.local().bridge
    );
    let id = |k: &str| ovs_external_id(&tap, k);
    assert_eq!(id("iface-id").as_deref(), Some(port.id.as_str()));
    assert_eq!(
        id("attached-mac").map(|m| m.to_ascii_lowercase()),
        Some(port.mac_address.to_ascii_lowercase())
    );
    assert_eq!(id("iface-status").as_deref(), Some("active"));
    assert_eq!(id("vm-uuid").as_deref(), Some(endpoint));
}

fn docker_net_gateway(network: &str) -> Vec<String> {
    let info = inspect(network);
    info["IPAM"]["Config"]
        .as_array()
        .map(|c| c.iter().filter_map(|e| e["Gateway"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ------------------------------------------------------------- user flow

/// The user flow: network, a container, ping through OVN, cleanup.
#[test]
fn user_flow_network_containers_ping_and_cleanup() {
    let f = fixture_or_skip!("user_flow_network_containers_ping_and_cleanup");
    let s = &f.stack;
    let (p, cidr) = f.fresh_cidr();
    let gw = format!("{p}.1");
    let (net, docker_net) = f.network_named("net", &["--subnet", &cidr, "--gateway", &gw]);

    // Neutron: the network, subnetpool and subnet, named and tagged.
    let network = s.network_of_docker(&docker_net);
    assert_eq!(network.name, format!("kuryr-net-{}", &docker_net[..8]));
    assert!(has_all_tags(&network.tags, &id_tags(&docker_net)));
    let pools = s.kuryr_pools(&cidr);
    assert_eq!(pools.len(), 1, "one subnetpool kuryrPool-{cidr}");
    let pool = &pools[0];
    assert_eq!(pool.prefixes, vec![cidr.clone()]);
    let subnet = &s.only_subnet_of(&network.id);
    assert_eq!(subnet.name, format!("kuryr-subnet-{cidr}"));
    assert_eq!(subnet.cidr, cidr);
    assert_eq!(subnet.gateway_ip, Some(ip(&gw)));
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool.id.as_str()));
    assert!(
        subnet.tags.contains(&pool.id.to_string()),
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
    e.assert_route(&format!("{route_dst} via {route_via} dev eth0"));

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
        calls.iter().any(|c| c.starts_with("DELETE /v2.0/ports/")).then_some(calls)
    });
    eprintln!("Neutron calls of one `docker run --rm` lifecycle:");
    for c in &calls {
        eprintln!("  {c}");
    }
    let posts: Vec<_> = calls.iter().filter(|c| *c == "POST /v2.0/ports").collect();
    let deletes: Vec<_> = calls.iter().filter(|c| c.starts_with("DELETE /v2.0/ports/")).collect();
    assert_eq!(posts.len(), 1, "{calls:#?}");
    assert_eq!(deletes.len(), 1, "{calls:#?}");
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[]);
}

// ------------------------------------------------------------- gateways and pools

/// No `--gateway`: the network gets the Neutron subnet's gateway.
#[test]
fn network_without_gateway_gets_the_subnet_gateway() {
    let f = fixture_or_skip!("network_without_gateway_gets_the_subnet_gateway");
    let s = &f.stack;
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let gw = s.only_subnet_of(&network.id).gateway_ip.expect("Neutron gave the subnet a gateway");
    let docker_gw = docker_net_gateway(&net);
    assert!(
        docker_gw.is_empty() || docker_gw == vec![gw.to_string()],
        "docker network gateway {docker_gw:?} vs Neutron {gw}"
    );
    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    check_port(&f, &a, &network.id);
    assert_eq!(a.gateway, Some(gw), "container gateway is Neutron's");
    let e = eth0(&c);
    e.assert_route(&format!("default via {gw} dev eth0"));
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[]);
}

/// `--mac-address`: the port takes the user's MAC in the same PUT that
/// names it, and the container carries it.
#[test]
fn mac_address_requested_by_the_user() {
    let f = fixture_or_skip!("mac_address_requested_by_the_user");
    // The docker 28 CLI refuses --mac-address against a 1.41 engine; the
    // engine's own 20.10 CLI sends it.
    let client = "/usr/bin/docker";
    assert!(std::path::Path::new(client).exists(), "Debian's docker CLI at {client}");
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let c = f.name("c1");
    let mac = "02:42:ac:11:7e:57";
    let out = f.try_run_detached_with(client, &c, &net, &["--mac-address", mac]);
    assert!(
        out.status.success(),
        "docker run --mac-address: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = attachment(&c, &net);
    let port = check_port(&f, &a, &network.id);
    assert_eq!(port.mac_address, mac, "Neutron port MAC");
    assert_eq!(eth0(&c).mac, mac, "container MAC");
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port.id]);
}

/// No `--subnet`: the subnet is carved from the default pool `kuryr`,
/// which survives `network rm`.
#[test]
fn network_without_subnet_comes_from_default_pool() {
    let f = fixture_or_skip!("network_without_subnet_comes_from_default_pool");
    let s = &f.stack;
    let default_pool = s.default_pool("kuryr");
    let (net, docker_net) = f.network_named("net", &[]);
    let network = s.network_of_docker(&docker_net);
    assert_eq!(network.name, format!("kuryr-net-{}", &docker_net[..8]));
    let subnet = &s.only_subnet_of(&network.id);
    f.uses_cidr(&subnet.cidr);
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(default_pool.id.as_str()));
    assert_eq!(subnet.name, format!("kuryr-subnet-{}", subnet.cidr));
    assert!(
        default_pool.prefixes.iter().any(|prefix| v4_cidr_contains(prefix, &subnet.cidr)),
        "{} is carved from {:?}",
        subnet.cidr,
        default_pool.prefixes
    );
    let info = inspect(&net);
    let docker_subnet = info["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or("");
    assert_eq!(docker_subnet, subnet.cidr, "Docker's subnet is Neutron's");

    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &network.id);
    assert_eq!(a.gateway, subnet.gateway_ip);
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&subnet.cidr], &[&port.id]);
    assert!(s.subnet(&subnet.id).is_none(), "carved subnet deleted");
    assert!(s.network(&network.id).is_none(), "network deleted");
    assert!(s.subnetpool(&default_pool.id).is_some(), "default pool kept");
}

fn dual_stack(test: &str, explicit_gateways: bool) {
    let f = fixture_or_skip!(test);
    let s = &f.stack;
    let (p4, cidr4) = f.fresh_cidr();
    let p6 = fresh_v6();
    let cidr6 = format!("{p6}::/64");
    f.uses_cidr(&cidr6);
    let (gw4, gw6) = if explicit_gateways {
        (format!("{p4}.254"), format!("{p6}::fe"))
    } else {
        (format!("{p4}.1"), format!("{p6}::1"))
    };
    let mut args = vec!["--ipv6", "--subnet", &cidr4, "--subnet", &cidr6];
    if explicit_gateways {
        args.extend_from_slice(&["--gateway", &gw4, "--gateway", &gw6]);
    }
    let (net, docker_net) = f.network_named("net", &args);
    let network = s.network_of_docker(&docker_net);
    let subnets = s.subnets(Query::new().network_id(&network.id));
    assert_eq!(subnets.len(), 2, "{subnets:#?}");
    for (cidr, gw) in [(&cidr4, &gw4), (&cidr6, &gw6)] {
        let sn = subnets
            .iter()
            .find(|sn| &sn.cidr == cidr)
            .unwrap_or_else(|| panic!("no subnet {cidr}: {subnets:#?}"));
        assert_eq!(sn.gateway_ip, Some(ip(gw)), "gateway of {cidr}");
        assert_eq!(sn.name, format!("kuryr-subnet-{cidr}"));
        let pools = s.kuryr_pools(cidr);
        assert_eq!(pools.len(), 1, "kuryrPool-{cidr}");
        assert_eq!(sn.subnetpool_id.as_deref(), Some(pools[0].id.as_str()));
    }

    let [(ca, a), (cb, b)] = run_two(&f, &net);
    let port_a = check_port(&f, &a, &network.id);
    let port_b = check_port(&f, &b, &network.id);
    assert_eq!(port_a.fixed_ips.len(), 2, "one port holds both addresses");
    assert_eq!(a.gateway, Some(ip(&gw4)));
    assert_eq!(a.ipv6_gateway, Some(ip(&gw6)));
    let e = eth0(&ca);
    let a4 = a.ip.expect("v4");
    let a6 = a.ipv6.expect("v6");
    e.assert_address(&format!("{a4}/24"));
    e.assert_address(&format!("{a6}/64"));
    e.assert_route(&format!("default via {gw4} dev eth0"));
    e.assert_route6_starting(&format!("default via {gw6} dev eth0"));
    ping(&ca, b.ip.expect("v4"));
    ping(&ca, b.ipv6.expect("v6"));

    f.remove_container(&ca);
    f.remove_container(&cb);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr4, &cidr6], &[&port_a.id, &port_b.id]);
}

/// `--ipv6 --subnet v4 --subnet v6` with explicit gateways.
#[test]
fn dual_stack_with_gateways() {
    dual_stack("dual_stack_with_gateways", true);
}

/// Dual stack without `--gateway` (upstream fails this one).
#[test]
fn dual_stack_without_gateways() {
    dual_stack("dual_stack_without_gateways", false);
}

/// `--ip-range`: the subnet stays the whole `--subnet`, the range becomes
/// the allocation pool, the gateway stays on-link.
#[test]
fn ip_range_narrows_the_allocation_pool() {
    let f = fixture_or_skip!("ip_range_narrows_the_allocation_pool");
    let s = &f.stack;
    let (p, cidr) = f.fresh_cidr();
    let range = format!("{p}.128/26");
    let gw = format!("{p}.1");
    let (net, docker_net) =
        f.network_named("net", &["--subnet", &cidr, "--ip-range", &range, "--gateway", &gw]);
    let network = s.network_of_docker(&docker_net);
    let subnet = &s.only_subnet_of(&network.id);
    assert_eq!(subnet.cidr, cidr, "the subnet is the whole --subnet");
    assert_eq!(subnet.name, format!("kuryr-subnet-{cidr}"));
    assert_eq!(subnet.gateway_ip, Some(ip(&gw)));
    let pools: Vec<(IpAddr, IpAddr)> =
        subnet.allocation_pools.iter().map(|a| (a.start, a.end)).collect();
    assert_eq!(pools, vec![(ip(&format!("{p}.128")), ip(&format!("{p}.191")))]);
    let pools = s.kuryr_pools(&cidr);
    assert_eq!(pools.len(), 1, "pool named after --subnet");
    assert_eq!(pools[0].prefixes, vec![cidr.clone()]);
    assert!(
        pools[0].tags.contains(&format!("kuryr.ip_range:{range}")),
        "the range is recorded on the pool: {:?}",
        pools[0].tags
    );
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pools[0].id.as_str()));

    let [(ca, a), (cb, b)] = run_two(&f, &net);
    let port_a = check_port(&f, &a, &network.id);
    for att in [&a, &b] {
        let octet: u8 = match att.ip.expect("v4") {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(_) => panic!("v4 expected"),
        };
        assert!((128..=191).contains(&octet), "{:?} outside the range", att.ip);
        assert_eq!(att.prefix, 24, "the prefix is the subnet's");
    }
    let e = eth0(&ca);
    e.assert_route(&format!("default via {gw} dev eth0"));
    // The gateway is on-link.
    e.assert_route_starting(&format!("{cidr} dev eth0"));
    ping(&ca, b.ip.expect("v4"));
    f.remove_container(&ca);
    f.remove_container(&cb);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port_a.id]);
}
