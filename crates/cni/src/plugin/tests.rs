use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread::JoinHandle;

use serde_json::json;

use super::*;
use kuryr_wire::testutil::{fixture, TempDir};

struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    #[track_caller]
    fn assert_error(&self, code: u32, msg_part: &str) -> Value {
        assert_eq!(self.status, 1, "stdout: {}", self.stdout);
        let reply = self.json();
        assert_eq!(reply["code"], code, "{reply}");
        let msg = reply["msg"].as_str().unwrap();
        assert!(msg.contains(msg_part), "{msg:?} lacks {msg_part:?}");
        assert!(self.stderr.starts_with("kuryr-cni: "), "{:?}", self.stderr);
        reply
    }
}

fn invoke_plugin(env: &[(&str, &str)], stdin: &str) -> Outcome {
    let vars: HashMap<String, String> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut input = stdin.as_bytes();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let status = run(|name| vars.get(name).cloned(), &mut input, &mut stdout, &mut stderr);
    Outcome {
        status,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn add_env(socket: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("CNI_COMMAND", "ADD".into()),
        ("CNI_CONTAINERID", "3f2c1a9e8b7d".into()),
        ("CNI_NETNS", "/var/run/netns/blue".into()),
        ("CNI_IFNAME", "eth0".into()),
        ("CNI_PATH", "/opt/cni/bin".into()),
        ("KURYR_CNI_SOCKET", socket.display().to_string()),
    ]
}

fn with_command(env: &[(&'static str, String)], command: &str) -> Vec<(&'static str, String)> {
    env.iter()
        .map(|(k, v)| if *k == "CNI_COMMAND" { (*k, command.to_string()) } else { (*k, v.clone()) })
        .collect()
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

const CONFIG: &str = r#"{"cniVersion": "1.1.0", "name": "kuryr", "type": "kuryr-cni"}"#;

/// A one-shot daemon stand-in: accepts one connection, records the
/// request, answers with `reply` (raw bytes; `None` closes without
/// answering; `Some(b"")` never answers until the client gives up).
fn fake_daemon(socket: &Path, reply: Option<Vec<u8>>) -> JoinHandle<String> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = reader.into_inner();
        match reply {
            None => {}
            Some(bytes) if bytes.is_empty() => {
                // Hold the connection until the client hangs up.
                let _ = stream.read(&mut [0u8; 1]);
            }
            Some(bytes) => stream.write_all(&bytes).unwrap(),
        }
        head + &String::from_utf8(body).unwrap()
    })
}

fn http(status: &str, body: &str) -> Option<Vec<u8>> {
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[test]
fn version_is_answered_locally() {
    let out = invoke_plugin(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion": "1.0.0"}"#);
    assert_eq!(out.status, 0);
    assert_eq!(
        out.json(),
        json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    // Broken stdin or environment does not matter to VERSION.
    let out = invoke_plugin(
        &[("CNI_COMMAND", "VERSION"), ("CNI_ARGS", "garbage"), ("CNI_IFNAME", "x/y")],
        "not json",
    );
    assert_eq!(out.status, 0);
    assert_eq!(out.json()["cniVersion"], "1.1.0");
    assert!(out.stderr.is_empty());
}

#[test]
fn missing_command_is_error_4() {
    let out = invoke_plugin(&[], CONFIG);
    let reply = out.assert_error(4, "CNI_COMMAND is missing");
    assert_eq!(reply["cniVersion"], "1.1.0");
    assert!(reply["details"].as_str().unwrap().contains("CNI plugin"));
}

#[test]
fn environment_errors_are_stamped_with_config_version() {
    let out = invoke_plugin(
        &[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "abc")],
        r#"{"cniVersion": "0.4.0", "name": "kuryr"}"#,
    );
    let reply = out.assert_error(4, "missing for ADD: CNI_NETNS, CNI_IFNAME");
    assert_eq!(reply["cniVersion"], "0.4.0");
}

#[test]
fn stdin_errors() {
    let dir = TempDir::new("stdin");
    let env = add_env(&dir.join("absent.sock"));
    invoke_plugin(&refs(&env), "").assert_error(6, "empty network configuration");
    invoke_plugin(&refs(&env), "{\"cniVersion\": ")
        .assert_error(6, "cannot decode network configuration");
    let huge = " ".repeat(MAX_STDIN_BYTES as usize + 1);
    invoke_plugin(&refs(&env), &huge).assert_error(5, "larger than");
}

#[test]
fn config_errors_need_no_daemon() {
    let dir = TempDir::new("config");
    let env = add_env(&dir.join("absent.sock"));
    invoke_plugin(&refs(&env), r#"{"cniVersion": "1.1.0"}"#).assert_error(7, "no name");
    invoke_plugin(&refs(&env), r#"{"cniVersion": "0.2.0", "name": "n"}"#).assert_error(1, "0.2.0");
    invoke_plugin(&refs(&with_command(&env, "STATUS")), r#"{"cniVersion": "1.0.0", "name": "n"}"#)
        .assert_error(1, "STATUS is not part of CNI 1.0.0");
}

#[test]
fn absent_daemon_is_try_again_later() {
    let dir = TempDir::new("absent");
    let socket = dir.join("cni.sock");
    let env = add_env(&socket);
    for command in ["ADD", "DEL", "CHECK"] {
        let config = r#"{"cniVersion": "1.1.0", "name": "kuryr", "prevResult": {}}"#;
        let out = invoke_plugin(&refs(&with_command(&env, command)), config);
        let reply = out.assert_error(11, "kuryr daemon is not running at ");
        assert!(reply["msg"].as_str().unwrap().contains(&socket.display().to_string()));
    }
    let gc = r#"{"cniVersion": "1.1.0", "name": "kuryr", "cni.dev/valid-attachments": []}"#;
    invoke_plugin(&refs(&with_command(&env, "GC")), gc).assert_error(11, "not running");
    invoke_plugin(&refs(&with_command(&env, "STATUS")), CONFIG).assert_error(50, "not running");
}

#[test]
fn stale_socket_is_try_again_later() {
    let dir = TempDir::new("stale");
    let socket = dir.join("cni.sock");
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let env = add_env(&socket);
    invoke_plugin(&refs(&env), CONFIG).assert_error(11, "Connection refused");
    invoke_plugin(&refs(&with_command(&env, "STATUS")), CONFIG)
        .assert_error(50, "Connection refused");
}

#[test]
fn sends_one_http_request_with_the_raw_config() {
    let dir = TempDir::new("send");
    let socket = dir.join("cni.sock");
    let result = json!({"cniVersion": "1.1.0", "interfaces": [{"name": "eth0"}]});
    let daemon = fake_daemon(&socket, http("200 OK", &json!({ "result": result }).to_string()));
    let mut env = add_env(&socket);
    env.push(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web".into()));
    let config = fixture("spec-1.1.0/add-2-tuning-config.json");
    let out = invoke_plugin(&refs(&env), &config.to_string());
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert_eq!(out.json(), result);
    assert!(out.stderr.is_empty());

    let sent = daemon.join().unwrap();
    let (head, body) = sent.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /cni HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/json"));
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        json!({
            "command": "ADD",
            "container_id": "3f2c1a9e8b7d",
            "netns": "/var/run/netns/blue",
            "ifname": "eth0",
            "args": {"IgnoreUnknown": "1", "K8S_POD_NAME": "web"},
            "path": ["/opt/cni/bin"],
            "config": config
        })
    );
}

#[test]
fn commands_other_than_add_print_nothing() {
    let dir = TempDir::new("quiet");
    let socket = dir.join("cni.sock");
    let daemon = fake_daemon(&socket, http("200 OK", r#"{"result": {"ignored": true}}"#));
    let env = with_command(&add_env(&socket), "DEL");
    let out = invoke_plugin(&refs(&env), CONFIG);
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout, "");
    daemon.join().unwrap();
}

#[test]
fn daemon_errors_are_passed_through() {
    let dir = TempDir::new("errors");
    let socket = dir.join("cni.sock");
    let env = add_env(&socket);
    let error = r#"{"cniVersion": "1.1.0", "code": 3, "msg": "container unknown", "details": "no port tagged 3f2c1a9e8b7d"}"#;
    let daemon = fake_daemon(&socket, http("404 Not Found", error));
    let out = invoke_plugin(&refs(&env), CONFIG);
    let reply = out.assert_error(3, "container unknown");
    assert_eq!(reply, serde_json::from_str::<Value>(error).unwrap());
    daemon.join().unwrap();

    std::fs::remove_file(&socket).unwrap();
    let daemon = fake_daemon(&socket, http("500 Internal Server Error", "oops"));
    invoke_plugin(&refs(&env), CONFIG).assert_error(999, "HTTP 500 without a CNI error: oops");
    daemon.join().unwrap();

    std::fs::remove_file(&socket).unwrap();
    let daemon = fake_daemon(&socket, http("200 OK", "{}"));
    invoke_plugin(&refs(&env), CONFIG).assert_error(6, "ADD without a result");
    daemon.join().unwrap();

    std::fs::remove_file(&socket).unwrap();
    let daemon = fake_daemon(&socket, Some(b"SSH-2.0-nope\r\n\r\n".to_vec()));
    invoke_plugin(&refs(&env), CONFIG).assert_error(6, "malformed reply");
    daemon.join().unwrap();
}

#[test]
fn daemon_dropping_the_connection_is_try_again_later() {
    let dir = TempDir::new("drop");
    let socket = dir.join("cni.sock");
    let daemon = fake_daemon(&socket, None);
    invoke_plugin(&refs(&add_env(&socket)), CONFIG).assert_error(11, "closed the connection");
    daemon.join().unwrap();
}

#[test]
fn slow_daemon_times_out() {
    let dir = TempDir::new("slow");
    let socket = dir.join("cni.sock");
    let mut env = add_env(&socket);
    env.push(("KURYR_CNI_TIMEOUT_ADD", "0.2".into()));
    env.push(("KURYR_CNI_TIMEOUT_STATUS", "0.2".into()));
    let daemon = fake_daemon(&socket, Some(Vec::new()));
    invoke_plugin(&refs(&env), CONFIG).assert_error(11, "did not answer within 200ms");
    daemon.join().unwrap();

    std::fs::remove_file(&socket).unwrap();
    let daemon = fake_daemon(&socket, Some(Vec::new()));
    invoke_plugin(&refs(&with_command(&env, "STATUS")), CONFIG).assert_error(50, "did not answer");
    daemon.join().unwrap();
}

#[test]
fn settings_from_environment() {
    let settings = Settings::from_lookup(|_| None).unwrap();
    assert_eq!(settings, Settings::default());
    assert_eq!(settings.socket, Path::new("/run/kuryr/cni.sock"));
    assert_eq!(settings.timeouts.for_command(CniCommand::Add), Duration::from_secs(120));
    assert_eq!(settings.timeouts.for_command(CniCommand::Status), Duration::from_secs(5));

    let vars: HashMap<&str, &str> = [
        ("KURYR_CNI_SOCKET", "/tmp/x.sock"),
        ("KURYR_CNI_TIMEOUT_ADD", "300"),
        ("KURYR_CNI_TIMEOUT_DEL", "1.5"),
        ("KURYR_CNI_TIMEOUT_CHECK", ""),
        ("KURYR_CNI_TIMEOUT_GC", " 600 "),
        ("KURYR_CNI_TIMEOUT_STATUS", "2"),
    ]
    .into();
    let settings = Settings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
    assert_eq!(settings.socket, Path::new("/tmp/x.sock"));
    assert_eq!(
        settings.timeouts,
        Timeouts {
            add: Duration::from_secs(300),
            del: Duration::from_millis(1500),
            check: Duration::from_secs(60),
            gc: Duration::from_secs(600),
            status: Duration::from_secs(2),
        }
    );
    for bad in ["0", "-1", "abc", "1e400", "NaN"] {
        let err =
            Settings::from_lookup(|n| (n == "KURYR_CNI_TIMEOUT_ADD").then(|| bad.to_string()))
                .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidEnvironment, "{bad}");
        assert!(err.msg.contains("KURYR_CNI_TIMEOUT_ADD"), "{}", err.msg);
    }
}

#[test]
fn bad_timeout_is_reported_before_calling() {
    let dir = TempDir::new("badtimeout");
    let mut env = add_env(&dir.join("absent.sock"));
    env.push(("KURYR_CNI_TIMEOUT_ADD", "soon".into()));
    invoke_plugin(&refs(&env), CONFIG).assert_error(4, "invalid KURYR_CNI_TIMEOUT_ADD \"soon\"");
}
