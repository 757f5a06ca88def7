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

const WAIT: Duration = Duration::from_secs(30);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("bad address {s}"))
}

fn has_all_tags(tags: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| tags.contains(w))
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
    assert_eq!(port.binding_host_id, f.stack.host, "binding:host_id");
    assert_eq!(port.binding_vif_type, "ovs");
    assert_eq!(port.network_id, network_id);
    let mut wanted = id_tags(&att.endpoint);
    wanted.extend(docker_net_tags(&att.network_id));
    assert!(
        has_all_tags(&port.tags, &wanted),
        "port tags {:?} lack {wanted:?}",
        port.tags
    );
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
        ovs_ports(&f.stack.bridge).contains(&tap),
        "{tap} is not on {}",
        f.stack.bridge
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
        .map(|c| {
            c.iter()
                .filter_map(|e| e["Gateway"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------- user flow

/// The user flow: network, a container, ping through OVN, cleanup.
#[test]
fn user_flow_network_containers_ping_and_cleanup() {
    let Some(f) = Fixture::new("user_flow_network_containers_ping_and_cleanup") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    let gw = format!("{p}.1");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr, "--gateway", &gw]);

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
    assert!(
        e.addresses.contains(&format!("{a_ip}/24")),
        "{:?}",
        e.addresses
    );
    assert!(
        e.routes.contains(&format!("default via {gw} dev eth0")),
        "{:?}",
        e.routes
    );
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
    let Some(f) = Fixture::new("run_rm_lifecycle_neutron_calls") else {
        return;
    };
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr]);
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

// ------------------------------------------------------------- gateways and pools

/// No `--gateway`: the network gets the Neutron subnet's gateway.
#[test]
fn network_without_gateway_gets_the_subnet_gateway() {
    let Some(f) = Fixture::new("network_without_gateway_gets_the_subnet_gateway") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr]);
    let network = s.network_of_docker(&docker_net);
    let subnets = s.subnets(Query::new().network_id(&network.id));
    assert_eq!(subnets.len(), 1);
    let gw = subnets[0]
        .gateway_ip
        .expect("Neutron gave the subnet a gateway");
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
    assert!(
        e.routes.contains(&format!("default via {gw} dev eth0")),
        "{:?}",
        e.routes
    );
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[]);
}

/// `--mac-address`: the port takes the user's MAC in the same PUT that
/// names it, and the container carries it.
#[test]
fn mac_address_requested_by_the_user() {
    let Some(f) = Fixture::new("mac_address_requested_by_the_user") else {
        return;
    };
    // The docker 28 CLI refuses --mac-address against a 1.41 engine; the
    // engine's own 20.10 CLI sends it.
    let client = "/usr/bin/docker";
    assert!(
        std::path::Path::new(client).exists(),
        "Debian's docker CLI at {client}"
    );
    let cidr = format!("{}.0/24", fresh_v4());
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr]);
    let network = f.stack.network_of_docker(&docker_net);
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
    let Some(f) = Fixture::new("network_without_subnet_comes_from_default_pool") else {
        return;
    };
    let s = &f.stack;
    let default_pool = s.default_pool("kuryr");
    let net = f.name("net");
    let docker_net = f.create_network(&net, &[]);
    let network = s.network_of_docker(&docker_net);
    assert_eq!(network.name, format!("kuryr-net-{}", &docker_net[..8]));
    let subnets = s.subnets(Query::new().network_id(&network.id));
    assert_eq!(subnets.len(), 1, "{subnets:#?}");
    let subnet = &subnets[0];
    f.uses_cidr(&subnet.cidr);
    assert_eq!(
        subnet.subnetpool_id.as_deref(),
        Some(default_pool.id.as_str())
    );
    assert_eq!(subnet.name, format!("kuryr-subnet-{}", subnet.cidr));
    assert!(
        default_pool
            .prefixes
            .iter()
            .any(|prefix| v4_cidr_contains(prefix, &subnet.cidr)),
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
    assert!(
        s.subnetpool(&default_pool.id).is_some(),
        "default pool kept"
    );
}

