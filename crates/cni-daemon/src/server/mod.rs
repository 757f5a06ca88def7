//! The daemon side of the plugin protocol: an axum router on a unix
//! socket that validates each request, dispatches it to a [`CniHandler`]
//! and answers in the CNI shapes of the requested `cniVersion`.
//!
//! | Case | Status | Body |
//! |---|---|---|
//! | success | 200 | `{"result": ...}` (ADD) or `{}` |
//! | [`CniError`] from validation or the handler | [`ErrorCode::http_status`] | CNI error object |
//! | body not a request (error 6) | 400 | CNI error object |
//! | body over [`MAX_BODY_BYTES`] (error 5) | 413 | CNI error object |
//! | path other than `/cni` | 404 | CNI error object |
//! | method other than POST | 405 | CNI error object |

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request as HttpRequest, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use kuryr_server::{allow_post, traced};
use serde::Serialize;

use kuryr_wire::cni::proto::{
    reply_version_of, AttachmentRequest, Call, GcRequest, Request, Response, StatusRequest,
    CALL_PATH, MAX_BODY_BYTES,
};
use kuryr_wire::cni::{
    AddResult, CniArgs, CniCommand, CniError, CniVersion, ErrorCode, NetConf, VersionResult,
};

pub use kuryr_server::{App, Listener, ServeError};

/// `CNI_ARGS` keys Kuryr understands; others need `IgnoreUnknown=1`.
pub const KNOWN_ARGS: [&str; 4] = [
    CniArgs::K8S_POD_NAMESPACE,
    CniArgs::K8S_POD_NAME,
    CniArgs::K8S_POD_UID,
    CniArgs::K8S_POD_INFRA_CONTAINER_ID,
];

/// What the daemon does for each CNI command. Calls for different
/// containers may run concurrently.
///
/// Requests arrive validated ([`Request::validate`] and [`kuryr_checks`]).
/// Implement the methods with `async fn`; the futures must be `Send`.
pub trait CniHandler: Send + Sync + 'static {
    /// ADD: attach the container; the server converts the result to the
    /// request's `cniVersion`. With a `prev_result` (not first in the
    /// chain) the result must include it (see [`AddResult::append`]).
    fn add(
        &self,
        req: AttachmentRequest,
    ) -> impl Future<Output = Result<AddResult, CniError>> + Send;

    /// DEL: detach; must succeed when already gone.
    fn del(&self, req: AttachmentRequest) -> impl Future<Output = Result<(), CniError>> + Send;

    /// CHECK: verify the attachment against `prev_result`.
    fn check(&self, req: AttachmentRequest) -> impl Future<Output = Result<(), CniError>> + Send;

    /// GC: remove what belongs to attachments not in the valid list.
    fn gc(&self, req: GcRequest) -> impl Future<Output = Result<(), CniError>> + Send;

    /// STATUS: `Ok` when ADD can be serviced, else error 50 or 51.
    fn status(&self, req: StatusRequest) -> impl Future<Output = Result<(), CniError>> + Send;
}

/// Kuryr's own rules on top of the spec's, for ADD and CHECK (DEL stays
/// permissive so cleanup always runs):
///
/// - the `neutron` section has only known, non-empty keys (error 2 / 7);
/// - no `ipam` and no `ipMasq: true`: Neutron assigns addresses and routes
///   (error 2);
/// - `CNI_ARGS` keys outside [`KNOWN_ARGS`] need `IgnoreUnknown=1`
///   (error 4).
pub fn kuryr_checks(call: &Call) -> Result<(), CniError> {
    let (Call::Add(req) | Call::Check(req)) = call else {
        return Ok(());
    };
    check_config(&req.config)?;
    req.args.check_known(&KNOWN_ARGS)
}

fn check_config(config: &NetConf) -> Result<(), CniError> {
    if let Some(neutron) = &config.neutron {
        neutron.validate()?;
    }
    if let Some(ipam) = &config.ipam {
        let value = serde_json::to_value(ipam).unwrap_or_default();
        return Err(CniError::unsupported_field(
            "ipam",
            &value,
            "kuryr-cni takes addresses, gateway and routes from the Neutron subnet; remove ipam",
        ));
    }
    if config.ip_masq == Some(true) {
        return Err(CniError::unsupported_field(
            "ipMasq",
            &serde_json::Value::Bool(true),
            "kuryr-cni does not masquerade; use Neutron routers and floating IPs",
        ));
    }
    Ok(())
}

/// The app serving `POST /cni` with `handler`. Serve it on a unix socket
/// [`Listener`] or drive it directly in tests.
pub fn router<H: CniHandler>(handler: Arc<H>) -> App {
    kuryr_server::router("CNI daemon", handler, |handler, id, request| async move {
        let span = tracing::info_span!("cni_call", id);
        traced(span, serve_call(&*handler, request), record).await
    })
}

