use axum::http::Request as HttpRequest;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::testing::RecordingHandler;
use kuryr_wire::cni::CniCommand;
use kuryr_wire::testutil::fixture;

/// Answers ADD with the kuryr fixture result.
fn kuryr_result(_: &Call) -> Result<AddResult, CniError> {
    AddResult::parse(&fixture("kuryr/result-1.1.0.json"), CniVersion::V1_1_0)
}

struct Reply {
    status: u16,
    json: Value,
}

async fn send(app: &App, method: &str, path: &str, body: Vec<u8>) -> Reply {
    let request = HttpRequest::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/json")
        .header("Content-Length", body.len())
        .body(Body::from(body))
        .unwrap();
    let (status, headers, json) = kuryr_server::testing::exchange(app, request).await;
    assert_eq!(headers["content-type"], "application/json");
    Reply { status: status.as_u16(), json }
}

async fn post(app: &App, body: &Value) -> Reply {
    send(app, "POST", "/cni", serde_json::to_vec(body).unwrap()).await
}

fn config(version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "kuryr",
        "type": "kuryr-cni",
        "neutron": {"network": "pods", "security_groups": ["default"]}
    })
}

fn request(command: &str, config: Value) -> Value {
    json!({
        "command": command,
        "container_id": "3f2c1a9e8b7d",
        "netns": "/var/run/netns/blue",
        "ifname": "eth0",
        "args": {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "default", "K8S_POD_NAME": "web"},
        "path": ["/opt/cni/bin"],
        "config": config
    })
}

#[track_caller]
fn assert_cni_error(reply: &Reply, status: u16, code: u32, version: &str, msg_part: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["code"], code, "{}", reply.json);
    assert_eq!(reply.json["cniVersion"], version, "{}", reply.json);
    let msg = reply.json["msg"].as_str().unwrap();
    assert!(msg.contains(msg_part), "{msg:?} lacks {msg_part:?}");
}

fn app() -> (Arc<RecordingHandler>, App) {
    let handler = Arc::new(RecordingHandler::new(kuryr_result));
    (handler.clone(), router(handler))
}

#[tokio::test]
async fn add_result_is_converted_to_the_requested_version() {
    let (handler, app) = app();
    for version in CniVersion::SUPPORTED {
        let reply = post(&app, &request("ADD", config(version.as_str()))).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(
            reply.json,
            json!({"result": fixture(&format!("kuryr/result-{version}.json"))}),
            "{version}"
        );
    }
    let calls = handler.calls();
    assert_eq!(calls.len(), 5);
    let Call::Add(req) = &calls[0] else { panic!() };
    assert_eq!(req.version, CniVersion::V0_3_0);
    assert_eq!(req.container_id, "3f2c1a9e8b7d");
    assert_eq!(req.ifname, "eth0");
    assert_eq!(req.netns.as_deref(), Some("/var/run/netns/blue"));
    assert_eq!(req.args.k8s_pod_name(), Some("web"));
    assert_eq!(req.path, vec!["/opt/cni/bin"]);
    assert_eq!(req.raw_config, config("0.3.0"));
}

