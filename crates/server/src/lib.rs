//! The scaffolding both of Kuryr's socket servers share (the Docker plugin
//! API of `kuryr-libnetwork` and the CNI daemon's of `kuryr-cni-daemon`):
//! a private unix socket (or a loopback TCP listener) serving an axum
//! router until shutdown, request bodies read under a size limit, and each
//! call traced with an id and timed. What a call means, and the shape of
//! its errors, stay with each server (docs/architecture.md).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::Router;

mod listen;
use kuryr_core::socket::SocketError;
pub use listen::Listener;
use tracing::Instrument;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The unix socket could not be bound (see [`SocketError`]).
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Binding the TCP address failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The TCP address.
        address: String,
        /// The cause.
        source: io::Error,
    },
    /// The server failed while running.
    #[error("{what} server failed: {source}")]
    Serve {
        /// Which server.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
}

/// Why a request body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the server's limit (declared or actual).
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error("cannot read request body: {0}")]
    Unreadable(String),
}

impl BodyError {
    /// The HTTP status to answer with: 413 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a request body of at most `limit` bytes; a larger declared
/// `Content-Length` is refused before reading anything.
pub async fn read_body(request: Request<Body>, limit: usize) -> Result<Bytes, BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(body) => Ok(body),
        Err(e) => {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                Err(BodyError::TooLarge { limit })
            } else {
                Err(BodyError::Unreadable(inner.to_string()))
            }
        }
    }
}

/// Adds `Allow: POST` to a 405 reply: both protocols are POST only.
pub fn allow_post(response: &mut Response) {
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
}

/// A server's router with the name it has in logs and errors
/// ("Docker plugin API", "CNI daemon"); serve it on a [`Listener`].
#[derive(Clone, Debug)]
pub struct App {
    what: &'static str,
    router: Router,
}

impl App {
    /// The server's name in logs and errors.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The axum router, to drive it directly in tests.
    pub fn router(&self) -> &Router {
        &self.router
    }
}

/// The app `what`, sending every request, numbered, to `handle` with
/// `target` (the driver or handler a server serves). The adapter's
/// `handle` decides what a call means and how its errors look.
pub fn router<T, F, Fut>(what: &'static str, target: Arc<T>, handle: F) -> App
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>, u64, Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let ids = Arc::new(CallIds::default());
    let router = Router::new().fallback(move |request: Request<Body>| {
        let (target, ids, handle) = (target.clone(), ids.clone(), handle.clone());
        async move { handle(target, ids.next(), request).await }
    });
    App { what, router }
}

/// Numbers the calls of one server, for the tracing span of each.
#[derive(Debug, Default)]
pub struct CallIds(AtomicU64);

impl CallIds {
    /// The next call's id (from 1).
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Runs one call inside `span`, logs its status and duration at debug
/// level, and hands both to `record` (the server's metrics).
pub async fn traced<Fut>(
    span: tracing::Span,
    call: Fut,
    record: impl FnOnce(&Response, Duration),
) -> Response
where
    Fut: Future<Output = Response>,
{
    async move {
        let started = Instant::now();
        let response = call.await;
        let elapsed = started.elapsed();
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "reply"
        );
        record(&response, elapsed);
        response
    }
    .instrument(span)
    .await
}

/// Driving a router in unit tests (feature `test-support`).
#[cfg(feature = "test-support")]
pub mod testing {
    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode};
    use tower::ServiceExt;

    use crate::App;

    /// Sends `request` to `app`; the reply's status, headers and body,
    /// which must be JSON.
    pub async fn exchange(
        app: &App,
        request: Request<Body>,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = app.router().clone().oneshot(request).await.expect("the router answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes =
            axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a whole body");
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("reply is not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes))
        });
        (status, headers, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &'static str, declared: Option<usize>) -> Request<Body> {
        let mut builder = Request::post("/x");
        if let Some(len) = declared {
            builder = builder.header(header::CONTENT_LENGTH, len);
        }
        builder.body(Body::from(body)).expect("request")
    }

    #[tokio::test]
    async fn bodies_are_read_under_the_limit() {
        let body = read_body(request("{}", None), 8).await.expect("small");
        assert_eq!(&body[..], b"{}");
        let err = read_body(request("0123456789", None), 8).await.expect_err("large");
        assert_eq!(err, BodyError::TooLarge { limit: 8 });
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let err = read_body(request("{}", Some(9)), 8).await.expect_err("declared large");
        assert_eq!(err, BodyError::TooLarge { limit: 8 });
    }

    #[test]
    fn call_ids_count_from_one() {
        let ids = CallIds::default();
        assert_eq!((ids.next(), ids.next()), (1, 2));
    }
}
