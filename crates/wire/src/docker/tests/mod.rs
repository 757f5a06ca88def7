use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::*;
use crate::testutil::{exchanges, request_json, strip_empty, FIXTURE_EXCHANGES};

mod malformed;
mod parsing;
mod replies;

/// A Docker network id and an endpoint id, as Docker writes them.
const NET: &str = "48d0c07324242c7b40bcc5339fdec74cb52cc058a46d041da5234eac569e2845";
const EP: &str = "164e7ab0485d3cd75520cdf8f37492bfd405b7820f95512c80d065f5c263fe27";

fn parse(call: PluginCall, body: &str) -> Result<Request, BodyError> {
    Request::parse(call, body.as_bytes())
}

fn parse_ok(call: PluginCall, body: &str) -> Request {
    parse(call, body).unwrap_or_else(|e| panic!("{call}: {e}"))
}

fn parse_err(call: PluginCall, body: &str) -> String {
    match parse(call, body) {
        Ok(r) => panic!("{call}: expected an error, parsed {r:?}"),
        Err(e) => e.to_string(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn mac(s: &str) -> MacAddress {
    s.parse().unwrap()
}

// ---------- the captures ----------

#[test]
fn every_fixture_request_parses_into_the_type_of_its_path() {
    let all = exchanges();
    assert_eq!(all.len(), FIXTURE_EXCHANGES);
    for ex in &all {
        let call = PluginCall::from_path(&ex.path)
            .unwrap_or_else(|| panic!("{}: no call for {}", ex.at, ex.path));
        let parsed = Request::parse(call, &ex.body)
            .unwrap_or_else(|e| panic!("{}: {} does not parse: {e}", ex.at, ex.path));
        assert_eq!(parsed.call(), call, "{}", ex.at);
        // Nothing Docker sent is lost or altered, up to Go's zero values.
        assert_eq!(
            strip_empty(&request_json(&parsed)),
            strip_empty(&ex.req),
            "{}: {} re-encodes differently",
            ex.at,
            ex.path
        );
    }
}

#[test]
fn fixture_bodies_are_byte_exact() {
    let mut checked_raw = 0;
    for ex in exchanges() {
        if let Some(clen) = ex.clen {
            assert_eq!(ex.body.len(), clen, "{}: Content-Length", ex.at);
        }
        if let Some(raw) = &ex.raw {
            if Some(raw.len()) == ex.clen {
                assert_eq!(ex.body, raw.as_bytes(), "{}", ex.at);
                checked_raw += 1;
            }
        }
        if ex.req.is_null() {
            assert!(ex.body.is_empty(), "{}", ex.at);
        } else {
            assert!(ex.body.ends_with(b"}\n"), "{}: JSON bodies end with a newline", ex.at);
        }
    }
    assert!(checked_raw >= 3);
}

#[test]
fn fixtures_cover_every_call_docker_20_10_sent() {
    let seen: std::collections::BTreeSet<PluginCall> =
        exchanges().iter().filter_map(|ex| PluginCall::from_path(&ex.path)).collect();
    let expected = [
        PluginCall::Activate,
        PluginCall::NetworkGetCapabilities,
        PluginCall::CreateNetwork,
        PluginCall::DeleteNetwork,
        PluginCall::CreateEndpoint,
        PluginCall::EndpointOperInfo,
        PluginCall::DeleteEndpoint,
        PluginCall::Join,
        PluginCall::Leave,
        PluginCall::ProgramExternalConnectivity,
        PluginCall::RevokeExternalConnectivity,
        PluginCall::IpamGetCapabilities,
        PluginCall::GetDefaultAddressSpaces,
        PluginCall::RequestPool,
        PluginCall::ReleasePool,
        PluginCall::RequestAddress,
        PluginCall::ReleaseAddress,
    ];
    assert_eq!(seen, expected.into_iter().collect());
}

fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Value {
    let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
    serde_json::to_value(typed).unwrap()
}

fn response_roundtrip(call: PluginCall, resp: &Value) -> Value {
    match call {
        PluginCall::Activate => roundtrip::<ActivateResponse>(resp),
        PluginCall::NetworkGetCapabilities => roundtrip::<NetworkCapabilities>(resp),
        PluginCall::AllocateNetwork => roundtrip::<AllocateNetworkResponse>(resp),
        PluginCall::CreateEndpoint => roundtrip::<CreateEndpointResponse>(resp),
        PluginCall::EndpointOperInfo => roundtrip::<EndpointOperInfoResponse>(resp),
        PluginCall::Join => roundtrip::<JoinResponse>(resp),
        PluginCall::IpamGetCapabilities => roundtrip::<IpamCapabilities>(resp),
        PluginCall::GetDefaultAddressSpaces => roundtrip::<AddressSpaces>(resp),
        PluginCall::RequestPool => roundtrip::<RequestPoolResponse>(resp),
        PluginCall::RequestAddress => roundtrip::<RequestAddressResponse>(resp),
        _ => roundtrip::<EmptyResponse>(resp),
    }
}

#[test]
fn every_fixture_response_round_trips_through_its_type() {
    for ex in exchanges() {
        assert_eq!(ex.code, 200, "{}", ex.at);
        let call = PluginCall::from_path(&ex.path).unwrap();
        let ours = response_roundtrip(call, &ex.resp);
        assert_eq!(strip_empty(&ours), strip_empty(&ex.resp), "{}", ex.at);
    }
}

#[test]
fn capture_values_land_in_typed_fields() {
    let all = exchanges();
    let raw: Vec<_> = all
        .iter()
        .filter(|e| e.at.starts_with("docker-20.10-raw-session"))
        .map(|e| Request::parse(PluginCall::from_path(&e.path).unwrap(), &e.body).unwrap())
        .collect();

    let Request::RequestPool(pool) = &raw[4] else { panic!("{:?}", raw[4]) };
    assert_eq!(pool.address_space, "probe-local");
    assert_eq!((pool.pool, pool.sub_pool, pool.v6), (None, None, false));
    assert!(pool.options.is_empty());

    let Request::RequestAddress(gw) = &raw[5] else { panic!() };
    assert_eq!(gw.pool_id, "probe-pool-10.98.1.0/24");
    assert!(gw.is_gateway_request());
    assert_eq!(gw.address, None);

    let Request::CreateNetwork(cn) = &raw[6] else { panic!() };
    assert_eq!(cn.network_id, "01895533501ecd92f270b168b6e64e20f9be172e124dabd894f0adedf6da04da");
    assert!(!cn.options.enable_ipv6());
    assert_eq!(cn.options.enable_ipv6, Some(false));
    assert!(cn.options.generic().is_empty());
    assert_eq!(cn.ipv4_data.len(), 1);
    assert_eq!(cn.ipv4_data[0].address_space, "probe-local");
    assert_eq!(cn.ipv4_data[0].pool, Some(net("10.98.1.0/24")));
    assert_eq!(cn.ipv4_data[0].gateway, Some(net("10.98.1.1/24")));
    assert_eq!(cn.ipv4_data[0].gateway.unwrap().addr(), ip("10.98.1.1"));
    assert!(cn.ipv6_data.is_empty());

    let Request::RequestAddress(addr) = &raw[7] else { panic!() };
    assert!(!addr.is_gateway_request());
    assert_eq!(addr.options.mac_address(), Some(&mac("02:42:0f:c7:0d:28")));

    let Request::CreateEndpoint(ce) = &raw[8] else { panic!() };
    assert_eq!(ce.interface.address, Some(net("10.98.1.2/24")));
    assert_eq!(ce.interface.address_ipv6, None);
    assert_eq!(ce.interface.mac_address, Some(mac("02:42:0f:c7:0d:28")));
    assert!(ce.options.exposed_ports().is_empty());
    assert!(ce.options.port_map().is_empty());
    assert_eq!(ce.options.mac_address(), None);

    let Request::Join(join) = &raw[9] else { panic!() };
    assert_eq!(join.sandbox_key, "/var/run/docker/netns/22e67db7125f");

    let Request::ReleaseAddress(rel) = &raw[16] else { panic!("{:?}", raw[16]) };
    assert_eq!(rel.address, Some(ip("10.98.1.2")));

    // The first capture: Docker chose no MAC (RequiresMACAddress was unset).
    let first = &all[4];
    let Request::CreateEndpoint(ce) =
        Request::parse(PluginCall::CreateEndpoint, &first.body).unwrap()
    else {
        panic!()
    };
    assert_eq!(ce.interface.mac_address, None);
}

// ---------- the path table ----------

#[test]
fn path_table_is_a_bijection() {
    for call in PluginCall::ALL {
        assert_eq!(PluginCall::from_path(call.path()), Some(call));
        assert_eq!(format!("/{call}"), call.path());
    }
    let mut paths: Vec<_> = PluginCall::ALL.iter().map(|c| c.path()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), PluginCall::ALL.len());
    assert_eq!(PluginCall::from_path("/NetworkDriver.Nope"), None);
    assert_eq!(PluginCall::from_path("/networkdriver.createnetwork"), None);
    assert_eq!(PluginCall::from_path("NetworkDriver.CreateNetwork"), None);
    assert_eq!(PluginCall::from_path(""), None);
}

#[test]
fn calls_without_payload_accept_empty_null_or_an_object() {
    for call in [
        PluginCall::Activate,
        PluginCall::NetworkGetCapabilities,
        PluginCall::IpamGetCapabilities,
        PluginCall::GetDefaultAddressSpaces,
    ] {
        for body in ["", "\n", "null", "null\n", "{}", "{\"x\":1}\n"] {
            assert_eq!(parse_ok(call, body).call(), call, "{call} {body:?}");
        }
        assert!(parse(call, "5").is_err());
        assert!(parse(call, "{").is_err());
    }
}
