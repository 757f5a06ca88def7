//! The authenticated HTTP session: tokens, endpoint, retries, counters.

//!
//! - [`builder`]: options, TLS and the HTTP client;
//! - [`session`]: the Keystone token and the service endpoint;
//! - [`retry`]: the retry policy and one request run with retries;
//! - [`request`]: the request and reply types;
//! - [`stats`]: counters of requests and replies.

mod builder;
mod request;
mod retry;
mod session;
mod stats;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tracing::Instrument;

pub use builder::ClientBuilder;
pub use request::{ApiReply, ApiRequest};
pub use retry::RetryPolicy;
pub use stats::CallStats;

use crate::auth::{AuthOptions, AuthType, ConfigError};
use crate::error::{api_error, Error, Result};
use crate::Secret;
use retry::Attempt;
use session::Session;
use stats::Counters;

const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(60);

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
        let replies = self.inner.counters.replies.lock().unwrap_or_else(|e| e.into_inner());
        replies.iter().map(|((method, status), n)| (method.clone(), *status, *n)).collect()
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
        let raw = format!("{}{}", endpoint.as_str().trim_end_matches('/'), request.path);
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
            headers.insert(HeaderName::from_static("x-auth-token"), token_header(token)?);
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
