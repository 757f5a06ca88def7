use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::{fixture, fixture_names};

mod config;
mod env;
mod results;

const SPEC_DIRS: [&str; 3] = ["spec-1.1.0", "spec-1.0.0", "spec-0.4.0"];

fn env_of(pairs: &[(&str, &str)]) -> Result<CniEnv, CniError> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    CniEnv::from_lookup(|name| map.get(name).cloned())
}

fn add_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "3f2c1a9e8b7d"),
        ("CNI_NETNS", "/var/run/netns/blue"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ]
}

fn with(
    mut base: Vec<(&'static str, &'static str)>,
    key: &'static str,
    value: &'static str,
) -> Vec<(&'static str, &'static str)> {
    base.retain(|(k, _)| *k != key);
    base.push((key, value));
    base
}

fn without(
    mut base: Vec<(&'static str, &'static str)>,
    key: &str,
) -> Vec<(&'static str, &'static str)> {
    base.retain(|(k, _)| *k != key);
    base
}

#[track_caller]
fn assert_code(result: Result<impl std::fmt::Debug, CniError>, code: ErrorCode, msg_part: &str) {
    let err = result.expect_err("expected an error");
    assert_eq!(err.code, code, "{err}");
    assert!(
        err.to_string().contains(msg_part),
        "{:?} does not contain {msg_part:?}",
        err.to_string()
    );
}

// ---- versions ----

#[test]
fn versions_parse_and_order() {
    for v in CniVersion::SUPPORTED {
        assert_eq!(v.as_str().parse::<CniVersion>().unwrap(), v);
        assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
    }
    for bad in ["0.1.0", "0.2.0", "1.2.0", "2.0.0", "1.1", "", "v1.1.0"] {
        assert!(bad.parse::<CniVersion>().is_err(), "{bad}");
        assert_code(
            CniVersion::parse_config_version(bad),
            ErrorCode::IncompatibleVersion,
            "supported versions: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
        );
    }
    assert!(CniVersion::V0_3_1 < CniVersion::V0_4_0);
    assert!(!CniVersion::V0_3_1.has_check() && CniVersion::V0_4_0.has_check());
    assert!(!CniVersion::V1_0_0.has_gc_and_status() && CniVersion::V1_1_0.has_gc_and_status());
    assert!(
        CniVersion::V0_4_0.has_ip_version_field() && !CniVersion::V1_0_0.has_ip_version_field()
    );
    assert!(!CniVersion::V1_0_0.has_extended_fields() && CniVersion::V1_1_0.has_extended_fields());
}

#[test]
fn version_result_matches_spec_shape() {
    for dir in SPEC_DIRS {
        let example = fixture(&format!("{dir}/version-result.json"));
        let parsed: VersionResult = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), example);
    }
    let example = fixture("spec-1.1.0/version-result-1.0.0.json");
    let parsed: VersionResult = serde_json::from_value(example.clone()).unwrap();
    assert_eq!(parsed.cni_version, "1.0.0");
    assert_eq!(serde_json::to_value(&parsed).unwrap(), example);
    let ours = serde_json::to_value(VersionResult::kuryr(Some("1.1.0"))).unwrap();
    assert_eq!(
        ours,
        json!({"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
}

#[test]
fn version_result_echoes_input_version() {
    assert_eq!(VersionResult::kuryr(Some("0.4.0")).cni_version, "0.4.0");
    // The spec says echo the input; a runtime newer than us still gets an
    // answer it can compare.
    assert_eq!(VersionResult::kuryr(Some("1.2.0")).cni_version, "1.2.0");
    assert_eq!(VersionResult::kuryr(None).cni_version, "1.1.0");
    assert_eq!(VersionResult::kuryr(Some("garbage")).cni_version, "1.1.0");
    assert_eq!(VersionResult::kuryr(Some("1.1")).cni_version, "1.1.0");
}

// ---- errors ----

#[test]
fn error_example_round_trips() {
    for dir in ["spec-1.1.0", "spec-1.0.0"] {
        let example = fixture(&format!("{dir}/error.json"));
        let reply: ErrorReply = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(serde_json::to_value(&reply).unwrap(), example);
        let err = CniError::from(reply);
        assert_eq!(err.code, ErrorCode::InvalidNetworkConfig);
        assert_eq!(
            err.to_string(),
            "Invalid Configuration; Network 192.168.0.0/31 too small to allocate from."
        );
    }
}

#[test]
fn error_codes_are_the_specs() {
    let table = [
        (CniError::incompatible_version("m", ""), 1),
        (CniError::unsupported_field("k", &json!("v"), ""), 2),
        (CniError::unknown_container("m"), 3),
        (CniError::invalid_env("m"), 4),
        (CniError::io("m"), 5),
        (CniError::decode("m"), 6),
        (CniError::invalid_config("m"), 7),
        (CniError::try_again_later("m"), 11),
        (CniError::plugin_not_available("m"), 50),
        (CniError::limited_connectivity("m"), 51),
        (CniError::internal("m"), 999),
    ];
    for (err, code) in table {
        assert_eq!(err.code.code(), code);
        assert_eq!(ErrorCode::from_code(code), err.code);
    }
    assert_eq!(ErrorCode::from_code(8), ErrorCode::Other(8));
    assert_eq!(ErrorCode::from_code(120).code(), 120);
}

#[test]
fn error_reply_shape() {
    let err = CniError::try_again_later("kuryr daemon is not running");
    assert_eq!(
        serde_json::to_value(err.to_reply_for(CniVersion::V0_4_0)).unwrap(),
        json!({"cniVersion": "0.4.0", "code": 11, "msg": "kuryr daemon is not running"})
    );
    let err =
        CniError::unsupported_field("neutron.netwrk", &json!("pods"), "did you mean network?");
    assert_eq!(err.msg, "unsupported field in network configuration: neutron.netwrk = \"pods\"");
    assert_eq!(
        serde_json::to_value(err.to_reply("1.1.0")).unwrap()["details"],
        "did you mean network?"
    );
}

#[test]
fn error_http_statuses() {
    assert_eq!(ErrorCode::InvalidEnvironment.http_status(), 400);
    assert_eq!(ErrorCode::UnknownContainer.http_status(), 404);
    assert_eq!(ErrorCode::TryAgainLater.http_status(), 503);
    assert_eq!(ErrorCode::PluginNotAvailable.http_status(), 503);
    assert_eq!(ErrorCode::INTERNAL.http_status(), 500);
}
