//! Unit tests of `networks`.

use super::super::fake_neutron::{FakeDriver, FakeNeutron};
use super::*;
use serde_json::{json, Value};

const DOCKER_NET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn user_subnet() -> Subnet {
    Subnet {
        name: "user-subnet".into(),
        ..openstack::fake::subnet("s-user", "n-user", "10.1.2.0/24", Some("10.1.2.254"))
    }
}

fn existing_family() -> Family {
    Family {
        id: PoolId::Existing { subnet: "s-user".into() },
        info: PoolInfo {
            cidr: "10.1.2.0/24".parse().expect("cidr"),
            sub_pool: None,
            subnet: Some(user_subnet()),
        },
        gateway: None,
    }
}

/// `--ipam-opt neutron.subnet.uuid=` without `-o neutron.net.*`: the
/// user's network is not taken for a pending one (renamed, tagged, and
/// deleted on `network rm`), and the subnet is refused with a hint.
#[tokio::test]
async fn a_users_subnet_does_not_make_its_network_kuryrs() {
    let fake = FakeNeutron::start().await;
    fake.on(
        "POST",
        "/v2.0/networks",
        201,
        json!({"network": {"id": "n-new", "name": "kuryr-net-01234567", "subnets": []}}),
    );
    fake.ok("PUT", "/v2.0/networks/n-new/tags", json!({"tags": []}));
    let driver = fake.driver().await;
    let opts = NetOptions::parse(&BTreeMap::new(), PoolSettings::default()).expect("no options");
    let families = [existing_family()];
    let (network, adopted) =
        driver.network_for(DOCKER_NET, &opts, None, &families).await.expect("a new network");
    assert_eq!(network.id, "n-new");
    assert!(!adopted);
    let err = driver
        .ensure_subnet(&network, &families[0])
        .await
        .expect_err("the subnet is on another network");
    assert_eq!(err.http_status(), 400);
    assert!(err.message.contains("-o neutron.net.uuid=n-user"), "{err}");
    let touched: Vec<String> =
        fake.lines().into_iter().filter(|l| l.contains("n-user") || l.contains("s-user")).collect();
    assert!(touched.is_empty(), "the user's objects were touched: {touched:?}");
}

/// The same subnet on its adopted network is used as it is: not renamed
/// (a `kuryr-subnet-` name would get it deleted on `network rm`).
#[tokio::test]
async fn a_users_subnet_on_the_adopted_network_is_left_as_is() {
    let fake = FakeNeutron::start().await;
    let driver = fake.driver().await;
    let network =
        Network { id: "n-user".into(), subnets: vec!["s-user".into()], ..Network::default() };
    let subnet = driver.ensure_subnet(&network, &existing_family()).await.expect("used as is");
    assert_eq!(subnet.name, "user-subnet");
    assert!(fake.calls().is_empty(), "{:?}", fake.lines());
}

/// `ensure_subnet` of [`dedicated_family`] on network `n1`.
async fn ensure_dedicated_subnet(fake: &FakeNeutron) -> DriverResult<Subnet> {
    let driver = fake.driver().await;
    driver.ensure_subnet(&network("n1"), &dedicated_family()).await
}

fn dedicated_family() -> Family {
    Family {
        id: PoolId::Dedicated { pool: "p1".into() },
        info: PoolInfo { cidr: "10.1.2.0/24".parse().expect("cidr"), sub_pool: None, subnet: None },
        gateway: "10.1.2.1".parse().ok(),
    }
}

/// Kuryr's subnets carry their subnetpool id as a tag, as upstream's.
#[tokio::test]
async fn a_created_subnet_is_tagged_with_its_pool() {
    let fake = FakeNeutron::start().await;
    fake.on(
        "POST",
        "/v2.0/subnets",
        201,
        json!({"subnet": {"id": "s1", "network_id": "n1", "cidr": "10.1.2.0/24",
                          "name": "kuryr-subnet-10.1.2.0/24", "subnetpool_id": "p1", "tags": []}}),
    );
    fake.on("PUT", "/v2.0/subnets/s1/tags/p1", 201, Value::Null);
    let subnet = ensure_dedicated_subnet(&fake).await.expect("created");
    assert_eq!(subnet.tags, vec!["p1".to_string()]);
    assert_eq!(fake.lines(), vec!["POST /v2.0/subnets", "PUT /v2.0/subnets/s1/tags/p1"]);
}

/// A subnet that cannot be tagged is not left behind.
#[tokio::test]
async fn an_untaggable_subnet_is_deleted() {
    let fake = FakeNeutron::start().await;
    fake.on(
        "POST",
        "/v2.0/subnets",
        201,
        json!({"subnet": {"id": "s1", "network_id": "n1", "cidr": "10.1.2.0/24"}}),
    );
    fake.on(
        "PUT",
        "/v2.0/subnets/s1/tags/p1",
        403,
        json!({"NeutronError": {"type": "PolicyNotAuthorized", "message": "no", "detail": ""}}),
    );
    fake.on("DELETE", "/v2.0/subnets/s1", 204, Value::Null);
    let err = ensure_dedicated_subnet(&fake).await.expect_err("tagging failed");
    assert_eq!(err.http_status(), 403);
    assert_eq!(fake.lines().last().map(String::as_str), Some("DELETE /v2.0/subnets/s1"));
}

/// A driver whose cache holds two user pools of one cidr, `sub-a` of
/// network `n-a` and `sub-b` of `n-b`: a new map each time, so a fresh
/// random iteration order.
async fn two_user_pools(fake: &FakeNeutron) -> KuryrDriver {
    let driver = fake.driver().await;
    cache_user_pool(&driver, SUBNET_A, "n-a", "sub-a");
    cache_user_pool(&driver, SUBNET_B, "n-b", "sub-b");
    driver
}

