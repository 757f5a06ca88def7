//! Test helpers: the recorded Docker traffic and a recording fake driver.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::{Driver, DriverError, DriverResult};
use crate::wire::*;

/// The captures from `shared/fixtures/docker-wire/`, copied into the crate.
pub(crate) const FIXTURES: [(&str, &str); 3] = [
    (
        "docker-20.10-requests.jsonl",
        include_str!("../tests/fixtures/docker-wire/docker-20.10-requests.jsonl"),
    ),
    (
        "docker-20.10-raw-session.jsonl",
        include_str!("../tests/fixtures/docker-wire/docker-20.10-raw-session.jsonl"),
    ),
    (
        "docker-20.10-ovs-session.jsonl",
        include_str!("../tests/fixtures/docker-wire/docker-20.10-ovs-session.jsonl"),
    ),
];

/// Docker-to-plugin calls in the captures (lines that are not `exec`).
pub(crate) const FIXTURE_EXCHANGES: usize = 69;

/// One recorded Docker call and the reply Docker accepted.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// `file:line`, for assertion messages.
    pub at: String,
    pub path: String,
    /// The parsed request as recorded (`null` for an empty body).
    pub req: Value,
    /// The exact request body bytes Docker sent.
    pub body: Vec<u8>,
    pub code: u16,
    pub resp: Value,
}

/// Every Docker call of every capture, in order.
pub(crate) fn exchanges() -> Vec<Exchange> {
    let mut out = Vec::new();
    for (file, text) in FIXTURES {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{file}:{}", n + 1);
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}"));
            if v.get("exec").is_some() {
                continue;
            }
            let req = v["req"].clone();
            let body = if req.is_null() {
                Vec::new()
            } else {
                go_body(&raw_json_member(line, "req"))
            };
            out.push(Exchange {
                path: v["path"].as_str().expect("path").to_owned(),
                req,
                body,
                code: v["code"].as_u64().expect("code") as u16,
                resp: v["resp"].clone(),
                at,
            });
        }
    }
    out
}

/// The source text of the object member `key` of a one-line JSON object,
/// keeping the recorder's key order (which is Go's encoding order).
fn raw_json_member(line: &str, key: &str) -> String {
    let marker = format!("\"{key}\": ");
    let start = line.find(&marker).expect("member") + marker.len();
    let bytes = line.as_bytes();
    let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return line[start..=i].to_owned();
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced member {key}");
}

