//! Retries: the policy, and one logical request run until it succeeds, is
//! not worth repeating, or runs out of attempts.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use super::{ApiReply, Client};
use crate::error::{Error, Result};
use crate::Secret;

/// The log target of every Neutron/Keystone reply (`openstack::client`, as
/// operators filter it and scripts/bench counts it), kept when the code
/// moves between modules.
const LOG_TARGET: &str = "openstack::client";

/// Bounded exponential backoff for transient failures.
///
/// Idempotent requests (GET, PUT, DELETE, HEAD) are retried on transport
/// errors and on 500/502/503/504. Other methods (POST) are retried only when
/// the connection could not be established, i.e. the request was certainly
/// not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Cap on a single delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Logs the outcome of one attempt of request `a` at `level`: the
/// request's method and path, the reply's status and request id or the
/// transport error, any extra `field`s, and the attempt number, with the
/// message for a reply or for an error.
macro_rules! log_outcome {
    ($level:ident, $a:expr, $attempt:expr, $outcome:expr, $($field:ident,)* $reply:literal, $error:literal) => {
        match $outcome {
            Ok(reply) => tracing::$level!(
                target: LOG_TARGET, method = %$a.method, path = $a.path,
                status = reply.status.as_u16(), request_id = reply.request_id.as_deref().unwrap_or("-"),
                $($field,)* attempt = $attempt, $reply
            ),
            Err(e) => tracing::$level!(
                target: LOG_TARGET, method = %$a.method, path = $a.path, error = %e,
                $($field,)* attempt = $attempt, $error
            ),
        }
    };
}

/// One logical request, as [`Client::execute`] runs it.
pub(super) struct Attempt<'a> {
    pub(super) method: &'a Method,
    pub(super) path: &'a str,
    pub(super) idempotent: bool,
    /// A Keystone token request (counted apart, token header kept).
    pub(super) is_auth: bool,
}

impl Client {
    /// Runs one logical request with retries; returns the reply whatever its
    /// status, or the last transport error.
    pub(super) async fn execute<F>(&self, a: &Attempt<'_>, build: F) -> Result<ApiReply>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let retry = self.inner.retry;
        let mut attempt = 1;
        loop {
            let outcome = self.send_once(a, build(), attempt).await;
            let retryable = match &outcome {
                Ok(reply) => a.idempotent && is_retryable_status(reply.status),
                // A POST is only safe to resend when it never left: the
                // connection itself could not be made.
                Err(e) => a.idempotent || e.is_connect(),
            };
            if attempt >= retry.max_attempts || !retryable {
                return outcome.map_err(|e| Error::transport(a.method.as_str(), a.path, e));
            }
            log_outcome!(
                warn,
                a,
                attempt,
                &outcome,
                "server error; retrying",
                "transport error; retrying"
            );
            tokio::time::sleep(retry.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// One attempt: sends, reads the whole reply, counts and logs it.
    async fn send_once(
        &self,
        a: &Attempt<'_>,
        request: reqwest::RequestBuilder,
        attempt: u32,
    ) -> Result<ApiReply, reqwest::Error> {
        let counters = &self.inner.counters;
        if a.is_auth {
            counters.auth.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.count(a.method);
        }
        let started = Instant::now();
        let outcome = read_reply(a, request).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let (Ok(reply), false) = (&outcome, a.is_auth) {
            counters.count_reply(a.method, reply.status);
        }
        log_outcome!(debug, a, attempt, &outcome, elapsed_ms, "reply", "transport error");
        outcome
    }
}

/// Sends `request` and reads the whole reply (keeping Keystone's
/// `X-Subject-Token` for a token request only).
async fn read_reply(
    a: &Attempt<'_>,
    request: reqwest::RequestBuilder,
) -> Result<ApiReply, reqwest::Error> {
    let resp = request.send().await?;
    let status = resp.status();
    let request_id = request_id(resp.headers());
    let subject_token = a
        .is_auth
        .then(|| resp.headers().get("x-subject-token"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(Secret::from);
    let body = resp.bytes().await?.to_vec();
    Ok(ApiReply {
        status,
        request_id,
        body,
        method: a.method.clone(),
        path: a.path.to_owned(),
        subject_token,
    })
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-openstack-request-id", "x-compute-request-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
