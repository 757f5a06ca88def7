use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::*;
use crate::testutil::{exchanges, request_json, strip_empty, FIXTURE_EXCHANGES};

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
            assert!(
                ex.body.ends_with(b"}\n"),
                "{}: JSON bodies end with a newline",
                ex.at
            );
        }
    }
    assert!(checked_raw >= 3);
}

#[test]
fn fixtures_cover_every_call_docker_20_10_sent() {
    let seen: std::collections::BTreeSet<PluginCall> = exchanges()
        .iter()
        .filter_map(|ex| PluginCall::from_path(&ex.path))
        .collect();
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

    let Request::RequestPool(pool) = &raw[4] else {
        panic!("{:?}", raw[4])
    };
    assert_eq!(pool.address_space, "probe-local");
    assert_eq!((pool.pool, pool.sub_pool, pool.v6), (None, None, false));
    assert!(pool.options.is_empty());

    let Request::RequestAddress(gw) = &raw[5] else {
        panic!()
    };
    assert_eq!(gw.pool_id, "probe-pool-10.98.1.0/24");
    assert!(gw.is_gateway_request());
    assert_eq!(gw.address, None);

    let Request::CreateNetwork(cn) = &raw[6] else {
        panic!()
    };
    assert_eq!(
        cn.network_id,
        "01895533501ecd92f270b168b6e64e20f9be172e124dabd894f0adedf6da04da"
    );
    assert!(!cn.options.enable_ipv6());
    assert_eq!(cn.options.enable_ipv6, Some(false));
    assert!(cn.options.generic().is_empty());
    assert_eq!(cn.ipv4_data.len(), 1);
    assert_eq!(cn.ipv4_data[0].address_space, "probe-local");
    assert_eq!(cn.ipv4_data[0].pool, Some(net("10.98.1.0/24")));
    assert_eq!(cn.ipv4_data[0].gateway, Some(net("10.98.1.1/24")));
    assert_eq!(cn.ipv4_data[0].gateway.unwrap().addr(), ip("10.98.1.1"));
    assert!(cn.ipv6_data.is_empty());

    let Request::RequestAddress(addr) = &raw[7] else {
        panic!()
    };
    assert!(!addr.is_gateway_request());
    assert_eq!(addr.options.mac_address(), Some(&mac("02:42:0f:c7:0d:28")));

    let Request::CreateEndpoint(ce) = &raw[8] else {
        panic!()
    };
    assert_eq!(ce.interface.address, Some(net("10.98.1.2/24")));
    assert_eq!(ce.interface.address_ipv6, None);
    assert_eq!(ce.interface.mac_address, Some(mac("02:42:0f:c7:0d:28")));
    assert!(ce.options.exposed_ports().is_empty());
    assert!(ce.options.port_map().is_empty());
    assert_eq!(ce.options.mac_address(), None);

    let Request::Join(join) = &raw[9] else {
        panic!()
    };
    assert_eq!(join.sandbox_key, "/var/run/docker/netns/22e67db7125f");

    let Request::ReleaseAddress(rel) = &raw[16] else {
        panic!("{:?}", raw[16])
    };
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

// ---------- generous parsing of Docker-shaped bodies ----------

const NET: &str = "48d0c07324242c7b40bcc5339fdec74cb52cc058a46d041da5234eac569e2845";
const EP: &str = "164e7ab0485d3cd75520cdf8f37492bfd405b7820f95512c80d065f5c263fe27";

#[test]
fn create_network_with_driver_options_ipv6_and_aux_addresses() {
    let body = json!({
        "NetworkID": NET,
        "Options": {
            "com.docker.network.enable_ipv6": true,
            "com.docker.network.generic": {"neutron.net.uuid": "4f6b4c5e", "mtu": "1400"},
            "com.docker.network.enable_ipv4": true
        },
        "IPv4Data": [{"AddressSpace": "no_address_space", "Gateway": "10.10.0.1/24",
                      "Pool": "10.10.0.0/24", "AuxAddresses": {"router": "10.10.0.2/24"}}],
        "IPv6Data": [{"AddressSpace": "no_address_space", "Gateway": "fd00::1/64", "Pool": "fd00::/64"}]
    })
    .to_string();
    let Request::CreateNetwork(req) = parse_ok(PluginCall::CreateNetwork, &body) else {
        panic!()
    };
    assert!(req.options.enable_ipv6());
    assert_eq!(
        req.options.generic_option("neutron.net.uuid"),
        Some("4f6b4c5e")
    );
    assert_eq!(req.options.generic_option("mtu"), Some("1400"));
    assert_eq!(req.options.generic_option("absent"), None);
    assert_eq!(
        req.options.other.get("com.docker.network.enable_ipv4"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        req.ipv4_data[0].aux_addresses.get("router"),
        Some(&net("10.10.0.2/24"))
    );
    assert_eq!(req.ipv6_data[0].gateway, Some(net("fd00::1/64")));
}

#[test]
fn create_network_accepts_nulls_and_missing_optional_fields() {
    for body in [
        format!(r#"{{"NetworkID":"{NET}","Options":null,"IPv4Data":null,"IPv6Data":null}}"#),
        format!(r#"{{"NetworkID":"{NET}"}}"#),
        format!(
            r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.generic":null}},"IPv4Data":[{{"AddressSpace":"x"}}]}}"#
        ),
    ] {
        let Request::CreateNetwork(req) = parse_ok(PluginCall::CreateNetwork, &body) else {
            panic!()
        };
        assert!(!req.options.enable_ipv6());
        assert!(req.options.generic().is_empty());
        assert!(req.ipv6_data.is_empty());
    }
}

#[test]
fn enable_ipv6_is_read_leniently() {
    for (v, want) in [("\"true\"", true), ("\"False\"", false), ("null", false)] {
        let body = format!(
            r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.enable_ipv6":{v}}}}}"#
        );
        let Request::CreateNetwork(req) = parse_ok(PluginCall::CreateNetwork, &body) else {
            panic!()
        };
        assert_eq!(req.options.enable_ipv6(), want, "{v}");
    }
}

#[test]
fn create_endpoint_with_ports_and_base64_mac() {
    // What dockerd sends for `docker run --mac-address 02:42:0f:c7:0d:28 -p 8080:80 --expose 53/udp`.
    let body = json!({
        "NetworkID": NET, "EndpointID": EP,
        "Interface": {"Address": "10.98.1.2/24", "AddressIPv6": "fd00::2/64", "MacAddress": "02:42:0f:c7:0d:28"},
        "Options": {
            "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}, {"Proto": 17, "Port": 53}],
            "com.docker.network.portmap": [{"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080}],
            "com.docker.network.endpoint.macaddress": "AkIPxw0o",
            "com.docker.network.endpoint.ifname": "eth7"
        }
    })
    .to_string() + "\n";
    let Request::CreateEndpoint(req) = parse_ok(PluginCall::CreateEndpoint, &body) else {
        panic!()
    };
    assert_eq!(req.interface.address_ipv6, Some(net("fd00::2/64")));
    assert_eq!(req.options.mac_address(), Some(&mac("02:42:0f:c7:0d:28")));
    assert_eq!(
        req.options.mac_address().unwrap().to_string(),
        "02:42:0f:c7:0d:28"
    );
    assert_eq!(
        req.options.exposed_ports(),
        &[
            TransportPort {
                proto: Protocol::TCP,
                port: 80
            },
            TransportPort {
                proto: Protocol::UDP,
                port: 53
            }
        ]
    );
    let pb = &req.options.port_map()[0];
    assert_eq!(pb.proto.name(), Some("tcp"));
    assert_eq!((pb.ip, pb.port, pb.host_ip), (None, 80, None));
    assert_eq!((pb.host_port, pb.host_port_end), (8080, 8080));
    assert_eq!(
        req.options.other.get("com.docker.network.endpoint.ifname"),
        Some(&json!("eth7"))
    );
    // Re-encoding keeps Docker's base64 form.
    let back = serde_json::to_value(&req).unwrap();
    assert_eq!(
        back["Options"]["com.docker.network.endpoint.macaddress"],
        "AkIPxw0o"
    );
}

#[test]
fn create_endpoint_accepts_null_interface_and_options() {
    let body =
        format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Interface":null,"Options":null}}"#);
    let Request::CreateEndpoint(req) = parse_ok(PluginCall::CreateEndpoint, &body) else {
        panic!()
    };
    assert!(req.interface.is_empty());
    assert_eq!(req.options, EndpointOptions::default());
    let body = format!(
        r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Options":{{"com.docker.network.endpoint.exposedports":null,"com.docker.network.portmap":null}}}}"#
    );
    let Request::CreateEndpoint(req) = parse_ok(PluginCall::CreateEndpoint, &body) else {
        panic!()
    };
    assert!(req.options.exposed_ports().is_empty());
}

#[test]
fn program_external_connectivity_ports_and_unknown_keys() {
    let body = json!({
        "NetworkID": NET, "EndpointID": EP,
        "Options": {
            "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 443}],
            "com.docker.network.portmap": [{"Proto": 17, "IP": "10.0.0.2", "Port": 53, "HostIP": "127.0.0.1", "HostPort": 5353, "HostPortEnd": 5360}],
            "com.docker.network.driver.private.no_proxy_6to4": true
        }
    })
    .to_string();
    let Request::ProgramExternalConnectivity(req) =
        parse_ok(PluginCall::ProgramExternalConnectivity, &body)
    else {
        panic!()
    };
    let pb = &req.options.port_map()[0];
    assert_eq!(pb.proto, Protocol::UDP);
    assert_eq!(pb.ip, Some(ip("10.0.0.2")));
    assert_eq!(pb.host_ip, Some(ip("127.0.0.1")));
    assert_eq!(pb.host_port_end, 5360);
    assert_eq!(
        req.options.other["com.docker.network.driver.private.no_proxy_6to4"],
        Value::Bool(true)
    );
}

#[test]
fn protocol_accepts_names_and_numbers() {
    let ports: Vec<TransportPort> =
        serde_json::from_str(r#"[{"Proto":"tcp","Port":1},{"Proto":"UDP","Port":2},{"Proto":132,"Port":3},{"Proto":99,"Port":4}]"#)
            .unwrap();
    assert_eq!(ports[0].proto, Protocol::TCP);
    assert_eq!(ports[1].proto, Protocol::UDP);
    assert_eq!(ports[2].proto.to_string(), "sctp");
    assert_eq!(ports[3].proto.to_string(), "99");
    assert_eq!(ports[3].proto.name(), None);
    assert_eq!(
        serde_json::to_string(&ports[0]).unwrap(),
        r#"{"Proto":6,"Port":1}"#
    );
}

#[test]
fn ipam_requests_with_nulls_and_addresses() {
    let Request::RequestPool(req) = parse_ok(
        PluginCall::RequestPool,
        r#"{"AddressSpace":"no_address_space","Pool":"10.10.0.0/16","SubPool":"10.10.1.0/24","Options":null,"V6":false}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.pool, Some(net("10.10.0.0/16")));
    assert_eq!(req.sub_pool, Some(net("10.10.1.0/24")));
    let Request::RequestPool(req) = parse_ok(
        PluginCall::RequestPool,
        r#"{"AddressSpace":"x","Pool":"fd00::/64","Options":{"custom":"1"},"V6":true}"#,
    ) else {
        panic!()
    };
    assert!(req.v6);
    assert_eq!(req.options["custom"], "1");

    let Request::RequestAddress(req) = parse_ok(
        PluginCall::RequestAddress,
        r#"{"PoolID":"p","Address":"10.10.1.7","Options":null}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.address, Some(ip("10.10.1.7")));
    assert!(!req.is_gateway_request());
    assert_eq!(req.options.mac_address(), None);

    let Request::RequestAddress(req) = parse_ok(
        PluginCall::RequestAddress,
        r#"{"PoolID":"p","Address":"fd00::1","Options":{"RequestAddressType":"com.docker.network.gateway","other":"x"}}"#,
    ) else {
        panic!()
    };
    assert!(req.is_gateway_request());
    assert_eq!(req.options.other["other"], "x");

    let Request::ReleaseAddress(req) = parse_ok(
        PluginCall::ReleaseAddress,
        r#"{"PoolID":"p","Address":"fd00::1"}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.address, Some(ip("fd00::1")));
    let Request::ReleasePool(req) = parse_ok(PluginCall::ReleasePool, r#"{"PoolID":"p"}"#) else {
        panic!()
    };
    assert_eq!(req.pool_id, "p");
}

#[test]
fn swarm_only_calls_parse() {
    let Request::AllocateNetwork(req) = parse_ok(
        PluginCall::AllocateNetwork,
        &format!(
            r#"{{"NetworkID":"{NET}","Options":{{"a":"b"}},"IPv4Data":[{{"AddressSpace":"g","Pool":"10.0.0.0/24","Gateway":"10.0.0.1/24"}}],"IPv6Data":null}}"#
        ),
    ) else {
        panic!()
    };
    assert_eq!(req.options["a"], "b");
    assert!(matches!(
        parse_ok(
            PluginCall::FreeNetwork,
            &format!(r#"{{"NetworkID":"{NET}"}}"#)
        ),
        Request::FreeNetwork(_)
    ));
    let Request::DiscoverNew(req) = parse_ok(
        PluginCall::DiscoverNew,
        r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.10","BindAddress":"0.0.0.0","Self":true}}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.discovery_type, NODE_DISCOVERY);
    assert_eq!(req.discovery_data.address, "192.0.2.10");
    assert!(req.discovery_data.is_self);
    assert!(matches!(
        parse_ok(
            PluginCall::DiscoverDelete,
            r#"{"DiscoveryType":1,"DiscoveryData":null}"#
        ),
        Request::DiscoverDelete(_)
    ));
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let body = format!(
        r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","SandboxKey":"/x","Options":{{}},"Future":[1]}}"#
    );
    assert!(matches!(
        parse_ok(PluginCall::Join, &body),
        Request::Join(_)
    ));
}

// ---------- malformed requests ----------

#[test]
fn empty_or_null_body_is_missing_for_calls_with_payload() {
    for call in PluginCall::ALL.into_iter().filter(|c| c.has_payload()) {
        for body in ["", "\n", "null", " null\n"] {
            assert_eq!(
                parse(call, body),
                Err(BodyError::Missing),
                "{call} {body:?}"
            );
        }
    }
    assert_eq!(
        BodyError::Missing.to_string(),
        "empty body, expected a JSON object"
    );
}

#[test]
fn malformed_json_reports_the_position() {
    let msg = parse_err(PluginCall::CreateNetwork, "{\"NetworkID\": ");
    assert!(msg.contains("line 1 column"), "{msg}");
    let msg = parse_err(
        PluginCall::DeleteNetwork,
        &format!("{{\"NetworkID\":\"{NET}\"}} trailing"),
    );
    assert!(msg.contains("trailing characters"), "{msg}");
    let msg = parse_err(PluginCall::DeleteNetwork, "\"x\"");
    assert!(
        msg.contains("invalid type: string \"x\", expected struct"),
        "{msg}"
    );
}

#[test]
fn missing_required_fields_are_named() {
    let cases = [
        (
            PluginCall::CreateNetwork,
            r#"{"Options":{}}"#.to_owned(),
            "NetworkID",
        ),
        (PluginCall::DeleteNetwork, "{}".to_owned(), "NetworkID"),
        (
            PluginCall::CreateEndpoint,
            format!(r#"{{"NetworkID":"{NET}"}}"#),
            "EndpointID",
        ),
        (
            PluginCall::Join,
            format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP}"}}"#),
            "SandboxKey",
        ),
        (
            PluginCall::Leave,
            format!(r#"{{"EndpointID":"{EP}"}}"#),
            "NetworkID",
        ),
        (
            PluginCall::RequestAddress,
            r#"{"Address":""}"#.to_owned(),
            "PoolID",
        ),
        (PluginCall::ReleasePool, "{}".to_owned(), "PoolID"),
        (
            PluginCall::ReleaseAddress,
            r#"{"Address":"10.0.0.1"}"#.to_owned(),
            "PoolID",
        ),
        (PluginCall::DiscoverNew, "{}".to_owned(), "DiscoveryType"),
    ];
    for (call, body, field) in cases {
        let msg = parse_err(call, &body);
        assert!(
            msg.contains(&format!("missing field `{field}`")),
            "{call}: {msg}"
        );
    }
}

#[test]
fn empty_identifiers_are_rejected() {
    let msg = parse_err(PluginCall::DeleteNetwork, r#"{"NetworkID":""}"#);
    assert!(msg.starts_with("NetworkID: must not be empty"), "{msg}");
    let msg = parse_err(PluginCall::ReleasePool, r#"{"PoolID":"  "}"#);
    assert!(msg.starts_with("PoolID: must not be empty"), "{msg}");
}

#[test]
fn wrong_types_name_the_field_path() {
    let cases = [
        (
            PluginCall::RequestPool,
            r#"{"AddressSpace":"x","Pool":"","SubPool":"","Options":{},"V6":"yes"}"#.to_owned(),
            "V6: invalid type: string \"yes\", expected a boolean",
        ),
        (
            PluginCall::DeleteNetwork,
            r#"{"NetworkID":42}"#.to_owned(),
            "NetworkID: invalid type: integer `42`, expected a string",
        ),
        (
            PluginCall::CreateNetwork,
            format!(
                r#"{{"NetworkID":"{NET}","IPv4Data":[{{"AddressSpace":"x","Pool":"banana"}}]}}"#
            ),
            "IPv4Data[0].Pool: invalid value \"banana\"",
        ),
        (
            PluginCall::CreateNetwork,
            format!(r#"{{"NetworkID":"{NET}","IPv4Data":{{}}}}"#),
            "IPv4Data: invalid type: map, expected a sequence",
        ),
        (
            PluginCall::CreateEndpoint,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Interface":{{"Address":"10.0.0.2"}}}}"#
            ),
            "Interface.Address: invalid value \"10.0.0.2\"",
        ),
        (
            PluginCall::CreateEndpoint,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Interface":{{"MacAddress":"zz:zz"}}}}"#
            ),
            "Interface.MacAddress: invalid value \"zz:zz\"",
        ),
        (
            PluginCall::RequestAddress,
            r#"{"PoolID":"p","Address":"10.0.0.300"}"#.to_owned(),
            "Address: invalid value \"10.0.0.300\"",
        ),
        (
            PluginCall::RequestAddress,
            r#"{"PoolID":"p","Options":{"RequestAddressType":5}}"#.to_owned(),
            "invalid type: integer `5`, expected a string",
        ),
    ];
    for (call, body, want) in cases {
        let msg = parse_err(call, &body);
        assert!(msg.contains(want), "{call}: got {msg:?}, want {want:?}");
        assert!(
            msg.contains("line 1 column"),
            "{call}: no position in {msg:?}"
        );
    }
}

#[test]
fn wrong_types_inside_option_maps_are_reported() {
    let cases = [
        (
            PluginCall::CreateNetwork,
            format!(r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.enable_ipv6":5}}}}"#),
            "expected a boolean",
        ),
        (
            PluginCall::CreateNetwork,
            format!(
                r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.generic":{{"mtu":1400}}}}}}"#
            ),
            "expected a string",
        ),
        (
            PluginCall::Join,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","SandboxKey":"/x","Options":{{"com.docker.network.portmap":[{{"Proto":6,"Port":70000}}]}}}}"#
            ),
            "expected u16",
        ),
        (
            PluginCall::ProgramExternalConnectivity,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Options":{{"com.docker.network.endpoint.exposedports":[{{"Proto":300,"Port":1}}]}}}}"#
            ),
            "IP protocol number",
        ),
        (
            PluginCall::CreateEndpoint,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Options":{{"com.docker.network.endpoint.macaddress":"!!"}}}}"#
            ),
            "invalid MAC address \"!!\"",
        ),
        (
            PluginCall::CreateEndpoint,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Options":{{"com.docker.network.endpoint.macaddress":"AAEC"}}}}"#
            ),
            "6, 8 or 20 bytes, not 3",
        ),
        (
            PluginCall::RequestAddress,
            r#"{"PoolID":"p","Options":{"com.docker.network.endpoint.macaddress":"02:42"}}"#
                .to_owned(),
            "invalid value \"02:42\"",
        ),
    ];
    for (call, body, want) in cases {
        let msg = parse_err(call, &body);
        assert!(msg.contains(want), "{call}: got {msg:?}, want {want:?}");
        assert!(msg.contains("Options"), "{call}: no field path in {msg:?}");
    }
}

// ---------- replies: only what is set ----------

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn replies_carry_only_the_fields_set() {
    assert_eq!(to_json(&EmptyResponse {}), "{}");
    assert_eq!(
        to_json(&ActivateResponse::kuryr()),
        r#"{"Implements":["NetworkDriver","IpamDriver"]}"#
    );
    assert_eq!(
        to_json(&ErrorResponse { err: "boom".into() }),
        r#"{"Err":"boom"}"#
    );
    assert_eq!(
        to_json(&NetworkCapabilities::default()),
        r#"{"Scope":"local"}"#
    );
    assert_eq!(
        to_json(&NetworkCapabilities {
            scope: Scope::Global,
            connectivity_scope: Some(Scope::Local)
        }),
        r#"{"Scope":"global","ConnectivityScope":"local"}"#
    );
    assert_eq!(
        to_json(&IpamCapabilities {
            requires_mac_address: true,
            requires_request_replay: false
        }),
        r#"{"RequiresMACAddress":true,"RequiresRequestReplay":false}"#
    );
    assert_eq!(
        to_json(&AddressSpaces {
            local_default_address_space: "no_address_space".into(),
            global_default_address_space: "no_address_space".into()
        }),
        r#"{"LocalDefaultAddressSpace":"no_address_space","GlobalDefaultAddressSpace":"no_address_space"}"#
    );
    assert_eq!(to_json(&CreateEndpointResponse::default()), "{}");
    assert_eq!(
        to_json(&CreateEndpointResponse {
            interface: Some(EndpointInterface {
                mac_address: Some(mac("02:73:72:50:08:76")),
                ..Default::default()
            })
        }),
        r#"{"Interface":{"MacAddress":"02:73:72:50:08:76"}}"#
    );
    assert_eq!(to_json(&AllocateNetworkResponse::default()), "{}");
    assert_eq!(
        to_json(&EndpointOperInfoResponse::default()),
        r#"{"Value":{}}"#
    );
    assert_eq!(
        to_json(&RequestPoolResponse {
            pool_id: "3b1c".into(),
            pool: net("10.10.1.0/24"),
            data: Default::default()
        }),
        r#"{"PoolID":"3b1c","Pool":"10.10.1.0/24"}"#
    );
    assert_eq!(
        to_json(&RequestAddressResponse {
            address: net("10.10.1.5/24"),
            data: Default::default()
        }),
        r#"{"Address":"10.10.1.5/24"}"#
    );
}

#[test]
fn join_reply_shapes() {
    assert_eq!(to_json(&JoinResponse::default()), "{}");
    let full = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: "t_c1a2b3c4d5e6f7".into(),
            dst_prefix: "eth".into(),
        }),
        gateway: Some(ip("10.10.1.1")),
        gateway_ipv6: Some(ip("fd00::1")),
        static_routes: vec![
            StaticRoute {
                destination: net("192.0.2.0/24"),
                route_type: RouteType::NextHop,
                next_hop: Some(ip("10.10.1.254")),
            },
            StaticRoute {
                destination: net("198.51.100.0/24"),
                route_type: RouteType::Connected,
                next_hop: None,
            },
        ],
        disable_gateway_service: true,
    };
    assert_eq!(
        to_json(&full),
        concat!(
            r#"{"InterfaceName":{"SrcName":"t_c1a2b3c4d5e6f7","DstPrefix":"eth"},"#,
            r#""Gateway":"10.10.1.1","GatewayIPv6":"fd00::1","StaticRoutes":["#,
            r#"{"Destination":"192.0.2.0/24","RouteType":0,"NextHop":"10.10.1.254"},"#,
            r#"{"Destination":"198.51.100.0/24","RouteType":1}],"DisableGatewayService":true}"#
        )
    );
    let back: JoinResponse = serde_json::from_str(&to_json(&full)).unwrap();
    assert_eq!(back, full);
    let err =
        serde_json::from_str::<StaticRoute>(r#"{"Destination":"192.0.2.0/24","RouteType":2}"#)
            .unwrap_err()
            .to_string();
    assert!(err.contains("0 (next hop) or 1 (connected)"), "{err}");
}

// ---------- MAC addresses ----------

#[test]
fn mac_address_forms() {
    let m = mac("02:42:0F:C7:0D:28");
    assert_eq!(m.to_string(), "02:42:0f:c7:0d:28");
    assert_eq!(m.as_bytes(), &[0x02, 0x42, 0x0f, 0xc7, 0x0d, 0x28]);
    assert_eq!(mac("02-42-0f-c7-0d-28"), m);
    assert_eq!(m.to_base64(), "AkIPxw0o");
    assert_eq!(MacAddress::from_base64_or_text("AkIPxw0o"), Ok(m.clone()));
    assert_eq!(
        MacAddress::from_base64_or_text("02:42:0f:c7:0d:28"),
        Ok(m.clone())
    );
    assert_eq!(
        MacAddress::from_bytes(&[0; 8]).unwrap().to_string(),
        "00:00:00:00:00:00:00:00"
    );
    assert_eq!(
        MacAddress::from_bytes(&[0; 7]),
        Err(MacAddressError::BadLength(7))
    );
    assert_eq!(
        "02:42:0f".parse::<MacAddress>(),
        Err(MacAddressError::BadLength(3))
    );
    assert_eq!(
        "0242.0fc7.0d28".parse::<MacAddress>(),
        Err(MacAddressError::BadSyntax)
    );
    assert_eq!(
        "2:42:f:c7:d:28".parse::<MacAddress>(),
        Err(MacAddressError::BadSyntax)
    );
    assert_eq!(
        MacAddress::from_base64_or_text("***"),
        Err(MacAddressError::BadEncoding)
    );
}

#[test]
fn bodies_that_are_not_objects_are_refused_for_every_call() {
    // serde alone would read an array as the struct's fields in order.
    let arrays: [&[u8]; 2] = [
        b"[]",
        b" [\"01895533501ecd92f270b168b6e64e20f9be172e124dabd894f0adedf6da04da\"]",
    ];
    for call in PluginCall::ALL {
        for body in arrays {
            let err = Request::parse(call, body).expect_err(call.path());
            assert_eq!(
                err.to_string(),
                "invalid type: array, expected a JSON object",
                "{call}"
            );
        }
        for body in [&b"42"[..], b"\"x\"", b"true"] {
            let err = Request::parse(call, body).expect_err(call.path());
            assert!(
                err.to_string().starts_with("invalid type: "),
                "{call}: {err}"
            );
        }
    }
}
