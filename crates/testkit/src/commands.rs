//! Running commands with a deadline (docker, ip, ovs-vsctl), waiting
//! for a condition, and stopping a process a test started.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a docker command may take before the test fails.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs a command (argv only) with a deadline; the test fails when it
/// cannot be started or overruns.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    run_with_timeout(cmd, args, DOCKER_TIMEOUT)
}

/// Runs a command, killing it after `timeout`.
pub fn run_with_timeout(cmd: &str, args: &[&str], timeout: Duration) -> Output {
    let mut command = Command::new(cmd);
    command.args(args);
    run_command(command, &format!("{cmd} {args:?}"), timeout)
}

/// Runs a prepared command (its environment set by the caller) with a
/// deadline, draining its pipes; panics naming `what` when it overruns.
pub fn run_command(mut cmd: Command, what: &str, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    // Drain the pipes on threads so a chatty command cannot block.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {timeout:?}");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// A log file a test's process appends to (made if missing).
pub fn append_log(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("log file {}: {e}", path.display()))
}

/// Runs a command line (`args[0]` and its arguments) to its end, without
/// a deadline: whether it succeeded, and its stdout and stderr together.
pub fn run_line(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs a command line that must succeed ([`run_line`]); returns its stdout
/// and stderr together.
pub fn must(args: &[&str]) -> String {
    let (ok, text) = run_line(args);
    assert!(ok, "{args:?} failed: {text}");
    text
}

/// `docker network create -d <driver> --ipam-driver <driver> --subnet
/// <subnet> <network>`, which must succeed; its output.
pub fn must_create_network(driver: &str, subnet: &str, network: &str) -> String {
    must(&[
        "docker",
        "network",
        "create",
        "-d",
        driver,
        "--ipam-driver",
        driver,
        "--subnet",
        subnet,
        network,
    ])
}

/// The IPv4 address line (`ip -o -4 addr show eth0`) of a throwaway
/// container on `network`, which must start.
pub fn throwaway_eth0_v4(network: &str) -> String {
    must(&[
        "docker",
        "run",
        "--rm",
        "--network",
        network,
        "kbox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ])
}

/// Runs a command that must succeed; returns its trimmed stdout.
pub fn ok(cmd: &str, args: &[&str]) -> String {
    stdout_of_success(&format!("{cmd} {}", args.join(" ")), &run(cmd, args))
}

/// The trimmed stdout of a command that must have succeeded; else the test
/// fails naming `what` (its command line, and whatever helps), with the
/// command's output.
pub fn stdout_of_success(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a command that must fail; returns its stderr (what the user sees).
pub fn fails(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        !out.status.success(),
        "{cmd} {} should have failed:\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `docker <args>`; must succeed; its stdout.
pub fn docker(args: &[&str]) -> String {
    ok("docker", args)
}

/// `docker <args>`; must fail; its stderr.
pub fn docker_fails(args: &[&str]) -> String {
    fails("docker", args)
}

/// `docker inspect` of one object, as JSON.
pub fn inspect(what: &str) -> Value {
    let text = docker(&["inspect", what]);
    let mut all: Vec<Value> = serde_json::from_str(&text).expect("docker inspect JSON");
    assert_eq!(all.len(), 1, "docker inspect {what}");
    all.remove(0)
}

/// Polls `check` until it returns `Some`, or fails the test with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Stops a process the test started: SIGTERM by PID (so it removes its
/// socket), up to 5 s to exit, then SIGKILL.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
