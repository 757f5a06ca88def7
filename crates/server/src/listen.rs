//! Where a server listens: a private unix socket (how dockerd and
//! `kuryr-cni` reach Kuryr) or a loopback TCP listener (upstream's
//! `kuryr_uri`). Both serve an [`App`] until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use kuryr_core::socket::{bind_private, SocketFile};
use tokio::net::{TcpListener, UnixListener};

use crate::{App, ServeError};

/// A bound listener. A unix socket is mode 0600 (only root talks to
/// Kuryr), and its file is removed when this value, or the server future
/// that consumed it, is dropped, unless another process has replaced it
/// meanwhile.
#[derive(Debug)]
pub enum Listener {
    /// A private unix socket.
    Unix {
        /// The listening socket.
        listener: UnixListener,
        /// Removes the socket file on drop.
        guard: SocketFile,
    },
    /// A TCP listener. Bind it to loopback only: neither protocol has
    /// authentication.
    Tcp(TcpListener),
}

impl Listener {
    /// Binds the unix socket `path` as [`kuryr_core::socket::bind_private`]
    /// does: parent directory 0700 if missing, a stale socket removed, a
    /// live socket or a non-socket file refused, the socket restricted to
    /// 0600.
    pub async fn unix(path: impl AsRef<Path>) -> Result<Self, ServeError> {
        let (listener, guard) = bind_private(path.as_ref()).await?;
        Ok(Self::Unix { listener, guard })
    }

    /// Binds TCP `address` (e.g. `127.0.0.1:23750`).
    pub async fn tcp(address: SocketAddr) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind { address: address.to_string(), source })?;
        Ok(Self::Tcp(listener))
    }

    /// The unix socket's path; `None` for TCP.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Unix { guard, .. } => Some(guard.path()),
            Self::Tcp(_) => None,
        }
    }

    /// Serves `app` until `shutdown` completes, then finishes in-flight
    /// calls and, for a unix socket, removes the socket file.
    pub async fn serve<F>(self, app: App, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let App { what, router } = app;
        let result = match self {
            Self::Unix { listener, guard } => {
                tracing::info!(path = %guard.path().display(), "serving the {what} on unix socket");
                let result = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
                drop(guard);
                result
            }
            Self::Tcp(listener) => {
                if let Ok(address) = listener.local_addr() {
                    tracing::info!(%address, "serving the {what} on TCP");
                }
                axum::serve(listener, router).with_graceful_shutdown(shutdown).await
            }
        };
        result.map_err(|source| ServeError::Serve { what, source })
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use kuryr_core::socket::SocketError;
    use kuryr_wire::testutil::TempDir;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An app answering every call with 204.
    fn app() -> App {
        crate::router("test server", Arc::new(()), |_, _, _| async {
            StatusCode::NO_CONTENT.into_response()
        })
    }

    /// Serves `app` on `listener` until the returned sender fires.
    fn spawn(
        listener: Listener,
    ) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), ServeError>>) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(listener.serve(app(), async {
            let _ = stopped.await;
        }));
        (stop, server)
    }

    /// The status line of one `POST /` over `stream`.
    async fn status_line<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut stream: S,
    ) -> String {
        stream
            .write_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        reply.lines().next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_unix_socket_is_private_served_and_removed_at_shutdown() {
        let dir = TempDir::new("listen");
        let path = dir.join("run/kuryr/test.sock");
        let listener = Listener::unix(&path).await.unwrap();
        assert_eq!(listener.path(), Some(path.as_path()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        // A live socket is not taken over.
        let err = Listener::unix(&path).await.unwrap_err();
        assert!(matches!(err, ServeError::Socket(SocketError::InUse { .. })), "{err}");
        assert!(err.to_string().contains("in use by another running server"));

        let (stop, server) = spawn(listener);
        let conn = tokio::net::UnixStream::connect(&path).await.unwrap();
        assert_eq!(status_line(conn).await, "HTTP/1.1 204 No Content");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(!path.exists(), "shutting down removes the socket");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_regular_file_left_alone() {
        let dir = TempDir::new("listen");
        let path = dir.join("test.sock");
        // A socket file left by a dead process: nobody listens on it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (stop, server) = spawn(Listener::unix(&path).await.unwrap());
        let conn = tokio::net::UnixStream::connect(&path).await.unwrap();
        assert_eq!(status_line(conn).await, "HTTP/1.1 204 No Content");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(!path.exists());

        let file = dir.join("not-a-socket");
        std::fs::write(&file, "keep me").unwrap();
        let err = Listener::unix(&file).await.unwrap_err();
        assert!(matches!(err, ServeError::Socket(SocketError::NotASocket { .. })), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn dropping_an_old_socket_leaves_a_newer_one_alone() {
        let dir = TempDir::new("listen");
        let path = dir.join("test.sock");
        let old = Listener::unix(&path).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        let new = Listener::unix(&path).await.unwrap();
        drop(old);
        assert!(path.exists(), "the newer server's socket must survive");
        drop(new);
        assert!(!path.exists(), "dropping the bound socket removes it");
    }

    #[tokio::test]
    async fn serves_on_tcp_and_reports_a_taken_address() {
        let listener = Listener::tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let Listener::Tcp(tcp) = &listener else { panic!("a TCP listener") };
        let address = tcp.local_addr().unwrap();
        assert_eq!(listener.path(), None);
        let err = Listener::tcp(address).await.unwrap_err();
        assert!(matches!(err, ServeError::Bind { .. }), "{err}");
        assert!(err.to_string().contains(&address.to_string()), "{err}");

        let (stop, server) = spawn(listener);
        let conn = tokio::net::TcpStream::connect(address).await.unwrap();
        assert_eq!(status_line(conn).await, "HTTP/1.1 204 No Content");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
