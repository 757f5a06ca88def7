//! The Docker driver with port pools, against the fake Neutron and a fake
//! OVS: what each call costs in Neutron calls, and what a pool port looks
//! like on each side of a claim and a release.

use crate::api::{Endpoints, IpamAddresses};
use std::collections::BTreeMap;
use std::time::Duration;

use kuryr_core::binding::{PlugKind, Plugged};
use kuryr_core::naming;
use kuryr_core::vif_pool::{PoolKey, PoolSettings, PooledPort};
use netplumb::ovs::PortSpec;
use openstack::neutron::{FixedIp, Port, Subnet};
use serde_json::json;

use super::fake_neutron::{FakeDriver, FakeNeutron};
use super::{KuryrDriver, NetworkInfo, PoolInfo, SubnetAddr};

const EP: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";
const NET: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
const PORT: &str = "0f0e0d0c-aaaa-bbbb-cccc-000000000001";

fn subnet() -> Subnet {
    openstack::fake::subnet("s1", "n1", "10.1.2.0/24", Some("10.1.2.1"))
}

fn pool_port(id: &str, ip: &str) -> PooledPort {
    PooledPort {
        port: Port {
            id: id.into(),
            name: naming::POOL_PORT_NAME.into(),
            network_id: "n1".into(),
            mac_address: "fa:16:3e:00:00:01".into(),
            device_owner: naming::DEVICE_OWNER.into(),
            binding_host_id: "test-host".into(),
            binding_vif_type: "ovs".into(),
            status: "ACTIVE".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: "s1".into(),
                ip_address: ip.parse().expect("ip"),
            }],
            tags: vec![naming::DEVICE_OWNER.into(), naming::POOL_TAG.into()],
            ..Port::default()
        },
        plugged: Plugged {
            host_ifname: naming::host_veth_name(id),
            container_ifname: naming::container_veth_name(id),
            vif_type: PlugKind::OVS,
        },
    }
}

/// An address on subnet `s1`.
fn addr(ip: &str) -> SubnetAddr {
    SubnetAddr::new("s1", ip.parse().expect("ip"))
}

fn sizes(min: usize, max: usize) -> PoolSettings {
    PoolSettings { min, max, batch: 1, update_frequency: Duration::from_secs(60) }
}

/// A driver that knows network `n1` (Docker `NET`, subnet `s1` as pool
/// `subnet:s1`) with pool sizes `settings`, and a pool already holding
/// `ready` (on the fake OVS as ready pool ports).
async fn driver_with_pool(
    fake: &FakeNeutron,
    settings: PoolSettings,
    ready: &[PooledPort],
) -> (KuryrDriver, PoolKey) {
    let driver = fake.driver().await;
    {
        let mut cache = driver.cache();
        cache.pools.insert(
            "subnet:5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f".into(),
            PoolInfo {
                cidr: "10.1.2.0/24".parse().expect("cidr"),
                sub_pool: None,
                subnet: Some(subnet()),
            },
        );
        cache.networks.insert(
            NET.into(),
            NetworkInfo { neutron_id: "n1".into(), mtu: Some(1442), subnets: vec![subnet()] },
        );
        cache.pool_settings.insert("n1".into(), settings);
    }
    let key = driver.pool_key(&subnet());
    for p in ready {
        let spec = PortSpec::neutron(
            "br-int",
            p.plugged.host_ifname.as_str(),
            &p.port.id,
            p.port.mac_address.parse().expect("mac"),
            "",
        )
        .external_id(naming::OVS_POOL_KEY, "n1");
        driver.binder.switch().add_port(&spec).await.expect("fake");
        driver.lifecycle.pool().add_ready(&key, settings, p.clone());
    }
    (driver, key)
}

async fn ovs_ids(driver: &KuryrDriver, port_id: &str) -> BTreeMap<String, String> {
    driver
        .binder
        .switch()
        .interface_external_ids(&naming::host_veth_name(port_id))
        .await
        .expect("fake")
        .expect("interface")
}

/// Neutron accepts the updates of [`PORT`] a claim or a release makes.
fn accept_port_updates(fake: &FakeNeutron) {
    let port = format!("/v2.0/ports/{PORT}");
    fake.ok("PUT", &port, json!({"port": {"id": PORT}}));
    fake.ok("PUT", &format!("{port}/tags"), json!({"tags": []}));
}

async fn request_address(driver: &KuryrDriver) -> String {
    let req = serde_json::from_value(json!({"PoolID": "subnet:5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f", "Address": "", "Options": {}}))
        .expect("request");
    let reply = driver.request_address(req).await.expect("address");
    reply.address.to_string()
}

