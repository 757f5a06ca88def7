//! HTTP dispatch of Docker plugin calls to a [`Driver`].
//!
//! Docker sends `POST /<Call>` with no `Content-Type` (so no JSON extractor
//! is used: the body is read as bytes, at most [`MAX_BODY_BYTES`]) and reads
//! the reply regardless of its content type. Every reply here carries
//! [`PLUGIN_CONTENT_TYPE`]. Errors are `{"Err": "..."}` with a non-200
//! status:
//!
//! | Case | Status |
//! |---|---|
//! | unknown path | 404 |
//! | method other than POST | 405 |
//! | body over [`MAX_BODY_BYTES`] | 413 |
//! | empty body, malformed JSON, wrong field type, missing field | 400 |
//! | [`DriverError`] | [`ErrorKind::http_status`](crate::api::ErrorKind::http_status) |

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request as HttpRequest, StatusCode};
use axum::response::{IntoResponse, Response};
use kuryr_server::{allow_post, traced};
use serde::Serialize;

use crate::api::{Driver, DriverError};
use crate::wire::{ActivateResponse, EmptyResponse, ErrorResponse, PluginCall, Request};

pub use kuryr_server::{App, Listener, ServeError};

/// Content type of every reply, as Docker's own test plugins and upstream
/// Kuryr send it. Docker does not check it.
pub const PLUGIN_CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";

/// Largest request body accepted (1 MiB); Docker's are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How much of a request body goes into the debug log.
const LOGGED_BODY_BYTES: usize = 4096;

/// The app serving every plugin call with `driver`. Serve it on a unix
/// socket or TCP [`Listener`] or drive it directly in tests.
pub fn router<D: Driver>(driver: Arc<D>) -> App {
    kuryr_server::router("Docker plugin API", driver, |driver, id, request| async move {
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!("plugin_call", id, path = %path);
        traced(span, serve_call(&*driver, &path, request), |response, elapsed| {
            record(&path, response.status(), elapsed)
        })
        .await
    })
}

/// Records the call in the process-wide metrics; unknown paths share one
/// `operation` so a scanner cannot grow the label set.
fn record(path: &str, status: StatusCode, elapsed: std::time::Duration) {
    let operation = match PluginCall::from_path(path) {
        Some(call) => call.path().trim_start_matches('/'),
        None => "unknown",
    };
    let kind = (!status.is_success()).then(|| kuryr_core::metrics::status_class(status.as_u16()));
    kuryr_core::metrics::global().observe(operation, elapsed, kind.as_deref());
}

async fn serve_call<D: Driver>(driver: &D, path: &str, request: HttpRequest<Body>) -> Response {
    let Some(call) = PluginCall::from_path(path) else {
        return error_reply(StatusCode::NOT_FOUND, format!("unknown plugin call {path}"));
    };
    if request.method() != Method::POST {
        let mut response = error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path}: method {} not allowed, use POST", request.method()),
        );
        allow_post(&mut response);
        return response;
    }
    let body = match read_body(path, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    tracing::debug!(body = %logged_body(&body), "request");
    let parsed = match Request::parse(call, &body) {
        Ok(parsed) => parsed,
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                format!("{path}: invalid request body: {e}"),
            )
        }
    };
    match dispatch(driver, parsed).await {
        Ok(response) => response,
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_reply(status, e.message)
        }
    }
}

async fn read_body(path: &str, request: HttpRequest<Body>) -> Result<Bytes, Response> {
    kuryr_server::read_body(request, MAX_BODY_BYTES)
        .await
        .map_err(|e| error_reply(e.status(), format!("{path}: {e}")))
}

fn logged_body(body: &[u8]) -> String {
    let shown = &body[..body.len().min(LOGGED_BODY_BYTES)];
    let mut text = String::from_utf8_lossy(shown).trim_end().to_owned();
    if body.len() > LOGGED_BODY_BYTES {
        text.push_str(" ...");
    }
    text
}

async fn dispatch<D: Driver>(driver: &D, request: Request) -> Result<Response, DriverError> {
    Ok(match request {
        Request::Activate => ok_reply(&ActivateResponse::kuryr()),
        Request::NetworkGetCapabilities => ok_reply(&driver.network_capabilities().await?),
        Request::CreateNetwork(req) => empty_reply(driver.create_network(req).await?),
        Request::DeleteNetwork(req) => empty_reply(driver.delete_network(req).await?),
        Request::AllocateNetwork(req) => ok_reply(&driver.allocate_network(req).await?),
        Request::FreeNetwork(req) => empty_reply(driver.free_network(req).await?),
        Request::CreateEndpoint(req) => ok_reply(&driver.create_endpoint(req).await?),
        Request::EndpointOperInfo(req) => ok_reply(&driver.endpoint_oper_info(req).await?),
        Request::DeleteEndpoint(req) => empty_reply(driver.delete_endpoint(req).await?),
        Request::Join(req) => ok_reply(&driver.join(req).await?),
        Request::Leave(req) => empty_reply(driver.leave(req).await?),
        Request::DiscoverNew(req) => empty_reply(driver.discover_new(req).await?),
        Request::DiscoverDelete(req) => empty_reply(driver.discover_delete(req).await?),
        Request::ProgramExternalConnectivity(req) => {
            empty_reply(driver.program_external_connectivity(req).await?)
        }
        Request::RevokeExternalConnectivity(req) => {
            empty_reply(driver.revoke_external_connectivity(req).await?)
        }
        Request::IpamGetCapabilities => ok_reply(&driver.ipam_capabilities().await?),
        Request::GetDefaultAddressSpaces => ok_reply(&driver.default_address_spaces().await?),
        Request::RequestPool(req) => ok_reply(&driver.request_pool(req).await?),
        Request::ReleasePool(req) => empty_reply(driver.release_pool(req).await?),
        Request::RequestAddress(req) => ok_reply(&driver.request_address(req).await?),
        Request::ReleaseAddress(req) => empty_reply(driver.release_address(req).await?),
    })
}

/// Docker's `{}` for a call that answers nothing.
fn empty_reply(_: ()) -> Response {
    ok_reply(&EmptyResponse {})
}

fn ok_reply<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_reply(StatusCode::OK, bytes),
        Err(e) => {
            error_reply(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode reply: {e}"))
        }
    }
}

/// An error reply; logged at warn with its message.
fn error_reply(status: StatusCode, message: String) -> Response {
    tracing::warn!(status = status.as_u16(), err = %message, "call failed");
    let bytes = serde_json::to_vec(&ErrorResponse { err: message })
        .unwrap_or_else(|_| br#"{"Err":"internal error"}"#.to_vec());
    json_reply(status, bytes)
}

fn json_reply(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PLUGIN_CONTENT_TYPE))], bytes)
        .into_response()
}
