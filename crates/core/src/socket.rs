//! The private unix sockets Kuryr's adapters serve on (the Docker plugin
//! socket, the CNI daemon socket): root only, never stealing a live
//! socket, and removed again when the server stops.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

/// Mode of the socket: only root may connect.
pub const SOCKET_MODE: u32 = 0o600;
/// Mode of a socket directory created here.
const SOCKET_DIR_MODE: u32 = 0o700;

/// Why a socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket's parent directory could not be created.
    #[error("cannot create socket directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Something other than a socket is in the way; it is left alone.
    #[error("{path} exists and is not a unix socket; not removing it")]
    NotASocket {
        /// What is there.
        path: PathBuf,
    },
    /// Another process accepts connections on the socket.
    #[error("{path} is in use by another running server")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// A stale socket file could not be inspected or removed.
    #[error("cannot remove stale socket {path}: {source}")]
    RemoveStale {
        /// The socket file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Binding failed.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The socket's mode could not be restricted.
    #[error("cannot set mode {SOCKET_MODE:o} on {path}: {source}")]
    Permissions {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Binds `path`: creates the parent directory (mode 0700) if missing,
/// removes a stale socket left by a dead process, refuses to remove a live
/// socket or a non-socket file, and restricts the socket to 0600. The
/// returned [`SocketFile`] removes the socket when dropped.
pub async fn bind_private(path: &Path) -> Result<(UnixListener, SocketFile), SocketError> {
    create_parent_dir(path)?;
    remove_stale_socket(path).await?;
    let listener = UnixListener::bind(path)
        .map_err(|source| SocketError::Bind { path: path.to_path_buf(), source })?;
    // Created before the mode is set; the guard removes it on any error.
    let guard = SocketFile::new(path.to_path_buf());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|source| SocketError::Permissions { path: path.to_path_buf(), source })?;
    Ok((listener, guard))
}

fn create_parent_dir(path: &Path) -> Result<(), SocketError> {
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
        .map_err(|source| SocketError::CreateDir { path: dir.to_path_buf(), source })
}

async fn remove_stale_socket(path: &Path) -> Result<(), SocketError> {
    let stale = |source| SocketError::RemoveStale { path: path.to_path_buf(), source };
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(stale(source)),
    };
    if !metadata.file_type().is_socket() {
        return Err(SocketError::NotASocket { path: path.to_path_buf() });
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(SocketError::InUse { path: path.to_path_buf() });
    }
    tracing::info!(path = %path.display(), "removing stale socket");
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(stale(source)),
    }
}

/// Removes the socket file on drop, if it is still the one we bound (a
/// newer server may have replaced it).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: PathBuf) -> Self {
        let identity = std::fs::symlink_metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        Self { path, identity }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let current = std::fs::symlink_metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        if current.is_none() || current != self.identity {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::info!(path = %self.path.display(), "removed socket"),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove socket")
            }
        }
    }
}