/// What [`serve_call`] learnt for the metrics, carried in the response's
/// extensions: the CNI verb (once parsed) and the error code of a failure.
#[derive(Clone, Copy)]
struct Verb(&'static str);

#[derive(Clone, Copy)]
struct FailedWith(u32);

fn record(response: &HttpResponse, elapsed: std::time::Duration) {
    let operation = response.extensions().get::<Verb>().map_or("unknown", |verb| verb.0);
    let kind = response.extensions().get::<FailedWith>().map(|code| code.0.to_string());
    kuryr_core::metrics::global().observe(operation, elapsed, kind.as_deref());
}

async fn serve_call<H: CniHandler>(handler: &H, request: HttpRequest<Body>) -> HttpResponse {
    let mut verb = None;
    let mut response = serve_verb(handler, request, &mut verb).await;
    if let Some(verb) = verb {
        response.extensions_mut().insert(Verb(verb));
    }
    response
}

async fn serve_verb<H: CniHandler>(
    handler: &H,
    request: HttpRequest<Body>,
    verb: &mut Option<&'static str>,
) -> HttpResponse {
    let latest = CniVersion::LATEST;
    if request.uri().path() != CALL_PATH {
        let err = CniError::internal(format!(
            "unknown path {}; the kuryr CNI daemon serves POST {CALL_PATH}",
            request.uri().path()
        ));
        return error_reply(StatusCode::NOT_FOUND, &err, latest);
    }
    if request.method() != Method::POST {
        let err = CniError::internal(format!(
            "method {} not allowed on {CALL_PATH}, use POST",
            request.method()
        ));
        let mut response = error_reply(StatusCode::METHOD_NOT_ALLOWED, &err, latest);
        allow_post(&mut response);
        return response;
    }
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // serde reads a JSON array as the struct's fields in order: refuse it.
    let as_array = body.trim_ascii_start().first() == Some(&b'[');
    let decoded = if as_array {
        Err(serde::de::Error::custom("invalid type: array, expected a JSON object"))
    } else {
        serde_json::from_slice::<Request>(&body)
    };
    let parsed: Request = match decoded {
        Ok(parsed) => parsed,
        Err(e) => {
            let version = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("config").map(reply_version_of))
                .unwrap_or(latest);
            let err = CniError::decode(format!("invalid kuryr CNI request: {e}"));
            return error_reply(StatusCode::BAD_REQUEST, &err, version);
        }
    };
    let version = parsed.reply_version();
    *verb = Some(parsed.command.as_str());
    // The runtime asks STATUS every few seconds: at info it would drown
    // the attachments' lines.
    if parsed.command == CniCommand::Status {
        tracing::debug!(command = %parsed.command, "request");
    } else {
        tracing::info!(
            command = %parsed.command,
            container_id = parsed.container_id.as_deref().unwrap_or(""),
            ifname = parsed.ifname.as_deref().unwrap_or(""),
            "request"
        );
    }
    let call = match parsed.validate().and_then(|call| {
        kuryr_checks(&call)?;
        Ok(call)
    }) {
        Ok(call) => call,
        Err(e) => return cni_error_reply(&e, version),
    };
    match dispatch(handler, call).await {
        Ok(response) => ok_reply(&response),
        Err(e) => cni_error_reply(&e, version),
    }
}

async fn dispatch<H: CniHandler>(handler: &H, call: Call) -> Result<Response, CniError> {
    let result = match call {
        Call::Add(req) => {
            let version = req.version;
            let result = handler.add(req).await?;
            Some(result.to_json(version))
        }
        Call::Del(req) => handler.del(req).await.map(|()| None)?,
        Call::Check(req) => handler.check(req).await.map(|()| None)?,
        Call::Gc(req) => handler.gc(req).await.map(|()| None)?,
        Call::Status(req) => handler.status(req).await.map(|()| None)?,
        Call::Version(given) => Some(
            serde_json::to_value(VersionResult::kuryr(given.as_deref()))
                .map_err(|e| CniError::internal(format!("cannot encode VERSION: {e}")))?,
        ),
    };
    Ok(Response { result })
}

async fn read_body(request: HttpRequest<Body>) -> Result<Bytes, HttpResponse> {
    kuryr_server::read_body(request, MAX_BODY_BYTES)
        .await
        .map_err(|e| error_reply(e.status(), &CniError::io(e.to_string()), CniVersion::LATEST))
}

fn cni_error_reply(err: &CniError, version: CniVersion) -> HttpResponse {
    let status =
        StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_reply(status, err, version)
}

/// An error reply in the CNI shape; logged at warn.
fn error_reply(status: StatusCode, err: &CniError, version: CniVersion) -> HttpResponse {
    tracing::warn!(
        status = status.as_u16(),
        code = err.code.code(),
        err = %err,
        "call failed"
    );
    let body = serde_json::to_vec(&err.to_reply_for(version)).unwrap_or_else(|_| {
        format!(
            r#"{{"cniVersion":"{version}","code":{},"msg":"internal error"}}"#,
            ErrorCode::INTERNAL.code()
        )
        .into_bytes()
    });
    let mut response = json_reply(status, body);
    response.extensions_mut().insert(FailedWith(err.code.code()));
    response
}

fn ok_reply<T: Serialize>(body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_reply(StatusCode::OK, bytes),
        Err(e) => error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &CniError::internal(format!("cannot encode reply: {e}")),
            CniVersion::LATEST,
        ),
    }
}

fn json_reply(status: StatusCode, bytes: Vec<u8>) -> HttpResponse {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes)
        .into_response()
}
