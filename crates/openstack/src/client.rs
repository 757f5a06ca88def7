//! The authenticated HTTP session: tokens, endpoint, retries, counters.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::auth::keystone;
use crate::auth::{AuthOptions, AuthType, ConfigError};
use crate::error::{api_error, Error, Result};
use crate::Secret;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(60);
const AUTH_PATH: &str = "/v3/auth/tokens";
const USER_AGENT: &str = concat!("kuryr-rs-openstack/", env!("CARGO_PKG_VERSION"));

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
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Number of HTTP requests a [`Client`] sent, by method (retries included).
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
struct Counters {
    get: AtomicU64,
    post: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    other: AtomicU64,
    auth: AtomicU64,
    /// Replies from the service by (method, status); Keystone excluded.
    replies: std::sync::Mutex<std::collections::BTreeMap<(String, u16), u64>>,
}

impl Counters {
    fn count(&self, method: &Method) {
        let c = match *method {
            Method::GET => &self.get,
            Method::POST => &self.post,
            Method::PUT => &self.put,
            Method::DELETE => &self.delete,
            _ => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn count_reply(&self, method: &Method, status: StatusCode) {
        // Counters stay meaningful after a panic elsewhere held the lock.
        let mut replies = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        *replies
            .entry((method.as_str().to_owned(), status.as_u16()))
            .or_default() += 1;
    }

    fn snapshot(&self) -> CallStats {
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

/// A request to the service, relative to its endpoint.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Path under the endpoint, starting with `/` (e.g. `/v2.0/ports`).
    pub path: String,
    /// Query pairs, in order; keys may repeat.
    pub query: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Extra headers (e.g. `If-Match`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiRequest {
    /// A request without query, body or extra headers.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        ApiRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
        }
    }

    /// Sets the query pairs.
    pub fn query(mut self, query: Vec<(String, String)>) -> Self {
        self.query = query;
        self
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        )
    }
}

/// A successful (2xx) reply.
#[derive(Debug, Clone)]
pub struct ApiReply {
    /// HTTP status.
    pub status: StatusCode,
    /// `x-openstack-request-id`, when sent.
    pub request_id: Option<String>,
    /// Raw body.
    pub body: Vec<u8>,
    method: Method,
    path: String,
    /// Keystone's `X-Subject-Token`, kept only for token requests.
    subject_token: Option<Secret>,
}

impl ApiReply {
    /// Decodes the JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::decode(self.method.as_str(), &self.path, e))
    }
}

/// Builds a [`Client`] with non-default retry and renewal settings.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: AuthOptions,
    retry: RetryPolicy,
    renew_before: Duration,
    service_type: String,
}

impl ClientBuilder {
    /// Retry policy (default: 3 attempts, 100 ms base, 2 s cap).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Renew a Keystone token when less than this is left (default 60 s).
    pub fn renew_before(mut self, margin: Duration) -> Self {
        self.renew_before = margin;
        self
    }

    /// Catalog service type to look up (default `network`).
    pub fn service_type(mut self, service_type: impl Into<String>) -> Self {
        self.service_type = service_type.into();
        self
    }

    /// Validates the options and builds the client. Does no network I/O:
    /// authentication happens on the first request (or
    /// [`Client::authenticate`]).
    pub fn build(self) -> Result<Client> {
        let o = &self.options;
        o.validate()?;
        let auth_type = o.effective_auth_type();
        let endpoint_override = o
            .endpoint
            .as_deref()
            .map(|e| service_root(e, "endpoint"))
            .transpose()?;
        let tokens_url = match (auth_type, &o.auth_url) {
            (AuthType::NoAuth, _) | (AuthType::Token, None) => None,
            (_, Some(url)) => Some(keystone::tokens_url(url)?),
            (_, None) => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http: http_client(o)?,
                auth_type,
                endpoint_override,
                tokens_url,
                session: Mutex::new(None),
                retry: RetryPolicy {
                    max_attempts: self.retry.max_attempts.max(1),
                    ..self.retry
                },
                renew_before: self.renew_before,
                service_type: self.service_type,
                counters: Counters::default(),
                options: self.options,
            }),
        })
    }
}

