//! The operability listener: `GET /metrics` (Prometheus text) and
//! `GET /healthz` on `[DEFAULT] metrics_address` / `--metrics-address`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use openstack::neutron::Neutron;
use openstack::{ApiRequest, Method};
use tracing::{info, warn};

/// How long a Neutron answer keeps `/healthz` green without asking again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(10);

/// Longest a `/healthz` probe waits for Neutron.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// What `/healthz` needs from Neutron; a fake in tests.
pub(crate) trait Backend: Send + Sync + 'static {
    /// One cheap call: `Ok` when Neutron answered it.
    fn probe(&self) -> ProbeFuture<'_>;
    /// Replies so far as `(method, status, count)`.
    fn reply_counts(&self) -> Vec<(String, u16, u64)>;
}

impl Backend for Neutron {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let request = ApiRequest::new(Method::GET, "/v2.0/extensions")
                .query(vec![("fields".into(), "alias".into())]);
            self.client()
                .send(&request)
                .await
                .map(|_| ())
                .map_err(|e| format!("Neutron is not answering: {e}"))
        })
    }

    fn reply_counts(&self) -> Vec<(String, u16, u64)> {
        Neutron::reply_counts(self)
    }
}

/// Readiness: the plugin socket is served and Neutron answered recently.
pub(crate) struct Health {
    backend: Arc<dyn Backend>,
    served: AtomicBool,
    last_ok: Mutex<Option<Instant>>,
}

impl Health {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend, served: AtomicBool::new(false), last_ok: Mutex::new(None) }
    }

    /// Whether the plugin socket is bound and being served.
    pub(crate) fn set_served(&self, served: bool) {
        self.served.store(served, Ordering::Relaxed);
    }

    /// `Ok` when ready, else a one-line reason.
    pub(crate) async fn check(&self) -> Result<(), String> {
        if !self.served.load(Ordering::Relaxed) {
            return Err("the plugin socket is not being served".into());
        }
        if self.fresh() {
            return Ok(());
        }
        match tokio::time::timeout(PROBE_TIMEOUT, self.backend.probe()).await {
            Ok(Ok(())) => {
                *self.last_ok.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                Ok(())
            }
            Ok(Err(reason)) => Err(one_line(&reason)),
            Err(_) => Err(format!("Neutron did not answer within {}s", PROBE_TIMEOUT.as_secs())),
        }
    }

    fn fresh(&self) -> bool {
        self.last_ok
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < FRESH_FOR)
    }

    fn render_metrics(&self) -> String {
        kuryr_core::metrics::global().render(&self.backend.reply_counts())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `/metrics` and `/healthz` routes.
pub(crate) fn router(health: Arc<Health>) -> Router {
    Router::new().route("/metrics", get(metrics)).route("/healthz", get(healthz)).with_state(health)
}

async fn metrics(State(health): State<Arc<Health>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], health.render_metrics())
        .into_response()
}

async fn healthz(State(health): State<Arc<Health>>) -> Response {
    match health.check().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

/// Parses `[DEFAULT] metrics_address` / `--metrics-address`; warns when it
/// is not loopback (the endpoints have no authentication).
pub(crate) fn parse_address(text: &str) -> Result<SocketAddr> {
    let address: SocketAddr = text
        .trim()
        .parse()
        .with_context(|| format!("metrics address {text:?} is not <ip>:<port>"))?;
    if !address.ip().is_loopback() {
        warn!(%address, "the metrics listener has no authentication; serving it beyond loopback exposes it");
    }
    Ok(address)
}

/// Serves `app` on the listener `bind` gives, in a task, with `health`
/// reporting served while it runs.
pub(crate) fn serve_app<B, F>(
    bind: B,
    app: kuryr_server::App,
    health: Arc<Health>,
    shutdown: F,
) -> tokio::task::JoinHandle<Result<(), kuryr_server::ServeError>>
where
    B: Future<Output = Result<kuryr_server::Listener, kuryr_server::ServeError>> + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let listener = bind.await?;
        health.set_served(true);
        let result = listener.serve(app, shutdown).await;
        health.set_served(false);
        result
    })
}

/// Starts the listener when `--metrics-address` or `[DEFAULT]
/// metrics_address` names an address; `None` when metrics are off. A busy
/// address fails here, at startup.
pub(crate) async fn spawn<F>(
    service: &crate::ServiceArgs,
    config: &kuryr_core::config::Config,
    health: Arc<Health>,
    shutdown: F,
) -> Result<Option<tokio::task::JoinHandle<Result<()>>>>
where
    F: Future<Output = ()> + Send + 'static,
{
    let Some(text) = service
        .metrics_address
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .or(config.default.metrics_address.as_deref())
    else {
        return Ok(None);
    };
    let address = parse_address(text)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics listener on {address}"))?;
    info!(%address, "serving /metrics and /healthz");
    Ok(Some(tokio::spawn(async move {
        axum::serve(listener, router(health))
            .with_graceful_shutdown(shutdown)
            .await
            .context("metrics listener")
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Fake {
        answers: bool,
        probes: AtomicUsize,
    }

    impl Backend for Fake {
        fn probe(&self) -> ProbeFuture<'_> {
            self.probes.fetch_add(1, Ordering::Relaxed);
            let answers = self.answers;
            Box::pin(async move {
                if answers {
                    Ok(())
                } else {
                    Err("Neutron is not answering:\n connection refused".into())
                }
            })
        }

        fn reply_counts(&self) -> Vec<(String, u16, u64)> {
            vec![("POST".into(), 201, 2)]
        }
    }

    fn health(answers: bool) -> (Arc<Fake>, Health) {
        let fake = Arc::new(Fake { answers, probes: AtomicUsize::new(0) });
        (fake.clone(), Health::new(fake))
    }

    #[tokio::test]
    async fn not_ready_until_the_socket_is_served() {
        let (fake, health) = health(true);
        let err = health.check().await.expect_err("socket not served");
        assert!(err.contains("socket"), "{err}");
        assert_eq!(fake.probes.load(Ordering::Relaxed), 0);
        health.set_served(true);
        health.check().await.expect("ready");
    }

    #[tokio::test]
    async fn a_recent_answer_is_reused() {
        let (fake, health) = health(true);
        health.set_served(true);
        health.check().await.expect("ready");
        health.check().await.expect("still ready");
        assert_eq!(fake.probes.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn neutron_down_is_a_one_line_reason() {
        let (fake, health) = health(false);
        health.set_served(true);
        let err = health.check().await.expect_err("Neutron down");
        assert_eq!(err, "Neutron is not answering: connection refused");
        health.check().await.expect_err("still down");
        assert_eq!(fake.probes.load(Ordering::Relaxed), 2, "failures not cached");
    }

    #[tokio::test]
    async fn routes_answer() {
        use tower::ServiceExt;
        let (_, health) = health(false);
        let health = Arc::new(health);
        let get = |uri: &str| {
            axum::http::Request::get(uri).body(axum::body::Body::empty()).expect("request")
        };
        let reply = router(health.clone()).oneshot(get("/healthz")).await.expect("reply");
        assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
        let reply = router(health).oneshot(get("/metrics")).await.expect("reply");
        assert_eq!(reply.status(), StatusCode::OK);
        let body = axum::body::to_bytes(reply.into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("kuryr_neutron_requests_total{method=\"POST\",status=\"201\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_address("127.0.0.1:9655").expect("ok").port(), 9655);
        assert!(parse_address("localhost").is_err());
    }
}
