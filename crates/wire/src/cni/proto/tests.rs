use serde_json::json;

use super::*;
use crate::cni::ErrorCode;
use crate::testutil::fixture;

fn add_request(config: Value) -> Request {
    Request {
        command: CniCommand::Add,
        container_id: Some("3f2c1a9e8b7d".into()),
        netns: Some("/var/run/netns/blue".into()),
        ifname: Some("eth0".into()),
        args: [
            ("IgnoreUnknown".to_string(), "1".to_string()),
            ("K8S_POD_NAMESPACE".to_string(), "default".to_string()),
        ]
        .into(),
        path: vec!["/opt/cni/bin".into()],
        config,
    }
}

fn kuryr_config() -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": "kuryr",
        "type": "kuryr-cni",
        "neutron": {"network": "pods"}
    })
}

/// A `GC` request with `config`, as a runtime sends it.
fn gc_request(config: Value) -> Request {
    Request {
        command: CniCommand::Gc,
        container_id: None,
        netns: None,
        ifname: None,
        args: Default::default(),
        path: vec!["/opt/cni/bin".into()],
        config,
    }
}

#[track_caller]
fn expect_err(request: &Request, code: ErrorCode, part: &str) {
    let err = request.validate().expect_err("expected an error");
    assert_eq!(err.code, code, "{err}");
    assert!(err.to_string().contains(part), "{err:?} lacks {part:?}");
}

#[test]
fn request_wire_format() {
    let request = add_request(kuryr_config());
    let wire = serde_json::to_value(&request).unwrap();
    assert_eq!(
        wire,
        json!({
            "command": "ADD",
            "container_id": "3f2c1a9e8b7d",
            "netns": "/var/run/netns/blue",
            "ifname": "eth0",
            "args": {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "default"},
            "path": ["/opt/cni/bin"],
            "config": kuryr_config()
        })
    );
    let back: Request = serde_json::from_value(wire).unwrap();
    assert_eq!(back, request);

    // Only command and config are required.
    let minimal: Request = serde_json::from_value(json!({
        "command": "STATUS", "config": {"cniVersion": "1.1.0", "name": "kuryr"}
    }))
    .unwrap();
    assert_eq!(minimal.container_id, None);
    assert!(minimal.args.is_empty() && minimal.path.is_empty());
    assert_eq!(
        serde_json::to_value(&minimal).unwrap(),
        json!({"command": "STATUS", "config": {"cniVersion": "1.1.0", "name": "kuryr"}})
    );
    assert!(serde_json::from_value::<Request>(json!({"command": "add", "config": {}})).is_err());
    assert!(serde_json::from_value::<Request>(json!({"command": "ADD"})).is_err());
}

#[test]
fn response_wire_format() {
    assert_eq!(serde_json::to_value(Response::default()).unwrap(), json!({}));
    let response = Response { result: Some(json!({"cniVersion": "1.1.0"})) };
    let wire = serde_json::to_value(&response).unwrap();
    assert_eq!(wire, json!({"result": {"cniVersion": "1.1.0"}}));
    assert_eq!(serde_json::from_value::<Response>(wire).unwrap(), response);
    assert_eq!(serde_json::from_str::<Response>("{}").unwrap(), Response::default());
}

