//! The Keystone session: a token (if any) and the service endpoint,
//! renewed before it expires.

use std::sync::Arc;
use std::time::Instant;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use tracing::Instrument;

use super::builder::service_root;
use super::retry::Attempt;
use super::{ApiReply, Client};
use crate::auth::keystone;
use crate::auth::{AuthType, ConfigError};
use crate::error::{api_error, Error, Result};
use crate::Secret;

const AUTH_PATH: &str = "/v3/auth/tokens";

/// A usable token (if any) and the resolved service endpoint.
pub(super) struct Session {
    pub(super) token: Option<Secret>,
    pub(super) endpoint: reqwest::Url,
    renew_at: Option<Instant>,
}

impl Session {
    fn is_fresh(&self) -> bool {
        self.renew_at.is_none_or(|at| Instant::now() < at)
    }
}

impl Client {
    /// The current session, authenticating when there is none or the token
    /// is about to expire. The lock makes concurrent callers share one
    /// authentication.
    pub(super) async fn session(&self) -> Result<Arc<Session>> {
        let mut guard = self.inner.session.lock().await;
        if let Some(s) = guard.as_ref().filter(|s| s.is_fresh()) {
            return Ok(s.clone());
        }
        let session = Arc::new(self.new_session().await?);
        *guard = Some(session.clone());
        Ok(session)
    }

    /// Forgets `failed` unless another task already replaced it.
    pub(super) async fn invalidate(&self, failed: &Arc<Session>) {
        let mut guard = self.inner.session.lock().await;
        if guard.as_ref().is_some_and(|s| Arc::ptr_eq(s, failed)) {
            *guard = None;
        }
    }

    pub(super) async fn new_session(&self) -> Result<Session> {
        let inner = &self.inner;
        let Some(tokens_url) = &inner.tokens_url else {
            // noauth, or a bare token for an explicit endpoint.
            let endpoint = inner.endpoint_override.clone().ok_or(ConfigError::Missing {
                auth_type: inner.auth_type,
                missing: vec!["endpoint".into()],
            })?;
            let token = match inner.auth_type {
                AuthType::NoAuth => None,
                _ => inner.options.token.clone(),
            };
            return Ok(Session { token, endpoint, renew_at: None });
        };
        let body = serde_json::to_vec(&keystone::auth_body(&inner.options))
            .map_err(|e| Error::decode("POST", AUTH_PATH, e))?;
        let attempt =
            Attempt { method: &Method::POST, path: AUTH_PATH, idempotent: false, is_auth: true };
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
            return Err(api_error(reply.status, reply.request_id, "POST", AUTH_PATH, &reply.body));
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
        let renew_at = info.lifetime.map(|l| Instant::now() + l.saturating_sub(inner.renew_before));
        Ok(Session { token: Some(token), endpoint, renew_at })
    }
}

fn reply_token(reply: &ApiReply) -> Result<Secret> {
    reply
        .subject_token
        .clone()
        .ok_or_else(|| Error::InvalidAuthReply("no X-Subject-Token header".into()))
}
