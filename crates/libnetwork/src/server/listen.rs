//! Serving the router on a unix socket (how dockerd finds plugins under
//! `/run/docker/plugins/`) or on TCP (upstream's `kuryr_uri`,
//! `http://127.0.0.1:23750`, announced in a spec file).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use kuryr_core::socket::{bind_private, SocketError, SocketFile};
use tokio::net::{TcpListener, UnixListener};

use super::router;
use crate::api::Driver;

/// Why the server could not start or stopped with an error.
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
    #[error("plugin server failed: {0}")]
    Serve(#[source] io::Error),
}

/// A bound plugin unix socket (mode 0600). The socket file is removed when
/// this value (or the server future that consumed it) is dropped, unless
/// another process has replaced it meanwhile.
#[derive(Debug)]
pub struct PluginSocket {
    listener: UnixListener,
    guard: SocketFile,
}

impl PluginSocket {
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

    /// Serves `driver` until `shutdown` completes, then finishes in-flight
    /// calls and removes the socket file.
    pub async fn serve<D, F>(self, driver: Arc<D>, shutdown: F) -> Result<(), ServeError>
    where
        D: Driver,
        F: Future<Output = ()> + Send + 'static,
    {
        let Self { listener, guard } = self;
        tracing::info!(path = %guard.path().display(), "serving Docker plugin API on unix socket");
        let result = axum::serve(listener, router(driver))
            .with_graceful_shutdown(shutdown)
            .await;
        drop(guard);
        result.map_err(ServeError::Serve)
    }
}

/// Serves `driver` on the unix socket `path` until `shutdown` completes;
/// see [`PluginSocket::bind`] for how the socket is created and removed.
pub async fn serve_unix<D, F>(
    path: impl AsRef<Path>,
    driver: Arc<D>,
    shutdown: F,
) -> Result<(), ServeError>
where
    D: Driver,
    F: Future<Output = ()> + Send + 'static,
{
    PluginSocket::bind(path)
        .await?
        .serve(driver, shutdown)
        .await
}

/// Serves `driver` on TCP `address` (e.g. `127.0.0.1:23750`) until
/// `shutdown` completes. Bind to loopback only: the protocol has no
/// authentication.
pub async fn serve_tcp<D, F>(
    address: SocketAddr,
    driver: Arc<D>,
    shutdown: F,
) -> Result<(), ServeError>
where
    D: Driver,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind {
            address: address.to_string(),
            source,
        })?;
    serve_tcp_listener(listener, driver, shutdown).await
}

/// Serves `driver` on an already bound TCP listener until `shutdown`
/// completes.
pub async fn serve_tcp_listener<D, F>(
    listener: TcpListener,
    driver: Arc<D>,
    shutdown: F,
) -> Result<(), ServeError>
where
    D: Driver,
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving Docker plugin API on TCP");
    }
    axum::serve(listener, router(driver))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}