fn dual_stack(test: &str, explicit_gateways: bool) {
    let Some(f) = Fixture::new(test) else {
        return;
    };
    let s = &f.stack;
    let p4 = fresh_v4();
    let p6 = fresh_v6();
    let cidr4 = format!("{p4}.0/24");
    let cidr6 = format!("{p6}::/64");
    f.uses_cidr(&cidr4);
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
    let net = f.name("net");
    let docker_net = f.create_network(&net, &args);
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

    let ca = f.name("ca");
    let cb = f.name("cb");
    let a = f.run_detached(&ca, &net, &[]);
    let b = f.run_detached(&cb, &net, &[]);
    let port_a = check_port(&f, &a, &network.id);
    let port_b = check_port(&f, &b, &network.id);
    assert_eq!(port_a.fixed_ips.len(), 2, "one port holds both addresses");
    assert_eq!(a.gateway, Some(ip(&gw4)));
    assert_eq!(a.ipv6_gateway, Some(ip(&gw6)));
    let e = eth0(&ca);
    let a4 = a.ip.expect("v4");
    let a6 = a.ipv6.expect("v6");
    assert!(
        e.addresses.contains(&format!("{a4}/24")),
        "{:?}",
        e.addresses
    );
    assert!(
        e.addresses.contains(&format!("{a6}/64")),
        "{:?}",
        e.addresses
    );
    assert!(
        e.routes.contains(&format!("default via {gw4} dev eth0")),
        "{:?}",
        e.routes
    );
    assert!(
        e.routes6
            .iter()
            .any(|r| r.starts_with(&format!("default via {gw6} dev eth0"))),
        "{:?}",
        e.routes6
    );
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
    let Some(f) = Fixture::new("ip_range_narrows_the_allocation_pool") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    let range = format!("{p}.128/26");
    let gw = format!("{p}.1");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(
        &net,
        &["--subnet", &cidr, "--ip-range", &range, "--gateway", &gw],
    );
    let network = s.network_of_docker(&docker_net);
    let subnets = s.subnets(Query::new().network_id(&network.id));
    assert_eq!(subnets.len(), 1);
    let subnet = &subnets[0];
    assert_eq!(subnet.cidr, cidr, "the subnet is the whole --subnet");
    assert_eq!(subnet.name, format!("kuryr-subnet-{cidr}"));
    assert_eq!(subnet.gateway_ip, Some(ip(&gw)));
    let pools: Vec<(IpAddr, IpAddr)> = subnet
        .allocation_pools
        .iter()
        .map(|a| (a.start, a.end))
        .collect();
    assert_eq!(
        pools,
        vec![(ip(&format!("{p}.128")), ip(&format!("{p}.191")))]
    );
    let pools = s.kuryr_pools(&cidr);
    assert_eq!(pools.len(), 1, "pool named after --subnet");
    assert_eq!(pools[0].prefixes, vec![cidr.clone()]);
    assert!(
        pools[0].tags.contains(&format!("kuryr.ip_range:{range}")),
        "the range is recorded on the pool: {:?}",
        pools[0].tags
    );
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pools[0].id.as_str()));

    let ca = f.name("ca");
    let cb = f.name("cb");
    let a = f.run_detached(&ca, &net, &[]);
    let b = f.run_detached(&cb, &net, &[]);
    let port_a = check_port(&f, &a, &network.id);
    for att in [&a, &b] {
        let octet: u8 = match att.ip.expect("v4") {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(_) => panic!("v4 expected"),
        };
        assert!(
            (128..=191).contains(&octet),
            "{:?} outside the range",
            att.ip
        );
        assert_eq!(att.prefix, 24, "the prefix is the subnet's");
    }
    let e = eth0(&ca);
    assert!(
        e.routes.contains(&format!("default via {gw} dev eth0")),
        "{:?}",
        e.routes
    );
    assert!(
        e.routes
            .iter()
            .any(|r| r.starts_with(&format!("{cidr} dev eth0"))),
        "gateway on-link: {:?}",
        e.routes
    );
    ping(&ca, b.ip.expect("v4"));
    f.remove_container(&ca);
    f.remove_container(&cb);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port_a.id]);
}

// ------------------------------------------------------------- existing objects

/// How a test names the pre-created Neutron objects to Docker.
#[derive(Clone, Copy, PartialEq)]
enum Adopt {
    /// `--subnet <cidr> -o neutron.net.name=<name>`
    ByName,
    /// `--subnet <cidr> -o neutron.net.uuid=<id>`
    ByUuid,
    /// `--subnet <cidr> --ipam-opt neutron.subnet.uuid=<id> -o neutron.net.uuid=<id>`,
    /// no `--gateway`: the subnet's own gateway (not the first address).
    SubnetToo,
}

