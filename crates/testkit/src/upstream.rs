//! Upstream kuryr-libnetwork (PyPI 18.0.0) for the migration test: its
//! `kuryr-server` started from its venv on a loopback TCP port with a
//! generated `kuryr.conf`, and the spec file that registers a TCP-served
//! plugin with Docker (`/etc/docker/plugins/<name>.spec`), as upstream is
//! deployed and as scripts/bench runs it. Both are undone on drop: the
//! server is stopped by PID, the spec file removed.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{hex, http_post_tcp, terminate};

/// Where upstream is installed: `KURYR_UPSTREAM_VENV`, default
/// `/opt/kuryr-stack/upstream-venv`.
pub fn venv() -> PathBuf {
    PathBuf::from(
        std::env::var("KURYR_UPSTREAM_VENV")
            .unwrap_or_else(|_| "/opt/kuryr-stack/upstream-venv".to_string()),
    )
}

/// The venv's `kuryr-server`; the test fails (it does not skip) when
/// upstream is not installed.
pub fn server_bin(venv: &Path) -> PathBuf {
    let bin = venv.join("bin/kuryr-server");
    assert!(
        bin.is_file(),
        "upstream kuryr-libnetwork is not installed: {} is missing. \
         Run `scripts/upstream install` (or set KURYR_UPSTREAM_VENV to its venv)",
        bin.display()
    );
    bin
}

/// Fails the test unless nothing listens on this loopback port.
pub fn assert_port_free(port: u16) {
    if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
        panic!("127.0.0.1:{port} is taken ({e}); the migration test needs it for its plugin");
    }
}

/// Waits until nothing listens on the port any more (the old server is gone).
pub fn wait_port_closed(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "something still listens on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the plugin on `addr` answers `Plugin.Activate`.
pub fn wait_activate(addr: SocketAddr, timeout: Duration, mut alive: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok((200, body)) = http_post_tcp(addr, "/Plugin.Activate", b"{}") {
            assert!(
                body.contains("NetworkDriver") && body.contains("IpamDriver"),
                "Plugin.Activate on {addr}: {body}"
            );
            return;
        }
        assert!(alive(), "the plugin on {addr} exited at start");
        assert!(Instant::now() < deadline, "no plugin answered Plugin.Activate on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/etc/docker/plugins/<name>.spec` naming a TCP address: Docker finds the
/// driver `<name>` there (when no `<name>.sock` exists). Removed on drop.
pub struct SpecFile {
    /// The driver name.
    pub name: String,
    /// `/etc/docker/plugins/<name>.spec`.
    pub path: PathBuf,
}

impl SpecFile {
    /// Writes the spec file pointing Docker's `name` at `http://<addr>`.
    pub fn register(name: &str, addr: SocketAddr) -> SpecFile {
        let dir = Path::new("/etc/docker/plugins");
        std::fs::create_dir_all(dir).expect("/etc/docker/plugins");
        let path = dir.join(format!("{name}.spec"));
        assert!(
            !path.exists(),
            "{} exists already: another run or engineer uses the driver name {name}",
            path.display()
        );
        assert!(
            !Path::new(&format!("/run/docker/plugins/{name}.sock")).exists(),
            "a socket for driver {name} exists: Docker would use it instead of the spec file"
        );
        std::fs::write(&path, format!("http://{addr}\n")).expect("writing the spec file");
        SpecFile { name: name.to_string(), path }
    }
}

impl Drop for SpecFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Upstream's `kuryr-server`, serving on `http://<addr>` (its `kuryr_uri`).
pub struct Upstream {
    /// Where it serves.
    pub addr: SocketAddr,
    /// Its temp dir.
    pub dir: PathBuf,
    /// Its `kuryr.conf`.
    pub config: PathBuf,
    /// Upstream's own log (`[DEFAULT] log_file`, debug).
    pub log: PathBuf,
    /// What the process wrote to stdout and stderr.
    pub output: PathBuf,
    child: Option<Child>,
}

impl Upstream {
    /// Writes upstream's `kuryr.conf` (noauth Neutron at `neutron_url`, the
    /// venv's binding scripts, which plug into br-int) and starts
    /// `kuryr-server`; returns once it answers `Plugin.Activate`.
    pub fn start(venv: &Path, addr: SocketAddr, neutron_url: &str) -> Upstream {
        let bin = server_bin(venv);
        let dir = std::env::temp_dir().join(format!("kuryr-upstream-{}", hex(8)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("upstream.log");
        let config = dir.join("kuryr.conf");
        // The same settings as scripts/bench.d/upstream-kuryr.conf.in, with
        // Neutron direct (no counting proxy) and debug logs.
        std::fs::write(
            &config,
            format!(
                "[DEFAULT]\n\
                 bindir = {bindir}\n\
                 kuryr_uri = http://{addr}\n\
                 capability_scope = local\n\
                 log_file = {log}\n\
                 debug = true\n\
                 use_stderr = false\n\
                 \n\
                 [neutron]\n\
                 auth_type = none\n\
                 endpoint = {neutron_url}\n\
                 default_subnetpool_v4 = kuryr\n\
                 default_subnetpool_v6 = kuryr6\n",
                bindir = venv.join("libexec/kuryr").display(),
                log = log.display(),
            ),
        )
        .expect("writing upstream's kuryr.conf");
        let output = dir.join("upstream.out");
        let out = std::fs::File::create(&output).expect("output file");
        let child = Command::new(&bin)
            .arg("--config-file")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output fd"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut up = Upstream { addr, dir, config, log, output, child: Some(child) };
        wait_activate(addr, Duration::from_secs(60), || {
            matches!(up.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
        });
        up
    }

    /// Its PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops `kuryr-server` by PID (SIGTERM, then SIGKILL) and waits until
    /// its port is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
            wait_port_closed(self.addr.port(), Duration::from_secs(10));
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        let read = |p: &Path| {
            std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        };
        format!("{}{}", read(&self.output), read(&self.log))
    }

    /// Lines of upstream's log at ERROR or with a traceback.
    pub fn errors(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" ERROR ") || l.starts_with("Traceback"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.log_text();
            // pyroute2's netlink chatter drowns everything at debug.
            let tail: Vec<&str> =
                log.lines().filter(|l| !l.contains(" pyroute2.")).rev().take(60).collect();
            eprintln!("---- last lines of upstream kuryr-server ({}) ----", self.dir.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            eprintln!("(kept in {})", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
