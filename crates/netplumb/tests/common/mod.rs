//! Shared helpers for netplumb's root/kernel and OVS tests.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use netplumb::{netns, Netlink, Netns};

/// What a test's setup gave (`Some`), or a skip: the calling test returns
/// at once on `None` (not root, no ovsdb).
macro_rules! or_skip {
    ($setup:expr) => {
        match $setup {
            Some(v) => v,
            None => return,
        }
    };
}
pub(crate) use or_skip;

/// True when running as root; otherwise prints why the test is skipped.
pub(crate) fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped {test}: needs root (CAP_NET_ADMIN) to touch kernel links and namespaces");
    false
}

/// Six random hex digits, unique per call in this process.
pub(crate) fn rand_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// `prefix` + random suffix, e.g. `knp-a1b2c3` (keep prefix <= 8 chars).
pub(crate) fn unique(prefix: &str) -> String {
    let name = format!("{prefix}{}", rand_hex());
    assert!(name.len() <= 15, "test name too long: {name}");
    name
}

/// Runs a guard's cleanup to its end and ignores how it went. Drop cannot
/// await, and the test's runtime may be shutting down: a private runtime on
/// a private thread.
pub(crate) fn cleanup_on_private_runtime<T: Send + 'static>(
    cleanup: impl std::future::Future<Output = Option<T>> + Send + 'static,
) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        rt.block_on(cleanup)
    })
    .join();
}

/// Deletes a host link when dropped, even if the test panicked.
pub(crate) struct LinkGuard(pub String);

impl LinkGuard {
    /// A fresh link name ([`unique`]`(prefix)`) and the guard that deletes
    /// the link of that name.
    pub(crate) fn unique(prefix: &str) -> (String, LinkGuard) {
        let name = unique(prefix);
        (name.clone(), LinkGuard(name))
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        cleanup_on_private_runtime(async move {
            let nl = Netlink::host().await.ok()?;
            nl.delete_link(&name).await.ok()
        });
    }
}

/// A named netns (`/run/netns/knp-…`) deleted on drop, with its links.
pub(crate) struct NetnsGuard {
    pub name: String,
    pub ns: Netns,
}

impl NetnsGuard {
    pub(crate) fn new() -> Self {
        let name = unique("knp-");
        let ns = netns::create_named(&name).expect("create test netns");
        NetnsGuard { name, ns }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = netns::delete_named(&self.name);
    }
}
