//! Unit tests of `pools`.

use super::super::fake_neutron::{FakeDriver, FakeNeutron};
use super::*;
use crate::api::IpamAddresses;
use serde_json::{json, Value};

/// `network rm` of an adopted network whose existing subnet Kuryr
/// tagged with the pool id: the tag goes, the subnet stays, and the
/// Kuryr-made subnetpool is deleted.
#[tokio::test]
async fn release_of_a_dedicated_pool_untags_an_adopted_subnet() {
    let pool = "0c0ffee0-0000-4000-8000-000000000001";
    let fake = FakeNeutron::start().await;
    fake.get(
        "/v2.0/subnets",
        json!({"subnets": [{"id": "s-user", "name": "user-subnet", "network_id": "n-user",
                            "cidr": "10.1.2.0/24", "tags": [pool, "team:blue"]}]}),
    );
    fake.on("DELETE", &format!("/v2.0/subnets/s-user/tags/{pool}"), 204, Value::Null);
    fake.get(
        &format!("/v2.0/subnetpools/{pool}"),
        json!({"subnetpool": {"id": pool, "name": "kuryrPool-10.1.2.0/24",
                               "prefixes": ["10.1.2.0/24"], "tags": []}}),
    );
    fake.on("DELETE", &format!("/v2.0/subnetpools/{pool}"), 204, Value::Null);
    let driver = fake.driver().await;
    driver.release_pool(ReleasePoolRequest { pool_id: pool.into() }).await.expect("released");
    let calls = fake.calls();
    assert!(
        calls[0].query.contains(&format!("tags={pool}")),
        "subnets found by the pool tag: {:?}",
        calls[0]
    );
    let lines = fake.lines();
    assert!(lines.contains(&format!("DELETE /v2.0/subnets/s-user/tags/{pool}")));
    assert!(!lines.contains(&"DELETE /v2.0/subnets/s-user".to_string()));
    assert_eq!(lines.last(), Some(&format!("DELETE /v2.0/subnetpools/{pool}")));
}

/// A `kuryrPool-<cidr>` whose only user is an adopted network's
/// existing subnet (tagged, not from the pool) is taken: a second Docker
/// network with the same cidr is refused instead of sharing it (its
/// `network rm` would delete the other network's subnet).
#[tokio::test]
async fn a_pool_used_by_an_adopted_subnet_is_not_shared() {
    let pool = "0c0ffee0-0000-4000-8000-000000000002";
    let fake = FakeNeutron::start().await;
    fake.get(
        "/v2.0/subnetpools",
        json!({"subnetpools": [{"id": pool, "name": "kuryrPool-10.1.2.0/24",
                                 "prefixes": ["10.1.2.0/24"], "tags": []}]}),
    );
    fake.get(
        "/v2.0/subnets",
        json!({"subnets": [{"id": "s-user", "network_id": "n-user", "cidr": "10.1.2.0/24",
                            "tags": [pool]}]}),
    );
    let driver = fake.driver().await;
    let cidr: IpNet = "10.1.2.0/24".parse().expect("cidr");
    let err = driver.ensure_dedicated_pool(cidr, None, false).await.expect_err("taken");
    assert_eq!(err.http_status(), 409);
    assert!(err.message.contains("n-user"), "{err}");
    fake.assert_no("POST");
}

/// `[DEFAULT] ip_range_as_subnet = true`: the range is the pool, named
/// after it, and Docker is handed the range back, as upstream does.
#[tokio::test]
async fn with_ip_range_as_subnet_the_range_is_the_pool() {
    let pool = "0c0ffee0-0000-4000-8000-000000000003";
    let fake = FakeNeutron::start().await;
    fake.get("/v2.0/subnetpools", json!({"subnetpools": []}));
    fake.on(
        "POST",
        "/v2.0/subnetpools",
        201,
        json!({"subnetpool": {"id": pool, "name": "kuryrPool-10.1.2.0/24",
                               "prefixes": ["10.1.2.0/24"], "tags": []}}),
    );
    let settings = super::super::fake_neutron::settings();
    let driver = fake
        .driver_with(super::super::DriverSettings { ip_range_as_subnet: true, ..settings })
        .await;
    let req = serde_json::from_value(json!({
        "AddressSpace": "no_address_space", "Pool": "10.1.0.0/16",
        "SubPool": "10.1.2.0/24", "Options": {}, "V6": false
    }))
    .expect("request");
    let reply = driver.request_pool(req).await.expect("pool");
    assert_eq!(reply.pool.to_string(), "10.1.2.0/24");
    assert_eq!(reply.pool_id, pool);
    let post = fake.calls().into_iter().find(|c| c.method == "POST").expect("a POST");
    assert_eq!(post.body["subnetpool"]["name"], "kuryrPool-10.1.2.0/24");
    assert_eq!(post.body["subnetpool"]["prefixes"], json!(["10.1.2.0/24"]));
    // Docker's gateway request outside the range is refused, saying why.
    let gw = serde_json::from_value(json!({
        "PoolID": pool, "Address": "10.1.0.1",
        "Options": {"RequestAddressType": "com.docker.network.gateway"}
    }))
    .expect("request");
    let err = driver.request_address(gw).await.expect_err("outside the range");
    assert_eq!(err.http_status(), 400);
    assert!(err.message.contains("ip_range_as_subnet"), "{err}");
}

