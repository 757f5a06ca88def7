//! `kuryr libnetwork --metrics-address`: after a network and a container
//! through the real Docker engine, `/healthz` is green and `/metrics`
//! counts the calls. Runs only against the dev stack in noauth mode
//! (scripts/test).

use std::path::PathBuf;
use std::process::Command;

use kuryr_testkit::{
    free_loopback_port, must, must_create_network, run_line, stack_in_mode, throwaway_eth0_v4,
};
use std::time::{Duration, Instant};

/// Stops kuryr and removes what the test made, whatever happened.
struct Cleanup {
    child: std::process::Child,
    network: String,
    dir: PathBuf,
    socket: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run_line(&["docker", "network", "rm", &self.network]);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The value of the first sample line starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{metrics}"))
}

#[test]
fn healthz_and_metrics_after_a_container() {
    if !stack_in_mode("healthz_and_metrics_after_a_container", "noauth") {
        return;
    }
    let port = free_loopback_port();
    let name = format!("kmet{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = PathBuf::from(format!("/run/docker/plugins/{name}.sock"));
    let child = Command::new(kuryr_testkit::kuryr_bin())
        .args(["libnetwork", "--metrics-address"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--socket")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("kuryr.log")).expect("log file"))
        .spawn()
        .expect("start kuryr libnetwork");
    let guard = Cleanup {
        child,
        network: format!("{name}-net"),
        dir,
        socket: socket.clone(),
    };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(socket.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
        assert!(
            Instant::now() < deadline,
            "kuryr did not serve {} and {port}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    must_create_network(&name, "10.10.215.0/24", &guard.network);
    let addr = throwaway_eth0_v4(&guard.network);
    assert!(addr.contains("10.10.215."), "container address: {addr}");

    let (code, body) = {
        let out = must(&[
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("{base}/healthz"),
        ]);
        let (body, code) = out.rsplit_once('\n').expect("status line");
        (code.trim().to_owned(), body.to_owned())
    };
    assert_eq!((code.as_str(), body.trim()), ("200", "ok"), "healthz");

    let metrics = must(&["curl", "-sf", &format!("{base}/metrics")]);
    let created = sample(
        &metrics,
        "kuryr_operation_duration_seconds_count{operation=\"NetworkDriver.CreateEndpoint\"}",
    );
    assert!(created >= 1.0, "CreateEndpoint observed: {created}");
    let posts = sample(
        &metrics,
        "kuryr_neutron_requests_total{method=\"POST\",status=\"201\"}",
    );
    assert!(posts >= 1.0, "Neutron POST 201 counted: {posts}");

    must(&["docker", "network", "rm", &guard.network]);
    let mut guard = guard;
    must(&["kill", "-TERM", &guard.child.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = guard.child.try_wait().expect("wait for kuryr") {
            break status;
        }
        assert!(Instant::now() < deadline, "kuryr did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "kuryr exit on SIGTERM: {status}");
    assert!(!socket.exists(), "socket removed on exit");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "metrics listener closed on exit"
    );
}
