//! End to end: the real `kuryr-cni` binary, run the way a CNI runtime runs
//! it (environment + stdin, result on stdout), against the daemon server
//! on a temporary unix socket with a fake handler.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use kuryr_cni_daemon::spec::{
    AddResult, CniError, CniVersion, ErrorCode, Interface, IpConfig, NetConfList, Route,
};
use kuryr_cni_daemon::testing::RecordingHandler;
use kuryr_cni_daemon::{router, Call, Listener};
use kuryr_wire::testutil::TempDir;
use serde_json::{json, Map, Value};

mod failures;

const BIN: &str = env!("CARGO_BIN_EXE_kuryr-cni");

/// Answers ADD with one interface in the sandbox (appended to any
/// prevResult), and fails any call whose configuration has
/// `"fail": {"code": N, "msg": "..."}`.
fn answer(call: &Call) -> Result<AddResult, CniError> {
    let fail = match call {
        Call::Add(r) | Call::Del(r) | Call::Check(r) => r.raw_config.get("fail"),
        Call::Gc(r) => r.raw_config.get("fail"),
        Call::Status(r) => r.raw_config.get("fail"),
        Call::Version(_) => None,
    };
    if let Some(f) = fail {
        return Err(CniError::new(
            ErrorCode::from_code(f["code"].as_u64().unwrap() as u32),
            f["msg"].as_str().unwrap(),
        )
        .with_details("from the fake handler"));
    }
    let Call::Add(req) = call else {
        return Ok(AddResult::default());
    };
    let mut own = AddResult::default();
    own.interfaces.push(Interface {
        name: req.ifname.clone(),
        mac: Some("fa:16:3e:11:22:33".into()),
        mtu: Some(1442),
        sandbox: req.netns.clone(),
        ..Interface::default()
    });
    own.ips.push(IpConfig::new(
        "10.10.0.5/24".parse().unwrap(),
        Some("10.10.0.1".parse().unwrap()),
        Some(0),
    ));
    own.routes.push(Route::new("0.0.0.0/0".parse().unwrap(), Some("10.10.0.1".parse().unwrap())));
    own.dns.nameservers.push("10.10.0.2".into());
    Ok(match req.prev_result.clone() {
        Some(mut prev) => {
            prev.append(own);
            prev
        }
        None => own,
    })
}

struct Daemon {
    _dir: TempDir,
    socket: PathBuf,
    handler: Arc<RecordingHandler>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), kuryr_cni_daemon::ServeError>>>,
}

impl Daemon {
    async fn start(tag: &str) -> Self {
        let dir = TempDir::new(&format!("e2e-{tag}"));
        let socket = dir.0.join("run/kuryr/cni.sock");
        let handler = Arc::new(RecordingHandler::new(answer));
        let bound = Listener::unix(&socket).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(router(handler.clone()), async {
            let _ = stopped.await;
        }));
        Self { _dir: dir, socket, handler, stop: Some(stop), task: Some(task) }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {:?} / {:?}", self.stdout, self.stderr)
        })
    }

    #[track_caller]
    fn assert_ok_silent(&self) {
        assert_eq!(self.code, 0, "stdout {:?} stderr {:?}", self.stdout, self.stderr);
        assert_eq!(self.stdout, "");
    }

    #[track_caller]
    fn assert_error(&self, code: u32, version: &str, msg_part: &str) -> Value {
        assert_ne!(self.code, 0, "stdout {:?}", self.stdout);
        let reply = self.json();
        assert_eq!(reply["code"], code, "{reply}");
        assert_eq!(reply["cniVersion"], version, "{reply}");
        let msg = reply["msg"].as_str().unwrap();
        assert!(msg.contains(msg_part), "{msg:?} lacks {msg_part:?}");
        reply
    }
}

/// Runs the binary in a clean environment, as a runtime would.
async fn run_plugin(socket: &Path, env: &[(&str, &str)], stdin: &Value) -> Outcome {
    let socket = socket.to_path_buf();
    let env: Vec<(String, String)> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let stdin = if stdin.is_null() { String::new() } else { stdin.to_string() };
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("KURYR_CNI_SOCKET", &socket)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

fn attachment_env(command: &str) -> Vec<(&str, &str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "3f2c1a9e8b7d"),
        ("CNI_NETNS", "/var/run/netns/cni-3f2c"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/usr/lib/cni:/opt/cni/bin"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=3f2c1a9e8b7d;K8S_POD_UID=0b7c",
        ),
    ]
}

/// [`attachment_env`] with `var` set to `value` instead.
fn attachment_env_with<'a>(command: &'a str, var: &str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    attachment_env(command)
        .into_iter()
        .map(|(k, v)| if k == var { (k, value) } else { (k, v) })
        .collect()
}

fn config(version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "kuryr",
        "type": "kuryr-cni",
        "neutron": {"network": "pods", "subnet": "pods-v4", "security_groups": ["default"]}
    })
}

