//! Serving the router on the daemon's unix socket.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;

use kuryr_core::socket::{bind_private, SocketError, SocketFile};
use tokio::net::UnixListener;

use super::{router, CniHandler};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The unix socket could not be bound (see [`SocketError`]).
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The server failed while running.
    #[error("CNI server failed: {0}")]
    Serve(#[source] io::Error),
}

/// The daemon's bound unix socket (mode 0600). The socket file is removed
/// when this value (or the server future that consumed it) is dropped,
/// unless another process has replaced it meanwhile.
#[derive(Debug)]
pub struct CniSocket {
    listener: UnixListener,
    guard: SocketFile,
}

impl CniSocket {
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

    /// Serves `handler` until `shutdown` completes, then finishes in-flight
    /// calls and removes the socket file.
    pub async fn serve<H, F>(self, handler: Arc<H>, shutdown: F) -> Result<(), ServeError>
    where
        H: CniHandler,
        F: Future<Output = ()> + Send + 'static,
    {
        let Self { listener, guard } = self;
        tracing::info!(path = %guard.path().display(), "serving CNI requests on unix socket");
        let result = axum::serve(listener, router(handler))
            .with_graceful_shutdown(shutdown)
            .await;
        drop(guard);
        result.map_err(ServeError::Serve)
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
