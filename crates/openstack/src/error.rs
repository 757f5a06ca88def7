//! The crate's error type.

use std::fmt;

use reqwest::StatusCode;

use crate::auth::ConfigError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error answer from an OpenStack API (any non-2xx HTTP status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the reply.
    pub status: StatusCode,
    /// Neutron's `NeutronError.type` (e.g. `IpAddressAlreadyAllocated`) or
    /// Keystone's `error.title` (e.g. `Unauthorized`).
    pub kind: Option<String>,
    /// The human readable message, or a short excerpt of the body.
    pub message: String,
    /// Neutron's `NeutronError.detail`, when not empty.
    pub detail: Option<String>,
    /// The `x-openstack-request-id` (or `x-compute-request-id`) header.
    pub request_id: Option<String>,
    /// HTTP method of the failed request.
    pub method: String,
    /// Path of the failed request (without the query string).
    pub path: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} returned {}", self.method, self.path, self.status)?;
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The connection could not be established (refused, DNS, TLS handshake).
    #[error("{method} {path}: cannot connect: {source}")]
    Connect {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// Underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The request timed out.
    #[error("{method} {path}: timed out: {source}")]
    Timeout {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// Underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// Any other transport failure (connection reset, broken body...).
    #[error("{method} {path}: transport error: {source}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// Underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A successful reply whose body could not be decoded.
    #[error("{method} {path}: cannot decode reply: {message}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Invalid or incomplete configuration.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// Keystone's catalog has no endpoint for the wanted service.
    #[error("no {service_type} endpoint with interface {interface}{} in the service catalog", region_suffix(.region))]
    EndpointNotFound {
        /// Service type looked up (e.g. `network`).
        service_type: String,
        /// Interface looked up.
        interface: String,
        /// Region looked up, if any.
        region: Option<String>,
    },
    /// Keystone's reply lacked something the client needs (e.g. no token).
    #[error("invalid authentication reply: {0}")]
    InvalidAuthReply(String),
}

fn region_suffix(region: &Option<String>) -> String {
    match region {
        Some(r) => format!(" in region {r}"),
        None => String::new(),
    }
}

/// Defines the `is_*` predicates that test for one HTTP status.
macro_rules! status_predicates {
    ($($(#[$doc:meta])* $name:ident => $status:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> bool {
                self.status() == Some(StatusCode::$status)
            }
        )*
    };
}

impl Error {
    /// The API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        self.api().map(|e| e.status)
    }

    /// Neutron's error type (e.g. `PortNotFound`), or Keystone's error title.
    pub fn neutron_type(&self) -> Option<&str> {
        self.api().and_then(|e| e.kind.as_deref())
    }

    /// The `x-openstack-request-id` of the failed request, if known.
    pub fn request_id(&self) -> Option<&str> {
        self.api().and_then(|e| e.request_id.as_deref())
    }

    status_predicates! {
        /// 404 Not Found.
        is_not_found => NOT_FOUND,
        /// 409 Conflict.
        is_conflict => CONFLICT,
        /// 400 Bad Request.
        is_bad_request => BAD_REQUEST,
        /// 401 Unauthorized.
        is_unauthorized => UNAUTHORIZED,
        /// 403 Forbidden.
        is_forbidden => FORBIDDEN,
        /// 412 Precondition Failed (an `If-Match` revision mismatch).
        is_precondition_failed => PRECONDITION_FAILED,
    }

    /// A 5xx server error.
    pub fn is_server_error(&self) -> bool {
        self.status().is_some_and(|s| s.is_server_error())
    }

    /// The connection could not be established.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }

    /// The request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The connection failed after it was made (reset, closed early): the
    /// request's outcome is unknown.
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    pub(crate) fn transport(method: &str, path: &str, source: reqwest::Error) -> Self {
        let (method, path) = (method.to_owned(), path.to_owned());
        if source.is_connect() {
            Error::Connect { method, path, source }
        } else if source.is_timeout() {
            Error::Timeout { method, path, source }
        } else {
            Error::Transport { method, path, source }
        }
    }

    pub(crate) fn decode(method: &str, path: &str, message: impl fmt::Display) -> Self {
        Error::Decode {
            method: method.to_owned(),
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Builds an [`ApiError`] from an error reply, understanding Neutron's and
/// Keystone's error bodies and falling back to an excerpt of the raw body.
pub(crate) fn api_error(
    status: StatusCode,
    request_id: Option<String>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Error {
    let (kind, message, detail) = parse_error_body(body);
    Error::Api(Box::new(ApiError {
        status,
        kind,
        message,
        detail,
        request_id,
        method: method.to_owned(),
        path: path.to_owned(),
    }))
}

fn parse_error_body(body: &[u8]) -> (Option<String>, String, Option<String>) {
    let text = |v: Option<&serde_json::Value>| -> Option<String> {
        match v? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Null => None,
            serde_json::Value::String(_) => None,
            other => Some(other.to_string()),
        }
    };
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(ne) = value.get("NeutronError") {
            if ne.is_object() {
                return (
                    text(ne.get("type")),
                    text(ne.get("message")).unwrap_or_default(),
                    text(ne.get("detail")),
                );
            }
            // Some old paths send `{"NeutronError": "message"}`.
            return (None, text(Some(ne)).unwrap_or_default(), None);
        }
        if let Some(ke) = value.get("error").filter(|e| e.is_object()) {
            return (text(ke.get("title")), text(ke.get("message")).unwrap_or_default(), None);
        }
        if let Some(msg) = text(value.get("message")) {
            return (None, msg, None);
        }
    }
    (None, excerpt(body), None)
}

/// The first line-ish part of a non-JSON body (webob error pages, proxies).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = collapsed.chars().take(300).collect();
    if collapsed.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> Error {
        api_error(
            StatusCode::from_u16(status).unwrap(),
            Some("req-1".into()),
            "POST",
            "/v2.0/ports",
            body.as_bytes(),
        )
    }

    #[test]
    fn neutron_error_body() {
        let e = err(
            409,
            r#"{"NeutronError":{"type":"IpAddressAlreadyAllocated","message":"IP 10.0.0.5 already allocated","detail":""}}"#,
        );
        assert!(e.is_conflict());
        assert_eq!(e.neutron_type(), Some("IpAddressAlreadyAllocated"));
        assert_eq!(e.request_id(), Some("req-1"));
        let api = e.api().unwrap();
        assert_eq!(api.message, "IP 10.0.0.5 already allocated");
        assert_eq!(api.detail, None);
        assert_eq!(
            e.to_string(),
            "POST /v2.0/ports returned 409 Conflict IpAddressAlreadyAllocated: IP 10.0.0.5 already allocated (request id req-1)"
        );
    }

    #[test]
    fn keystone_error_body() {
        let e = err(
            401,
            r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#,
        );
        assert!(e.is_unauthorized());
        assert_eq!(e.neutron_type(), Some("Unauthorized"));
        assert!(e.api().unwrap().message.starts_with("The request"));
    }

    #[test]
    fn plain_text_body() {
        let e = err(503, "<html>\n  <body>Service   Unavailable</body></html>");
        assert!(e.is_server_error());
        assert_eq!(e.neutron_type(), None);
        assert_eq!(e.api().unwrap().message, "<html> <body>Service Unavailable</body></html>");
    }

    #[test]
    fn helpers_on_statuses() {
        assert!(err(404, "{}").is_not_found());
        assert!(err(403, "{}").is_forbidden());
        assert!(err(412, "{}").is_precondition_failed());
        assert!(err(400, "{}").is_bad_request());
        assert!(!err(400, "{}").is_conflict());
    }
}