fn kuryr_conflist() -> NetConfList {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kuryr/conflist.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_prints_the_result_in_the_requested_version() {
    let mut daemon = Daemon::start("add").await;
    for version in CniVersion::SUPPORTED {
        let out =
            run_plugin(&daemon.socket, &attachment_env("ADD"), &config(version.as_str())).await;
        assert_eq!(out.code, 0, "{version}: {} {}", out.stdout, out.stderr);
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        let result = out.json();
        assert_eq!(result["cniVersion"], version.as_str());
        let ip = &result["ips"][0];
        assert_eq!(ip["address"], "10.10.0.5/24");
        assert_eq!(ip["interface"], 0);
        assert_eq!(ip.get("version").is_some(), version < CniVersion::V1_0_0, "{version}");
        let iface = &result["interfaces"][0];
        assert_eq!(iface["name"], "eth0");
        assert_eq!(iface["sandbox"], "/var/run/netns/cni-3f2c");
        assert_eq!(iface.get("mtu").is_some(), version == CniVersion::V1_1_0, "{version}");
        assert_eq!(result["routes"][0], json!({"dst": "0.0.0.0/0", "gw": "10.10.0.1"}));
        assert_eq!(result["dns"], json!({"nameservers": ["10.10.0.2"]}));
    }
    let calls = daemon.handler.calls();
    assert_eq!(calls.len(), CniVersion::SUPPORTED.len());
    let Call::Add(req) = &calls[0] else { panic!("{calls:?}") };
    assert_eq!(req.container_id, "3f2c1a9e8b7d");
    assert_eq!(req.ifname, "eth0");
    assert_eq!(req.args.k8s_pod_namespace(), Some("default"));
    assert_eq!(req.args.k8s_pod_uid(), Some("0b7c"));
    assert_eq!(req.path, vec!["/usr/lib/cni", "/opt/cni/bin"]);
    assert_eq!(req.config.neutron.as_ref().unwrap().subnet.as_deref(), Some("pods-v4"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_check_gc_status_succeed_silently() {
    let mut daemon = Daemon::start("verbs").await;
    let add = run_plugin(&daemon.socket, &attachment_env("ADD"), &config("1.1.0")).await;
    assert_eq!(add.code, 0);
    let mut with_prev = config("1.1.0");
    with_prev["prevResult"] = add.json();

    run_plugin(&daemon.socket, &attachment_env("CHECK"), &with_prev).await.assert_ok_silent();
    run_plugin(&daemon.socket, &attachment_env("DEL"), &with_prev).await.assert_ok_silent();
    // DEL again, without netns (already gone) and without prevResult.
    let del_env: Vec<_> =
        attachment_env("DEL").into_iter().filter(|(k, _)| *k != "CNI_NETNS").collect();
    run_plugin(&daemon.socket, &del_env, &config("1.1.0")).await.assert_ok_silent();

    let mut gc = config("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "a0b1c2", "ifname": "eth0"}]);
    let gc_env = [("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")];
    run_plugin(&daemon.socket, &gc_env, &gc).await.assert_ok_silent();
    run_plugin(&daemon.socket, &[("CNI_COMMAND", "STATUS")], &config("1.1.0"))
        .await
        .assert_ok_silent();

    let calls = daemon.handler.calls();
    let commands: Vec<&str> = calls.iter().map(|c| c.command().as_str()).collect();
    assert_eq!(commands, ["ADD", "CHECK", "DEL", "DEL", "GC", "STATUS"]);
    let Call::Del(second_del) = &calls[3] else { panic!() };
    assert_eq!(second_del.netns, None);
    assert_eq!(second_del.prev_result, None);
    let Call::Gc(gc) = &calls[4] else { panic!() };
    assert_eq!(gc.valid_attachments[0].container_id, "a0b1c2");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_needs_no_daemon() {
    let dir = TempDir::new("e2e-version");
    let out = run_plugin(
        &dir.0.join("absent.sock"),
        &[("CNI_COMMAND", "VERSION")],
        &json!({"cniVersion": "1.1.0"}),
    )
    .await;
    assert_eq!(out.code, 0);
    assert_eq!(
        out.json(),
        json!({"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    // libcni sends {"cniVersion": ...}; some callers send nothing.
    let out =
        run_plugin(&dir.0.join("absent.sock"), &[("CNI_COMMAND", "VERSION")], &Value::Null).await;
    assert_eq!(out.code, 0);
    assert_eq!(out.json()["cniVersion"], "1.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_reach_the_runtime() {
    let mut daemon = Daemon::start("errors").await;
    for (code, command) in [(3, "DEL"), (7, "ADD"), (11, "ADD"), (120, "ADD")] {
        let mut failing = config("0.4.0");
        failing["fail"] = json!({"code": code, "msg": format!("failure {code}")});
        let out = run_plugin(&daemon.socket, &attachment_env(command), &failing).await;
        let reply = out.assert_error(code, "0.4.0", &format!("failure {code}"));
        assert_eq!(reply["details"], "from the fake handler");
        assert!(out.stderr.contains(&format!("failure {code}")));
    }
    let mut down = config("1.1.0");
    down["fail"] = json!({"code": 50, "msg": "neutron unreachable"});
    run_plugin(&daemon.socket, &[("CNI_COMMAND", "STATUS")], &down).await.assert_error(
        50,
        "1.1.0",
        "neutron unreachable",
    );
    daemon.stop().await;
}