fn existing_network(test: &str, how: Adopt) {
    let Some(f) = Fixture::new(test) else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let gw = if how == Adopt::SubnetToo {
        ip(&format!("{p}.254"))
    } else {
        ip(&format!("{p}.1"))
    };
    let name = format!("{}-ext", f.driver());
    let pre = s
        .block_on(s.neutron.create_network(&NetworkCreate {
            name: Some(name.clone()),
            admin_state_up: Some(true),
            ..NetworkCreate::default()
        }))
        .expect("pre-creating the network");
    f.made(Resource::Networks, &pre.id);
    s.block_on(
        s.neutron
            .replace_tags(Resource::Networks, &pre.id, &["team:blue"]),
    )
    .expect("tagging");
    let subnet_name = format!("{name}-subnet");
    let pre_subnet = s
        .block_on(s.neutron.create_subnet(&SubnetCreate {
            name: Some(subnet_name.clone()),
            gateway_ip: Some(Some(gw)),
            ..SubnetCreate::new(pre.id.clone(), cidr.clone())
        }))
        .expect("pre-creating the subnet");
    s.block_on(
        s.neutron
            .replace_tags(Resource::Subnets, &pre_subnet.id, &["team:blue"]),
    )
    .expect("tagging");

    let net_option = match how {
        Adopt::ByName => format!("neutron.net.name={name}"),
        Adopt::ByUuid | Adopt::SubnetToo => format!("neutron.net.uuid={}", pre.id),
    };
    let subnet_option = format!("neutron.subnet.uuid={}", pre_subnet.id);
    let mut args = vec!["--subnet", &cidr, "-o", &net_option];
    if how == Adopt::SubnetToo {
        args.extend_from_slice(&["--ipam-opt", &subnet_option]);
    }
    let net = f.name("net");
    let docker_net = f.create_network(&net, &args);
    let adopted = s.network_of_docker(&docker_net);
    assert_eq!(adopted.id, pre.id, "the existing network is adopted");
    assert_eq!(adopted.name, name, "its name is unchanged");
    let mut wanted = id_tags(&docker_net);
    wanted.push(format!("kuryr.net.existing:{}", &docker_net[..12]));
    wanted.push("team:blue".into());
    assert!(
        has_all_tags(&adopted.tags, &wanted),
        "{:?} lacks {wanted:?}",
        adopted.tags
    );
    let subnets = s.subnets(Query::new().network_id(&pre.id));
    assert_eq!(subnets.len(), 1, "no second subnet: {subnets:#?}");
    assert_eq!(subnets[0].id, pre_subnet.id);
    assert_eq!(subnets[0].name, subnet_name, "the subnet keeps its name");
    assert_eq!(subnets[0].gateway_ip, Some(gw));

    if how == Adopt::ByName {
        // The cidr is taken by the adopted network: a second Docker network
        // with it (and no pools) is refused, not given the same pool.
        let other = f.name("other");
        let err = f.create_network_fails(&other, &["--subnet", &cidr]);
        assert!(
            err.contains(&format!(
                "{cidr} is already used by Neutron network {}",
                pre.id
            )),
            "{err}"
        );
        assert_eq!(s.kuryr_pools(&cidr).len(), 1);
        assert_eq!(s.subnets_with_cidr(&cidr).len(), 1);
    }

    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &pre.id);
    assert_eq!(port.fixed_ips[0].subnet_id, pre_subnet.id);
    assert_eq!(
        a.gateway,
        Some(gw),
        "the container's gateway is the subnet's"
    );
    ping_from_new_container(&net, a.ip.expect("v4"));
    f.remove_container(&c);
    f.remove_network(&net);

    let after = s.network(&pre.id).expect("the existing network survives");
    assert_eq!(after.name, name);
    assert_eq!(
        after.tags,
        vec!["team:blue".to_string()],
        "only our tags go"
    );
    let subnet_after = s
        .subnet(&pre_subnet.id)
        .expect("the existing subnet survives");
    assert_eq!(subnet_after.cidr, cidr);
    assert_eq!(subnet_after.name, subnet_name);
    assert_eq!(subnet_after.gateway_ip, Some(gw));
    assert_eq!(
        subnet_after.tags,
        vec!["team:blue".to_string()],
        "only our tags go from the subnet"
    );
    assert!(s.kuryr_pools(&cidr).is_empty(), "no kuryrPool left");
    f.assert_port_gone(&port.id);
    assert!(
        s.non_neutron_ports(&pre.id).is_empty(),
        "no port left on the existing network"
    );
}

/// `-o neutron.net.name=`: adopted, and survives `network rm`.
#[test]
fn existing_network_by_name() {
    existing_network("existing_network_by_name", Adopt::ByName);
}

/// `-o neutron.net.uuid=`: adopted, and survives `network rm`.
#[test]
fn existing_network_by_uuid() {
    existing_network("existing_network_by_uuid", Adopt::ByUuid);
}

/// `--ipam-opt neutron.subnet.uuid= -o neutron.net.uuid=` without
/// `--gateway`: the subnet's own gateway, and both survive `network rm`.
#[test]
fn existing_network_and_subnet_by_uuid() {
    existing_network("existing_network_and_subnet_by_uuid", Adopt::SubnetToo);
}