/// Re-encodes recorder JSON text (Python's `", "`/`": "` separators) the
/// way Go's `json.Encoder` wrote it: compact, with a trailing newline.
fn go_body(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 1);
    let (mut in_str, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_str {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
        } else if b == b'"' {
            in_str = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    out.push(b'\n');
    out
}

/// Drops `null`, `""`, `[]` and `{}` (recursively): Go's zero values, which
/// Docker sends and our replies omit.
pub(crate) fn strip_empty(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), strip_empty(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_empty).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A driver that records every call and answers with canned replies.
#[derive(Default)]
pub(crate) struct FakeDriver {
    calls: Mutex<Vec<(PluginCall, Value)>>,
    replies: Mutex<HashMap<PluginCall, Result<Value, DriverError>>>,
}

impl FakeDriver {
    /// Answer `call` with `reply` (the JSON of its response type).
    pub fn reply_with(&self, call: PluginCall, reply: Value) {
        self.replies.lock().unwrap().insert(call, Ok(reply));
    }

    /// Fail `call` with `err`.
    pub fn fail_with(&self, call: PluginCall, err: DriverError) {
        self.replies.lock().unwrap().insert(call, Err(err));
    }

    /// Calls so far, with the JSON of their typed request.
    pub fn calls(&self) -> Vec<(PluginCall, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn record<T: Serialize>(&self, call: PluginCall, req: &T) {
        let json = serde_json::to_value(req).expect("serialize request");
        self.calls.lock().unwrap().push((call, json));
    }

    fn canned<T: DeserializeOwned>(&self, call: PluginCall) -> DriverResult<T> {
        match self.replies.lock().unwrap().get(&call) {
            Some(Ok(v)) => Ok(serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("canned reply for {call}: {e}"))),
            Some(Err(e)) => Err(e.clone()),
            None => panic!("no canned reply for {call}"),
        }
    }

    fn canned_unit(&self, call: PluginCall) -> DriverResult<()> {
        match self.replies.lock().unwrap().get(&call) {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

impl Driver for FakeDriver {
    async fn network_capabilities(&self) -> DriverResult<NetworkCapabilities> {
        self.record(PluginCall::NetworkGetCapabilities, &Value::Null);
        self.canned(PluginCall::NetworkGetCapabilities)
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> DriverResult<()> {
        self.record(PluginCall::CreateNetwork, &req);
        self.canned_unit(PluginCall::CreateNetwork)
    }

    async fn delete_network(&self, req: DeleteNetworkRequest) -> DriverResult<()> {
        self.record(PluginCall::DeleteNetwork, &req);
        self.canned_unit(PluginCall::DeleteNetwork)
    }

    async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> DriverResult<AllocateNetworkResponse> {
        self.record(PluginCall::AllocateNetwork, &req);
        self.canned(PluginCall::AllocateNetwork)
    }

    async fn free_network(&self, req: FreeNetworkRequest) -> DriverResult<()> {
        self.record(PluginCall::FreeNetwork, &req);
        self.canned_unit(PluginCall::FreeNetwork)
    }

    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> DriverResult<CreateEndpointResponse> {
        self.record(PluginCall::CreateEndpoint, &req);
        self.canned(PluginCall::CreateEndpoint)
    }

    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> DriverResult<EndpointOperInfoResponse> {
        self.record(PluginCall::EndpointOperInfo, &req);
        self.canned(PluginCall::EndpointOperInfo)
    }

    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> DriverResult<()> {
        self.record(PluginCall::DeleteEndpoint, &req);
        self.canned_unit(PluginCall::DeleteEndpoint)
    }

    async fn join(&self, req: JoinRequest) -> DriverResult<JoinResponse> {
        self.record(PluginCall::Join, &req);
        self.canned(PluginCall::Join)
    }

    async fn leave(&self, req: LeaveRequest) -> DriverResult<()> {
        self.record(PluginCall::Leave, &req);
        self.canned_unit(PluginCall::Leave)
    }

    async fn discover_new(&self, req: DiscoveryNotification) -> DriverResult<()> {
        self.record(PluginCall::DiscoverNew, &req);
        self.canned_unit(PluginCall::DiscoverNew)
    }

    async fn discover_delete(&self, req: DiscoveryNotification) -> DriverResult<()> {
        self.record(PluginCall::DiscoverDelete, &req);
        self.canned_unit(PluginCall::DiscoverDelete)
    }

    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> DriverResult<()> {
        self.record(PluginCall::ProgramExternalConnectivity, &req);
        self.canned_unit(PluginCall::ProgramExternalConnectivity)
    }

    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> DriverResult<()> {
        self.record(PluginCall::RevokeExternalConnectivity, &req);
        self.canned_unit(PluginCall::RevokeExternalConnectivity)
    }

    async fn ipam_capabilities(&self) -> DriverResult<IpamCapabilities> {
        self.record(PluginCall::IpamGetCapabilities, &Value::Null);
        self.canned(PluginCall::IpamGetCapabilities)
    }

    async fn default_address_spaces(&self) -> DriverResult<AddressSpaces> {
        self.record(PluginCall::GetDefaultAddressSpaces, &Value::Null);
        self.canned(PluginCall::GetDefaultAddressSpaces)
    }

    async fn request_pool(&self, req: RequestPoolRequest) -> DriverResult<RequestPoolResponse> {
        self.record(PluginCall::RequestPool, &req);
        self.canned(PluginCall::RequestPool)
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> DriverResult<()> {
        self.record(PluginCall::ReleasePool, &req);
        self.canned_unit(PluginCall::ReleasePool)
    }

    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> DriverResult<RequestAddressResponse> {
        self.record(PluginCall::RequestAddress, &req);
        self.canned(PluginCall::RequestAddress)
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> DriverResult<()> {
        self.record(PluginCall::ReleaseAddress, &req);
        self.canned_unit(PluginCall::ReleaseAddress)
    }
}
