//! Serving the router on the daemon's unix socket.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use super::{router, CniHandler};

/// Mode of the socket: only root (the runtime running the plugin) may
/// connect.
const SOCKET_MODE: u32 = 0o600;
/// Mode of a socket directory created here.
const SOCKET_DIR_MODE: u32 = 0o700;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket's parent directory could not be created.
    #[error("cannot create socket directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Something other than a socket is in the way; it is left alone.
    #[error("{path} exists and is not a unix socket; not removing it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another process accepts connections on the socket.
    #[error("{path} is in use by another running server")]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// A stale socket file could not be inspected or removed.
    #[error("cannot remove stale socket {path}: {source}")]
    RemoveStale {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Binding the socket failed.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The socket's mode could not be restricted.
    #[error("cannot set mode {SOCKET_MODE:o} on {path}: {source}")]
    Permissions {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
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
    /// Binds `path`: creates the parent directory (mode 0700) if missing,
    /// removes a stale socket left by a dead daemon, refuses to remove a
    /// live socket or a non-socket file, and restricts the socket to 0600.
    pub async fn bind(path: impl AsRef<Path>) -> Result<Self, ServeError> {
        let path = path.as_ref().to_path_buf();
        create_parent_dir(&path)?;
        remove_stale_socket(&path).await?;
        let listener = UnixListener::bind(&path).map_err(|source| ServeError::Bind {
            path: path.clone(),
            source,
        })?;
        // Created before the mode is set; the guard removes it on any error.
        let guard = SocketFile::new(path.clone());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(
            |source| ServeError::Permissions {
                path: path.clone(),
                source,
            },
        )?;
        Ok(Self { listener, guard })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.guard.path
    }

    /// Serves `handler` until `shutdown` completes, then finishes in-flight
    /// calls and removes the socket file.
    pub async fn serve<H, F>(self, handler: Arc<H>, shutdown: F) -> Result<(), ServeError>
    where
        H: CniHandler,
        F: Future<Output = ()> + Send + 'static,
    {
        let Self { listener, guard } = self;
        tracing::info!(path = %guard.path.display(), "serving CNI requests on unix socket");
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

fn create_parent_dir(path: &Path) -> Result<(), ServeError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(SOCKET_DIR_MODE)
        .create(dir)
        .map_err(|source| ServeError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

async fn remove_stale_socket(path: &Path) -> Result<(), ServeError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServeError::RemoveStale {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !metadata.file_type().is_socket() {
        return Err(ServeError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(ServeError::InUse {
            path: path.to_path_buf(),
        });
    }
    tracing::info!(path = %path.display(), "removing stale CNI socket");
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ServeError::RemoveStale {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes the socket file on drop, if it is still the one we bound.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: PathBuf) -> Self {
        let identity = std::fs::symlink_metadata(&path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Self { path, identity }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let current = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current.is_none() || current != self.identity {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::info!(path = %self.path.display(), "removed CNI socket"),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove CNI socket")
            }
        }
    }
}
