//! Unit tests of `endpoints`.

use super::super::fake_neutron::{FakeDriver, FakeNeutron};
use super::*;
use openstack::neutron::{FixedIp, HostRoute};
use serde_json::json;
use std::time::Duration;

const EP: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";
const NET: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";

fn port(tags: &[&str], name: &str) -> Port {
    Port {
        id: "p1".into(),
        name: name.into(),
        network_id: "n1".into(),
        mac_address: "fa:16:3e:00:00:01".into(),
        fixed_ips: vec![FixedIp {
            subnet_id: "s1".into(),
            ip_address: "10.1.2.5".parse().expect("ip"),
        }],
        tags: tags.iter().map(ToString::to_string).collect(),
        ..Port::default()
    }
}

async fn claimed_body(primary: Port) -> serde_json::Value {
    let fake = FakeNeutron::start().await;
    fake.ok("PUT", "/v2.0/ports/p1", json!({"port": primary.clone()}));
    fake.ok("PUT", "/v2.0/ports/p1/tags", json!({"tags": []}));
    let driver = fake.driver().await;
    let owner = Owner::DockerEndpoint { endpoint: EP.into(), docker_network: NET.into() };
    driver.claim_port(&owner, vec![primary], None).await.expect("claimed");
    fake.calls()[0].body["port"].clone()
}

/// `EndpointOperInfo` of [`EP`] on [`NET`].
async fn oper_info(driver: &KuryrDriver) -> EndpointOperInfoResponse {
    let request = EndpointOperInfoRequest { network_id: NET.into(), endpoint_id: EP.into() };
    driver.endpoint_oper_info(request).await.expect("ok")
}

/// An existing port picked by `--ip` keeps its owner's name; a port
/// Kuryr made is named after the endpoint.
#[tokio::test]
async fn only_kuryrs_own_ports_are_renamed() {
    let adopted = claimed_body(port(&["kuryr.port.existing", "team:blue"], "mine")).await;
    assert!(adopted.get("name").is_none(), "{adopted}");
    assert_eq!(adopted["device_id"], EP);
    let own = claimed_body(port(&["compute:kuryr"], "kuryr-unbound-port")).await;
    assert_eq!(own["name"], format!("{EP}-port"));
}

fn cached_endpoint(active_seen: Option<Instant>) -> EndpointInfo {
    EndpointInfo {
        port: port(&["compute:kuryr"], "x"),
        plugged: Plugged {
            host_ifname: "tapp1".into(),
            container_ifname: "t_cp1".into(),
            vif_type: PlugKind::OVS,
        },
        subnets: Vec::new(),
        exposed_sg: None,
        active_seen,
        pool: None,
    }
}

/// Right after CreateEndpoint saw ACTIVE, EndpointOperInfo answers
/// without a call; later it reports Neutron's status (admin down, say).
#[tokio::test]
async fn endpoint_oper_info_reports_neutrons_status() {
    let fake = FakeNeutron::start().await;
    fake.get("/v2.0/ports/p1", json!({"port": {"id": "p1", "status": "DOWN"}}));
    let driver = fake.driver().await;
    driver.cache().endpoints.insert(EP.into(), cached_endpoint(Some(Instant::now())));
    let fresh = oper_info(&driver).await;
    assert_eq!(fresh.value["status"], "ACTIVE");
    assert_eq!(fresh.value["port_id"], "p1");
    assert!(fake.calls().is_empty());

    let long_ago = Instant::now().checked_sub(ACTIVE_SEEN_FRESH + Duration::from_secs(1));
    driver.cache().endpoints.insert(EP.into(), cached_endpoint(long_ago));
    let later = oper_info(&driver).await;
    assert_eq!(later.value["status"], "DOWN");
    assert_eq!(fake.lines(), vec!["GET /v2.0/ports/p1"]);
}

/// Join's routes come from the subnets as Neutron has them now, not as
/// they were when the network was created.
#[tokio::test]
async fn endpoint_subnets_are_read_fresh() {
    let fake = FakeNeutron::start().await;
    fake.get(
        "/v2.0/subnets",
        json!({"subnets": [
            {"id": "s1", "network_id": "n1", "cidr": "10.1.2.0/24", "gateway_ip": "10.1.2.1",
             "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "10.1.2.254"}]},
            {"id": "s2", "network_id": "n1", "cidr": "10.1.3.0/24"}
        ]}),
    );
    let driver = fake.driver().await;
    let stale = vec![Subnet { id: "s1".into(), ..Subnet::default() }];
    let subnets = driver.port_subnets("n1", &port(&[], "x"), &stale).await;
    assert_eq!(subnets.len(), 1, "only the port's subnet");
    assert_eq!(
        subnets[0].host_routes,
        vec![HostRoute {
            destination: "192.0.2.0/24".into(),
            nexthop: "10.1.2.254".parse().expect("ip"),
        }]
    );
    assert!(fake.calls()[0].query.contains("network_id=n1"));

    // Neutron failing: the cached subnets, not an error.
    let broken = FakeNeutron::start().await;
    let driver = broken.driver().await;
    let subnets = driver.port_subnets("n1", &port(&[], "x"), &stale).await;
    assert_eq!(subnets, stale);
}

/// A host route whose nexthop is the container's own address (Neutron
/// handed out the nexthop, which lay in the allocation pool) is left
/// out of Join: Docker would refuse it and the container would not
/// start. The other routes stay.
#[tokio::test]
async fn join_leaves_out_a_route_through_the_container_itself() {
    let fake = FakeNeutron::start().await;
    let driver = fake.driver().await;
    let mut own = port(&[naming::DEVICE_OWNER], "x");
    own.fixed_ips[0].ip_address = "10.1.2.254".parse().expect("ip");
    let route = |destination: &str, nexthop: &str| HostRoute {
        destination: destination.into(),
        nexthop: nexthop.parse().expect("ip"),
    };
    let subnet = Subnet {
        id: "s1".into(),
        cidr: "10.1.2.0/24".into(),
        gateway_ip: "10.1.2.1".parse().ok(),
        host_routes: vec![
            route("192.0.2.0/24", "10.1.2.254"),
            route("198.51.100.0/24", "10.1.2.253"),
        ],
        ..Subnet::default()
    };
    driver.cache().endpoints.insert(
        EP.into(),
        EndpointInfo {
            plugged: Plugged {
                host_ifname: naming::host_veth_name(&own.id),
                container_ifname: naming::container_veth_name(&own.id),
                vif_type: PlugKind::OVS,
            },
            port: own,
            subnets: vec![subnet],
            exposed_sg: None,
            active_seen: None,
            pool: None,
        },
    );
    let reply = driver
        .join(JoinRequest {
            network_id: NET.into(),
            endpoint_id: EP.into(),
            sandbox_key: "/var/run/docker/netns/test".into(),
            options: Default::default(),
        })
        .await
        .expect("joined");
    let hops: Vec<String> = reply
        .static_routes
        .iter()
        .map(|r| format!("{} via {:?}", r.destination, r.next_hop))
        .collect();
    assert_eq!(hops, vec!["198.51.100.0/24 via Some(10.1.2.253)"]);
    assert_eq!(reply.gateway, "10.1.2.1".parse().ok());
    assert!(fake.calls().is_empty());
}
