//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 for the reliability
//! tests: it sits between Kuryr and the real Neutron (or Keystone) and,
//! per request, passes it on or injects a fault chosen by rules that match
//! on method and path prefix. Every connection carries one request
//! (`Connection: close` both ways), which keeps the proxy simple and lets a
//! fault hit exactly one request.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward it to the upstream unchanged.
    Pass,
    /// Answer with this status and JSON body; the upstream never sees it.
    Status(u16, String),
    /// Reset the connection (RST) without answering; never forwarded.
    Reset,
    /// Hold the request this long without forwarding it, then close.
    Stall(Duration),
    /// Forward the request, then hold the reply this long before sending
    /// it (the upstream did the work; the client may have given up).
    StallReply(Duration),
    /// Forward it with `project_id` set in each port of a `POST /v2.0/ports`
    /// body, so the port counts against that project's quota.
    SetProject(String),
}

impl Fault {
    /// A 500 with Neutron's error shape.
    pub fn neutron_500() -> Fault {
        Fault::Status(
            500,
            neutron_error(
                "HTTPInternalServerError",
                "Request Failed: internal server error while processing your request.",
            ),
        )
    }

    /// A 409 with Neutron's error shape.
    pub fn neutron_409(kind: &str, message: &str) -> Fault {
        Fault::Status(409, neutron_error(kind, message))
    }

    /// The 401 Neutron answers for an expired or revoked token.
    pub fn unauthorized() -> Fault {
        Fault::Status(
            401,
            r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
                .into(),
        )
    }
}

/// `{"NeutronError": {"type", "message", "detail"}}`.
pub fn neutron_error(kind: &str, message: &str) -> String {
    serde_json::json!({"NeutronError": {"type": kind, "message": message, "detail": ""}})
        .to_string()
}

#[derive(Debug)]
struct Rule {
    method: String,
    path_prefix: String,
    fault: Fault,
    /// Applications left; `None` means every time.
    remaining: Option<u32>,
    hits: u32,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// `METHOD path -> outcome` of every request, in order.
    log: Vec<String>,
}

/// The real Neutron's address (`OS_ENDPOINT`, else `OS_NEUTRON_ENDPOINT`,
/// from `scripts/stack env`; else the stack's default): a proxy's upstream.
pub fn neutron_addr() -> SocketAddr {
    let url = std::env::var("OS_ENDPOINT")
        .or_else(|_| std::env::var("OS_NEUTRON_ENDPOINT"))
        .unwrap_or_else(|_| "http://127.0.0.1:9696".into());
    let host = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
    host.parse().unwrap_or_else(|e| panic!("Neutron endpoint {url}: {e}"))
}

/// A rule as the fault tests write them, the arguments of
/// [`FaultProxy::add`]: method, path prefix, fault, times.
pub type FaultRule = (&'static str, &'static str, Fault, Option<u32>);

/// The rule: `fault` for every `method` request under `path_prefix`.
pub fn every(method: &'static str, path_prefix: &'static str, fault: Fault) -> FaultRule {
    (method, path_prefix, fault, None)
}

/// The rule: `fault` for the first `method` request under `path_prefix`
/// only.
pub fn once(method: &'static str, path_prefix: &'static str, fault: Fault) -> FaultRule {
    (method, path_prefix, fault, Some(1))
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    /// Where the proxy listens (loopback).
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the proxy");
        let state = Arc::new(Mutex::new(State::default()));
        let listener =
            rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("binding the proxy on loopback");
        let addr = listener.local_addr().expect("proxy address");
        let st = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream, st).await;
                });
            }
        });
        FaultProxy { addr, state, rt: Some(rt) }
    }

    /// The proxy as a Neutron endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (after the existing ones; the first match wins).
    /// `times`: how many requests it applies to, `None` for all. Returns
    /// its index for [`FaultProxy::hits`].
    pub fn add(&self, method: &str, path_prefix: &str, fault: Fault, times: Option<u32>) -> usize {
        let mut st = self.lock();
        st.rules.push(Rule {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            fault,
            remaining: times,
            hits: 0,
        });
        st.rules.len() - 1
    }

    /// [`FaultProxy::add`] for each rule, in order: their indexes.
    pub fn add_all(&self, rules: &[FaultRule]) -> Vec<usize> {
        rules
            .iter()
            .map(|(method, path_prefix, fault, times)| {
                self.add(method, path_prefix, fault.clone(), *times)
            })
            .collect()
    }

    /// Removes every rule: all requests pass again.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many requests rule `index` caught.
    pub fn hits(&self, index: usize) -> u32 {
        self.lock().rules.get(index).map_or(0, |r| r.hits)
    }

    /// `METHOD path -> outcome` of every request so far.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The first rule matching the request that still applies, counted.