/// `--ip` of an address an existing port holds: that port is adopted, and
/// reset (not deleted) when the container goes.
#[test]
fn existing_port_picked_by_ip() {
    let Some(f) = Fixture::new("existing_port_picked_by_ip") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr, "--gateway", &format!("{p}.1")]);
    let network = s.network_of_docker(&docker_net);
    let subnet = s.subnets(Query::new().network_id(&network.id)).remove(0);
    let wanted_ip = ip(&format!("{p}.50"));
    let port_name = format!("{}-pre", f.driver());
    let pre = s
        .block_on(s.neutron.create_port(&PortCreate {
            name: Some(port_name.clone()),
            fixed_ips: Some(vec![openstack::neutron::FixedIpRequest::address(
                wanted_ip,
                Some(subnet.id.clone()),
            )]),
            tags: Some(vec!["team:blue".into()]),
            ..PortCreate::new(network.id.clone())
        }))
        .expect("pre-creating the port");
    f.made(Resource::Ports, &pre.id);

    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &["--ip", &wanted_ip.to_string()]);
    assert_eq!(a.ip, Some(wanted_ip));
    let port = check_port(&f, &a, &network.id);
    assert_eq!(port.id, pre.id, "the existing port is used");
    assert_eq!(port.mac_address, pre.mac_address, "its MAC is kept");
    assert!(port.tags.contains(&"kuryr.port.existing".to_string()));
    assert!(port.tags.contains(&"team:blue".to_string()));
    assert_eq!(port.name, port_name, "an adopted port keeps its name");
    check_plugged(&f, &port, &a.endpoint);
    ping_from_new_container(&net, wanted_ip);

    f.remove_container(&c);
    let after = wait_for("the adopted port reset", WAIT, || {
        let port = s.port(&pre.id).expect("the existing port is not deleted");
        port.device_id.is_empty().then_some(port)
    });
    assert_eq!(after.device_id, "", "reset");
    assert_eq!(after.device_owner, "", "reset");
    assert_eq!(after.binding_host_id, "", "reset");
    assert_eq!(after.name, port_name);
    assert_eq!(
        after.tags,
        vec!["team:blue".to_string()],
        "our tags removed"
    );
    assert_eq!(after.fixed_ips[0].ip_address, wanted_ip);
    assert_unplugged(&s.bridge, &pre.id);

    // The user's port holds the network; it is theirs to delete.
    s.block_on(s.neutron.delete_port(&pre.id))
        .expect("deleting the port");
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&pre.id]);
}

/// The same cidr for two Docker networks, through two Neutron subnetpools.
#[test]
fn same_cidr_twice_through_explicit_pools() {
    let Some(f) = Fixture::new("same_cidr_twice_through_explicit_pools") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let mut pools = Vec::new();
    for which in ["px", "py"] {
        let name = format!("{}-{which}", f.driver());
        let pool = s
            .block_on(s.neutron.create_subnetpool(&SubnetPoolCreate {
                name: name.clone(),
                prefixes: vec![cidr.clone()],
                default_prefixlen: Some(24),
                min_prefixlen: Some(24),
                ..SubnetPoolCreate::default()
            }))
            .expect("creating a subnetpool");
        f.made(Resource::SubnetPools, &pool.id);
        pools.push((name, pool.id));
    }
    let mut nets = Vec::new();
    for (i, (pool_name, pool_id)) in pools.iter().enumerate() {
        let opt = format!("neutron.pool.name={pool_name}");
        let net = f.name(&format!("n{i}"));
        let docker_net =
            f.create_network(&net, &["--subnet", &cidr, "--ipam-opt", &opt, "-o", &opt]);
        let network = s.network_of_docker(&docker_net);
        let subnets = s.subnets(Query::new().network_id(&network.id));
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].cidr, cidr);
        assert_eq!(subnets[0].subnetpool_id.as_deref(), Some(pool_id.as_str()));
        nets.push((net, docker_net, network.id, subnets[0].id.clone()));
    }
    assert!(s.kuryr_pools(&cidr).is_empty(), "no kuryrPool is made");
    let mut ports = Vec::new();
    for (i, (net, _, network_id, subnet_id)) in nets.iter().enumerate() {
        let c = f.name(&format!("c{i}"));
        let a = f.run_detached(&c, net, &[]);
        let port = check_port(&f, &a, network_id);
        assert_eq!(&port.fixed_ips[0].subnet_id, subnet_id);
        ports.push((c, port.id));
    }
    for (c, _) in &ports {
        f.remove_container(c);
    }
    for (net, docker_net, network_id, subnet_id) in &nets {
        f.remove_network(net);
        assert!(s.networks_of_docker(docker_net).is_empty());
        assert!(s.network(network_id).is_none());
        assert!(s.subnet(subnet_id).is_none());
    }
    f.assert_clean(&nets[0].1, &[&cidr], &[]);
    for (_, port) in &ports {
        f.assert_port_gone(port);
    }
    for (_, pool_id) in &pools {
        assert!(s.subnetpool(pool_id).is_some(), "the user's pool is kept");
        assert!(s.subnets(Query::new().subnetpool_id(pool_id)).is_empty());
    }
}

