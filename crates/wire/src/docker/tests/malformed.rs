//! Malformed requests: each gets a clear error, never a panic.

use super::*;

// ---------- malformed requests ----------

#[test]
fn empty_or_null_body_is_missing_for_calls_with_payload() {
    for call in PluginCall::ALL.into_iter().filter(|c| c.has_payload()) {
        for body in ["", "\n", "null", " null\n"] {
            assert_eq!(parse(call, body), Err(BodyError::Missing), "{call} {body:?}");
        }
    }
    assert_eq!(BodyError::Missing.to_string(), "empty body, expected a JSON object");
}

#[test]
fn malformed_json_reports_the_position() {
    let cases = [
        (PluginCall::CreateNetwork, "{\"NetworkID\": ".to_owned(), "EOF while parsing"),
        (
            PluginCall::DeleteNetwork,
            format!("{{\"NetworkID\":\"{NET}\"}} trailing"),
            "trailing characters",
        ),
        (
            PluginCall::DeleteNetwork,
            "\"x\"".to_owned(),
            "invalid type: string \"x\", expected struct",
        ),
    ];
    assert_errors(&cases, "line 1 column");
}

/// Parses each `(call, body, want)` and checks that the error says `want`
/// and, to locate it, `locator` (the position or the field path).
#[track_caller]
fn assert_errors(cases: &[(PluginCall, String, &str)], locator: &str) {
    for (call, body, want) in cases {
        let msg = parse_err(*call, body);
        assert!(msg.contains(want), "{call}: got {msg:?}, want {want:?}");
        assert!(msg.contains(locator), "{call}: no {locator:?} in {msg:?}");
    }
}

#[test]
fn missing_required_fields_are_named() {
    let cases = [
        (PluginCall::CreateNetwork, r#"{"Options":{}}"#.to_owned(), "NetworkID"),
        (PluginCall::DeleteNetwork, "{}".to_owned(), "NetworkID"),
        (PluginCall::CreateEndpoint, format!(r#"{{"NetworkID":"{NET}"}}"#), "EndpointID"),
        (PluginCall::Join, format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP}"}}"#), "SandboxKey"),
        (PluginCall::Leave, format!(r#"{{"EndpointID":"{EP}"}}"#), "NetworkID"),
        (PluginCall::RequestAddress, r#"{"Address":""}"#.to_owned(), "PoolID"),
        (PluginCall::ReleasePool, "{}".to_owned(), "PoolID"),
        (PluginCall::ReleaseAddress, r#"{"Address":"10.0.0.1"}"#.to_owned(), "PoolID"),
        (PluginCall::DiscoverNew, "{}".to_owned(), "DiscoveryType"),
    ];
    for (call, body, field) in cases {
        let msg = parse_err(call, &body);
        assert!(msg.contains(&format!("missing field `{field}`")), "{call}: {msg}");
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
    assert_errors(&cases, "line 1 column");
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
    assert_errors(&cases, "Options");
}
