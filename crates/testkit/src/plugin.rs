//! One `kuryr libnetwork` process with its own driver name, socket and
//! `kuryr.conf`, and raw HTTP calls on a plugin's socket or port.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{append_log, free_loopback_port, hex, kuryr_bin, run_line, stack_in_mode, terminate};

/// One `kuryr libnetwork` process with its own driver name and config.
pub struct Kuryr {
    /// Driver name for `-d` and `--ipam-driver`.
    pub name: String,
    /// Its plugin socket (`/run/docker/plugins/<name>.sock`).
    pub socket: PathBuf,
    /// Its temp dir.
    pub dir: PathBuf,
    /// Its `kuryr.conf`.
    pub config: PathBuf,
    /// Its log (stderr, with `--debug`).
    pub log: PathBuf,
    child: Option<Child>,
    /// Extra environment of the plugin process ([`Kuryr::set_env`]).
    env: Vec<(String, String)>,
}

impl Kuryr {
    /// Writes `kuryr.conf` (the given text) into a temp dir and starts the
    /// plugin on its own socket; returns once it answers Plugin.Activate.
    pub fn start(config: &str) -> Kuryr {
        let mut k = Kuryr::prepare(config);
        k.spawn();
        k
    }

    /// Like [`Kuryr::start`] without starting the plugin: the name, socket
    /// and `kuryr.conf` are ready; [`Kuryr::launch`] starts it.
    pub fn prepare(config: &str) -> Kuryr {
        let name = format!("kt{}", hex(10));
        let dir = std::env::temp_dir().join(format!("kuryr-test-{name}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config_path = dir.join("kuryr.conf");
        std::fs::write(&config_path, config).expect("writing kuryr.conf");
        Kuryr {
            socket: PathBuf::from(format!("/run/docker/plugins/{name}.sock")),
            log: dir.join("kuryr.log"),
            config: config_path,
            dir,
            name,
            child: None,
            env: Vec::new(),
        }
    }

    /// Starts the plugin (prepared, or stopped); returns once it answers.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.spawn();
    }

    /// Sets an environment variable for the next start (e.g. `KURYR_NO_GC`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Replaces `kuryr.conf`; read at the next start.
    pub fn rewrite_config(&mut self, config: &str) {
        std::fs::write(&self.config, config).expect("writing kuryr.conf");
    }

    /// Stops the plugin gracefully ([`terminate`]: SIGTERM by PID, SIGKILL
    /// after 5 s), as an operator's service manager would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        let log = append_log(&self.log);
        let child = Command::new(kuryr_bin())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--config-file")
            .arg(&self.config)
            .arg("--debug")
            .arg("libnetwork")
            .arg("--socket")
            .arg(&self.socket)
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                "info,kuryr=debug,kuryr_libnetwork=debug,kuryr_core=debug,netplumb=debug,openstack=debug",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("starting kuryr libnetwork");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("kuryr libnetwork exited at start ({status}):\n{}", self.log_text());
                }
            }
            if let Ok((200, _)) = self.try_post("/Plugin.Activate", b"") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kuryr libnetwork did not answer on {}:\n{}",
                self.socket.display(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9` (by PID) and start again on the same socket and config.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the plugin (SIGKILL, by PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The Neutron calls in the log (`METHOD path` of each reply), from
    /// byte `from` of the log on.
    pub fn neutron_calls_since(&self, from: usize) -> Vec<String> {
        let text = self.log_text();
        text.get(from..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("openstack::client: reply"))
            .filter_map(|l| {
                let method = l.split("reply method=").nth(1)?.split_whitespace().next()?;
                let path = l.split("path=\"").nth(1)?.split('"').next()?;
                Some(format!("{method} {path}"))
            })
            .collect()
    }

    /// The log's length in lines (a mark for `neutron_calls_since`).
    pub fn log_len(&self) -> usize {
        std::fs::metadata(&self.log).map(|m| m.len() as usize).unwrap_or(0)
    }

    /// POSTs a raw body to the plugin socket; returns status and body.
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        self.try_post(path, body)
            .unwrap_or_else(|e| panic!("POST {path} to {}: {e}", self.socket.display()))
    }

    /// POSTs JSON; returns status and parsed body.
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post(path, body.to_string().as_bytes());
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} answered non-JSON {text:?}: {e}"));
        (status, value)
    }

    fn try_post(&self, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        http_post(&self.socket, path, body)
    }
}

impl Drop for Kuryr {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- last lines of {} ({}) ----", self.log.display(), self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `kuryr` a test runs by hand with flags of its own (a serving mode:
/// `kuryr_uri`, `--metrics-address`), in a scratch dir `<tmp>/<name>` that
/// holds its `kuryr.log`. Dropped, also when the test fails: the Docker
/// network [`OwnKuryr::network`] is removed, kuryr killed, the dir and the
/// [`OwnKuryr::files`] removed.
pub struct OwnKuryr {
    /// `<prefix><pid>`: the driver name the test registers.
    pub name: String,
    /// The scratch dir.
    pub dir: PathBuf,
    /// The Docker network the test makes (`<name>-net`).
    pub network: String,
    /// A free loopback port for it to serve on.
    pub port: u16,
    /// Files outside the dir to remove at the end (a socket, a spec file).
    pub files: Vec<PathBuf>,
    child: Option<Child>,
}

impl OwnKuryr {
    /// For `test`, which needs the dev stack in noauth mode (else `None`,
    /// the test skipped): the name, the scratch dir (created) for `prefix`
    /// and a free loopback port; nothing runs yet.
    pub fn noauth(test: &str, prefix: &str) -> Option<OwnKuryr> {
        if !stack_in_mode(test, "noauth") {
            return None;
        }
        let name = format!("{prefix}{}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Some(OwnKuryr {
            port: free_loopback_port(),
            network: format!("{name}-net"),
            name,
            dir,
            files: Vec::new(),
            child: None,
        })
    }

    /// Starts `kuryr <args>`, its stderr to `kuryr.log` in the dir.
    pub fn spawn(&mut self, args: &[&str]) {
        let child = Command::new(kuryr_bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("kuryr.log")).expect("log file"))
            .spawn()
            .expect("start kuryr");
        self.child = Some(child);
    }

    /// The process [`OwnKuryr::spawn`] started.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("kuryr started")
    }
}

impl Drop for OwnKuryr {
    fn drop(&mut self) {
        let _ = run_line(&["docker", "network", "rm", &self.network]);
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A minimal HTTP/1.1 POST over a unix socket, as dockerd sends them (no
/// Content-Type). Handles `Content-Length` and chunked replies.
pub fn http_post(socket: &Path, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    post_on(stream, path, body)
}

/// The same POST over TCP, to a plugin served on `kuryr_uri` (upstream's
/// way, registered with Docker by a spec file).
pub fn http_post_tcp(
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    post_on(stream, path, body)
}

fn post_on(
    mut stream: impl Read + Write,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let chunked =
        head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
