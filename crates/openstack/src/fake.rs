//! A scripted stand-in for Neutron's HTTP API, for unit tests of Neutron
//! call sequences in the crates above: canned replies by method and path,
//! and a record of every request (method, path, query, body). The one fake
//! of Neutron (DEVELOPERS.md habit 6); behind the `test-support` feature.
//! Functional tests use the real Neutron of `scripts/stack`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use crate::neutron::Subnet;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::neutron::Neutron;
use crate::AuthOptions;

/// One request the driver sent.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// JSON body (`null` when empty or not JSON).
    pub body: Value,
}

impl Call {
    /// `METHOD path`, for assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// One scripted reply.
struct Route {
    method: String,
    path: String,
    /// Matches only a query containing this text (as sent, URL-encoded).
    query: Option<String>,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Script {
    /// The latest matching entry wins.
    routes: Vec<Route>,
    calls: Vec<Call>,
}

/// The fake server; it stops when the test's runtime ends.
pub struct FakeNeutron {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl FakeNeutron {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeNeutron {
        let script = Arc::new(Mutex::new(Script::default()));
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the fake Neutron");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().fallback(handle).with_state(script.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeNeutron { addr, script }
    }

    /// Answers `method path` (exact path, any query) with `status` and `body`
    /// (`Value::Null` for an empty body).
    pub fn on(&self, method: &str, path: &str, status: u16, body: Value) {
        self.route(method, path, None, status, body);
    }

    /// Answers `method path` with 200 and `body` (see [`FakeNeutron::on`]).
    pub fn ok(&self, method: &str, path: &str, body: Value) {
        self.on(method, path, 200, body);
    }

    /// Answers `GET path` with 200 and `body`.
    pub fn get(&self, path: &str, body: Value) {
        self.on("GET", path, 200, body);
    }

    /// Asserts that no request with `method` reached the fake.
    #[track_caller]
    pub fn assert_no(&self, method: &str) {
        let lines = self.lines();
        let prefix = format!("{method} ");
        assert!(!lines.iter().any(|l| l.starts_with(&prefix)), "no {method} expected: {lines:?}");
    }

    /// Like [`FakeNeutron::on`], for requests whose query contains `query`
    /// (URL-encoded as sent, e.g. `tags=kuryr.cni.net%3Akn`): one path
    /// answered differently by filter.
    pub fn on_query(&self, method: &str, path: &str, query: &str, status: u16, body: Value) {
        self.route(method, path, Some(query), status, body);
    }

    fn route(&self, method: &str, path: &str, query: Option<&str>, status: u16, body: Value) {
        self.lock().routes.push(Route {
            method: method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            status,
            body,
        });
    }

    /// Every request so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// `METHOD path` of every call, in order.
    pub fn lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fake's base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Neutron client talking to this fake (noauth).
    pub fn client(&self) -> Neutron {
        Neutron::new(AuthOptions::noauth(self.url())).expect("a client for the fake")
    }
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut script = script.lock().unwrap_or_else(|p| p.into_inner());
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let found = script
        .routes
        .iter()
        .rev()
        .find(|r| {
            r.method == method.as_str()
                && r.path == path
                && r.query.as_ref().is_none_or(|q| query.contains(q.as_str()))
        })
        .map(|r| (r.status, r.body.clone()));
    script.calls.push(Call {
        method: method.to_string(),
        path: path.clone(),
        query,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let (status, body) = found.unwrap_or_else(|| {
        (
            404,
            json!({"NeutronError": {"type": "NotFound", "message": format!("no script for {method} {path}"), "detail": ""}}),
        )
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if body.is_null() {
        return status.into_response();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A subnet as Neutron lists it, for scripted replies and caches in unit
/// tests: `cidr` on `network_id`, with `gateway` (None: no gateway).
pub fn subnet(id: &str, network_id: &str, cidr: &str, gateway: Option<&str>) -> Subnet {
    Subnet {
        id: id.into(),
        network_id: network_id.into(),
        cidr: cidr.into(),
        gateway_ip: gateway.map(|g| g.parse().expect("a gateway address")),
        ..Subnet::default()
    }
}
