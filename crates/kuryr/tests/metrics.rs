//! `kuryr libnetwork --metrics-address`: after a network and a container
//! through the real Docker engine, `/healthz` is green and `/metrics`
//! counts the calls. Runs only against the dev stack in noauth mode
//! (scripts/test).

use std::path::PathBuf;

use kuryr_testkit::{must, must_create_network, throwaway_eth0_v4, OwnKuryr};
use std::time::{Duration, Instant};

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
    let Some(mut guard) = OwnKuryr::noauth("healthz_and_metrics_after_a_container", "kmet") else {
        return;
    };
    let port = guard.port;
    let socket = PathBuf::from(format!("/run/docker/plugins/{}.sock", guard.name));
    guard.files.push(socket.clone());
    guard.spawn(&[
        "libnetwork",
        "--metrics-address",
        &format!("127.0.0.1:{port}"),
        "--socket",
        &socket.to_string_lossy(),
    ]);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(socket.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
        assert!(Instant::now() < deadline, "kuryr did not serve {} and {port}", socket.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    must_create_network(&guard.name, "10.10.215.0/24", &guard.network);
    let addr = throwaway_eth0_v4(&guard.network);
    assert!(addr.contains("10.10.215."), "container address: {addr}");

    let (code, body) = {
        let out = must(&["curl", "-s", "-w", "\n%{http_code}", &format!("{base}/healthz")]);
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
    let posts = sample(&metrics, "kuryr_neutron_requests_total{method=\"POST\",status=\"201\"}");
    assert!(posts >= 1.0, "Neutron POST 201 counted: {posts}");

    must(&["docker", "network", "rm", &guard.network]);
    must(&["kill", "-TERM", &guard.child().id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = guard.child().try_wait().expect("wait for kuryr") {
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
