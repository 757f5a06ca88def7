//! Network configurations and lists: parsing, versions, plugin chains.

use super::*;

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
            assert_eq!(serde_json::to_value(&conf).unwrap(), example, "{dir}/{name}");
            let version = conf.validate_for(CniCommand::Add).unwrap();
            assert_eq!(Some(version.as_str()), conf.cni_version.as_deref());
            assert_eq!(conf.name.as_deref().map(|n| !n.is_empty()), Some(true));
            let prev = conf.prev_result(version).unwrap();
            assert_eq!(prev.is_some(), example.get("prevResult").is_some(), "{name}");
            seen += 1;
        }
    }
    assert_eq!(seen, 18);
}

#[test]
fn request_config_typed_fields() {
    let conf = NetConf::from_value(&fixture("spec-1.1.0/add-2-tuning-config.json")).unwrap();
    assert_eq!(conf.plugin_type.as_deref(), Some("tuning"));
    assert_eq!(conf.runtime_config.as_ref().unwrap()["mac"], "00:11:22:33:44:66");
    assert_eq!(conf.extra["sysctl"], json!({"net.core.somaxconn": "500"}));
    let prev = conf.prev_result(CniVersion::V1_1_0).unwrap().unwrap();
    assert_eq!(prev.interfaces.len(), 3);
    assert_eq!(prev.interfaces[2].sandbox.as_deref(), Some("/var/run/netns/blue"));
    assert_eq!(prev.ips[0].interface, Some(2));
    assert_eq!(prev.ips[0].address.to_string(), "10.1.0.5/16");

    let conf = NetConf::from_value(&fixture("spec-0.4.0/add-1-bridge-config.json")).unwrap();
    assert_eq!(conf.args.as_ref().unwrap()["labels"], json!({"appVersion": "1.0"}));
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
    use CniCommand::{Add, Check, Gc, Status};
    use ErrorCode::{Decode, IncompatibleVersion as Version, InvalidNetworkConfig as Config};
    // (patch, command to validate for or `None` when decoding must fail,
    // code, message part)
    #[rustfmt::skip]
    let cases = [
        (json!({"cniVersion": null}), Some(Add), Version, "no cniVersion"),
        (json!({"cniVersion": "0.2.0"}), Some(Add), Version, "CNI version \"0.2.0\" is not supported"),
        (json!({"cniVersion": "0.3.1"}), Some(Check), Version, "CHECK is not part of CNI 0.3.1"),
        (json!({"cniVersion": "1.0.0"}), Some(Gc), Version, "GC needs cniVersion 1.1.0"),
        (json!({"cniVersion": "1.0.0"}), Some(Status), Version, "STATUS needs cniVersion 1.1.0"),
        (json!({"name": null}), Some(Add), Config, "no name"),
        (json!({"name": "my net"}), Some(Add), Config, "invalid network name \"my net\""),
        (json!({"name": 5}), None, Decode, "cannot decode network configuration"),
        (json!({"dns": {"nameservers": "10.0.0.1"}}), None, Decode, "configuration: dns.nameservers: invalid type"),
    ];
    for (patch, command, code, part) in cases {
        let conf = patched(patch);
        match command {
            Some(command) => assert_code(conf.unwrap().validate_for(command), code, part),
            None => assert_code(conf, code, part),
        }
    }
    assert!(patched(json!({"cniVersion": "0.4.0"}))
        .unwrap()
        .validate_for(CniCommand::Check)
        .is_ok());
    assert_code(NetConf::from_value(&json!([1, 2])), ErrorCode::Decode, "must be a JSON object");
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
        mapped.namespace_networks.as_ref().and_then(|m| m.get("team-b")).map(String::as_str),
        Some("net-b")
    );
    assert_code(
        parse(json!({"namespace_networks": {"team-b": ""}})).validate(),
        ErrorCode::InvalidNetworkConfig,
        "neutron.namespace_networks[\"team-b\"]",
    );
    // Absent security groups (Neutron's default group) differ from none.
    assert_eq!(parse(json!({})).security_groups, None);
    assert_eq!(parse(json!({"security_groups": []})).security_groups, Some(vec![]));
    assert!(parse(json!({})).validate().is_ok());
    assert!(serde_json::from_value::<NeutronConfig>(json!({"security_groups": "default"})).is_err());
}

#[test]
fn gc_attachments() {
    let conf = NetConf::from_value(&fixture("kuryr/gc-config.json")).unwrap();
    conf.validate_for(CniCommand::Gc).unwrap();
    let valid = conf.gc_attachments().unwrap();
    assert_eq!(valid.len(), 3);
    assert_eq!(
        valid[1],
        GcAttachment { container_id: "3f2c1a9e8b7d".into(), ifname: "eth1".into() }
    );
    assert_eq!(serde_json::to_value(&conf).unwrap(), fixture("kuryr/gc-config.json"));

    let base = json!({"cniVersion": "1.1.0", "name": "kuryr"});
    let mut old_name = base.clone();
    old_name["cni.dev/attachments"] = json!([{"containerID": "c1", "ifname": "eth0"}]);
    assert_eq!(NetConf::from_value(&old_name).unwrap().gc_attachments().unwrap().len(), 1);
    // Go encodes an empty list as null: that is "nothing is valid".
    let mut null_list = base.clone();
    null_list["cni.dev/valid-attachments"] = Value::Null;
    assert_eq!(NetConf::from_value(&null_list).unwrap().gc_attachments(), Some(&[][..]));
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
    let tuning = list.request_config(1, &capability_args, Some(&bridge_result)).unwrap();
    assert_eq!(tuning, fixture("spec-1.1.0/add-2-tuning-config.json"));
    let tuning_result = fixture("spec-1.1.0/add-2-tuning-result.json");
    let portmap = list.request_config(2, &capability_args, Some(&tuning_result)).unwrap();
    assert_eq!(portmap, fixture("spec-1.1.0/add-3-portmap-config.json"));
    // The bridge declares no capabilities, so gets no runtimeConfig; the
    // first plugin gets no prevResult.
    let bridge = list.request_config(0, &capability_args, None).unwrap();
    assert!(bridge.get("runtimeConfig").is_none() && bridge.get("prevResult").is_none());
    assert_eq!(bridge["keyA"], json!(["some more", "plugin specific", "configuration"]));
    assert_code(
        list.request_config(3, &capability_args, None),
        ErrorCode::InvalidNetworkConfig,
        "no plugin #3",
    );

    let gc = list
        .gc_config(0, &[GcAttachment { container_id: "c1".into(), ifname: "eth0".into() }])
        .unwrap();
    assert_eq!(gc["cni.dev/valid-attachments"], json!([{"containerID": "c1", "ifname": "eth0"}]));
}