/// The endpoint as the root of the service: no trailing `/` and, for
/// Neutron, no trailing `/v2.0` (paths carry the version).
fn service_root(url: &str, option: &'static str) -> Result<Url, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v2.0").unwrap_or(trimmed);
    Url::parse(trimmed).map_err(|_| ConfigError::InvalidValue {
        option,
        value: url.to_owned(),
        expected: "an http:// or https:// URL",
    })
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn http_client(o: &AuthOptions) -> Result<reqwest::Client, ConfigError> {
    let timeout = o.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut b = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout));
    if let Some(ca) = &o.cafile {
        let certs = reqwest::Certificate::from_pem_bundle(&read_file(ca)?)
            .map_err(|e| ConfigError::Tls(format!("cafile {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(ConfigError::Tls(format!(
                "cafile {}: no PEM certificate found",
                ca.display()
            )));
        }
        b = b.tls_certs_only(certs);
    }
    if let Some(cert) = &o.certfile {
        let mut pem = read_file(cert)?;
        if let Some(key) = &o.keyfile {
            pem.push(b'\n');
            pem.extend(read_file(key)?);
        }
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| ConfigError::Tls(format!("certfile {}: {e}", cert.display())))?;
        b = b.identity(identity);
    } else if o.keyfile.is_some() {
        return Err(ConfigError::Tls("keyfile is set without certfile".into()));
    }
    if o.insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| ConfigError::Tls(e.to_string()))
}

/// An authenticated, retrying HTTP client for one OpenStack service
/// (Neutron by default). Cheap to clone: clones share the token, the
/// connection pool and the call counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: AuthOptions,
    auth_type: AuthType,
    endpoint_override: Option<Url>,
    tokens_url: Option<Url>,
    session: Mutex<Option<Arc<Session>>>,
    retry: RetryPolicy,
    renew_before: Duration,
    service_type: String,
    counters: Counters,
}

/// A usable token (if any) and the resolved service endpoint.
struct Session {
    token: Option<Secret>,
    endpoint: Url,
    renew_at: Option<Instant>,
}

impl Session {
    fn is_fresh(&self) -> bool {
        self.renew_at.is_none_or(|at| Instant::now() < at)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("auth_type", &self.inner.auth_type)
            .field("service_type", &self.inner.service_type)
            .field("endpoint_override", &self.inner.endpoint_override)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with default settings; see [`ClientBuilder::build`].
    pub fn new(options: AuthOptions) -> Result<Client> {
        Client::builder(options).build()
    }

    /// A builder for non-default settings.
    pub fn builder(options: AuthOptions) -> ClientBuilder {
        ClientBuilder {
            options,
            retry: RetryPolicy::default(),
            renew_before: DEFAULT_RENEW_BEFORE,
            service_type: "network".into(),
        }
    }

    /// The options the client was built with.
    pub fn options(&self) -> &AuthOptions {
        &self.inner.options
    }

    /// Requests sent so far, by method.
    pub fn calls(&self) -> CallStats {
        self.inner.counters.snapshot()
    }

    /// Replies received from the service so far as `(method, status,
    /// count)`, sorted; retries count once per reply, Keystone is excluded.
    pub fn reply_counts(&self) -> Vec<(String, u16, u64)> {
        let replies = self
            .inner
            .counters
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        replies
            .iter()
            .map(|((method, status), n)| (method.clone(), *status, *n))
            .collect()
    }

    /// Authenticates now (if needed) and returns the service endpoint.
    pub async fn endpoint(&self) -> Result<Url> {
        Ok(self.session().await?.endpoint.clone())
    }

    /// Drops any cached token and authenticates again.
    pub async fn authenticate(&self) -> Result<()> {
        let mut guard = self.inner.session.lock().await;
        *guard = Some(Arc::new(self.new_session().await?));
        Ok(())
    }

    /// Sends `request` to the service and returns its 2xx reply; any other
    /// status becomes [`Error::Api`]. Handles the token, one re-authentication
    /// on 401, and retries.
    pub async fn send(&self, request: &ApiRequest) -> Result<ApiReply> {
        let span = tracing::debug_span!(
            "openstack_request",
            method = %request.method,
            path = %request.path
        );
        self.send_inner(request).instrument(span).await
    }

    /// [`Client::send`] and decode the JSON reply.
    pub async fn send_json<T: DeserializeOwned>(&self, request: &ApiRequest) -> Result<T> {
        self.send(request).await?.json()
    }

    async fn send_inner(&self, request: &ApiRequest) -> Result<ApiReply> {
        let mut reauthenticated = false;
        loop {
            let session = self.session().await?;
            let reply = self.send_with_retries(request, &session).await?;
            if reply.status == StatusCode::UNAUTHORIZED
                && self.inner.tokens_url.is_some()
                && !reauthenticated
            {
                tracing::debug!("401 from the service: re-authenticating once");
                self.invalidate(&session).await;
                reauthenticated = true;
                continue;
            }
            if !reply.status.is_success() {
                return Err(api_error(
                    reply.status,
                    reply.request_id,
                    request.method.as_str(),
                    &request.path,
                    &reply.body,
                ));
            }
            return Ok(reply);
        }
    }

    fn url(&self, endpoint: &Url, request: &ApiRequest) -> Result<Url> {
        let raw = format!(
            "{}{}",
            endpoint.as_str().trim_end_matches('/'),
            request.path
        );
        let mut url = Url::parse(&raw)
            .map_err(|e| Error::decode(request.method.as_str(), &request.path, e))?;
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(request.query.iter());
        }
        Ok(url)
    }

