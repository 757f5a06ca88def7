//! CNI helpers for the reliability tests: a `kuryr daemon` started by the
//! test (killed by PID on drop), a Neutron network with one /24 subnet,
//! netns, and calls of the real `kuryr-cni` binary. Everything made is
//! removed on drop.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openstack::neutron::{NetworkId, Port, Query};
use serde_json::{json, Value};

use crate::{append_log, fresh_dir, fresh_v4, hex, ok, run, wait_for, KuryrChild, Stack};
pub use crate::{kuryr_bin, kuryr_cni_bin};

/// What `kuryr-cni` printed and whether it succeeded.
#[derive(Debug)]
pub struct CniOut {
    /// Exit status 0.
    pub success: bool,
    /// What it printed (the result, or the CNI error).
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl CniOut {
    /// Its stdout as JSON (the result, or the CNI error object).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("plugin output is not JSON ({e}): {}", self.stdout))
    }

    /// The CNI error code of a failed call.
    pub fn code(&self) -> u64 {
        assert!(!self.success, "expected a failure, got {}", self.stdout);
        self.json()["code"].as_u64().expect("error code")
    }

    /// Asserts success, showing both outputs otherwise.
    pub fn expect_ok(&self, what: &str) -> &Self {
        assert!(self.success, "{what} failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// One `kuryr-cni` invocation as a runtime makes it: the `CNI_*` variables
/// from these fields (left unset when `None`), plus `env`, and the
/// configuration on stdin.
#[derive(Clone, Default)]
pub struct CniCall<'a> {
    /// `CNI_COMMAND`.
    pub command: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<&'a str>,
    /// `CNI_NETNS`.
    pub netns: Option<&'a str>,
    /// `CNI_IFNAME`.
    pub ifname: Option<&'a str>,
    /// `CNI_ARGS`.
    pub args: Option<&'a str>,
    /// More variables (e.g. `KURYR_CNI_TIMEOUT_ADD`).
    pub env: &'a [(&'a str, &'a str)],
}

impl<'a> CniCall<'a> {
    /// A call on one attachment: the command, container id, netns and
    /// interface set, nothing else.
    pub fn attachment(
        command: &'a str,
        container_id: &'a str,
        netns: &'a str,
        ifname: &'a str,
    ) -> Self {
        CniCall {
            command,
            container_id: Some(container_id),
            netns: Some(netns),
            ifname: Some(ifname),
            ..CniCall::default()
        }
    }
}

impl CniOut {
    /// The error result (`code`, `msg`) of a failed call.
    pub fn error(&self) -> (u64, String) {
        assert!(!self.success, "expected a failure, got {}", self.stdout);
        let v: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("error output is not JSON ({e}): {}", self.stdout));
        (v["code"].as_u64().expect("error code"), v["msg"].as_str().unwrap_or_default().to_string())
    }
}

/// `kuryr [ARGS] daemon --socket DIR/cni.sock`, its stderr appended to
/// `DIR/daemon.log`, with the test's environment (`OS_*` from
/// scripts/stack) plus `env`; `KURYR_CONFIG_FILE=/dev/null`, or
/// `DIR/kuryr.conf` with [`Daemon::start_with_config`]. Waits for the
/// socket. Dropping it stops the daemon by PID (SIGTERM, so the socket file
/// goes).
pub struct Daemon {
    process: KuryrChild,
    config: Option<PathBuf>,
    /// The CNI socket.
    pub socket: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts the daemon and waits for its socket.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_inner(dir, None, args, env)
    }

    /// Starts the daemon with `config` as its kuryr.conf (written to
    /// `DIR/kuryr.conf`) and waits for its socket.
    pub fn start_with_config(
        dir: &Path,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let path = dir.join("kuryr.conf");
        std::fs::write(&path, config).expect("writing the daemon's kuryr.conf");
        Daemon::start_inner(dir, Some(path), args, env)
    }