/// Upstream's network from an operator's pool P: Docker holds the id of
/// a `kuryrPool-<cidr>` with no subnet, and the subnet (from P, tagged
/// with P's id) is found by its cidr, only when P carries upstream's
/// `kuryr.subnetpool.existing` tag.
#[tokio::test]
async fn upstreams_subnet_from_an_operators_pool_is_found_by_cidr() {
    let kuryr_pool = "0c0ffee0-0000-4000-8000-000000000004";
    for (tagged, found) in [(true, true), (false, false)] {
        let fake = FakeNeutron::start().await;
        fake.get(
            &format!("/v2.0/subnetpools/{kuryr_pool}"),
            json!({"subnetpool": {"id": kuryr_pool, "name": "kuryrPool-10.1.2.0/24",
                                   "prefixes": ["10.1.2.0/24"], "tags": []}}),
        );
        // By the kuryrPool's id (subnetpool_id, then tag): nothing.
        fake.get("/v2.0/subnets", json!({"subnets": []}));
        // By the cidr and upstream's name: the subnet from P.
        fake.on_query(
            "GET",
            "/v2.0/subnets",
            "cidr=10.1.2.0",
            200,
            json!({"subnets": [{"id": "s-up", "name": "kuryr-subnet-10.1.2.0/24",
                                "network_id": "n-up", "cidr": "10.1.2.0/24",
                                "subnetpool_id": "p-op", "tags": ["p-op"]}]}),
        );
        let tags = if tagged { json!([naming::EXISTING_SUBNETPOOL_TAG]) } else { json!([]) };
        fake.get(
            "/v2.0/subnetpools/p-op",
            json!({"subnetpool": {"id": "p-op", "name": "operators",
                                   "prefixes": ["10.1.0.0/16"], "tags": tags}}),
        );
        let driver = fake.driver().await;
        let info = driver
            .lookup_pool(&PoolId::Dedicated { pool: kuryr_pool.into() })
            .await
            .expect("looked up");
        assert_eq!(
            info.subnet.map(|s| s.id.into_string()),
            found.then(|| "s-up".to_string()),
            "pool tagged: {tagged}"
        );
    }
}

#[test]
fn pool_ids_round_trip() {
    for text in [
        "5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f",
        "5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f/10.10.3.0/24",
        "5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f/fd10:10::/64",
        "subnet:5f2bd9d5-6f6e-4bd0-9a8e-0a7c1c2d3e4f",
    ] {
        let id = PoolId::parse(text).expect("valid");
        assert_eq!(id.to_string(), text);
    }
}

#[test]
fn foreign_pool_ids_are_bad_requests() {
    for text in ["", "probe-pool-10.98.1.0/24", "abc/notacidr", "subnet:", "x y"] {
        let err = PoolId::parse(text).expect_err(text);
        assert_eq!(err.http_status(), 400, "{text}");
    }
}

#[test]
fn options_by_family_and_unknown_neutron_keys() {
    let mut opts = BTreeMap::new();
    opts.insert(OPT_POOL_NAME.to_string(), "p4".to_string());
    opts.insert(OPT_POOL_V6_NAME.to_string(), "p6".to_string());
    opts.insert(OPT_NET_SHARED.to_string(), "True".to_string());
    opts.insert("com.docker.whatever".to_string(), "x".to_string());
    let v4 = PoolOptions::parse(&opts, false).expect("valid");
    assert_eq!(v4.pool_name.as_deref(), Some("p4"));
    assert!(v4.shared);
    let v6 = PoolOptions::parse(&opts, true).expect("valid");
    assert_eq!(v6.pool_name.as_deref(), Some("p6"));
    opts.insert("neutron.pool.nmae".to_string(), "typo".to_string());
    let err = PoolOptions::parse(&opts, false).expect_err("typo");
    assert!(err.message.contains("neutron.pool.nmae"));
    let mut bad = BTreeMap::new();
    bad.insert(OPT_NET_SHARED.to_string(), "perhaps".to_string());
    assert!(PoolOptions::parse(&bad, false).is_err());
}

/// One set of options serves `-o` and `--ipam-opt` alike, as upstream
/// accepts it, and the refusal lists exactly what is accepted.
#[test]
fn ipam_accepts_every_neutron_option_it_lists() {
    for key in NEUTRON_OPTIONS {
        let value = if key == OPT_NET_SHARED { "false" } else { "x" };
        let opts = BTreeMap::from([(key.to_string(), value.to_string())]);
        for v6 in [false, true] {
            PoolOptions::parse(&opts, v6).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
    let bad = BTreeMap::from([("neutron.net.nmae".to_string(), "x".to_string())]);
    let err = PoolOptions::parse(&bad, false).expect_err("typo");
    let listed = err.message.split("known: ").nth(1).expect("a list");
    assert_eq!(listed, NEUTRON_OPTIONS.join(", "));
}
