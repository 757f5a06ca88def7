//! Unit tests of `addresses`.

use super::*;

fn pool(cidr: &str, gateway: Option<&str>) -> PoolInfo {
    let subnet = gateway.map(|gw| Subnet {
        id: "s".into(),
        cidr: cidr.into(),
        gateway_ip: Some(gw.parse().expect("ip")),
        ..Subnet::default()
    });
    PoolInfo { cidr: cidr.parse().expect("cidr"), sub_pool: None, subnet }
}

#[test]
fn gateway_before_subnet_exists() {
    let p = pool("10.10.1.0/24", None);
    assert_eq!(gateway_address(&p, None).expect("ok").to_string(), "10.10.1.1/24");
    let gw = "10.10.1.254".parse().ok();
    assert_eq!(gateway_address(&p, gw).expect("ok").to_string(), "10.10.1.254/24");
    let outside = "10.10.2.1".parse().ok();
    assert_eq!(gateway_address(&p, outside).expect_err("bad").http_status(), 400);
}

#[test]
fn gateway_of_existing_subnet() {
    let p = pool("10.10.1.0/24", Some("10.10.1.1"));
    assert_eq!(gateway_address(&p, None).expect("ok").to_string(), "10.10.1.1/24");
    let other = "10.10.1.2".parse().ok();
    assert_eq!(gateway_address(&p, other).expect_err("conflict").http_status(), 409);
}

const SUBNET_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SUBNET_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// Kuryr's own port at `ip` on one of two subnets of the same cidr,
/// as RequestAddress leaves it in the cache.
fn cache_address(driver: &KuryrDriver, subnet_id: &str, port_id: &str, ip: IpAddr) {
    let subnet = Subnet {
        id: subnet_id.into(),
        network_id: format!("net-of-{subnet_id}").into(),
        cidr: "10.1.2.0/24".into(),
        gateway_ip: "10.1.2.1".parse().ok(),
        ..Subnet::default()
    };
    let port = Port {
        id: port_id.into(),
        network_id: subnet.network_id.clone(),
        fixed_ips: vec![openstack::neutron::FixedIp {
            subnet_id: subnet_id.into(),
            ip_address: ip,
        }],
        tags: vec![naming::DEVICE_OWNER.into()],
        ..Port::default()
    };
    let mut cache = driver.cache();
    cache.pools.insert(
        format!("subnet:{subnet_id}"),
        PoolInfo {
            cidr: "10.1.2.0/24".parse().expect("cidr"),
            sub_pool: None,
            subnet: Some(subnet),
        },
    );
    cache.addresses.insert(SubnetAddr::new(subnet_id, ip), port);
}

/// Two networks whose subnets share a cidr, each with a container at
/// the same address: releasing it on one deletes that network's port
/// only, before the reply, and leaves the other's port alone.
#[tokio::test]
async fn releasing_an_address_touches_only_its_own_subnets_port() {
    use super::super::fake_neutron::{FakeDriver, FakeNeutron};
    let fake = FakeNeutron::start().await;
    fake.on("DELETE", "/v2.0/ports/port-a", 204, serde_json::Value::Null);
    let driver = fake.driver().await;
    let ip: IpAddr = "10.1.2.5".parse().expect("ip");
    cache_address(&driver, SUBNET_A, "port-a", ip);
    cache_address(&driver, SUBNET_B, "port-b", ip);
    let req = serde_json::from_value(
        serde_json::json!({"PoolID": format!("subnet:{SUBNET_A}"), "Address": "10.1.2.5"}),
    )
    .expect("request");
    driver.release_address(req).await.expect("released");
    assert_eq!(fake.lines(), vec!["DELETE /v2.0/ports/port-a"]);
    let cache = driver.cache();
    assert!(!cache.addresses.contains_key(&SubnetAddr::new(SUBNET_A, ip)));
    assert_eq!(
        cache.addresses.get(&SubnetAddr::new(SUBNET_B, ip)).map(|p| p.id.as_str()),
        Some("port-b")
    );
}

#[test]
fn kuryr_tags_are_recognised() {
    assert!(naming::is_kuryr_tag("kuryr.port.existing"));
    assert!(naming::is_kuryr_tag("compute:kuryr"));
    assert!(naming::is_kuryr_tag("kuryr.net.uuid.lh:abc"));
    assert!(!naming::is_kuryr_tag("team:blue"));
}
