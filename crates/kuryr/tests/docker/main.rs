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

mod addressing;
mod endpoints;
mod errors;
mod existing;
mod failures;
mod flow;
mod overlap;

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
