//! Network namespace handles, and the one safe way to talk netlink inside one.
//!
//! # Threading rule
//!
//! `setns(2)` changes the namespace of the *calling thread* only, and a
//! netlink socket stays bound to the namespace of the thread that created it.
//! Calling `setns` on a tokio worker thread would silently move every task
//! later scheduled on that worker into the container's namespace. So we never
//! do that: [`Netns::run_in`] spawns a short-lived `std::thread`, enters the
//! namespace there, runs a closure (typically: create a netlink socket) and
//! exits, taking its namespace with it. The socket it returns keeps working
//! from any task on any thread.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sched::CloneFlags;
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::Deleted;

/// Directory where named namespaces live (`ip netns` convention).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// `NS_GET_NSTYPE` ioctl (linux/nsfs.h): `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: u64 = 0xb703;

/// An open handle on a network namespace.
///
/// Holding it keeps the namespace alive even if its bind mount is removed.
/// Cheap to clone (the descriptor is shared).
#[derive(Clone, Debug)]
pub struct Netns {
    path: PathBuf,
    fd: Arc<OwnedFd>,
}

impl Netns {
    /// Open a namespace from a path such as `/var/run/netns/NAME`,
    /// `/proc/PID/ns/net` or Docker's `/var/run/docker/netns/XXXX`.
    ///
    /// Fails with [`Error::NetnsNotFound`] if the path does not exist, and with
    /// [`Error::Netns`] if it is not a network namespace (for instance a
    /// leftover file whose bind mount is gone).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NetnsNotFound { path: path.clone() },
            _ => Error::Netns { path: path.clone(), reason: format!("cannot open: {e}") },
        })?;
        let fd = OwnedFd::from(file);
        check_is_netns(&path, fd.as_fd())?;
        Ok(Netns { path, fd: Arc::new(fd) })
    }

    /// The namespace this process runs in (`/proc/self/ns/net`).
    pub fn current() -> Result<Self> {
        Self::from_path("/proc/self/ns/net")
    }

    /// The path this handle was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Namespace identity (device, inode): equal values mean the same netns.
    pub fn id(&self) -> Result<(u64, u64)> {
        let st = nix::sys::stat::fstat(self.fd.as_fd())
            .map_err(|e| Error::Netns { path: self.path.clone(), reason: format!("fstat: {e}") })?;
        Ok((st.st_dev, st.st_ino))
    }

    /// The raw descriptor, e.g. for `IFLA_NET_NS_FD`. Valid while `self` lives.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Run `f` on a fresh `std::thread` that has entered this namespace, and
    /// return its result. The thread exits afterwards, so no runtime thread
    /// ever changes namespace. Sockets created by `f` stay in this netns.
    pub async fn run_in<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let fd = Arc::clone(&self.fd);
        let path = self.path.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("netplumb-netns".into())
            .spawn(move || {
                let result = nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::Netns { path, reason: format!("setns: {e}") })
                    .and_then(|()| f());
                // The receiver may be gone if the caller was cancelled.
                let _ = tx.send(result);
            })
            .map_err(|e| Error::Io { op: "spawn netns thread".into(), source: e })?;
        rx.await.map_err(|_| Error::Netns {
            path: self.path.clone(),
            reason: "netns thread died".into(),
        })?
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn check_is_netns(path: &Path, fd: BorrowedFd<'_>) -> Result<()> {
    let not_netns = |reason: String| Error::Netns { path: path.to_path_buf(), reason };
    let fs = nix::sys::statfs::fstatfs(fd).map_err(|e| not_netns(format!("fstatfs: {e}")))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(not_netns(
            "not a namespace file (stale netns file without its bind mount?)".into(),
        ));
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd, which is
    // valid for the duration of the call.
    let nstype = unsafe { nix::libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if nstype < 0 {
        let err = std::io::Error::last_os_error();
        return Err(not_netns(format!("NS_GET_NSTYPE: {err}")));
    }
    if nstype != nix::libc::CLONE_NEWNET {
        return Err(not_netns("a namespace, but not a network namespace".into()));
    }
    Ok(())
}

fn named_path(name: &str) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(Error::invalid(
            "netns name",
            name,
            "1-255 ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(Path::new(NETNS_RUN_DIR).join(name))
}

/// Make `/run/netns` a shared mount point, as `ip netns add` does, so that
/// namespace bind mounts propagate to other mount namespaces (Docker's,
/// podman's...) and can be unmounted from anywhere.
fn ensure_run_dir() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let io = |op: &str, e: nix::Error| Error::Io {
        op: format!("{op} {NETNS_RUN_DIR}"),
        source: std::io::Error::from(e),
    };
    std::fs::create_dir_all(NETNS_RUN_DIR)
        .map_err(|e| Error::Io { op: format!("mkdir {NETNS_RUN_DIR}"), source: e })?;
    let none: Option<&str> = None;
    match mount(none, NETNS_RUN_DIR, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, none) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then make it shared.
            mount(
                Some(NETNS_RUN_DIR),
                NETNS_RUN_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                none,
            )
            .map_err(|e| io("bind mount", e))?;
            mount(none, NETNS_RUN_DIR, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, none)
                .map_err(|e| io("make shared", e))
        }
        Err(e) => Err(io("make shared", e)),
    }
}

