//! Test helpers: the recorded Docker traffic (in crates/libnetwork's
//! fixtures) and the CNI fixtures (in crates/cni's).

use std::path::PathBuf;

use serde_json::Value;

use crate::docker::*;

/// The captures from `shared/fixtures/docker-wire/`, as copied into
/// crates/libnetwork.
pub const FIXTURES: [(&str, &str); 3] = [
    (
        "docker-20.10-requests.jsonl",
        include_str!("../../libnetwork/tests/fixtures/docker-wire/docker-20.10-requests.jsonl"),
    ),
    (
        "docker-20.10-raw-session.jsonl",
        include_str!("../../libnetwork/tests/fixtures/docker-wire/docker-20.10-raw-session.jsonl"),
    ),
    (
        "docker-20.10-ovs-session.jsonl",
        include_str!("../../libnetwork/tests/fixtures/docker-wire/docker-20.10-ovs-session.jsonl"),
    ),
];

/// Docker-to-plugin calls in the captures (lines that are not `exec`).
pub const FIXTURE_EXCHANGES: usize = 69;

/// One recorded Docker call and the reply Docker accepted.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `file:line`, for assertion messages.
    pub at: String,
    pub path: String,
    /// The parsed request as recorded (`null` for an empty body).
    pub req: Value,
    /// The exact request body bytes Docker sent.
    pub body: Vec<u8>,
    /// Recorded `Content-Length`, where the capture has it.
    pub clen: Option<usize>,
    /// Recorded raw body (possibly cut short by the recorder).
    pub raw: Option<String>,
    pub code: u16,
    pub resp: Value,
}

/// Every Docker call of every capture, in order.
pub fn exchanges() -> Vec<Exchange> {
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
            let body =
                if req.is_null() { Vec::new() } else { go_body(&raw_json_member(line, "req")) };
            out.push(Exchange {
                path: v["path"].as_str().expect("path").to_owned(),
                req,
                body,
                clen: v.get("clen").and_then(Value::as_u64).map(|n| n as usize),
                raw: v.get("raw").and_then(Value::as_str).map(str::to_owned),
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
pub fn strip_empty(v: &Value) -> Value {
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

/// The JSON of a parsed request's payload (`null` for calls without one).
pub fn request_json(request: &Request) -> Value {
    serde_json::to_value(request).expect("a parsed request serializes")
}

/// Path of a file under crates/cni's `tests/fixtures/`.
pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cni/tests/fixtures").join(rel)
}

/// A JSON fixture under `tests/fixtures/`.
pub fn fixture(rel: &str) -> Value {
    let path = fixture_path(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every fixture file name in `tests/fixtures/<dir>`, sorted.
pub fn fixture_names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory whose name carries `tag`.
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kuryr-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        Self(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
