use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::{fixture, fixture_names};

const SPEC_DIRS: [&str; 3] = ["spec-1.1.0", "spec-1.0.0", "spec-0.4.0"];

fn env_of(pairs: &[(&str, &str)]) -> Result<CniEnv, CniError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
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
    assert_eq!(
        err.msg,
        "unsupported field in network configuration: neutron.netwrk = \"pods\""
    );
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

// ---- environment ----

#[test]
fn add_environment_parses() {
    let env = env_of(&with(
        add_env(),
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=5f1c;K8S_POD_INFRA_CONTAINER_ID=3f2c1a9e8b7d",
    ))
    .unwrap();
    assert_eq!(env.command, CniCommand::Add);
    assert_eq!(env.container_id.as_deref(), Some("3f2c1a9e8b7d"));
    assert_eq!(env.netns.as_deref(), Some("/var/run/netns/blue"));
    assert_eq!(env.ifname.as_deref(), Some("eth0"));
    assert_eq!(env.path, vec!["/opt/cni/bin", "/usr/lib/cni"]);
    assert!(env.args.ignore_unknown());
    assert_eq!(env.args.k8s_pod_namespace(), Some("default"));
    assert_eq!(env.args.k8s_pod_name(), Some("web-0"));
    assert_eq!(env.args.k8s_pod_uid(), Some("5f1c"));
    assert_eq!(env.args.k8s_pod_infra_container_id(), Some("3f2c1a9e8b7d"));
}

#[test]
fn command_is_required_and_exact() {
    assert_code(
        env_of(&[]),
        ErrorCode::InvalidEnvironment,
        "CNI_COMMAND is missing",
    );
    assert_code(
        env_of(&[("CNI_COMMAND", "")]),
        ErrorCode::InvalidEnvironment,
        "CNI_COMMAND is missing",
    );
    assert_code(
        env_of(&[("CNI_COMMAND", "add")]),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_COMMAND \"add\"",
    );
    for (name, command) in [
        ("ADD", CniCommand::Add),
        ("DEL", CniCommand::Del),
        ("CHECK", CniCommand::Check),
        ("VERSION", CniCommand::Version),
        ("GC", CniCommand::Gc),
        ("STATUS", CniCommand::Status),
    ] {
        assert_eq!(name.parse::<CniCommand>().unwrap(), command);
        assert_eq!(command.to_string(), name);
    }
}