/// A Neutron network with one subnet, made by the test as an operator
/// would before handing it to Docker; returns (network id, subnet id).
fn user_network(f: &Fixture, name: &str, cidr: &str, gateway: IpAddr) -> (String, String) {
    let s = &f.stack;
    let network = s
        .block_on(s.neutron.create_network(&NetworkCreate {
            name: Some(name.to_string()),
            admin_state_up: Some(true),
            ..NetworkCreate::default()
        }))
        .expect("pre-creating the network");
    f.made(Resource::Networks, &network.id);
    let subnet = s
        .block_on(s.neutron.create_subnet(&SubnetCreate {
            name: Some(format!("{name}-subnet")),
            gateway_ip: Some(Some(gateway)),
            ..SubnetCreate::new(network.id.clone(), cidr.to_string())
        }))
        .expect("pre-creating the subnet");
    (network.id.into_string(), subnet.id.into_string())
}

/// Overlapping tenant CIDRs: two Docker networks adopt two Neutron
/// networks whose subnets share a cidr, both named in `-o` and
/// `--ipam-opt` (with `neutron.net.name`, which upstream's IPAM accepts
/// too). Both creates pick their own subnet; two containers started at
/// once take the same `--ip`, one on each; disconnecting one deletes its
/// own port before `docker network disconnect` returns and leaves the
/// other network's port bound, ACTIVE and reachable.
#[test]
fn overlapping_cidrs_on_two_adopted_networks() {
    let Some(f) = Fixture::new("overlapping_cidrs_on_two_adopted_networks") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let gw = ip(&format!("{p}.1"));
    let mut nets = Vec::new();
    for which in ["ea", "eb"] {
        let name = format!("{}-{which}", f.driver());
        let (network_id, subnet_id) = user_network(&f, &name, &cidr, gw);
        let net_opt = format!("neutron.net.name={name}");
        let subnet_opt = format!("neutron.subnet.name={name}-subnet");
        let net = f.name(which);
        let args = [
            "--subnet",
            &cidr,
            "--gateway",
            &gw.to_string(),
            "-o",
            &net_opt,
            "-o",
            &subnet_opt,
            "--ipam-opt",
            &subnet_opt,
            "--ipam-opt",
            &net_opt,
        ];
        let docker_net = f.create_network(&net, &args);
        assert_eq!(s.network_of_docker(&docker_net).id, network_id);
        assert_eq!(
            s.subnets(Query::new().network_id(&network_id)).len(),
            1,
            "no second subnet on {name}"
        );
        nets.push((net, docker_net, network_id, subnet_id));
    }

    let same = format!("{p}.50");
    let names: Vec<String> = ["ca", "cb"].iter().map(|c| f.name(c)).collect();
    for c in &names {
        f.track_container(c);
    }
    std::thread::scope(|scope| {
        let runs: Vec<_> = names
            .iter()
            .zip(&nets)
            .map(|(c, (net, ..))| {
                let same = &same;
                scope.spawn(move || {
                    run(
                        "docker",
                        &[
                            "run",
                            "-d",
                            "--network",
                            net,
                            "--ip",
                            same,
                            "--name",
                            c,
                            "kbox",
                            "sleep",
                            "1000",
                        ],
                    )
                })
            })
            .collect();
        for (run, c) in runs.into_iter().zip(&names) {
            let out = run.join().expect("docker run thread");
            assert!(
                out.status.success(),
                "docker run {c}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    let mut ports = Vec::new();
    for (c, (net, _, network_id, subnet_id)) in names.iter().zip(&nets) {
        let a = attachment(c, net);
        assert_eq!(a.ip, Some(ip(&same)));
        let port = check_port(&f, &a, network_id);
        assert_eq!(
            &port.fixed_ips[0].subnet_id, subnet_id,
            "{c}'s port is on its own subnet"
        );
        check_plugged(&f, &port, &a.endpoint);
        ports.push((a, port));
    }
    assert_ne!(ports[0].1.id, ports[1].1.id);

    // The first container leaves its network: its port goes, now.
    f.disconnect(&nets[0].0, &names[0]);
    assert!(
        s.port(&ports[0].1.id).is_none(),
        "the released port is deleted before disconnect returns"
    );
    assert_unplugged(&s.bridge, &ports[0].1.id);
    let other = s
        .port(&ports[1].1.id)
        .expect("the other network's port stays");
    assert_eq!(other.device_id, ports[1].0.endpoint, "still owned");
    assert_eq!(other.binding_host_id, s.host, "still bound");
    assert_eq!(other.status, "ACTIVE");
    check_plugged(&f, &other, &ports[1].0.endpoint);
    ping_from_new_container(&nets[1].0, ip(&same));

    f.remove_container(&names[1]);
    f.assert_port_gone(&ports[1].1.id);
    for (net, docker_net, network_id, subnet_id) in &nets {
        f.remove_network(net);
        assert!(s.networks_of_docker(docker_net).is_empty());
        assert!(s.network(network_id).is_some(), "the user's network stays");
        assert!(s.subnet(subnet_id).is_some(), "the user's subnet stays");
        assert!(
            s.non_neutron_ports(network_id).is_empty(),
            "no port of ours left on {network_id}"
        );
    }
    f.remove_container(&names[0]);
}

/// Upstream's own recipe: `--subnet <a /23> --ip-range <its lower /24>`
/// over an adopted network whose existing subnet is that /24. The existing
/// subnet is used (Neutron would refuse the /23 as overlapping it): the
/// container gets an address on it with its /24 prefix, and `network rm`
/// leaves it as it was.
#[test]
fn adopted_subnet_that_is_the_ip_range() {
    let Some(f) = Fixture::new("adopted_subnet_that_is_the_ip_range") else {
        return;
    };
    let s = &f.stack;
    let (range, wide, p) = range_and_wider();
    f.uses_cidr(&range);
    f.uses_cidr(&wide);
    let gw = ip(&format!("{p}.1"));
    let name = format!("{}-ext", f.driver());
    let (network_id, subnet_id) = user_network(&f, &name, &range, gw);
    let net_opt = format!("neutron.net.name={name}");
    let net = f.name("net");
    let docker_net = f.create_network(
        &net,
        &[
            "--subnet",
            &wide,
            "--ip-range",
            &range,
            "--gateway",
            &gw.to_string(),
            "-o",
            &net_opt,
        ],
    );
    assert_eq!(s.network_of_docker(&docker_net).id, network_id);
    let subnets = s.subnets(Query::new().network_id(&network_id));
    assert_eq!(subnets.len(), 1, "the range's subnet serves: {subnets:#?}");
    assert_eq!(subnets[0].id, subnet_id);
    let pools = s.kuryr_pools(&wide);
    assert_eq!(pools.len(), 1, "kuryrPool-{wide}");
    assert!(
        subnets[0].tags.contains(&pools[0].id.to_string()),
        "tagged with its pool"
    );

    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &network_id);
    assert_eq!(port.fixed_ips[0].subnet_id, subnet_id);
    assert_eq!(a.prefix, 24, "the Neutron subnet's prefix");
    assert_eq!(a.gateway, Some(gw));
    ping_from_new_container(&net, a.ip.expect("v4"));
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&wide, &range], &[&port.id]);
    let after = s.subnet(&subnet_id).expect("the user's subnet stays");
    assert_eq!(after.cidr, range);
    assert!(after.tags.is_empty(), "our tag removed: {:?}", after.tags);
}

/// A fresh /24 (the `--ip-range`), the /23 holding it (the `--subnet`),
/// and the /24's three-octet prefix.
fn range_and_wider() -> (String, String, String) {
    // fresh_v4 counts up: an even third octet whose odd neighbour no test
    // has drawn yet (the next draw skips it) is this test's alone.
    loop {
        let p = fresh_v4();
        let (a, b) = p.rsplit_once('.').expect("a.b.c");
        let low: u8 = b.parse().expect("octet");
        if low.is_multiple_of(2) {
            let _ = fresh_v4();
            return (format!("{p}.0/24"), format!("{a}.{low}.0/23"), p);
        }
    }
}

/// `[DEFAULT] ip_range_as_subnet = true`: the `--ip-range` is the subnet,
/// named after it, as upstream kuryr-libnetwork makes it; a gateway
/// outside the range is refused with the reason, and nothing is left.
#[test]
fn ip_range_as_subnet_builds_networks_as_upstream() {
    let Some(f) = Fixture::with_config(
        "ip_range_as_subnet_builds_networks_as_upstream",
        "[DEFAULT]\nip_range_as_subnet = true\n",
    ) else {
        return;
    };
    let s = &f.stack;
    let (range, wide, p) = range_and_wider();
    f.uses_cidr(&range);
    f.uses_cidr(&wide);
    let gw = format!("{p}.1");
    let net = f.name("net");
    let docker_net = f.create_network(
        &net,
        &["--subnet", &wide, "--ip-range", &range, "--gateway", &gw],
    );
    let network = s.network_of_docker(&docker_net);
    let subnets = s.subnets(Query::new().network_id(&network.id));
    assert_eq!(subnets.len(), 1);
    assert_eq!(subnets[0].cidr, range, "the range is the subnet");
    assert_eq!(subnets[0].name, format!("kuryr-subnet-{range}"));
    let pools = s.kuryr_pools(&range);
    assert_eq!(pools.len(), 1, "kuryrPool-{range}");
    assert_eq!(pools[0].prefixes, vec![range.clone()]);
    assert!(s.kuryr_pools(&wide).is_empty());
    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &network.id);
    assert_eq!(a.prefix, 24);
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&range, &wide], &[&port.id]);

    // The gateway in the /23 but outside the range: refused, saying why.
    let outside = {
        let (a, b) = p.rsplit_once('.').expect("a.b.c");
        let high: u8 = b.parse::<u8>().expect("octet") + 1;
        format!("{a}.{high}.1")
    };
    let bad = f.name("bad");
    let err = f.create_network_fails(
        &bad,
        &[
            "--subnet",
            &wide,
            "--ip-range",
            &range,
            "--gateway",
            &outside,
        ],
    );
    assert!(err.contains("ip_range_as_subnet"), "{err}");
    assert!(s.kuryr_pools(&range).is_empty(), "no kuryrPool left");
    assert!(s
        .subnets_with_cidr(&range)
        .iter()
        .all(|sn| sn.name != format!("kuryr-subnet-{range}")));
}

