use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tower::ServiceExt;

use super::*;
use crate::api::{DriverError, ErrorKind};
use crate::testutil::{exchanges, strip_empty, FakeDriver, FIXTURE_EXCHANGES};
use crate::wire::PluginCall;

mod sockets;

const NET: &str = "01895533501ecd92f270b168b6e64e20f9be172e124dabd894f0adedf6da04da";
const EP: &str = "2660d1f57c38b6bd91faa73e9c343ddb5d2bf858e23d95968ad755bd200b55fc";

struct Reply {
    status: StatusCode,
    json: Value,
}

impl Reply {
    fn err(&self) -> &str {
        self.json["Err"].as_str().unwrap_or_else(|| panic!("no Err in {}", self.json))
    }
}

fn app() -> (Arc<FakeDriver>, App) {
    let driver = Arc::new(FakeDriver::default());
    let app = router(driver.clone());
    (driver, app)
}

/// Sends a request the way Docker does: no Content-Type, empty Host,
/// Content-Length set.
async fn send(app: &App, method: &str, path: &str, body: Vec<u8>) -> Reply {
    let request = HttpRequest::builder()
        .method(method)
        .uri(path)
        .header("Host", "")
        .header("User-Agent", "Go-http-client/1.1")
        .header("Accept", "application/vnd.docker.plugins.v1.2+json")
        .header("Content-Length", body.len())
        .body(Body::from(body))
        .unwrap();
    let (status, headers, json) = kuryr_server::testing::exchange(app, request).await;
    assert_eq!(headers["content-type"], PLUGIN_CONTENT_TYPE);
    Reply { status, json }
}

async fn post(app: &App, path: &str, body: &str) -> Reply {
    send(app, "POST", path, body.as_bytes().to_vec()).await
}

fn assert_error(reply: &Reply, status: StatusCode, err_prefix: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_ne!(reply.status, StatusCode::OK);
    assert!(
        reply.err().starts_with(err_prefix),
        "{:?} does not start with {err_prefix:?}",
        reply.err()
    );
    assert_eq!(reply.json.as_object().unwrap().len(), 1, "only Err: {}", reply.json);
}

// ---------- the captures, replayed ----------

#[tokio::test]
async fn replays_every_captured_exchange() {
    let (driver, app) = app();
    let all = exchanges();
    assert_eq!(all.len(), FIXTURE_EXCHANGES);
    for ex in &all {
        let call = PluginCall::from_path(&ex.path).unwrap();
        if call != PluginCall::Activate {
            driver.reply_with(call, ex.resp.clone());
        }
        let reply = send(&app, "POST", &ex.path, ex.body.clone()).await;
        assert_eq!(reply.status.as_u16(), ex.code, "{}: {}", ex.at, reply.json);
        assert_eq!(strip_empty(&reply.json), strip_empty(&ex.resp), "{}", ex.at);
    }
    // Every call but Activate reached the driver, in order, with what Docker sent.
    let forwarded: Vec<_> = all.iter().filter(|ex| ex.path != "/Plugin.Activate").collect();
    let calls = driver.calls();
    assert_eq!(calls.len(), forwarded.len());
    for (ex, (call, req)) in forwarded.iter().zip(&calls) {
        assert_eq!(call.path(), ex.path, "{}", ex.at);
        assert_eq!(strip_empty(req), strip_empty(&ex.req), "{}", ex.at);
    }
}

