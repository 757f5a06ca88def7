//! Serving the router on the daemon's unix socket, with the shared
//! scaffolding of `kuryr-server`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use kuryr_server::PrivateSocket;
pub use kuryr_server::ServeError;

use super::{router, CniHandler};

/// The daemon's bound unix socket (mode 0600). The socket file is removed
/// when this value (or the server future that consumed it) is dropped,
/// unless another process has replaced it meanwhile.
#[derive(Debug)]
pub struct CniSocket(PrivateSocket);

impl CniSocket {
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

    /// Serves `handler` until `shutdown` completes, then finishes in-flight
    /// calls and removes the socket file.
    pub async fn serve<H, F>(self, handler: Arc<H>, shutdown: F) -> Result<(), ServeError>
    where
        H: CniHandler,
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.serve("CNI daemon", router(handler), shutdown).await
    }
}

/// Serves `handler` on the unix socket `path` until `shutdown` completes;
/// see [`CniSocket::bind`] for how the socket is created and removed.
pub async fn serve_unix<H, F>(
    path: impl AsRef<Path>,
    handler: Arc<H>,
    shutdown: F,
) -> Result<(), ServeError>
where
    H: CniHandler,
    F: Future<Output = ()> + Send + 'static,
{
    CniSocket::bind(path).await?.serve(handler, shutdown).await
}
