use super::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

/// A server that answers one `list_dbs` per connection, then hangs up.
async fn one_shot_server(listener: UnixListener, connections: usize) {
    for _ in 0..connections {
        let (stream, _) = listener.accept().await.unwrap();
        let (rd, mut wr) = stream.into_split();
        let mut lines = BufReader::new(rd).lines();
        let req: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(req["method"], "list_dbs");
        let reply = json!({"id": req["id"], "result": [DB], "error": null});
        wr.write_all(reply.to_string().as_bytes()).await.unwrap();
    }
}

#[tokio::test]
async fn reconnects_after_the_server_hangs_up() {
    let dir = std::env::temp_dir().join(format!("knp-ovsdb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sock");
    let _ = std::fs::remove_file(&path);
    let server = tokio::spawn(one_shot_server(UnixListener::bind(&path).unwrap(), 2));

    let client = OvsdbClient::new(&path).with_rpc_timeout(Duration::from_secs(5));
    client.connect().await.unwrap();
    // Let the reader notice the hang-up.
    for _ in 0..500 {
        let closed = client.conn.lock().await.as_ref().is_some_and(|c| c.is_closed());
        if closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.connect().await.unwrap();
    server.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn missing_socket_is_a_connect_error() {
    let client = OvsdbClient::new("/nonexistent/knp/db.sock");
    let err = client.connect().await.unwrap_err();
    assert!(matches!(err, Error::OvsdbConnect { .. }), "{err}");
    let err = client.delete_port(None, "tap0").await.unwrap_err();
    assert!(matches!(err, Error::OvsdbConnect { .. }), "{err}");
    // Validation happens before any I/O.
    let err = client.delete_port(None, "bad name").await.unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
}