#[tokio::test]
async fn activate_is_answered_by_the_server() {
    let (driver, app) = app();
    for body in ["", "null", "{}\n"] {
        let reply = post(&app, "/Plugin.Activate", body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json, json!({"Implements": ["NetworkDriver", "IpamDriver"]}));
    }
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn calls_without_payload_take_an_empty_body() {
    let (driver, app) = app();
    driver.reply_with(PluginCall::NetworkGetCapabilities, json!({"Scope": "local"}));
    driver.reply_with(PluginCall::IpamGetCapabilities, json!({"RequiresMACAddress": true}));
    driver.reply_with(
        PluginCall::GetDefaultAddressSpaces,
        json!({"LocalDefaultAddressSpace": "no_address_space", "GlobalDefaultAddressSpace": "no_address_space"}),
    );
    let reply = post(&app, "/NetworkDriver.GetCapabilities", "").await;
    assert_eq!(reply.json, json!({"Scope": "local"}));
    let reply = post(&app, "/IpamDriver.GetCapabilities", "").await;
    assert_eq!(reply.json, json!({"RequiresMACAddress": true, "RequiresRequestReplay": false}));
    let reply = post(&app, "/IpamDriver.GetDefaultAddressSpaces", "").await;
    assert_eq!(reply.json["LocalDefaultAddressSpace"], "no_address_space");
}

#[tokio::test]
async fn swarm_and_discovery_calls_reach_the_driver() {
    let (driver, app) = app();
    driver.reply_with(PluginCall::AllocateNetwork, json!({"Options": {"vni": "7"}}));
    let reply = post(
        &app,
        "/NetworkDriver.AllocateNetwork",
        &format!(r#"{{"NetworkID":"{NET}","Options":null,"IPv4Data":null,"IPv6Data":null}}"#),
    )
    .await;
    assert_eq!(reply.json, json!({"Options": {"vni": "7"}}));
    for path in ["/NetworkDriver.DiscoverNew", "/NetworkDriver.DiscoverDelete"] {
        let reply = post(&app, path, r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.1","BindAddress":"","Self":false}}"#).await;
        assert_eq!((reply.status, reply.json), (StatusCode::OK, json!({})));
    }
    let reply =
        post(&app, "/NetworkDriver.FreeNetwork", &format!(r#"{{"NetworkID":"{NET}"}}"#)).await;
    assert_eq!(reply.json, json!({}));
    assert_eq!(driver.calls().len(), 4);
}

// ---------- malformed requests: 400, driver untouched ----------

#[tokio::test]
async fn malformed_json_is_400_with_the_position() {
    let (driver, app) = app();
    let reply = post(&app, "/NetworkDriver.CreateNetwork", "{\"NetworkID\": \"abc\",\n").await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "/NetworkDriver.CreateNetwork: invalid request body: ",
    );
    assert!(reply.err().contains("line 2 column 0"), "{}", reply.err());
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn wrong_field_types_are_400_naming_the_field() {
    let (driver, app) = app();
    let cases = [
        (
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"x","Pool":"","SubPool":"","Options":{},"V6":"no"}"#.to_owned(),
            "/IpamDriver.RequestPool: invalid request body: V6: invalid type: string \"no\", expected a boolean at line 1 column",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            format!(r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.enable_ipv6":"maybe"}}}}"#),
            "/NetworkDriver.CreateNetwork: invalid request body: Options.com.docker.network.enable_ipv6: invalid value: string \"maybe\"",
        ),
        (
            "/NetworkDriver.CreateEndpoint",
            format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Interface":{{"Address":"10.0.0.2/33"}}}}"#),
            "/NetworkDriver.CreateEndpoint: invalid request body: Interface.Address: invalid value \"10.0.0.2/33\"",
        ),
        (
            "/NetworkDriver.Join",
            format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP}"}}"#),
            "/NetworkDriver.Join: invalid request body: missing field `SandboxKey` at line 1 column",
        ),
        (
            "/IpamDriver.ReleasePool",
            r#"{"PoolID":""}"#.to_owned(),
            "/IpamDriver.ReleasePool: invalid request body: PoolID: must not be empty",
        ),
    ];
    for (path, body, want) in cases {
        let reply = post(&app, path, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, want);
    }
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn empty_body_for_a_call_with_payload_is_400() {
    let (driver, app) = app();
    for body in ["", "null\n"] {
        let reply = post(&app, "/NetworkDriver.DeleteNetwork", body).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "/NetworkDriver.DeleteNetwork: invalid request body: empty body, expected a JSON object",
        );
    }
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn huge_body_is_413() {
    let (driver, app) = app();
    let mut body = format!(r#"{{"NetworkID":"{NET}","Options":{{"pad":""#).into_bytes();
    body.resize(MAX_BODY_BYTES + 10, b'x');
    let reply = send(&app, "POST", "/NetworkDriver.CreateNetwork", body.clone()).await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "/NetworkDriver.CreateNetwork: request body larger than 1048576 bytes",
    );

    // Without a Content-Length (chunked), the limit still holds while reading.
    let request = HttpRequest::builder()
        .method("POST")
        .uri("/NetworkDriver.CreateNetwork")
        .body(Body::from_stream(futures::stream::iter(
            body.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
        )))
        .unwrap();
    let response = app.router().clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn unknown_path_is_404() {
    let (driver, app) = app();
    for path in ["/Foo.Bar", "/networkdriver.createnetwork", "/", "/VolumeDriver.Create"] {
        let reply = post(&app, path, "{}").await;
        assert_error(&reply, StatusCode::NOT_FOUND, &format!("unknown plugin call {path}"));
    }
    assert!(driver.calls().is_empty());
}

#[tokio::test]
async fn methods_other_than_post_are_405() {
    let (driver, app) = app();
    for method in ["GET", "PUT", "DELETE", "HEAD"] {
        let request = HttpRequest::builder()
            .method(method)
            .uri("/NetworkDriver.CreateNetwork")
            .body(Body::empty())
            .unwrap();
        let response = app.router().clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(response.headers()["content-type"], PLUGIN_CONTENT_TYPE);
    }
    let reply = send(&app, "GET", "/Plugin.Activate", Vec::new()).await;
    assert_error(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        "/Plugin.Activate: method GET not allowed, use POST",
    );
    assert!(driver.calls().is_empty());
}

// ---------- driver errors ----------

#[tokio::test]
async fn driver_errors_map_to_their_status_never_200() {
    let (driver, app) = app();
    let body = format!(r#"{{"NetworkID":"{NET}"}}"#);
    let cases = [
        (DriverError::bad_request("bad option neutron.net.uuid"), 400),
        (DriverError::not_found("network 0189 not found"), 404),
        (DriverError::conflict("subnet overlaps"), 409),
        (DriverError::unavailable("neutron unreachable"), 503),
        (DriverError::internal("bug"), 500),
        (DriverError::upstream(409, "Neutron: IpAddressInUse"), 409),
        (DriverError::upstream(401, "Keystone: token expired"), 401),
        (DriverError::upstream(200, "odd upstream"), 502),
        (DriverError::upstream(302, "redirected"), 502),
        (DriverError::new(ErrorKind::Upstream(999), "nonsense"), 502),
    ];
    for (err, status) in cases {
        driver.fail_with(PluginCall::DeleteNetwork, err.clone());
        let reply = post(&app, "/NetworkDriver.DeleteNetwork", &body).await;
        assert_eq!(reply.status.as_u16(), status, "{err:?}");
        assert_eq!(reply.json, json!({"Err": err.message}));
    }
    // Calls with a typed reply fail the same way.
    driver.fail_with(PluginCall::RequestAddress, DriverError::conflict("address 10.98.1.5 in use"));
    let reply = post(
        &app,
        "/IpamDriver.RequestAddress",
        r#"{"PoolID":"p","Address":"10.98.1.5","Options":null}"#,
    )
    .await;
    assert_error(&reply, StatusCode::CONFLICT, "address 10.98.1.5 in use");
}
