//! Results: parsed, converted between versions, written back.

use super::*;

// ---- results ----

#[test]
fn spec_results_round_trip() {
    for dir in ["spec-1.1.0", "spec-1.0.0"] {
        for name in fixture_names(dir)
            .into_iter()
            .filter(|n| n.ends_with("-result.json") && n.starts_with("add-"))
        {
            let example = fixture(&format!("{dir}/{name}"));
            let result = AddResult::parse(&example, CniVersion::V1_1_0).unwrap();
            assert_eq!(serde_json::to_value(&result).unwrap(), example, "{dir}/{name}");
        }
    }
    let ipam =
        AddResult::parse(&fixture("spec-1.1.0/add-1-host-local-result.json"), CniVersion::V1_1_0)
            .unwrap();
    assert!(ipam.interfaces.is_empty());
    assert_eq!(ipam.ips[0].interface, None);
    assert_eq!(ipam.routes[0].dst.to_string(), "0.0.0.0/0");
    assert_eq!(ipam.routes[0].gw, None);
}

#[test]
fn result_converts_to_every_version() {
    let full = fixture("kuryr/result-1.1.0.json");
    let result = AddResult::parse(&full, CniVersion::V1_1_0).unwrap();
    assert_eq!(serde_json::to_value(&result).unwrap(), full);
    for version in CniVersion::SUPPORTED {
        let expected = fixture(&format!("kuryr/result-{version}.json"));
        assert_eq!(result.to_json(version), expected, "{version}");
    }
}

#[test]
fn result_conversion_round_trips() {
    let full = AddResult::parse(&fixture("kuryr/result-1.1.0.json"), CniVersion::V1_1_0).unwrap();
    let lossless_1_0 = fixture("kuryr/result-1.0.0.json");
    for version in CniVersion::SUPPORTED {
        let printed = fixture(&format!("kuryr/result-{version}.json"));
        let parsed = AddResult::parse(&printed, CniVersion::V1_1_0).unwrap();
        // Down and up again: only the 1.1.0 fields are lost.
        let up = parsed.to_version(CniVersion::V1_1_0);
        if version == CniVersion::V1_1_0 {
            assert_eq!(up, full);
        } else {
            let mut expected = lossless_1_0.clone();
            expected["cniVersion"] = json!("1.1.0");
            assert_eq!(serde_json::to_value(&up).unwrap(), expected, "{version}");
        }
        // Printing a parsed result in its own version changes nothing.
        assert_eq!(parsed.to_json(version), printed, "{version}");
        for other in CniVersion::SUPPORTED {
            assert_eq!(
                up.to_json(other),
                parsed.to_version(other).to_json(other),
                "{version} -> {other}"
            );
        }
    }
}

#[test]
fn result_parse_rejects_inconsistent_input() {
    let cases = [
        (
            json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "fd00::5/64"}]}),
            ErrorCode::Decode,
            "version \"4\" does not match address fd00::5/64",
        ),
        (
            json!({"cniVersion": "1.0.0", "ips": [{"version": "4", "address": "10.0.0.5/24"}]}),
            ErrorCode::Decode,
            "\"version\" is not part of CNI 1.0.0 results",
        ),
        (
            json!({"ips": [{"address": "10.0.0.5/24", "gateway": "fd00::1"}]}),
            ErrorCode::Decode,
            "gateway fd00::1 is not in the family",
        ),
        (
            json!({"interfaces": [{"name": "eth0"}], "ips": [{"address": "10.0.0.5/24", "interface": 1}]}),
            ErrorCode::Decode,
            "interface index 1 out of range",
        ),
        (
            json!({"ips": [{"address": "10.0.0.5"}]}),
            ErrorCode::Decode,
            "cannot decode result: ips[0].address",
        ),
        (json!({"routes": [{"gw": "10.0.0.1"}]}), ErrorCode::Decode, "missing field `dst`"),
        (
            json!({"interfaces": [{"mac": "00:11:22:33:44:55"}]}),
            ErrorCode::Decode,
            "missing field `name`",
        ),
        (json!({"cniVersion": "0.2.0", "ip4": {}}), ErrorCode::IncompatibleVersion, "0.2.0"),
    ];
    for (value, code, part) in cases {
        assert_code(AddResult::parse(&value, CniVersion::V1_1_0), code, part);
    }
    // The config's version applies when the result has none.
    let ip_with_version = json!({"ips": [{"version": "4", "address": "10.0.0.5/24"}]});
    assert!(AddResult::parse(&ip_with_version, CniVersion::V0_3_1).is_ok());
    assert!(AddResult::parse(&ip_with_version, CniVersion::V1_1_0).is_err());
}

#[test]
fn result_keeps_host_address_and_omits_empty_parts() {
    let mut result = AddResult::default();
    result.ips.push(IpConfig::new("10.1.0.5/16".parse().unwrap(), None, Some(0)));
    result.interfaces.push(Interface { name: "eth0".into(), ..Interface::default() });
    assert_eq!(
        result.to_json(CniVersion::V1_1_0),
        json!({"cniVersion": "1.1.0", "interfaces": [{"name": "eth0"}], "ips": [{"address": "10.1.0.5/16", "interface": 0}]})
    );
    assert_eq!(
        result.to_json(CniVersion::V0_3_1),
        json!({"cniVersion": "0.3.1", "interfaces": [{"name": "eth0"}], "ips": [{"version": "4", "address": "10.1.0.5/16", "interface": 0}]})
    );
}

#[test]
fn append_shifts_interface_indexes() {
    let mut first =
        AddResult::parse(&fixture("spec-1.1.0/add-1-bridge-result.json"), CniVersion::V1_1_0)
            .unwrap();
    let mut second = AddResult::default();
    second.interfaces.push(Interface {
        name: "eth1".into(),
        sandbox: Some("/var/run/netns/blue".into()),
        ..Interface::default()
    });
    second.ips.push(IpConfig::new("10.2.0.5/24".parse().unwrap(), None, Some(0)));
    second
        .routes
        .push(Route::new("10.3.0.0/16".parse().unwrap(), Some("10.2.0.1".parse().unwrap())));
    second.dns.domain = Some("example.org".into());
    second.dns.nameservers.push("10.2.0.2".into());
    first.append(second);
    assert_eq!(first.interfaces.len(), 4);
    assert_eq!(first.ips[1].interface, Some(3));
    assert_eq!(first.routes.len(), 2);
    assert_eq!(first.dns.nameservers, vec!["10.1.0.1"]);
    assert_eq!(first.dns.domain.as_deref(), Some("example.org"));
}