/// With a ready port, RequestAddress answers its address and
/// CreateEndpoint its MAC without a single Neutron call; the owner reaches
/// OVSDB at once and Neutron after the reply.
#[tokio::test]
async fn a_pooled_start_makes_no_neutron_call() {
    let fake = FakeNeutron::start().await;
    accept_port_updates(&fake);
    let ready = [pool_port(PORT, "10.1.2.5"), pool_port("p2", "10.1.2.6")];
    let (driver, key) = driver_with_pool(&fake, sizes(1, 0), &ready).await;

    assert_eq!(request_address(&driver).await, "10.1.2.5/24");
    let req = serde_json::from_value(json!({
        "NetworkID": NET, "EndpointID": EP,
        "Interface": {"Address": "10.1.2.5/24", "AddressIPv6": "", "MacAddress": ""},
        "Options": {}
    }))
    .expect("request");
    let reply = driver.create_endpoint(req).await.expect("endpoint");
    let mac = reply.interface.and_then(|i| i.mac_address).expect("a MAC");
    assert_eq!(mac.to_string(), "fa:16:3e:00:00:01");
    let join = driver
        .join(
            serde_json::from_value(
                json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/x", "Options": {}}),
            )
            .expect("join"),
        )
        .await
        .expect("joined");
    assert_eq!(join.gateway, "10.1.2.1".parse().ok());
    assert!(fake.lines().is_empty(), "no call before the replies: {:?}", fake.lines());
    let ids = ovs_ids(&driver, PORT).await;
    assert_eq!(ids.get("vm-uuid").map(String::as_str), Some(EP));
    assert!(!ids.contains_key(naming::OVS_POOL_KEY), "{ids:?}");
    assert_eq!(driver.lifecycle.pool().ready_ports(&key), vec!["p2".to_string()]);

    driver.settle_all().await;
    let calls = fake.calls();
    let put =
        calls.iter().find(|c| c.path == format!("/v2.0/ports/{PORT}")).expect("the owner PUT");
    assert_eq!(put.body["port"]["device_id"], EP);
    assert_eq!(put.body["port"]["name"], format!("{EP}-port"));
    let tags =
        calls.iter().find(|c| c.path == format!("/v2.0/ports/{PORT}/tags")).expect("the tag PUT");
    let tags: Vec<String> = serde_json::from_value(tags.body["tags"].clone()).expect("tags");
    assert!(!tags.contains(&naming::POOL_TAG.to_string()), "{tags:?}");
    assert!(tags.contains(&naming::DEVICE_OWNER.to_string()));
    assert!(tags.iter().any(|t| t.starts_with("kuryr.net.uuid.lh:")));
    assert_eq!(calls.len(), 2, "{:?}", fake.lines());
}

/// A port released with its veth intact goes back to its pool: reset in
/// OVSDB, renamed and retagged in Neutron (one PUT, one tag PUT), served again.
#[tokio::test]
async fn a_released_port_returns_to_its_pool() {
    let fake = FakeNeutron::start().await;
    accept_port_updates(&fake);
    let (driver, key) = driver_with_pool(&fake, sizes(1, 0), &[pool_port("p2", "10.1.2.6")]).await;
    let pooled = pool_port(PORT, "10.1.2.5");
    driver.cache().returning.insert(addr("10.1.2.5"), (key.clone(), pooled));
    let req = serde_json::from_value(
        json!({"PoolID": "subnet:5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f", "Address": "10.1.2.5"}),
    )
    .expect("request");
    driver.release_address(req).await.expect("released");
    driver.settle_all().await;
    let put = fake
        .calls()
        .into_iter()
        .find(|c| c.method == "PUT" && c.path == format!("/v2.0/ports/{PORT}"))
        .expect("reset PUT");
    assert_eq!(put.body["port"]["name"], naming::POOL_PORT_NAME);
    assert_eq!(put.body["port"]["device_id"], "");
    let tags = fake.calls().into_iter().find(|c| c.path.ends_with("/tags")).expect("tag PUT");
    assert_eq!(
        tags.body["tags"],
        json!([naming::DEVICE_OWNER, naming::POOL_TAG, "kuryr.pool.docker:test"])
    );
    assert_eq!(driver.lifecycle.pool().ready_ports(&key), vec!["p2".to_string(), PORT.to_string()]);
}

/// Above `max`, a released pool port is deleted instead.
#[tokio::test]
async fn a_full_pool_deletes_what_comes_back() {
    let fake = FakeNeutron::start().await;
    fake.on("DELETE", &format!("/v2.0/ports/{PORT}"), 204, serde_json::Value::Null);
    let (driver, key) = driver_with_pool(&fake, sizes(1, 1), &[pool_port("p2", "10.1.2.6")]).await;
    driver.cache().returning.insert(addr("10.1.2.5"), (key.clone(), pool_port(PORT, "10.1.2.5")));
    let req = serde_json::from_value(
        json!({"PoolID": "subnet:5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f", "Address": "10.1.2.5"}),
    )
    .expect("request");
    driver.release_address(req).await.expect("released");
    driver.settle_all().await;
    assert_eq!(fake.lines(), vec![format!("DELETE /v2.0/ports/{PORT}")]);
    assert_eq!(driver.lifecycle.pool().ready_ports(&key), vec!["p2".to_string()]);
}

/// A specific address, or a MAC, is not served from the pool.
#[tokio::test]
async fn a_specific_address_bypasses_the_pool() {
    let fake = FakeNeutron::start().await;
    fake.on(
        "POST",
        "/v2.0/ports",
        201,
        json!({"port": {"id": "p9", "network_id": "n1", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.1.2.9"}]}}),
    );
    let (driver, key) = driver_with_pool(&fake, sizes(1, 0), &[pool_port(PORT, "10.1.2.5")]).await;
    let req = serde_json::from_value(
        json!({"PoolID": "subnet:5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f", "Address": "10.1.2.9", "Options": {}}),
    )
    .expect("request");
    let reply = driver.request_address(req).await.expect("address");
    assert_eq!(reply.address.to_string(), "10.1.2.9/24");
    assert_eq!(fake.lines(), vec!["POST /v2.0/ports".to_string()]);
    assert_eq!(driver.lifecycle.pool().ready_ports(&key), vec![PORT.to_string()]);
}