#[tokio::test]
async fn other_commands_answer_empty() {
    let (handler, app) = app();
    let mut with_prev = config("1.1.0");
    with_prev["prevResult"] = fixture("kuryr/result-1.1.0.json");
    for command in ["DEL", "CHECK"] {
        let reply = post(&app, &request(command, with_prev.clone())).await;
        assert_eq!((reply.status, &reply.json), (200, &json!({})), "{command}");
    }
    let mut gc = config("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "c1", "ifname": "eth0"}]);
    let reply = post(&app, &json!({"command": "GC", "path": ["/opt/cni/bin"], "config": gc})).await;
    assert_eq!((reply.status, &reply.json), (200, &json!({})));
    let reply = post(&app, &json!({"command": "STATUS", "config": config("1.1.0")})).await;
    assert_eq!((reply.status, &reply.json), (200, &json!({})));

    let commands: Vec<CniCommand> = handler.calls().iter().map(Call::command).collect();
    assert_eq!(commands, [CniCommand::Del, CniCommand::Check, CniCommand::Gc, CniCommand::Status]);
    let calls = handler.calls();
    let Call::Check(check) = &calls[1] else { panic!() };
    assert_eq!(check.prev_result.as_ref().unwrap().interfaces.len(), 2);
    let Call::Gc(gc) = &calls[2] else { panic!() };
    assert_eq!(gc.valid_attachments[0].container_id, "c1");
}

#[tokio::test]
async fn version_is_answered_without_the_handler() {
    let (handler, app) = app();
    let reply = post(&app, &json!({"command": "VERSION", "config": {"cniVersion": "0.4.0"}})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["result"]["cniVersion"], "0.4.0");
    assert_eq!(reply.json["result"]["supportedVersions"].as_array().unwrap().len(), 5);
    assert!(handler.calls().is_empty());
}

#[tokio::test]
async fn handler_errors_keep_the_cni_shape() {
    let cases = [
        (CniError::unknown_container("no such container"), 404, 3),
        (CniError::try_again_later("neutron is busy"), 503, 11),
        (CniError::plugin_not_available("neutron is down"), 503, 50),
        (CniError::limited_connectivity("ovn is down"), 503, 51),
        (CniError::internal("bug"), 500, 999),
        (CniError::new(ErrorCode::Other(120), "quota exceeded"), 500, 120),
    ];
    for (err, status, code) in cases {
        let handler = Arc::new(RecordingHandler::failing(err.clone().with_details("more")));
        let app = router(handler);
        let reply = post(&app, &request("ADD", config("0.4.0"))).await;
        assert_cni_error(&reply, status, code, "0.4.0", &err.msg);
        assert_eq!(reply.json["details"], "more");
    }
}

#[tokio::test]
async fn invalid_requests_never_reach_the_handler() {
    let (handler, app) = app();
    let mut bad_ifname = request("ADD", config("1.1.0"));
    bad_ifname["ifname"] = json!("eth0:1");
    assert_cni_error(&post(&app, &bad_ifname).await, 400, 4, "1.1.0", "invalid CNI_IFNAME");

    let mut no_netns = request("CHECK", config("0.4.0"));
    no_netns.as_object_mut().unwrap().remove("netns");
    assert_cni_error(&post(&app, &no_netns).await, 400, 4, "0.4.0", "missing for CHECK: CNI_NETNS");

    let old = request("ADD", json!({"cniVersion": "0.2.0", "name": "kuryr"}));
    assert_cni_error(&post(&app, &old).await, 400, 1, "1.1.0", "0.2.0");

    let unnamed = request("ADD", json!({"cniVersion": "1.0.0"}));
    assert_cni_error(&post(&app, &unnamed).await, 400, 7, "1.0.0", "no name");

    let check = request("CHECK", config("1.1.0"));
    assert_cni_error(&post(&app, &check).await, 400, 7, "1.1.0", "CHECK needs prevResult");

    let gc = json!({"command": "GC", "path": ["/opt/cni/bin"], "config": config("1.1.0")});
    assert_cni_error(&post(&app, &gc).await, 400, 7, "1.1.0", "GC needs cni.dev/valid-attachments");

    let status = json!({"command": "STATUS", "config": config("1.0.0")});
    assert_cni_error(
        &post(&app, &status).await,
        400,
        1,
        "1.0.0",
        "STATUS is not part of CNI 1.0.0",
    );

    // A JSON array must not be read as the request's fields in order.
    let as_array = json!(["ADD", "c1", "/proc/1/ns/net", "eth0"]);
    assert_cni_error(&post(&app, &as_array).await, 400, 6, "1.1.0", "expected a JSON object");

    assert!(handler.calls().is_empty());
}

#[tokio::test]
async fn kuryr_rules_apply_to_add_and_check() {
    let (handler, app) = app();
    let mut typo = config("1.1.0");
    typo["neutron"]["netwrk"] = json!("pods");
    assert_cni_error(
        &post(&app, &request("ADD", typo)).await,
        400,
        2,
        "1.1.0",
        "neutron.netwrk = \"pods\"",
    );
    let mut ipam = config("1.1.0");
    ipam["ipam"] = json!({"type": "host-local", "subnet": "10.1.0.0/16"});
    let reply = post(&app, &request("ADD", ipam.clone())).await;
    assert_cni_error(&reply, 400, 2, "1.1.0", "ipam = {");
    assert!(reply.json["details"].as_str().unwrap().contains("Neutron"));
    let mut masq = config("1.1.0");
    masq["ipMasq"] = json!(true);
    assert_cni_error(&post(&app, &request("ADD", masq)).await, 400, 2, "1.1.0", "ipMasq = true");

    let mut strict_args = request("ADD", config("1.1.0"));
    strict_args["args"] = json!({"K8S_POD_NAME": "web", "FOO": "1"});
    assert_cni_error(
        &post(&app, &strict_args).await,
        400,
        4,
        "1.1.0",
        "unknown CNI_ARGS keys: FOO",
    );
    assert!(handler.calls().is_empty());

    // DEL stays permissive so that cleanup always runs.
    let mut del = request("DEL", ipam);
    del["args"] = json!({"FOO": "1"});
    assert_eq!(post(&app, &del).await.status, 200);
    assert_eq!(handler.calls().len(), 1);
}

#[tokio::test]
async fn malformed_http_requests() {
    let (handler, app) = app();
    let reply = send(&app, "POST", "/cni", b"{not json".to_vec()).await;
    assert_cni_error(&reply, 400, 6, "1.1.0", "invalid kuryr CNI request");
    let reply =
        post(&app, &json!({"command": "ADD", "config": {"cniVersion": "0.3.1"}, "args": []})).await;
    assert_cni_error(&reply, 400, 6, "0.3.1", "invalid kuryr CNI request");
    let reply = post(&app, &json!({"command": "BOGUS", "config": {}})).await;
    assert_cni_error(&reply, 400, 6, "1.1.0", "invalid CNI_COMMAND");

    let reply = send(&app, "POST", "/addNetwork", b"{}".to_vec()).await;
    assert_cni_error(&reply, 404, 999, "1.1.0", "unknown path /addNetwork");

    let request = HttpRequest::builder().method("GET").uri("/cni").body(Body::empty()).unwrap();
    let response = app.router().clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");

    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let reply = send(&app, "POST", "/cni", huge).await;
    assert_cni_error(&reply, 413, 5, "1.1.0", "larger than");
    assert!(handler.calls().is_empty());
}

fn metric(prefix: &str) -> f64 {
    kuryr_core::metrics::global().sample(prefix)
}

#[tokio::test]
async fn calls_are_timed_by_verb_and_errors_counted_by_code() {
    let added = "kuryr_operation_duration_seconds_count{operation=\"ADD\"}";
    let failed = "kuryr_operation_errors_total{operation=\"DEL\",kind=\"121\"}";
    let unknown = "kuryr_operation_duration_seconds_count{operation=\"unknown\"}";
    let before = (metric(added), metric(failed), metric(unknown));
    let (_, app) = app();
    let reply = post(&app, &request("ADD", config("1.1.0"))).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let handler =
        Arc::new(RecordingHandler::failing(CniError::new(ErrorCode::Other(121), "quota exceeded")));
    let reply = post(&router(handler), &request("DEL", config("1.1.0"))).await;
    assert_eq!(reply.status, 500, "{}", reply.json);
    let reply = send(&app, "POST", "/cni", b"{".to_vec()).await;
    assert_eq!(reply.status, 400);
    // Other tests record into the same registry concurrently: compare at least.
    assert!(metric(added) >= before.0 + 1.0);
    assert!(metric(failed) >= before.1 + 1.0);
    assert!(metric(unknown) >= before.2 + 1.0);
}
