//! A scripted stand-in for Neutron's HTTP API, for unit tests of the
//! driver's Neutron call sequences: canned replies by method and path,
//! and a record of every request (method, path, query, body).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use kuryr_core::binding::Binder;
use netplumb::ovs::fake::FakeSwitch;
use netplumb::Netlink;
use openstack::neutron::Neutron;
use openstack::AuthOptions;
use serde_json::{json, Value};

use super::{DriverSettings, KuryrDriver};
use crate::wire::Scope;

/// One request the driver sent.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
}

impl Call {
    /// `METHOD path`, for assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Default)]
struct Script {
    /// (method, path, status, body); the latest matching entry wins.
    routes: Vec<(String, String, u16, Value)>,
    calls: Vec<Call>,
}

/// The fake server; it stops when the test's runtime ends.
pub(crate) struct FakeNeutron {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl FakeNeutron {
    pub async fn start() -> FakeNeutron {
        let script = Arc::new(Mutex::new(Script::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake Neutron");
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
        self.lock()
            .routes
            .push((method.to_string(), path.to_string(), status, body));
    }

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

    /// A driver talking to this fake (noauth), with a fake OVS switch.
    pub async fn driver(&self) -> KuryrDriver {
        self.driver_with(settings()).await
    }

    /// The same with its own settings.
    pub async fn driver_with(&self, settings: DriverSettings) -> KuryrDriver {
        let neutron = Neutron::new(AuthOptions::noauth(format!("http://{}", self.addr)))
            .expect("a client for the fake");
        let netlink = Netlink::host().await.expect("a netlink socket");
        let binder = Binder::new(
            netlink,
            Arc::new(FakeSwitch::with_bridge("br-int")),
            "br-int",
        );
        KuryrDriver::new(neutron, binder, settings)
    }
}

pub(crate) fn settings() -> DriverSettings {
    DriverSettings {
        host: "test-host".into(),
        scope: Scope::Local,
        local_address_space: "no_address_space".into(),
        global_address_space: "no_address_space".into(),
        subnetpool_name_prefix: "kuryrPool".into(),
        default_subnetpool_v4: "kuryr".into(),
        default_subnetpool_v6: "kuryr6".into(),
        enable_dhcp: true,
        process_external_connectivity: true,
        ip_range_as_subnet: false,
        veth_dst_prefix: "eth".into(),
        active_timeout: std::time::Duration::from_secs(1),
        active_is_fatal: true,
        pool: kuryr_core::vif_pool::PoolSettings::default(),
        pool_owner_tag: "kuryr.pool.docker:test".into(),
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
    script.calls.push(Call {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let found = script
        .routes
        .iter()
        .rev()
        .find(|(m, p, _, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, status, body)| (*status, body.clone()));
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
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