/// Create a named network namespace like `ip netns add NAME`: a thread
/// unshares a new netns and bind-mounts `/proc/thread-self/ns/net` onto
/// `/run/netns/NAME`. Blocking (a few syscalls); meant for tests and tools.
///
/// Fails with [`Error::Netns`] if the name is already in use.
pub fn create_named(name: &str) -> Result<Netns> {
    let path = named_path(name)?;
    ensure_run_dir()?;
    std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
        Error::Netns { path: path.clone(), reason: format!("cannot create mount point: {e}") }
    })?;
    let target = path.clone();
    let joined = std::thread::Builder::new()
        .name("netplumb-unshare".into())
        .spawn(move || -> Result<()> {
            use nix::mount::{mount, MsFlags};
            let fail = |op: &str, e: nix::Error| Error::Netns {
                path: target.clone(),
                reason: format!("{op}: {e}"),
            };
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| fail("unshare", e))?;
            let none: Option<&str> = None;
            mount(Some("/proc/thread-self/ns/net"), &target, Some("none"), MsFlags::MS_BIND, none)
                .map_err(|e| fail("bind mount", e))
        })
        .map_err(|e| Error::Io { op: "spawn unshare thread".into(), source: e })?
        .join();
    let outcome = joined.unwrap_or_else(|_| {
        Err(Error::Netns { path: path.clone(), reason: "unshare thread panicked".into() })
    });
    if let Err(e) = outcome {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    info!(netns = %path.display(), "created named netns");
    Netns::from_path(&path)
}

/// Delete a named namespace like `ip netns del NAME`: lazy-unmount and remove
/// the file. The namespace itself (and its links) goes away when the last
/// handle or process using it is gone. Missing is not an error.
pub fn delete_named(name: &str) -> Result<Deleted> {
    let path = named_path(name)?;
    if !path.exists() {
        return Ok(Deleted::Absent);
    }
    match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(Error::Netns { path, reason: format!("umount: {e}") }),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Netns { path, reason: format!("remove: {e}") }),
    }
    debug!(netns = %path.display(), "deleted named netns");
    Ok(Deleted::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_path_is_not_found() {
        let err = Netns::from_path("/nonexistent/netns/x").unwrap_err();
        assert!(matches!(err, Error::NetnsNotFound { .. }), "{err}");
        assert!(err.is_not_found());
    }

    #[test]
    fn regular_file_is_not_a_netns() {
        let err = Netns::from_path("/proc/self/status").unwrap_err();
        assert!(matches!(err, Error::Netns { .. }), "{err}");
    }

    #[test]
    fn other_namespace_type_is_refused() {
        let err = Netns::from_path("/proc/self/ns/uts").unwrap_err();
        assert!(err.to_string().contains("not a network namespace"), "{err}");
    }

    #[test]
    fn current_netns_opens() {
        let ns = Netns::current().unwrap();
        let again = Netns::from_path("/proc/self/ns/net").unwrap();
        assert_eq!(ns.id().unwrap(), again.id().unwrap());
    }

    #[test]
    fn named_path_validation() {
        assert!(named_path("knp-abc").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(named_path(bad).is_err(), "{bad}");
        }
    }
}