fn pick(state: &Mutex<State>, method: &str, path: &str) -> Fault {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let fault = st
        .rules
        .iter_mut()
        .find(|r| r.method == method && matches(&r.path_prefix, path) && r.remaining != Some(0))
        .map(|r| {
            r.hits += 1;
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            r.fault.clone()
        })
        .unwrap_or(Fault::Pass);
    let outcome = match &fault {
        Fault::Pass => "pass".to_string(),
        Fault::Status(code, _) => format!("{code}"),
        Fault::Reset => "reset".to_string(),
        Fault::Stall(d) => format!("stall {d:?}"),
        Fault::StallReply(d) => format!("stall reply {d:?}"),
        Fault::SetProject(p) => format!("project {p}"),
    };
    st.log.push(format!("{method} {path} -> {outcome}"));
    fault
}

/// Whether `path` starts with `pattern`, where `*` in the pattern stands
/// for one path segment (`/v2.0/ports/*/tags`).
fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let got: Vec<&str> = path.split('/').collect();
    if got.len() < pat.len() {
        return false;
    }
    let last = pat.len() - 1;
    pat.iter()
        .zip(&got)
        .enumerate()
        .all(|(i, (p, g))| *p == "*" && !g.is_empty() || p == g || (i == last && g.starts_with(p)))
}

/// One HTTP message head and body.
struct Message {
    /// Request line or status line.
    first: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The message with `Connection: close` and the body's length.
    fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.first);
        for (n, v) in &self.headers {
            let skip = ["connection", "content-length", "transfer-encoding", "keep-alive"];
            if !skip.iter().any(|s| n.eq_ignore_ascii_case(s)) {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads one message; `no_body` for replies to HEAD and 1xx/204/304.
async fn read_message(stream: &mut TcpStream, is_reply: bool) -> std::io::Result<Message> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed before the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut msg = Message { first, headers, body: buf[head_end + 4..].to_vec() };
    let status: Option<u16> =
        is_reply.then(|| msg.first.split_whitespace().nth(1)?.parse().ok()).flatten();
    if matches!(status, Some(s) if s < 200 || s == 204 || s == 304) {
        msg.body.clear();
        return Ok(msg);
    }
    if let Some(len) = msg.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while msg.body.len() < len {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            msg.body.extend_from_slice(&chunk[..n]);
        }
        msg.body.truncate(len);
    } else if msg.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        while find(&msg.body, b"0\r\n\r\n").is_none() {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            msg.body.extend_from_slice(&chunk[..n]);
        }
        msg.body = dechunk(&msg.body);
    } else if is_reply {
        stream.read_to_end(&mut msg.body).await?;
    }
    Ok(msg)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            break;
        };
        let start = eol + 2;
        let end = (start + size).min(raw.len());
        out.extend_from_slice(&raw[start..end]);
        raw = raw.get(end + 2..).unwrap_or_default();
    }
    out
}

/// Puts `project_id` in every port of a ports POST body.
fn set_project(body: &[u8], project: &str) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    if let Some(port) = v.get_mut("port").and_then(|p| p.as_object_mut()) {
        port.insert("project_id".into(), project.into());
    }
    if let Some(ports) = v.get_mut("ports").and_then(|p| p.as_array_mut()) {
        for port in ports.iter_mut().filter_map(|p| p.as_object_mut()) {
            port.insert("project_id".into(), project.into());
        }
    }
    v.to_string().into_bytes()
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut req = read_message(&mut client, false).await?;
    let mut parts = req.first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let fault = pick(&state, &method, &path);
    let mut reply_delay = None;
    match fault {
        Fault::Pass => {}
        Fault::Status(code, body) => {
            let reply = Message {
                first: format!("HTTP/1.1 {code} Injected"),
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("X-Openstack-Request-Id".into(), "req-fault-proxy".into()),
                ],
                body: body.into_bytes(),
            };
            client.write_all(&reply.encode()).await?;
            return client.shutdown().await;
        }
        Fault::Reset => {
            // SO_LINGER 0: close() sends RST instead of FIN.
            #[allow(deprecated)]
            client.set_linger(Some(Duration::ZERO))?;
            drop(client);
            return Ok(());
        }
        Fault::Stall(d) => {
            // Hold the connection; stop early when the client gives up.
            let mut byte = [0u8; 1];
            let _ = tokio::time::timeout(d, client.read(&mut byte)).await;
            return Ok(());
        }
        Fault::StallReply(d) => reply_delay = Some(d),
        Fault::SetProject(project) => req.body = set_project(&req.body, &project),
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&req.encode()).await?;
    let reply = read_message(&mut up, true).await?;
    if let Some(d) = reply_delay {
        tokio::time::sleep(d).await;
    }
    client.write_all(&reply.encode()).await?;
    client.shutdown().await
}
