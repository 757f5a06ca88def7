//! JSON-RPC 1.0 over a stream socket, as ovsdb-server speaks it (RFC 7047
//! section 4): concatenated JSON texts, requests matched to replies by `id`,
//! server notifications (`update`, `update2`) routed by monitor id, and
//! server `echo` requests answered.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, trace, warn};

use crate::error::{Error, Result};
use crate::ovs::proto::value_text;

/// Largest single JSON text we buffer before giving up on the connection.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

type Reply = Result<Value>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Default)]
struct State {
    pending: HashMap<u64, (String, oneshot::Sender<Reply>)>,
    monitors: HashMap<String, mpsc::UnboundedSender<Value>>,
    closed: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    writer: tokio::sync::Mutex<Writer>,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent
        // in a way that matters (worst case a lost reply, which times out).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, msg: &Value) -> Result<()> {
        let mut bytes =
            serde_json::to_vec(msg).map_err(|e| Error::OvsdbProtocol(format!("encode: {e}")))?;
        bytes.push(b'\n');
        let mut w = self.writer.lock().await;
        let res = async {
            w.write_all(&bytes).await?;
            w.flush().await
        }
        .await;
        res.map_err(|e| {
            let reason = format!("write: {e}");
            self.close(&reason);
            Error::OvsdbDisconnected { reason }
        })
    }

    fn close(&self, reason: &str) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(reason.to_string());
        }
        for (_, (_, tx)) in st.pending.drain() {
            let _ = tx.send(Err(Error::OvsdbDisconnected { reason: reason.into() }));
        }
        // Dropping the senders ends every monitor stream.
        st.monitors.clear();
    }

    async fn dispatch(&self, msg: Value) {
        let method = msg.get("method").and_then(Value::as_str).map(str::to_string);
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        match method {
            Some(m) if m == "echo" && !id.is_null() => {
                let params = msg.get("params").cloned().unwrap_or(json!([]));
                let reply = json!({"id": id, "result": params, "error": null});
                let _ = self.send(&reply).await;
            }
            Some(m) if matches!(m.as_str(), "update" | "update2") => {
                let params = msg.get("params").and_then(Value::as_array);
                let (Some(mon), Some(updates)) =
                    (params.and_then(|p| p.first()), params.and_then(|p| p.get(1)))
                else {
                    warn!(%msg, "malformed ovsdb update notification");
                    return;
                };
                let key = value_text(mon);
                let st = self.lock();
                match st.monitors.get(&key) {
                    Some(tx) => {
                        let _ = tx.send(updates.clone());
                    }
                    None => trace!(monitor = %key, "update for unknown monitor"),
                }
            }
            Some(other) => debug!(method = %other, "ignoring ovsdb notification"),
            None => {
                let Some(id) = id.as_u64() else {
                    trace!(%msg, "reply without numeric id");
                    return;
                };
                let entry = self.lock().pending.remove(&id);
                let Some((method, tx)) = entry else {
                    trace!(id, "reply for unknown or expired request");
                    return;
                };
                let error = msg.get("error").filter(|e| !e.is_null());
                let reply = match error {
                    Some(e) => Err(Error::OvsdbRpc {
                        method,
                        error: e.get("error").map(value_text).unwrap_or_else(|| value_text(e)),
                        details: e.get("details").map(value_text),
                    }),
                    None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(reply);
            }
        }
    }
}

/// One JSON-RPC connection. Dropping it stops the reader and closes the
/// socket.
pub(crate) struct RpcConn {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

impl Drop for RpcConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RpcConn {
    /// Connect to a unix socket.
    pub(crate) async fn connect(path: &Path) -> Result<Arc<Self>> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| Error::OvsdbConnect { path: path.to_path_buf(), source: e })?;
        let (rd, wr) = stream.into_split();
        Ok(Arc::new(Self::from_halves(rd, wr)))
    }

    /// Wrap any byte stream (used with socket pairs in tests).
    pub(crate) fn from_halves<R, W>(rd: R, wr: W) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            writer: tokio::sync::Mutex::new(Box::new(wr)),
            next_id: AtomicU64::new(1),
        });
        let reader = tokio::spawn(read_loop(rd, Arc::clone(&shared)));
        RpcConn { shared, reader }
    }

    /// Whether the connection is known to be broken.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Call `method` and wait for its reply, at most `timeout`.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if let Some(reason) = &st.closed {
                return Err(Error::OvsdbDisconnected { reason: reason.clone() });
            }
            st.pending.insert(id, (method.to_string(), tx));
        }
        trace!(id, method, %params, "ovsdb request");
        let request = json!({"id": id, "method": method, "params": params});
        if let Err(e) = self.shared.send(&request).await {
            self.shared.lock().pending.remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::OvsdbDisconnected {
                reason: "connection closed before the reply".into(),
            }),
            Err(_) => {
                self.shared.lock().pending.remove(&id);
                Err(Error::Timeout {
                    what: format!("ovsdb reply to {method}"),
                    timeout,
                    last: None,
                })
            }
        }
    }

    /// Route notifications for monitor `id` to the returned receiver. Register
    /// before sending the monitor request so no update can be missed.
    pub(crate) fn register_monitor(&self, id: &str) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.shared.lock();
        // On a closed connection the sender is dropped at once: the receiver
        // then reports the end of the stream.
        if st.closed.is_none() {
            st.monitors.insert(id.to_string(), tx);
        }
        rx
    }

    pub(crate) fn unregister_monitor(&self, id: &str) {
        self.shared.lock().monitors.remove(id);
    }
}