/// The same cidr twice without pools: a clear conflict, nothing left.
#[test]
fn same_cidr_twice_without_pools_is_a_clear_conflict() {
    let Some(f) = Fixture::new("same_cidr_twice_without_pools_is_a_clear_conflict") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let n1 = f.name("n1");
    let n2 = f.name("n2");
    let docker_net = f.create_network(&n1, &["--subnet", &cidr]);
    let network = s.network_of_docker(&docker_net);
    let err = f.create_network_fails(&n2, &["--subnet", &cidr]);
    eprintln!("same cidr: {err}");
    assert!(
        err.contains(&format!(
            "{cidr} is already used by Neutron network {}",
            network.id
        )),
        "{err}"
    );
    assert!(err.contains("neutron.pool.name"), "says how: {err}");
    assert!(
        run("docker", &["network", "inspect", &n2]).status.code() != Some(0),
        "no second Docker network"
    );
    assert_eq!(s.kuryr_pools(&cidr).len(), 1, "no second subnetpool");
    assert_eq!(s.subnets_with_cidr(&cidr).len(), 1, "no second subnet");
    assert_eq!(
        s.networks(Query::new().name(format!("kuryr-net-{}", &docker_net[..8])))
            .len(),
        1
    );
    // The first network still works.
    let c = f.name("c1");
    let a = f.run_detached(&c, &n1, &[]);
    check_port(&f, &a, &network.id);
    f.remove_container(&c);
    f.remove_network(&n1);
    f.assert_clean(&docker_net, &[&cidr], &[]);
}