#[test]
fn required_variables_per_command() {
    assert_code(
        env_of(&[("CNI_COMMAND", "ADD")]),
        ErrorCode::InvalidEnvironment,
        "required environment variables missing for ADD: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME",
    );
    assert_code(
        env_of(&without(add_env(), "CNI_NETNS")),
        ErrorCode::InvalidEnvironment,
        "missing for ADD: CNI_NETNS",
    );
    assert_code(
        env_of(&with(
            without(add_env(), "CNI_NETNS"),
            "CNI_COMMAND",
            "CHECK",
        )),
        ErrorCode::InvalidEnvironment,
        "missing for CHECK: CNI_NETNS",
    );
    // DEL works without the namespace (it may be gone already), also when
    // the runtime exports it empty.
    let del = with(without(add_env(), "CNI_NETNS"), "CNI_COMMAND", "DEL");
    assert_eq!(env_of(&del).unwrap().netns, None);
    assert_eq!(
        env_of(&with(del.clone(), "CNI_NETNS", "")).unwrap().netns,
        None
    );
    assert_code(
        env_of(&without(del, "CNI_IFNAME")),
        ErrorCode::InvalidEnvironment,
        "missing for DEL: CNI_IFNAME",
    );
    // CNI_PATH is optional except for GC.
    assert!(env_of(&without(add_env(), "CNI_PATH")).is_ok());
    assert_code(
        env_of(&[("CNI_COMMAND", "GC")]),
        ErrorCode::InvalidEnvironment,
        "missing for GC: CNI_PATH",
    );
    assert!(env_of(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin")]).is_ok());
    assert!(env_of(&[("CNI_COMMAND", "STATUS")]).is_ok());
    assert!(env_of(&[("CNI_COMMAND", "VERSION")]).is_ok());
}

#[test]
fn attachment_variables_are_not_checked_for_gc_and_status() {
    let env = env_of(&[
        ("CNI_COMMAND", "STATUS"),
        ("CNI_CONTAINERID", "-bad id"),
        ("CNI_IFNAME", "much-too-long-name"),
    ])
    .unwrap();
    assert_eq!(env.command, CniCommand::Status);
}

#[test]
fn container_id_rules() {
    for good in ["a", "3f2c1a9e8b7d", "A_b.c-1", "0"] {
        assert!(validate_container_id(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "-abc",
        "_abc",
        ".abc",
        "a b",
        "a/b",
        "a:b",
        "cont\u{e4}iner",
        "a\n",
    ] {
        assert_code(
            validate_container_id(bad),
            ErrorCode::InvalidEnvironment,
            "invalid CNI_CONTAINERID",
        );
    }
    assert_code(
        env_of(&with(add_env(), "CNI_CONTAINERID", "bad/id")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_CONTAINERID \"bad/id\"",
    );
}

#[test]
fn ifname_rules() {
    for good in ["eth0", "e", "net1", "a.b-c_d", "exactly15chars_"] {
        assert!(validate_ifname(good).is_ok(), "{good}");
    }
    let cases = [
        ("", "must not be empty"),
        ("sixteen_chars_xx", "16 bytes long, at most 15"),
        (".", "must not be \".\" or \"..\""),
        ("..", "must not be \".\" or \"..\""),
        ("eth/0", "'/', ':' or whitespace"),
        ("eth:0", "'/', ':' or whitespace"),
        ("eth 0", "'/', ':' or whitespace"),
        ("eth\t0", "'/', ':' or whitespace"),
    ];
    for (bad, why) in cases {
        assert_code(validate_ifname(bad), ErrorCode::InvalidEnvironment, why);
    }
    assert_code(
        env_of(&with(add_env(), "CNI_IFNAME", "eth:0")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_IFNAME \"eth:0\"",
    );
}

#[test]
fn netns_must_be_absolute() {
    assert_code(
        env_of(&with(add_env(), "CNI_NETNS", "netns/blue")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_NETNS \"netns/blue\": must be an absolute path",
    );
    assert!(env_of(&with(add_env(), "CNI_NETNS", "/proc/1234/ns/net")).is_ok());
}

#[test]
fn cni_args_parsing() {
    let args = CniArgs::parse("FOO=BAR;ABC=123;").unwrap();
    assert_eq!(args.pairs().len(), 2);
    assert_eq!(args.get("FOO"), Some("BAR"));
    assert_eq!(args.get("ABC"), Some("123"));
    assert_eq!(args.to_string(), "FOO=BAR;ABC=123");
    assert!(CniArgs::parse("").unwrap().is_empty());

    let args = CniArgs::parse("K=first;IP=10.0.0.5/24;K=second;EMPTY=;EQ=a=b").unwrap();
    assert_eq!(args.get("K"), Some("second"));
    assert_eq!(args.get("EMPTY"), Some(""));
    assert_eq!(args.get("EQ"), Some("a=b"));
    assert_eq!(args.to_map().len(), 4);

    assert_code(
        CniArgs::parse("FOO"),
        ErrorCode::InvalidEnvironment,
        "CNI_ARGS: \"FOO\" is not KEY=VALUE",
    );
    assert_code(
        CniArgs::parse("=x"),
        ErrorCode::InvalidEnvironment,
        "CNI_ARGS: bad key",
    );
    assert_code(
        CniArgs::parse("IgnoreUnknown=maybe"),
        ErrorCode::InvalidEnvironment,
        "IgnoreUnknown=\"maybe\" is not a boolean",
    );
    assert_code(
        env_of(&with(add_env(), "CNI_ARGS", "A=1;B")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_ARGS",
    );
}

#[test]
fn cni_args_unknown_keys() {
    let known = [CniArgs::K8S_POD_NAMESPACE, CniArgs::K8S_POD_NAME];
    let args = CniArgs::parse("K8S_POD_NAMESPACE=ns;FOO=1;BAR=2").unwrap();
    assert_eq!(args.unknown_keys(&known), vec!["FOO", "BAR"]);
    assert_code(
        args.check_known(&known),
        ErrorCode::InvalidEnvironment,
        "unknown CNI_ARGS keys: FOO, BAR",
    );
    for flag in ["1", "true", "True", "TRUE"] {
        let args = CniArgs::parse(&format!("IgnoreUnknown={flag};FOO=1")).unwrap();
        assert!(args.ignore_unknown());
        assert!(args.check_known(&known).is_ok());
    }
    let args = CniArgs::parse("IgnoreUnknown=0;FOO=1").unwrap();
    assert!(!args.ignore_unknown());
    assert!(args.check_known(&known).is_err());
    assert!(CniArgs::parse("IgnoreUnknown=false;K8S_POD_NAME=x")
        .unwrap()
        .check_known(&known)
        .is_ok());
}

#[test]
fn cni_args_from_map() {
    let map = [("K8S_POD_NAME".to_string(), "web".to_string())].into();
    assert_eq!(CniArgs::from_map(&map).unwrap().k8s_pod_name(), Some("web"));
    let bad = [("".to_string(), "x".to_string())].into();
    assert_code(
        CniArgs::from_map(&bad),
        ErrorCode::InvalidEnvironment,
        "CNI_ARGS",
    );
}

// ---- configurations ----

#[test]
fn every_spec_request_config_round_trips() {
    let mut seen = 0;
    for dir in SPEC_DIRS {
        for name in fixture_names(dir) {
            if !(name.contains("-config") || name.starts_with("netconf-")) {
                continue;
            }
            let example = fixture(&format!("{dir}/{name}"));
            let conf = NetConf::from_value(&example).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                serde_json::to_value(&conf).unwrap(),
                example,
                "{dir}/{name}"
            );
            let version = conf.validate_for(CniCommand::Add).unwrap();
            assert_eq!(Some(version.as_str()), conf.cni_version.as_deref());
            assert_eq!(conf.name.as_deref().map(|n| !n.is_empty()), Some(true));
            let prev = conf.prev_result(version).unwrap();
            assert_eq!(
                prev.is_some(),
                example.get("prevResult").is_some(),
                "{name}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 18);
}

#[test]
fn request_config_typed_fields() {
    let conf = NetConf::from_value(&fixture("spec-1.1.0/add-2-tuning-config.json")).unwrap();
    assert_eq!(conf.plugin_type.as_deref(), Some("tuning"));
    assert_eq!(
        conf.runtime_config.as_ref().unwrap()["mac"],
        "00:11:22:33:44:66"
    );
    assert_eq!(conf.extra["sysctl"], json!({"net.core.somaxconn": "500"}));
    let prev = conf.prev_result(CniVersion::V1_1_0).unwrap().unwrap();
    assert_eq!(prev.interfaces.len(), 3);
    assert_eq!(
        prev.interfaces[2].sandbox.as_deref(),
        Some("/var/run/netns/blue")
    );
    assert_eq!(prev.ips[0].interface, Some(2));
    assert_eq!(prev.ips[0].address.to_string(), "10.1.0.5/16");

    let conf = NetConf::from_value(&fixture("spec-0.4.0/add-1-bridge-config.json")).unwrap();
    assert_eq!(
        conf.args.as_ref().unwrap()["labels"],
        json!({"appVersion": "1.0"})
    );
    let ipam = conf.ipam.as_ref().unwrap();
    assert_eq!(ipam.ipam_type, "host-local");
    assert_eq!(ipam.extra["subnet"], "10.1.0.0/16");
    assert_eq!(conf.dns.as_ref().unwrap().nameservers, vec!["10.1.0.1"]);
    assert_eq!(conf.extra["bridge"], "cni0");
}

#[test]
fn old_prev_result_is_upconverted() {
    let conf = NetConf::from_value(&fixture("spec-0.4.0/add-2-tuning-config.json")).unwrap();
    let version = conf.validate_for(CniCommand::Add).unwrap();
    assert_eq!(version, CniVersion::V0_4_0);
    let prev = conf.prev_result(version).unwrap().unwrap();
    assert_eq!(prev.cni_version.as_deref(), Some("1.1.0"));
    assert_eq!(prev.ips[0].version, None);
    assert_eq!(prev.ips[0].address.to_string(), "10.0.0.5/32");
}

#[test]
fn config_validation_errors() {
    let base = json!({"cniVersion": "1.1.0", "name": "kuryr", "type": "kuryr-cni"});
    let patched = |patch: Value| {
        let mut v = base.clone();
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        NetConf::from_value(&v)
    };
    assert_code(
        patched(json!({"cniVersion": null}))
            .unwrap()
            .validate_for(CniCommand::Add),
        ErrorCode::IncompatibleVersion,
        "no cniVersion",
    );
    assert_code(
        patched(json!({"cniVersion": "0.2.0"}))
            .unwrap()
            .validate_for(CniCommand::Add),
        ErrorCode::IncompatibleVersion,
        "CNI version \"0.2.0\" is not supported",
    );
    assert_code(
        patched(json!({"cniVersion": "0.3.1"}))
            .unwrap()
            .validate_for(CniCommand::Check),
        ErrorCode::IncompatibleVersion,
        "CHECK is not part of CNI 0.3.1",
    );
    assert!(patched(json!({"cniVersion": "0.4.0"}))
        .unwrap()
        .validate_for(CniCommand::Check)
        .is_ok());
    for command in [CniCommand::Gc, CniCommand::Status] {
        assert_code(
            patched(json!({"cniVersion": "1.0.0"}))
                .unwrap()
                .validate_for(command),
            ErrorCode::IncompatibleVersion,
            &format!("{command} needs cniVersion 1.1.0"),
        );
    }
    assert_code(
        patched(json!({"name": null}))
            .unwrap()
            .validate_for(CniCommand::Add),
        ErrorCode::InvalidNetworkConfig,
        "no name",
    );
    assert_code(
        patched(json!({"name": "my net"}))
            .unwrap()
            .validate_for(CniCommand::Add),
        ErrorCode::InvalidNetworkConfig,
        "invalid network name \"my net\"",
    );
    assert_code(
        patched(json!({"name": 5})),
        ErrorCode::Decode,
        "cannot decode network configuration",
    );
    assert_code(
        patched(json!({"dns": {"nameservers": "10.0.0.1"}})),
        ErrorCode::Decode,
        "configuration: dns.nameservers: invalid type",
    );
    assert_code(
        NetConf::from_value(&json!([1, 2])),
        ErrorCode::Decode,
        "must be a JSON object",
    );
    assert_code(
        patched(json!({"prevResult": {"ips": [{"address": "10.0.0.5"}]}}))
            .unwrap()
            .prev_result(CniVersion::V1_1_0),
        ErrorCode::Decode,
        "prevResult: cannot decode result",
    );
}

#[test]
fn neutron_section() {
    let list: NetConfList = serde_json::from_value(fixture("kuryr/conflist.json")).unwrap();
    let config = list.request_config(0, &Map::new(), None).unwrap();
    let conf = NetConf::from_value(&config).unwrap();
    let neutron = conf.neutron.as_ref().unwrap();
    assert_eq!(neutron.network.as_deref(), Some("pods"));
    assert_eq!(neutron.subnet.as_deref(), Some("pods-v4"));
    assert_eq!(
        neutron.security_groups.as_deref(),
        Some(&["default".to_string(), "web".to_string()][..])
    );
    assert_eq!(neutron.project.as_deref(), Some("demo"));
    neutron.validate().unwrap();
    assert_eq!(serde_json::to_value(&conf).unwrap(), config);

    let parse = |v: Value| serde_json::from_value::<NeutronConfig>(v).unwrap();
    assert_code(
        parse(json!({"netwrk": "pods"})).validate(),
        ErrorCode::UnsupportedField,
        "neutron.netwrk = \"pods\"",
    );
    assert_code(
        parse(json!({"network": " "})).validate(),
        ErrorCode::InvalidNetworkConfig,
        "neutron.network must not be empty",
    );
    assert_code(
        parse(json!({"security_groups": ["default", ""]})).validate(),
        ErrorCode::InvalidNetworkConfig,
        "neutron.security_groups[1] must not be empty",
    );
    let mapped = parse(json!({"network": "pods", "namespace_networks": {"team-b": "net-b"}}));
    mapped.validate().unwrap();
    assert_eq!(
        mapped
            .namespace_networks
            .as_ref()
            .and_then(|m| m.get("team-b"))
            .map(String::as_str),
        Some("net-b")
    );
    assert_code(
        parse(json!({"namespace_networks": {"team-b": ""}})).validate(),
        ErrorCode::InvalidNetworkConfig,
        "neutron.namespace_networks[\"team-b\"]",
    );
    // Absent security groups (Neutron's default group) differ from none.
    assert_eq!(parse(json!({})).security_groups, None);
    assert_eq!(
        parse(json!({"security_groups": []})).security_groups,
        Some(vec![])
    );
    assert!(parse(json!({})).validate().is_ok());
    assert!(
        serde_json::from_value::<NeutronConfig>(json!({"security_groups": "default"})).is_err()
    );
}

#[test]
fn gc_attachments() {
    let conf = NetConf::from_value(&fixture("kuryr/gc-config.json")).unwrap();
    conf.validate_for(CniCommand::Gc).unwrap();
    let valid = conf.gc_attachments().unwrap();
    assert_eq!(valid.len(), 3);
    assert_eq!(
        valid[1],
        GcAttachment {
            container_id: "3f2c1a9e8b7d".into(),
            ifname: "eth1".into()
        }
    );
    assert_eq!(
        serde_json::to_value(&conf).unwrap(),
        fixture("kuryr/gc-config.json")
    );

    let base = json!({"cniVersion": "1.1.0", "name": "kuryr"});
    let mut old_name = base.clone();
    old_name["cni.dev/attachments"] = json!([{"containerID": "c1", "ifname": "eth0"}]);
    assert_eq!(
        NetConf::from_value(&old_name)
            .unwrap()
            .gc_attachments()
            .unwrap()
            .len(),
        1
    );
    // Go encodes an empty list as null: that is "nothing is valid".
    let mut null_list = base.clone();
    null_list["cni.dev/valid-attachments"] = Value::Null;
    assert_eq!(
        NetConf::from_value(&null_list).unwrap().gc_attachments(),
        Some(&[][..])
    );
    assert_eq!(NetConf::from_value(&base).unwrap().gc_attachments(), None);
}

#[test]
fn conflists_round_trip() {
    for path in [
        "spec-1.1.0/conflist-dbnet.json",
        "spec-1.0.0/conflist-dbnet.json",
        "spec-0.4.0/conflist-dbnet.json",
        "kuryr/conflist.json",
    ] {
        let example = fixture(path);
        let list: NetConfList = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(serde_json::to_value(&list).unwrap(), example, "{path}");
        assert!(!list.plugins.is_empty());
    }
    let plugin_example = fixture("spec-1.1.0/plugin-capabilities.json");
    let plugin: PluginConf = serde_json::from_value(plugin_example.clone()).unwrap();
    assert_eq!(plugin.plugin_type, "myPlugin");
    assert!(plugin.capabilities.as_ref().unwrap()["portMappings"]);
    assert_eq!(serde_json::to_value(&plugin).unwrap(), plugin_example);
    let list: NetConfList =
        serde_json::from_value(fixture("spec-1.1.0/conflist-dbnet.json")).unwrap();
    assert_eq!(list.select_version().unwrap(), CniVersion::V1_1_0);
    assert!(list.plugins[1].capabilities.as_ref().unwrap()["mac"]);
    let mut unknown = list.clone();
    unknown.cni_version = Some("9.0.0".into());
    unknown.cni_versions = Some(vec!["0.4.0".into(), "2.0.0".into()]);
    assert_eq!(unknown.select_version().unwrap(), CniVersion::V0_4_0);
    unknown.cni_versions = None;
    assert_code(
        unknown.select_version(),
        ErrorCode::IncompatibleVersion,
        "no supported CNI version",
    );
}

#[test]
fn derived_request_configs_match_the_spec_appendix() {
    let list: NetConfList =
        serde_json::from_value(fixture("spec-1.1.0/conflist-dbnet.json")).unwrap();
    let mut capability_args = Map::new();
    capability_args.insert("mac".into(), json!("00:11:22:33:44:66"));
    capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let bridge_result = fixture("spec-1.1.0/add-1-bridge-result.json");
    let tuning = list
        .request_config(1, &capability_args, Some(&bridge_result))
        .unwrap();
    assert_eq!(tuning, fixture("spec-1.1.0/add-2-tuning-config.json"));
    let tuning_result = fixture("spec-1.1.0/add-2-tuning-result.json");
    let portmap = list
        .request_config(2, &capability_args, Some(&tuning_result))
        .unwrap();
    assert_eq!(portmap, fixture("spec-1.1.0/add-3-portmap-config.json"));
    // The bridge declares no capabilities, so gets no runtimeConfig; the
    // first plugin gets no prevResult.
    let bridge = list.request_config(0, &capability_args, None).unwrap();
    assert!(bridge.get("runtimeConfig").is_none() && bridge.get("prevResult").is_none());
    assert_eq!(
        bridge["keyA"],
        json!(["some more", "plugin specific", "configuration"])
    );
    assert_code(
        list.request_config(3, &capability_args, None),
        ErrorCode::InvalidNetworkConfig,
        "no plugin #3",
    );

    let gc = list
        .gc_config(
            0,
            &[GcAttachment {
                container_id: "c1".into(),
                ifname: "eth0".into(),
            }],
        )
        .unwrap();
    assert_eq!(
        gc["cni.dev/valid-attachments"],
        json!([{"containerID": "c1", "ifname": "eth0"}])
    );
}

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
            assert_eq!(
                serde_json::to_value(&result).unwrap(),
                example,
                "{dir}/{name}"
            );
        }
    }
    let ipam = AddResult::parse(
        &fixture("spec-1.1.0/add-1-host-local-result.json"),
        CniVersion::V1_1_0,
    )
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
        (
            json!({"routes": [{"gw": "10.0.0.1"}]}),
            ErrorCode::Decode,
            "missing field `dst`",
        ),
        (
            json!({"interfaces": [{"mac": "00:11:22:33:44:55"}]}),
            ErrorCode::Decode,
            "missing field `name`",
        ),
        (
            json!({"cniVersion": "0.2.0", "ip4": {}}),
            ErrorCode::IncompatibleVersion,
            "0.2.0",
        ),
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
    result
        .ips
        .push(IpConfig::new("10.1.0.5/16".parse().unwrap(), None, Some(0)));
    result.interfaces.push(Interface {
        name: "eth0".into(),
        ..Interface::default()
    });
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
    let mut first = AddResult::parse(
        &fixture("spec-1.1.0/add-1-bridge-result.json"),
        CniVersion::V1_1_0,
    )
    .unwrap();
    let mut second = AddResult::default();
    second.interfaces.push(Interface {
        name: "eth1".into(),
        sandbox: Some("/var/run/netns/blue".into()),
        ..Interface::default()
    });
    second
        .ips
        .push(IpConfig::new("10.2.0.5/24".parse().unwrap(), None, Some(0)));
    second.routes.push(Route::new(
        "10.3.0.0/16".parse().unwrap(),
        Some("10.2.0.1".parse().unwrap()),
    ));
    second.dns.domain = Some("example.org".into());
    second.dns.nameservers.push("10.2.0.2".into());
    first.append(second);
    assert_eq!(first.interfaces.len(), 4);
    assert_eq!(first.ips[1].interface, Some(3));
    assert_eq!(first.routes.len(), 2);
    assert_eq!(first.dns.nameservers, vec!["10.1.0.1"]);
    assert_eq!(first.dns.domain.as_deref(), Some("example.org"));
}