async fn read_loop<R: AsyncRead + Unpin>(mut rd: R, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let reason = loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) => break "connection closed by ovsdb-server".to_string(),
            Ok(n) => n,
            Err(e) => break format!("read: {e}"),
        };
        buf.extend_from_slice(&chunk[..n]);
        let (messages, consumed, fatal) = split_messages(&buf);
        buf.drain(..consumed);
        for msg in messages {
            shared.dispatch(msg).await;
        }
        if let Some(e) = fatal {
            break e;
        }
        if buf.len() > MAX_MESSAGE {
            break format!("message larger than {MAX_MESSAGE} bytes");
        }
    };
    debug!(%reason, "ovsdb connection ended");
    shared.close(&reason);
}

/// Parse every complete JSON text at the start of `buf`. Returns them, the
/// number of bytes consumed, and a fatal error for malformed input.
fn split_messages(buf: &[u8]) -> (Vec<Value>, usize, Option<String>) {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let mut out = Vec::new();
    let mut consumed = 0;
    loop {
        match it.next() {
            Some(Ok(v)) => {
                consumed = it.byte_offset();
                out.push(v);
            }
            Some(Err(e)) if e.is_eof() => return (out, consumed, None),
            Some(Err(e)) => {
                return (out, consumed, Some(format!("malformed JSON from ovsdb-server: {e}")))
            }
            None => return (out, it.byte_offset(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::UnixStream;

    #[test]
    fn split_handles_partial_and_concatenated() {
        let (msgs, used, err) = split_messages(br#"{"a":1}{"b":2} {"c":"#);
        assert_eq!(msgs, vec![json!({"a":1}), json!({"b":2})]);
        assert_eq!(used, 14);
        assert!(err.is_none());
        let (msgs, _, err) = split_messages(b"{\"a\":1}\n]");
        assert_eq!(msgs.len(), 1);
        assert!(err.is_some());
        let (msgs, used, err) = split_messages(b"  \n");
        assert!(msgs.is_empty() && err.is_none());
        assert_eq!(used, 3);
    }

    /// A scripted server on the other end of a socket pair.
    struct Server {
        lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        wr: tokio::net::unix::OwnedWriteHalf,
    }

    impl Server {
        async fn recv(&mut self) -> Value {
            let line = self.lines.next_line().await.unwrap().expect("client sent a line");
            serde_json::from_str(&line).unwrap()
        }
        async fn send_raw(&mut self, bytes: &[u8]) {
            self.wr.write_all(bytes).await.unwrap();
        }
    }

    fn pair() -> (RpcConn, Server) {
        let (a, b) = UnixStream::pair().unwrap();
        let (ard, awr) = a.into_split();
        let (brd, bwr) = b.into_split();
        let conn = RpcConn::from_halves(ard, awr);
        let server = Server { lines: BufReader::new(brd).lines(), wr: bwr };
        (conn, server)
    }

    #[tokio::test]
    async fn request_reply_notification_echo_and_split_frames() {
        let (conn, mut server) = pair();
        let conn = Arc::new(conn);
        let mut updates = conn.register_monitor("m1");
        let c2 = Arc::clone(&conn);
        let call = tokio::spawn(async move {
            c2.call("transact", json!(["Open_vSwitch"]), Duration::from_secs(5)).await
        });

        let req = server.recv().await;
        assert_eq!(req["method"], "transact");
        assert_eq!(req["params"], json!(["Open_vSwitch"]));
        let id = req["id"].as_u64().unwrap();

        // An echo from the server, a notification, then the reply split in
        // two writes.
        server.send_raw(br#"{"id":"echo","method":"echo","params":[]}"#).await;
        let echo = server.recv().await;
        assert_eq!(echo, json!({"id": "echo", "result": [], "error": null}));
        server
            .send_raw(br#"{"id":null,"method":"update2","params":["m1",{"Interface":{}}]}"#)
            .await;
        let reply = format!(r#"{{"id":{id},"result":[{{"count":1}}],"error":null}}"#);
        let (first, second) = reply.as_bytes().split_at(10);
        server.send_raw(first).await;
        tokio::task::yield_now().await;
        server.send_raw(second).await;

        assert_eq!(call.await.unwrap().unwrap(), json!([{"count": 1}]));
        assert_eq!(updates.recv().await.unwrap(), json!({"Interface": {}}));
    }

    #[tokio::test]
    async fn rpc_error_and_disconnect() {
        let (conn, mut server) = pair();
        let conn = Arc::new(conn);
        let c2 = Arc::clone(&conn);
        let call = tokio::spawn(async move {
            c2.call("monitor_cond", json!([]), Duration::from_secs(5)).await
        });
        let id = server.recv().await["id"].as_u64().unwrap();
        server
            .send_raw(format!(r#"{{"id":{id},"result":null,"error":{{"error":"unknown database","details":"x"}}}}"#).as_bytes())
            .await;
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::OvsdbRpc { ref method, ref error, .. } if method == "monitor_cond" && error == "unknown database"),
            "{err}"
        );

        let mut mon = conn.register_monitor("m");
        let c3 = Arc::clone(&conn);
        let pending =
            tokio::spawn(
                async move { c3.call("transact", json!([]), Duration::from_secs(5)).await },
            );
        let _ = server.recv().await;
        drop(server);
        let err = pending.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::OvsdbDisconnected { .. }), "{err}");
        assert!(mon.recv().await.is_none(), "monitor stream ends on disconnect");
        assert!(conn.is_closed());
        let err = conn.call("transact", json!([]), Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, Error::OvsdbDisconnected { .. }));
    }

    #[tokio::test]
    async fn reply_timeout_is_typed() {
        let (conn, _server) = pair();
        let err = conn.call("transact", json!([]), Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }
}
