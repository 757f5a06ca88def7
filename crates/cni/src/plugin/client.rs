//! A blocking HTTP/1.1 client for one request on a unix socket: just
//! enough for the daemon protocol, so the plugin binary needs no async
//! runtime.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::proto::{CALL_PATH, MAX_BODY_BYTES};

/// Why a call got no HTTP reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (missing file, or refused: a stale
    /// socket left by a dead daemon).
    #[error("kuryr daemon is not running at {path}: {source}")]
    NotRunning {
        /// Socket path.
        path: PathBuf,
        /// The connect error.
        source: io::Error,
    },
    /// Connecting failed otherwise (e.g. permission denied).
    #[error("cannot connect to kuryr daemon at {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The connect error.
        source: io::Error,
    },
    /// No complete reply within the deadline.
    #[error("kuryr daemon at {path} did not answer within {timeout:?}")]
    Timeout {
        /// Socket path.
        path: PathBuf,
        /// The deadline.
        timeout: Duration,
    },
    /// The daemon closed the connection before a complete reply (it may
    /// have stopped or restarted).
    #[error("kuryr daemon at {path} closed the connection before answering")]
    Closed {
        /// Socket path.
        path: PathBuf,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error talking to kuryr daemon at {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The reply is not valid HTTP.
    #[error("malformed reply from kuryr daemon at {path}: {reason}")]
    Malformed {
        /// Socket path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// An HTTP reply: status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body bytes (de-chunked).
    pub body: Vec<u8>,
}

/// Sends `POST /cni` with `body` to the daemon at `socket` and waits at
/// most `timeout` (connect, send and receive together) for the reply.
pub fn post(socket: &Path, body: &[u8], timeout: Duration) -> Result<HttpReply, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut stream = UnixStream::connect(socket).map_err(|source| connect_error(socket, source))?;
    let io_err = |source: io::Error| classify_io(socket, timeout, source);
    let head = format!(
        "POST {CALL_PATH} HTTP/1.1\r\nHost: kuryr\r\nUser-Agent: kuryr-cni/{}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.set_write_timeout(Some(remaining(deadline, socket, timeout)?)).map_err(io_err)?;
    stream.write_all(head.as_bytes()).map_err(io_err)?;
    stream.write_all(body).map_err(io_err)?;
    stream.flush().map_err(io_err)?;

    let mut received = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(reply) = parse_reply(&received)
            .map_err(|reason| ClientError::Malformed { path: socket.to_path_buf(), reason })?
        {
            return Ok(reply);
        }
        if received.len() > MAX_BODY_BYTES + 64 * 1024 {
            return Err(ClientError::Malformed {
                path: socket.to_path_buf(),
                reason: format!("reply larger than {MAX_BODY_BYTES} bytes"),
            });
        }
        stream.set_read_timeout(Some(remaining(deadline, socket, timeout)?)).map_err(io_err)?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ClientError::Closed { path: socket.to_path_buf() }),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

fn connect_error(socket: &Path, source: io::Error) -> ClientError {
    let path = socket.to_path_buf();
    match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning { path, source }
        }
        _ => ClientError::Connect { path, source },
    }
}

fn classify_io(socket: &Path, timeout: Duration, source: io::Error) -> ClientError {
    let path = socket.to_path_buf();
    match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ClientError::Timeout { path, timeout }
        }
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::UnexpectedEof => ClientError::Closed { path },
        _ => ClientError::Io { path, source },
    }
}

fn remaining(deadline: Instant, socket: &Path, timeout: Duration) -> Result<Duration, ClientError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ClientError::Timeout { path: socket.to_path_buf(), timeout })
}

/// Parses a complete reply out of `data`; `Ok(None)` while incomplete.
fn parse_reply(data: &[u8]) -> Result<Option<HttpReply>, String> {
    let Some(head_end) = find(data, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| "header is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line)?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len: usize = value.parse().map_err(|_| format!("bad Content-Length {value:?}"))?;
            if len > MAX_BODY_BYTES {
                return Err(format!("reply body of {len} bytes is too large"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let rest = &data[head_end + 4..];
    if (100..200).contains(&status) {
        // An interim reply (100 Continue): skip it.
        return parse_reply(rest);
    }
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None => return Ok(None),
        }
    } else if let Some(len) = content_length {
        if rest.len() < len {
            return Ok(None);
        }
        rest[..len].to_vec()
    } else {
        return Err("reply has neither Content-Length nor chunked encoding".into());
    };
    Ok(Some(HttpReply { status, body }))
}

fn parse_status_line(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let (Some(proto), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("bad status line {line:?}"));
    };
    if !proto.starts_with("HTTP/1.") {
        return Err(format!("bad status line {line:?}"));
    }
    code.parse().map_err(|_| format!("bad status line {line:?}"))
}

/// Decodes a chunked body; `Ok(None)` while incomplete.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err("chunked reply body is too large".into());
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_reply() {
        let data =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let reply = parse_reply(data).unwrap().unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"{}");
    }

    #[test]
    fn waits_for_the_whole_body() {
        let data = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{\"a\"";
        assert_eq!(parse_reply(data).unwrap(), None);
        assert_eq!(parse_reply(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
    }

    #[test]
    fn parses_chunked_reply() {
        let data = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;ext=1\r\n\":1}\r\n0\r\n\r\n";
        let reply = parse_reply(data).unwrap().unwrap();
        assert_eq!(reply.status, 503);
        assert_eq!(reply.body, br#"{"a":1}"#);
        let partial = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n";
        assert_eq!(parse_reply(partial).unwrap(), None);
    }

    #[test]
    fn skips_interim_replies() {
        let data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let reply = parse_reply(data).unwrap().unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.body.is_empty());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_reply(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_reply(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n\r\n{}").is_err());
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY_BYTES + 1);
        assert!(parse_reply(huge.as_bytes()).is_err());
    }

    #[test]
    fn missing_socket_is_not_running() {
        let path =
            std::env::temp_dir().join(format!("kuryr-cni-absent-{}.sock", std::process::id()));
        let err = post(&path, b"{}", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err}");
        assert!(err.to_string().starts_with("kuryr daemon is not running at "));
    }
}
