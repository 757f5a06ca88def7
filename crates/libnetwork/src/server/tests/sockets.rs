//! The server on real sockets: a private unix socket and loopback TCP,
//! spoken to as Docker speaks (HTTP/1.1, chunked replies).

use super::*;
use kuryr_wire::testutil::TempDir;

// ---------- real sockets ----------

/// Writes `request` and reads one HTTP/1.1 response (by Content-Length).
async fn http_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> (u16, Vec<(String, String)>, Value) {
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before headers");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("content-length");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed in body");
        body.extend_from_slice(&chunk[..n]);
    }
    (status, headers, serde_json::from_slice(&body).unwrap())
}

/// A request as dockerd writes it on the plugin socket.
fn docker_request(host: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nAccept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Bounds a wait so that a hang fails the test instead of blocking CI.
async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

#[tokio::test]
async fn serves_on_a_unix_socket_with_mode_0600_and_removes_it() {
    let dir = TempDir::new("sockets");
    let path = dir.join("plugins").join("kuryr.sock");
    let socket = Listener::unix(&path).await.unwrap();
    assert_eq!(socket.path(), Some(path.as_path()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    let driver = Arc::new(FakeDriver::default());
    driver.reply_with(
        PluginCall::NetworkGetCapabilities,
        json!({"Scope": "local", "ConnectivityScope": "local"}),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(socket.serve(router(driver.clone()), async {
        let _ = stopped.await;
    }));

    // One keep-alive connection, as dockerd uses.
    let mut conn = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (status, headers, json) =
        http_exchange(&mut conn, &docker_request("", "/Plugin.Activate", "")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some(PLUGIN_CONTENT_TYPE));
    assert_eq!(json, json!({"Implements": ["NetworkDriver", "IpamDriver"]}));
    let (status, _, json) =
        http_exchange(&mut conn, &docker_request("", "/NetworkDriver.GetCapabilities", "")).await;
    assert_eq!((status, json), (200, json!({"Scope": "local", "ConnectivityScope": "local"})));
    let body = format!("{{\"NetworkID\":\"{NET}\"}}\n");
    let (status, _, json) =
        http_exchange(&mut conn, &docker_request("", "/NetworkDriver.DeleteNetwork", &body)).await;
    assert_eq!((status, json), (200, json!({})));
    let (status, _, json) =
        http_exchange(&mut conn, &docker_request("", "/NetworkDriver.Nope", "{}")).await;
    assert_eq!((status, json), (404, json!({"Err": "unknown plugin call /NetworkDriver.Nope"})));
    assert_eq!(driver.calls().len(), 2);

    // Shutdown closes the idle connection, returns, and removes the socket.
    stop.send(()).unwrap();
    bounded("server shutdown", server).await.unwrap().unwrap();
    assert!(!path.exists(), "socket not removed");
}

#[tokio::test]
async fn serves_on_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::new(FakeDriver::default()));
    let server = tokio::spawn(Listener::from(listener).serve(app, async {
        let _ = stopped.await;
    }));
    let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
    let (status, headers, json) =
        http_exchange(&mut conn, &docker_request(&address.to_string(), "/Plugin.Activate", ""))
            .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some(PLUGIN_CONTENT_TYPE));
    assert_eq!(json["Implements"][1], "IpamDriver");
    stop.send(()).unwrap();
    bounded("server shutdown", server).await.unwrap().unwrap();
}

fn metric(prefix: &str) -> f64 {
    kuryr_core::metrics::global().sample(prefix)
}

#[tokio::test]
async fn calls_are_timed_and_errors_counted_by_status_class() {
    let activated = "kuryr_operation_duration_seconds_count{operation=\"Plugin.Activate\"}";
    let bad =
        "kuryr_operation_errors_total{operation=\"NetworkDriver.CreateNetwork\",kind=\"4xx\"}";
    let unknown = "kuryr_operation_errors_total{operation=\"unknown\",kind=\"4xx\"}";
    let before = (metric(activated), metric(bad), metric(unknown));
    let (_, app) = app();
    assert_eq!(post(&app, "/Plugin.Activate", "").await.status, StatusCode::OK);
    let reply = post(&app, "/NetworkDriver.CreateNetwork", "{").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = post(&app, "/No.Such", "{}").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // Other tests record into the same registry concurrently: compare at least.
    assert!(metric(activated) >= before.0 + 1.0);
    assert!(metric(bad) >= before.1 + 1.0);
    assert!(metric(unknown) >= before.2 + 1.0);
}

#[tokio::test]
async fn every_call_rejects_bodies_that_are_not_its_object() {
    let (driver, app) = app();
    // Beyond serde_json's recursion limit (128).
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let bodies: Vec<Vec<u8>> = vec![
        b"[]".to_vec(),
        b"42".to_vec(),
        b"\"text\"".to_vec(),
        b"true".to_vec(),
        b"{\"NetworkID\": ".to_vec(),
        b"\"\xff\xfe\"".to_vec(),
        deep.into_bytes(),
    ];
    for call in PluginCall::ALL.into_iter().filter(|c| c.has_payload()) {
        for body in &bodies {
            let reply = send(&app, "POST", call.path(), body.clone()).await;
            assert_error(
                &reply,
                StatusCode::BAD_REQUEST,
                &format!("{}: invalid request body", call.path()),
            );
        }
    }
    assert!(driver.calls().is_empty(), "{:?}", driver.calls());
}
