//! A request to the service and its successful reply.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::Secret;

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
        ApiRequest { method, path: path.into(), query: Vec::new(), body: None, headers: Vec::new() }
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

    pub(super) fn is_idempotent(&self) -> bool {
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
    pub(super) method: Method,
    pub(super) path: String,
    /// Keystone's `X-Subject-Token`, kept only for token requests.
    pub(super) subject_token: Option<Secret>,
}

impl ApiReply {
    /// Decodes the JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::decode(self.method.as_str(), &self.path, e))
    }
}