/// A cached pool made from a user's subnet (`--ipam-opt neutron.subnet.*`).
fn cache_user_pool(driver: &KuryrDriver, subnet_id: &str, network_id: &str, name: &str) {
    let subnet = Subnet {
        id: subnet_id.into(),
        name: name.into(),
        network_id: network_id.into(),
        ..user_subnet()
    };
    driver.cache().pools.insert(
        PoolId::Existing { subnet: subnet_id.into() }.to_string(),
        PoolInfo {
            cidr: "10.1.2.0/24".parse().expect("cidr"),
            sub_pool: None,
            subnet: Some(subnet),
        },
    );
}

const SUBNET_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SUBNET_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn ipam_data() -> IpamData {
    serde_json::from_value(json!({"AddressSpace": "", "Pool": "10.1.2.0/24"})).expect("data")
}

/// Two Docker networks over two Neutron networks whose subnets share a
/// cidr: CreateNetwork carries only the cidr, and the adopted network
/// (or the subnet named in `-o`) picks the pool, whatever order the
/// cache holds them in.
#[tokio::test]
async fn pools_of_one_cidr_are_told_apart_by_the_adopted_network_or_subnet() {
    let fake = FakeNeutron::start().await;
    for _ in 0..16 {
        let driver = two_user_pools(&fake).await;
        let network_b = Network { id: "n-b".into(), ..Network::default() };
        let family = driver
            .family_for(&ipam_data(), &PoolOptions::default(), Some(&network_b))
            .await
            .expect("found");
        assert_eq!(family.id.to_string(), format!("subnet:{SUBNET_B}"));
        let named_a = PoolOptions { subnet_name: Some("sub-a".into()), ..PoolOptions::default() };
        let family = driver.family_for(&ipam_data(), &named_a, None).await.expect("found");
        assert_eq!(family.id.to_string(), format!("subnet:{SUBNET_A}"));
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.lines());
}

/// With nothing to tell them apart, the pool no created network uses
/// yet is the new network's, and a tie goes by the pool id: never a
/// map's order.
#[tokio::test]
async fn an_unhinted_pick_prefers_the_unused_pool_and_is_stable() {
    let fake = FakeNeutron::start().await;
    for _ in 0..16 {
        let driver = two_user_pools(&fake).await;
        let tie =
            driver.family_for(&ipam_data(), &PoolOptions::default(), None).await.expect("found");
        assert_eq!(tie.id.to_string(), format!("subnet:{SUBNET_A}"));
        let used = driver.cache().pools[&tie.id.to_string()].clone();
        driver.cache().networks.insert(
            "docker-a".into(),
            NetworkInfo {
                neutron_id: "n-a".into(),
                mtu: None,
                subnets: used.subnet.into_iter().collect(),
            },
        );
        let next =
            driver.family_for(&ipam_data(), &PoolOptions::default(), None).await.expect("found");
        assert_eq!(next.id.to_string(), format!("subnet:{SUBNET_B}"));
    }
}

/// Upstream's recipe: `--subnet 10.1.0.0/16 --ip-range 10.1.2.0/24`
/// over an adopted network whose subnet is the range. That subnet is
/// used (tagged with the pool), not a /16 that Neutron would refuse as
/// overlapping.
#[tokio::test]
async fn an_adopted_subnet_that_is_the_ip_range_is_used() {
    let fake = FakeNeutron::start().await;
    fake.get(
        "/v2.0/subnets",
        json!({"subnets": [{"id": "s-range", "name": "theirs", "network_id": "n-user",
                            "cidr": "10.1.2.0/24", "tags": []}]}),
    );
    fake.on("PUT", "/v2.0/subnets/s-range/tags/p1", 201, Value::Null);
    let driver = fake.driver().await;
    let network =
        Network { id: "n-user".into(), subnets: vec!["s-range".into()], ..Network::default() };
    let family = Family {
        id: PoolId::Dedicated { pool: "p1".into() },
        info: PoolInfo {
            cidr: "10.1.0.0/16".parse().expect("cidr"),
            sub_pool: "10.1.2.0/24".parse().ok(),
            subnet: None,
        },
        gateway: "10.1.2.1".parse().ok(),
    };
    let subnet = driver.ensure_subnet(&network, &family).await.expect("adopted");
    assert_eq!(subnet.id, "s-range");
    assert_eq!(subnet.name, "theirs");
    assert_eq!(fake.lines(), vec!["GET /v2.0/subnets", "PUT /v2.0/subnets/s-range/tags/p1"]);
}

#[test]
fn network_options() {
    let mut generic = BTreeMap::new();
    generic.insert(OPT_NET_NAME.to_string(), "ext".to_string());
    generic.insert("neutron.pool.name".to_string(), "p".to_string());
    let opts = NetOptions::parse(&generic, PoolSettings::default()).expect("valid");
    assert!(opts.adopts());
    assert_eq!(opts.name.as_deref(), Some("ext"));
    assert_eq!(opts.v4.pool_name.as_deref(), Some("p"));
    generic.insert("neutron.nett.name".to_string(), "typo".to_string());
    assert_eq!(
        NetOptions::parse(&generic, PoolSettings::default()).err().map(|e| e.http_status()),
        Some(400)
    );
}

/// A Neutron network known by its id alone.
fn network(id: &str) -> Network {
    Network { id: id.into(), ..Network::default() }
}