    fn start_inner(
        dir: &Path,
        config: Option<PathBuf>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut daemon = Daemon {
            process: KuryrChild::new(dir.join("daemon.log")),
            config,
            socket: dir.join("cni.sock"),
            args: args.iter().map(ToString::to_string).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let log = append_log(&self.log);
        let mut cmd = Command::new(kuryr_bin());
        cmd.args(&self.args)
            .args(["daemon", "--socket"])
            .arg(&self.socket)
            .env(
                "KURYR_CONFIG_FILE",
                self.config.as_deref().unwrap_or_else(|| Path::new("/dev/null")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.process.started(cmd.spawn().expect("starting kuryr daemon"));
        let socket = self.socket.clone();
        wait_for("the daemon's socket", Duration::from_secs(60), || {
            std::os::unix::net::UnixStream::connect(&socket).ok().map(|_| ())
        });
    }

    /// `kill -9`, then start again on the same socket (the old socket
    /// file stays behind, as after a crash).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

crate::process::derefs_to_kuryr_child!(Daemon);

/// A daemon, its network and netns.
pub struct CniWorld<'a> {
    /// The stack.
    pub stack: &'a Stack,
    daemon: Option<Daemon>,
    /// Its temp dir (daemon log, socket).
    pub dir: PathBuf,
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The Neutron network's name (`kcw-<hex>`).
    pub net_name: String,
    /// The Neutron network's id.
    pub network_id: NetworkId,
    /// The hex that names this world's objects.
    pub suffix: String,
    netns: Vec<String>,
}

impl<'a> CniWorld<'a> {
    /// A network `kcw-<hex>` with a /24 subnet, and a daemon whose
    /// environment adds `env` to the test's (`OS_*` from scripts/stack).
    pub fn new(stack: &'a Stack, env: &[(&str, String)]) -> CniWorld<'a> {
        let _ = kuryr_cni_bin();
        let (suffix, dir) = fresh_dir("kuryr-cw");
        let mut w = CniWorld {
            stack,
            daemon: None,
            socket: dir.join("cni.sock"),
            dir,
            net_name: format!("kcw-{suffix}"),
            network_id: NetworkId::default(),
            suffix,
            netns: Vec::new(),
        };
        let net = stack.create_network_named(w.net_name.clone());
        w.network_id = net.id.clone();
        let prefix = fresh_v4();
        let (name, gateway) = (format!("{}-v4", w.net_name), format!("{prefix}.1").parse().ok());
        stack.create_subnet_named(&net.id, Some(name), &format!("{prefix}.0/24"), gateway);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.daemon = Some(Daemon::start(&w.dir, &["--debug"], &env));
        w
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the daemon process is still running.
    pub fn daemon_alive(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(|d| d.is_alive())
    }

    /// A new netns `kcw-<hex>-<tag>`; returns its path.
    pub fn netns(&mut self, tag: &str) -> String {
        let name = format!("kcw-{}-{tag}", self.suffix);
        ok("ip", &["netns", "add", &name]);
        self.netns.push(name.clone());
        format!("/var/run/netns/{name}")
    }

    /// The CNI configuration naming this world's network.
    pub fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.1.0",
            "name": format!("kcw{}", self.suffix),
            "type": "kuryr-cni",
            "neutron": {"network": self.net_name},
        })
    }

    /// A container id unique to this world.
    pub fn container_id(&self, tag: &str) -> String {
        format!("{tag}{}{}", self.suffix, hex(48))
    }

    /// One `kuryr-cni` call on this world's daemon.
    pub fn call(&self, command: &str, cid: &str, netns: &str) -> CniOut {
        cni(&self.socket, command, cid, netns, &self.conf())
    }

    /// Kuryr's ports on the network (DHCP/metadata ports excluded).
    pub fn kuryr_ports(&self) -> Vec<Port> {
        self.stack
            .ports(Query::new().network_id(&self.network_id))
            .into_iter()
            .filter(|p| !p.device_owner.starts_with("network:"))
            .collect()
    }
}

impl Drop for CniWorld<'_> {
    fn drop(&mut self) {
        // Stopped first (by PID), so nothing races the cleanup.
        self.daemon.take();
        if !self.network_id.is_empty() {
            self.stack.remove_network_and_ports(&self.network_id);
        }
        for ns in &self.netns {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `kuryr-cni` for `call` against the daemon on `socket`, with a
/// clean environment (`PATH` only) and `CNI_PATH=/usr/lib/cni`.
pub fn cni_invoke(socket: &Path, call: &CniCall<'_>, conf: &Value) -> CniOut {
    let started = Instant::now();
    let mut cmd = Command::new(kuryr_cni_bin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KURYR_CNI_SOCKET", socket)
        .env("CNI_COMMAND", call.command)
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (var, value) in [
        ("CNI_CONTAINERID", call.container_id),
        ("CNI_NETNS", call.netns),
        ("CNI_IFNAME", call.ifname),
        ("CNI_ARGS", call.args),
    ] {
        if let Some(value) = value {
            cmd.env(var, value);
        }
    }
    cmd.envs(call.env.iter().copied());
    let mut child = cmd.spawn().expect("running kuryr-cni");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(conf.to_string().as_bytes())
        .expect("writing the config");
    let out = child.wait_with_output().expect("kuryr-cni output");
    CniOut {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        elapsed: started.elapsed(),
    }
}

/// One `kuryr-cni` call with `eth0` as the interface.
pub fn cni(socket: &Path, command: &str, cid: &str, netns: &str, conf: &Value) -> CniOut {
    let call = CniCall {
        command,
        container_id: Some(cid),
        netns: Some(netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
    cni_invoke(socket, &call, conf)
}
