//! Counters of requests and replies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use reqwest::{Method, StatusCode};

/// Number of HTTP requests a [`Client`](crate::Client) sent, by method (retries included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// GET requests to the service.
    pub get: u64,
    /// POST requests to the service.
    pub post: u64,
    /// PUT requests to the service.
    pub put: u64,
    /// DELETE requests to the service.
    pub delete: u64,
    /// HEAD and any other method to the service.
    pub other: u64,
    /// Keystone token requests.
    pub auth: u64,
}

impl CallStats {
    /// Requests to the service (Keystone excluded).
    pub fn total(&self) -> u64 {
        self.get + self.post + self.put + self.delete + self.other
    }

    /// Field-wise difference `self - earlier` (saturating).
    pub fn since(&self, earlier: &CallStats) -> CallStats {
        CallStats {
            get: self.get.saturating_sub(earlier.get),
            post: self.post.saturating_sub(earlier.post),
            put: self.put.saturating_sub(earlier.put),
            delete: self.delete.saturating_sub(earlier.delete),
            other: self.other.saturating_sub(earlier.other),
            auth: self.auth.saturating_sub(earlier.auth),
        }
    }
}

#[derive(Default)]
pub(super) struct Counters {
    get: AtomicU64,
    post: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    other: AtomicU64,
    pub(super) auth: AtomicU64,
    /// Replies from the service by (method, status); Keystone excluded.
    pub(super) replies: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Counters {
    pub(super) fn count(&self, method: &Method) {
        let c = match *method {
            Method::GET => &self.get,
            Method::POST => &self.post,
            Method::PUT => &self.put,
            Method::DELETE => &self.delete,
            _ => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_reply(&self, method: &Method, status: StatusCode) {
        // Counters stay meaningful after a panic elsewhere held the lock.
        let mut replies = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        *replies.entry((method.as_str().to_owned(), status.as_u16())).or_default() += 1;
    }

    pub(super) fn snapshot(&self) -> CallStats {
        CallStats {
            get: self.get.load(Ordering::Relaxed),
            post: self.post.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
            auth: self.auth.load(Ordering::Relaxed),
        }
    }
}
