//! The scaffolding both of Kuryr's socket servers share (the Docker plugin
//! API of `kuryr-libnetwork` and the CNI daemon's of `kuryr-cni-daemon`):
//! a private unix socket (or a loopback TCP listener) serving an axum
//! router until shutdown, request bodies read under a size limit, and each
//! call traced with an id and timed. What a call means, and the shape of
//! its errors, stay with each server (docs/architecture.md).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use kuryr_core::socket::{bind_private, SocketError, SocketFile};
use tokio::net::{TcpListener, UnixListener};
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

/// A bound unix socket, mode 0600 (only root talks to Kuryr). The socket
/// file is removed when this value, or the server future that consumed it,
/// is dropped, unless another process has replaced it meanwhile.
#[derive(Debug)]
pub struct PrivateSocket {
    listener: UnixListener,
    guard: SocketFile,
}

impl PrivateSocket {
    /// Binds `path` as [`kuryr_core::socket::bind_private`] does: parent
    /// directory 0700 if missing, a stale socket removed, a live socket or a
    /// non-socket file refused, the socket restricted to 0600.
    pub async fn bind(path: impl AsRef<Path>) -> Result<Self, ServeError> {
        let (listener, guard) = bind_private(path.as_ref()).await?;
        Ok(Self { listener, guard })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.guard.path()
    }

    /// Serves `router` until `shutdown` completes, then finishes in-flight
    /// calls and removes the socket file. `what` names the server in logs
    /// and errors.
    pub async fn serve<F>(
        self,
        what: &'static str,
        router: Router,
        shutdown: F,
    ) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self { listener, guard } = self;
        tracing::info!(path = %guard.path().display(), "serving the {what} on unix socket");
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        drop(guard);
        result.map_err(|source| ServeError::Serve { what, source })
    }
}

/// Serves `router` on TCP `address` until `shutdown` completes. Bind to
/// loopback only: neither protocol has authentication.
pub async fn serve_tcp<F>(
    what: &'static str,
    address: SocketAddr,
    router: Router,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind {
            address: address.to_string(),
            source,
        })?;
    serve_tcp_listener(what, listener, router, shutdown).await
}

/// Serves `router` on an already bound TCP listener until `shutdown`
/// completes.
pub async fn serve_tcp_listener<F>(
    what: &'static str,
    listener: TcpListener,
    router: Router,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving the {what} on TCP");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeError::Serve { what, source })
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
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
}

/// A router sending every request, numbered, to `handle` with `target`
/// (the driver or handler a server serves). The adapter's `handle` decides
/// what a call means and how its errors look.
pub fn router<T, F, Fut>(target: Arc<T>, handle: F) -> Router
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>, u64, Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let ids = Arc::new(CallIds::default());
    Router::new().fallback(move |request: Request<Body>| {
        let (target, ids, handle) = (target.clone(), ids.clone(), handle.clone());
        async move { handle(target, ids.next(), request).await }
    })
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
    use axum::Router;
    use tower::ServiceExt;

    /// Sends `request` to `router`; the reply's status, headers and body,
    /// which must be JSON.
    pub async fn exchange(
        router: &Router,
        request: Request<Body>,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a whole body");
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "reply is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
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
        let err = read_body(request("0123456789", None), 8)
            .await
            .expect_err("large");
        assert_eq!(err, BodyError::TooLarge { limit: 8 });
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let err = read_body(request("{}", Some(9)), 8)
            .await
            .expect_err("declared large");
        assert_eq!(err, BodyError::TooLarge { limit: 8 });
    }

    #[test]
    fn call_ids_count_from_one() {
        let ids = CallIds::default();
        assert_eq!((ids.next(), ids.next()), (1, 2));
    }
}
