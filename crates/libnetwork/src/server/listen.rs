//! Serving the router on a unix socket (how dockerd finds plugins under
//! `/run/docker/plugins/`) or on TCP (upstream's `kuryr_uri`,
//! `http://127.0.0.1:23750`, announced in a spec file), with the shared
//! scaffolding of `kuryr-server`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use kuryr_server::PrivateSocket;
pub use kuryr_server::ServeError;
use tokio::net::TcpListener;

use super::router;
use crate::api::Driver;

/// How the server is named in logs and errors.
const WHAT: &str = "Docker plugin API";

/// A bound plugin unix socket (mode 0600). The socket file is removed when
/// this value (or the server future that consumed it) is dropped, unless
/// another process has replaced it meanwhile.
#[derive(Debug)]
pub struct PluginSocket(PrivateSocket);

impl PluginSocket {
    /// Binds `path` as [`kuryr_core::socket::bind_private`] does: parent
    /// directory 0700 if missing, a stale socket removed, a live socket or a
    /// non-socket file refused, the socket restricted to 0600.
    pub async fn bind(path: impl AsRef<Path>) -> Result<Self, ServeError> {
        PrivateSocket::bind(path).await.map(Self)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Serves `driver` until `shutdown` completes, then finishes in-flight
    /// calls and removes the socket file.
    pub async fn serve<D, F>(self, driver: Arc<D>, shutdown: F) -> Result<(), ServeError>
    where
        D: Driver,
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.serve(WHAT, router(driver), shutdown).await
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
    kuryr_server::serve_tcp(WHAT, address, router(driver), shutdown).await
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
    kuryr_server::serve_tcp_listener(WHAT, listener, router(driver), shutdown).await
}
