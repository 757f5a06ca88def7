//! A Kuryr process a test started (`kuryr daemon`, `kuryr controller`):
//! its log, `kill -9`, liveness, pid and memory; stopped by PID (SIGTERM,
//! then SIGKILL) when dropped. [`crate::cni_util::Daemon`] and
//! [`crate::k8s::ControllerProcess`] deref to it, each starting its own
//! command.

use std::path::PathBuf;
use std::process::Child;

/// A started process and its log.
#[derive(Debug)]
pub struct KuryrChild {
    child: Option<Child>,
    /// Its log (stderr, appended across restarts).
    pub log: PathBuf,
}

impl KuryrChild {
    /// Nothing started yet; its stderr goes to `log`.
    pub fn new(log: PathBuf) -> KuryrChild {
        KuryrChild { child: None, log }
    }

    /// Records the process just started.
    pub(crate) fn started(&mut self, child: Child) {
        self.child = Some(child);
    }

    /// `kill -9`, as a crash: whatever it holds (a socket file, a Lease)
    /// stays behind.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Its resident memory (`VmRSS` of /proc/PID/status), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KuryrChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::terminate(&mut child);
        }
    }
}

/// `Deref`/`DerefMut` to the [`KuryrChild`] in a struct's `process` field,
/// so the struct answers `kill9()`, `pid()`, `log`... itself.
macro_rules! derefs_to_kuryr_child {
    ($owner:ty) => {
        impl std::ops::Deref for $owner {
            type Target = $crate::KuryrChild;
            fn deref(&self) -> &$crate::KuryrChild {
                &self.process
            }
        }

        impl std::ops::DerefMut for $owner {
            fn deref_mut(&mut self) -> &mut $crate::KuryrChild {
                &mut self.process
            }
        }
    };
}
pub(crate) use derefs_to_kuryr_child;