// ------------------------------------------------------------- exposed ports

/// `--expose`: a security group `<port>-exposed_ports` with ingress rules
/// on the container's port, gone when the container stops.
#[test]
fn exposed_ports_become_security_group_rules() {
    let Some(f) = Fixture::new("exposed_ports_become_security_group_rules") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr]);
    let network = s.network_of_docker(&docker_net);
    let c = f.name("c1");
    let a = f.run_detached(
        &c,
        &net,
        &["--expose", "80", "--expose", "81/udp", "--expose", "82"],
    );
    let port = check_port(&f, &a, &network.id);
    let sg_name = format!("{}-exposed_ports", port.id);
    let groups = s
        .block_on(s.neutron.list_security_groups(&Query::new().name(&sg_name)))
        .expect("listing SGs");
    assert_eq!(groups.len(), 1, "one SG {sg_name}");
    let sg = &groups[0];
    assert!(
        port.security_groups.contains(&sg.id),
        "SG attached to the port: {:?}",
        port.security_groups
    );
    let mut rules: Vec<(String, String, Option<u32>, Option<u32>)> = sg
        .security_group_rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .map(|r| {
            (
                r.protocol.clone().unwrap_or_default(),
                r.ethertype.clone(),
                r.port_range_min,
                r.port_range_max,
            )
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            ("tcp".into(), "IPv4".into(), Some(80), Some(80)),
            ("tcp".into(), "IPv4".into(), Some(82), Some(82)),
            ("udp".into(), "IPv4".into(), Some(81), Some(81)),
        ]
    );
    docker(&["stop", "-t", "0", &c]);
    eventually("the exposed-ports SG removed after stop", || {
        s.block_on(s.neutron.list_security_groups(&Query::new().name(&sg_name)))
            .expect("listing SGs")
            .into_iter()
            .map(|g| format!("SG {} {}", g.id, g.name))
            .collect()
    });
    assert!(s.block_on(s.neutron.get_security_group(&sg.id)).is_err());
    f.assert_port_gone(&port.id);
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port.id]);
}

// ------------------------------------------------------------- EndpointOperInfo

