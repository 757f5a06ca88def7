//! Building a [`Client`]: options, TLS, the HTTP client.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Mutex;

use super::{Client, Counters, Inner, RetryPolicy};
use crate::auth::keystone;
use crate::auth::{AuthOptions, AuthType, ConfigError};
use crate::error::Result;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("kuryr-rs-openstack/", env!("CARGO_PKG_VERSION"));

/// Builds a [`Client`] with non-default retry and renewal settings.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(super) options: AuthOptions,
    pub(super) retry: RetryPolicy,
    pub(super) renew_before: Duration,
    pub(super) service_type: String,
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
        let endpoint_override =
            o.endpoint.as_deref().map(|e| service_root(e, "endpoint")).transpose()?;
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
                retry: RetryPolicy { max_attempts: self.retry.max_attempts.max(1), ..self.retry },
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
pub(super) fn service_root(url: &str, option: &'static str) -> Result<Url, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v2.0").unwrap_or(trimmed);
    Url::parse(trimmed).map_err(|_| ConfigError::InvalidValue {
        option,
        value: url.to_owned(),
        expected: "an http:// or https:// URL",
    })
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::File { path: path.to_path_buf(), message: e.to_string() })
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