#[test]
fn request_from_env_keeps_config_verbatim() {
    let env = CniEnv::from_lookup(|name| {
        match name {
            "CNI_COMMAND" => Some("DEL"),
            "CNI_CONTAINERID" => Some("abc"),
            "CNI_IFNAME" => Some("eth0"),
            "CNI_ARGS" => Some("K8S_POD_NAME=web;K8S_POD_NAMESPACE=default"),
            "CNI_PATH" => Some("/a:/b"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .unwrap();
    let config = fixture("spec-1.1.0/del-3-bridge-config.json");
    let request = Request::new(&env, config.clone());
    assert_eq!(request.command, CniCommand::Del);
    assert_eq!(request.netns, None);
    assert_eq!(request.args["K8S_POD_NAME"], "web");
    assert_eq!(request.path, vec!["/a", "/b"]);
    let round_trip: Request =
        serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
    assert_eq!(round_trip.config, config);
    assert_eq!(round_trip.config["prevResult"], config["prevResult"]);
}

#[test]
fn add_validates_into_attachment_request() {
    let Call::Add(req) = add_request(kuryr_config()).validate().unwrap() else {
        panic!("not an ADD");
    };
    assert_eq!(req.version, CniVersion::V1_1_0);
    assert_eq!(req.container_id, "3f2c1a9e8b7d");
    assert_eq!(req.ifname, "eth0");
    assert_eq!(req.netns.as_deref(), Some("/var/run/netns/blue"));
    assert_eq!(req.args.k8s_pod_namespace(), Some("default"));
    assert_eq!(req.config.neutron.as_ref().unwrap().network.as_deref(), Some("pods"));
    assert_eq!(req.prev_result, None);
    assert_eq!(req.raw_config, kuryr_config());
}

#[test]
fn chained_add_carries_prev_result() {
    let mut config = kuryr_config();
    config["prevResult"] = fixture("spec-1.1.0/add-1-bridge-result.json");
    let Call::Add(req) = add_request(config.clone()).validate().unwrap() else {
        panic!("not an ADD");
    };
    let prev = req.prev_result.unwrap();
    assert_eq!(prev.interfaces.len(), 3);
    assert_eq!(req.raw_config["prevResult"], config["prevResult"]);
}

#[test]
fn each_command_types_its_request() {
    let mut check = add_request(fixture("spec-1.1.0/check-1-bridge-config.json"));
    check.command = CniCommand::Check;
    let call = check.validate().unwrap();
    assert_eq!(call.command(), CniCommand::Check);
    let Call::Check(req) = call else { panic!() };
    assert!(req.prev_result.is_some());

    let mut del = add_request(fixture("spec-1.1.0/del-3-bridge-config.json"));
    del.command = CniCommand::Del;
    del.netns = None;
    let Call::Del(req) = del.validate().unwrap() else { panic!() };
    assert_eq!(req.netns, None);
    assert!(req.prev_result.is_some());

    let gc = gc_request(fixture("kuryr/gc-config.json"));
    let Call::Gc(req) = gc.validate().unwrap() else { panic!() };
    assert_eq!(req.valid_attachments.len(), 3);

    let status =
        Request { command: CniCommand::Status, path: vec![], config: kuryr_config(), ..gc.clone() };
    let Call::Status(req) = status.validate().unwrap() else { panic!() };
    assert_eq!(req.version, CniVersion::V1_1_0);

    let version =
        Request { command: CniCommand::Version, config: json!({"cniVersion": "0.4.0"}), ..gc };
    assert_eq!(version.validate().unwrap(), Call::Version(Some("0.4.0".into())));
}

#[test]
fn validation_errors() {
    let mut missing_netns = add_request(kuryr_config());
    missing_netns.netns = None;
    expect_err(&missing_netns, ErrorCode::InvalidEnvironment, "missing for ADD: CNI_NETNS");

    let mut bad_ifname = add_request(kuryr_config());
    bad_ifname.ifname = Some("a-very-long-ifname".into());
    expect_err(&bad_ifname, ErrorCode::InvalidEnvironment, "invalid CNI_IFNAME");

    let mut bad_args = add_request(kuryr_config());
    bad_args.args.insert("IgnoreUnknown".into(), "yes".into());
    expect_err(&bad_args, ErrorCode::InvalidEnvironment, "IgnoreUnknown");

    expect_err(&add_request(json!("not an object")), ErrorCode::Decode, "must be a JSON object");
    expect_err(
        &add_request(json!({"cniVersion": "0.2.0", "name": "kuryr"})),
        ErrorCode::IncompatibleVersion,
        "0.2.0",
    );
    expect_err(
        &add_request(json!({"cniVersion": "1.1.0"})),
        ErrorCode::InvalidNetworkConfig,
        "no name",
    );
    let mut bad_prev = kuryr_config();
    bad_prev["prevResult"] = json!({"ips": [{"address": "not-an-ip"}]});
    expect_err(&add_request(bad_prev), ErrorCode::Decode, "prevResult");

    let mut check = add_request(kuryr_config());
    check.command = CniCommand::Check;
    expect_err(&check, ErrorCode::InvalidNetworkConfig, "CHECK needs prevResult");
    check.config["cniVersion"] = json!("0.3.1");
    expect_err(&check, ErrorCode::IncompatibleVersion, "CHECK is not part of CNI 0.3.1");

    let gc = gc_request(kuryr_config());
    expect_err(&gc, ErrorCode::InvalidNetworkConfig, "GC needs cni.dev/valid-attachments");
    let mut old_gc = gc.clone();
    old_gc.config["cniVersion"] = json!("1.0.0");
    expect_err(&old_gc, ErrorCode::IncompatibleVersion, "GC is not part of CNI 1.0.0");
    let mut no_path = gc;
    no_path.path.clear();
    expect_err(&no_path, ErrorCode::InvalidEnvironment, "missing for GC: CNI_PATH");
}

#[test]
fn reply_version_follows_config() {
    assert_eq!(add_request(json!({"cniVersion": "0.3.1"})).reply_version(), CniVersion::V0_3_1);
    assert_eq!(add_request(json!({"cniVersion": "7.0.0"})).reply_version(), CniVersion::LATEST);
    assert_eq!(add_request(json!(null)).reply_version(), CniVersion::LATEST);
}