    async fn send_with_retries(&self, request: &ApiRequest, session: &Session) -> Result<ApiReply> {
        let url = self.url(&session.endpoint, request)?;
        let body = match &request.body {
            Some(v) => Some(
                serde_json::to_vec(v)
                    .map_err(|e| Error::decode(request.method.as_str(), &request.path, e))?,
            ),
            None => None,
        };
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(token) = &session.token {
            headers.insert(
                HeaderName::from_static("x-auth-token"),
                token_header(token)?,
            );
        }
        for (name, value) in &request.headers {
            headers.insert(name.clone(), value.clone());
        }
        let attempt = Attempt {
            method: &request.method,
            path: &request.path,
            idempotent: request.is_idempotent(),
            is_auth: false,
        };
        self.execute(&attempt, || {
            let mut rb = self
                .inner
                .http
                .request(request.method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            rb
        })
        .await
    }

    /// Runs one logical request with retries; returns the reply whatever its
    /// status, or the last transport error.
    async fn execute<F>(&self, a: &Attempt<'_>, build: F) -> Result<ApiReply>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let retry = self.inner.retry;
        let mut attempt = 1;
        loop {
            let last = attempt >= retry.max_attempts;
            if a.is_auth {
                self.inner.counters.auth.fetch_add(1, Ordering::Relaxed);
            } else {
                self.inner.counters.count(a.method);
            }
            let started = Instant::now();
            let outcome = match build().send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let request_id = request_id(resp.headers());
                    let subject_token = a
                        .is_auth
                        .then(|| resp.headers().get("x-subject-token"))
                        .flatten()
                        .and_then(|v| v.to_str().ok())
                        .map(Secret::from);
                    match resp.bytes().await {
                        Ok(body) => Ok((status, request_id, subject_token, body.to_vec())),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            match outcome {
                Ok((status, request_id, subject_token, body)) => {
                    if !a.is_auth {
                        self.inner.counters.count_reply(a.method, status);
                    }
                    tracing::debug!(
                        method = %a.method,
                        path = a.path,
                        status = status.as_u16(),
                        request_id = request_id.as_deref().unwrap_or("-"),
                        elapsed_ms,
                        attempt,
                        "reply"
                    );
                    if !last && a.idempotent && is_retryable_status(status) {
                        tracing::warn!(
                            method = %a.method,
                            path = a.path,
                            status = status.as_u16(),
                            request_id = request_id.as_deref().unwrap_or("-"),
                            attempt,
                            "server error; retrying"
                        );
                        tokio::time::sleep(retry.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Ok(ApiReply {
                        status,
                        request_id,
                        body,
                        method: a.method.clone(),
                        path: a.path.to_owned(),
                        subject_token,
                    });
                }
                Err(e) => {
                    // A POST is only safe to resend when it never left:
                    // the connection itself could not be made.
                    let retryable = a.idempotent || e.is_connect();
                    tracing::debug!(
                        method = %a.method,
                        path = a.path,
                        error = %e,
                        elapsed_ms,
                        attempt,
                        "transport error"
                    );
                    if !last && retryable {
                        tracing::warn!(
                            method = %a.method,
                            path = a.path,
                            error = %e,
                            attempt,
                            "transport error; retrying"
                        );
                        tokio::time::sleep(retry.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::transport(a.method.as_str(), a.path, e));
                }
            }
        }
    }

    /// The current session, authenticating when there is none or the token
    /// is about to expire. The lock makes concurrent callers share one
    /// authentication.
    async fn session(&self) -> Result<Arc<Session>> {
        let mut guard = self.inner.session.lock().await;
        if let Some(s) = guard.as_ref().filter(|s| s.is_fresh()) {
            return Ok(s.clone());
        }
        let session = Arc::new(self.new_session().await?);
        *guard = Some(session.clone());
        Ok(session)
    }

    /// Forgets `failed` unless another task already replaced it.
    async fn invalidate(&self, failed: &Arc<Session>) {
        let mut guard = self.inner.session.lock().await;
        if guard.as_ref().is_some_and(|s| Arc::ptr_eq(s, failed)) {
            *guard = None;
        }
    }

    async fn new_session(&self) -> Result<Session> {
        let inner = &self.inner;
        let Some(tokens_url) = &inner.tokens_url else {
            // noauth, or a bare token for an explicit endpoint.
            let endpoint = inner
                .endpoint_override
                .clone()
                .ok_or(ConfigError::Missing {
                    auth_type: inner.auth_type,
                    missing: vec!["endpoint".into()],
                })?;
            let token = match inner.auth_type {
                AuthType::NoAuth => None,
                _ => inner.options.token.clone(),
            };
            return Ok(Session {
                token,
                endpoint,
                renew_at: None,
            });
        };
        let body = serde_json::to_vec(&keystone::auth_body(&inner.options))
            .map_err(|e| Error::decode("POST", AUTH_PATH, e))?;
        let attempt = Attempt {
            method: &Method::POST,
            path: AUTH_PATH,
            idempotent: false,
            is_auth: true,
        };
        let span = tracing::debug_span!("keystone_auth", auth_type = %inner.auth_type);
        let reply = self
            .execute(&attempt, || {
                inner
                    .http
                    .post(tokens_url.clone())
                    .header(ACCEPT, "application/json")
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .instrument(span)
            .await?;
        if !reply.status.is_success() {
            return Err(api_error(
                reply.status,
                reply.request_id,
                "POST",
                AUTH_PATH,
                &reply.body,
            ));
        }
        let info = keystone::parse_token_reply(&reply.body)
            .map_err(|e| Error::decode("POST", AUTH_PATH, e))?;
        let token = reply_token(&reply)?;
        let endpoint = match &inner.endpoint_override {
            Some(e) => e.clone(),
            None => {
                let interface = inner.options.effective_interface();
                let region = inner.options.region_name.as_deref();
                let url = keystone::find_endpoint(
                    &info.catalog,
                    &inner.service_type,
                    interface.as_str(),
                    region,
                )
                .ok_or_else(|| Error::EndpointNotFound {
                    service_type: inner.service_type.clone(),
                    interface: interface.to_string(),
                    region: region.map(str::to_owned),
                })?;
                service_root(url, "catalog endpoint")?
            }
        };
        tracing::debug!(endpoint = %endpoint, lifetime_s = info.lifetime.map(|l| l.as_secs()), "authenticated");
        let renew_at = info
            .lifetime
            .map(|l| Instant::now() + l.saturating_sub(inner.renew_before));
        Ok(Session {
            token: Some(token),
            endpoint,
            renew_at,
        })
    }
}

struct Attempt<'a> {
    method: &'a Method,
    path: &'a str,
    idempotent: bool,
    /// A Keystone token request (counted apart, token header kept).
    is_auth: bool,
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

fn token_header(token: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
        Error::Config(ConfigError::InvalidValue {
            option: "token",
            value: "***".into(),
            expected: "a token of visible ASCII characters",
        })
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn reply_token(reply: &ApiReply) -> Result<Secret> {
    reply
        .subject_token
        .clone()
        .ok_or_else(|| Error::InvalidAuthReply("no X-Subject-Token header".into()))
}