/// EndpointOperInfo, posted straight to the socket, reports the port's
/// status (from the running plugin, after a restart, and when Neutron's
/// status changes).
#[test]
fn endpoint_oper_info_reports_port_status() {
    let Some(mut f) = Fixture::new("endpoint_oper_info_reports_port_status") else {
        return;
    };
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr]);
    let network = f.stack.network_of_docker(&docker_net);
    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &network.id);
    let call = json!({"NetworkID": docker_net, "EndpointID": a.endpoint});
    let oper_info = |f: &Fixture| f.kuryr.post_json("/NetworkDriver.EndpointOperInfo", &call);

    let (status, body) = oper_info(&f);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Value"]["status"], "ACTIVE", "{body}");
    assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");

    // Neutron's status, not a guess: an admin-down port is reported DOWN.
    let s = &f.stack;
    s.block_on(s.neutron.update_port(
        &port.id,
        &PortUpdate {
            admin_state_up: Some(false),
            ..PortUpdate::default()
        },
    ))
    .expect("admin down");
    wait_for("Neutron to report the port DOWN", WAIT, || {
        (s.port(&port.id)?.status == "DOWN").then_some(())
    });
    wait_for("EndpointOperInfo to report DOWN", WAIT, || {
        let (status, body) = oper_info(&f);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");
        (body["Value"]["status"] == "DOWN").then_some(())
    });
    s.block_on(s.neutron.update_port(
        &port.id,
        &PortUpdate {
            admin_state_up: Some(true),
            ..PortUpdate::default()
        },
    ))
    .expect("admin up");
    wait_for("Neutron to report the port ACTIVE", WAIT, || {
        (s.port(&port.id)?.status == "ACTIVE").then_some(())
    });

    // After a restart the plugin knows nothing but what Neutron has.
    f.kuryr.crash_and_restart();
    let (status, body) = oper_info(&f);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Value"]["status"], "ACTIVE", "{body}");
    assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");

    // An endpoint Kuryr does not know: 404 in Docker's error shape.
    let unknown = json!({"NetworkID": docker_net, "EndpointID": hex(64)});
    let (status, body) = f
        .kuryr
        .post_json("/NetworkDriver.EndpointOperInfo", &unknown);
    assert_eq!(status, 404, "{body}");
    assert!(
        body["Err"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port.id]);
}

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
    let Some(f) = Fixture::new("bad_network_options_give_clear_errors_and_leave_nothing") else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);

    let n1 = f.name("n1");
    let err = f.create_network_fails(&n1, &["--subnet", &cidr, "-o", "neutron.foo=bar"]);
    eprintln!("unknown option: {err}");
    assert!(err.contains("neutron.foo"), "names the option: {err}");
    let missing = format!("{}-nonexistent", f.driver());
    let n2 = f.name("n2");
    let err = f.create_network_fails(
        &n2,
        &[
            "--subnet",
            &cidr,
            "-o",
            &format!("neutron.net.name={missing}"),
        ],
    );
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
    assert!(
        !calls.iter().any(|c| c == "POST /v2.0/networks"),
        "no network created: {calls:#?}"
    );

    // A user's subnet named without its network: refused, and neither the
    // subnet nor its network is renamed, tagged or deleted.
    let cidr2 = format!("{}.0/24", fresh_v4());
    f.uses_cidr(&cidr2);
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
    let err = f.create_network_fails(
        &n3,
        &[
            "--subnet",
            &cidr2,
            "--ipam-opt",
            &format!("neutron.subnet.uuid={}", user_subnet.id),
        ],
    );
    eprintln!("subnet without its network: {err}");
    assert!(
        err.contains(&format!("-o neutron.net.uuid={}", user_net.id)),
        "says how: {err}"
    );
    let net_after = s.network(&user_net.id).expect("the user's network stays");
    assert_eq!(net_after.name, user_net.name);
    assert!(net_after.tags.is_empty(), "untagged: {:?}", net_after.tags);
    let subnet_after = s.subnet(&user_subnet.id).expect("the user's subnet stays");
    assert_eq!(subnet_after.name, user_subnet.name);
    assert!(
        subnet_after.tags.is_empty(),
        "untagged: {:?}",
        subnet_after.tags
    );
    let made: Vec<String> = f
        .kuryr
        .neutron_calls_since(0)
        .into_iter()
        .filter(|c| c.starts_with("POST /v2.0/networks") || c.starts_with("DELETE /v2.0/networks/"))
        .collect();
    assert!(
        made.len().is_multiple_of(2),
        "every network made is deleted again: {made:#?}"
    );
    assert!(run("docker", &["network", "inspect", &n3]).status.code() != Some(0));
}

/// Malformed JSON, wrong field types, foreign pool ids and unknown calls,
/// sent straight to the socket: the right status, `{"Err": ...}`, and no
/// Neutron object made.
#[test]
fn bad_requests_on_the_socket_get_docker_errors() {
    let Some(f) = Fixture::new("bad_requests_on_the_socket_get_docker_errors") else {
        return;
    };
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
    let Some(f) = Fixture::with_config(
        "failed_binding_fails_docker_run_and_leaves_nothing",
        "[DEFAULT]\nhost = not-this-host\n",
    ) else {
        return;
    };
    let s = &f.stack;
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr]);
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
    let Some(mut f) = Fixture::new("plugin_restart_mid_container_life") else {
        return;
    };
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
    let net = f.name("net");
    let docker_net = f.create_network(&net, &["--subnet", &cidr, "--gateway", &format!("{p}.1")]);
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
    let Some(f) = Fixture::new("reused_address_reaches_a_peer_at_once") else {
        return;
    };
    let p = fresh_v4();
    let cidr = format!("{p}.0/24");
    f.uses_cidr(&cidr);
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
