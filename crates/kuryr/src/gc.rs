//! `kuryr gc`: removes what this host's Kuryr made and nobody uses
//! (logic in `kuryr_core::gc`; here Docker's side and the command line).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use kuryr_core::config::Config;
use kuryr_core::gc::{self, DockerAnswer, DockerNetwork, Host, Owners, Settings};
use netplumb::ovs::Switch;
use netplumb::Netlink;
use openstack::neutron::Neutron;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::{info, warn};

/// Docker's API socket.
pub(crate) const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// How long one Docker API call may take before GC gives up on Docker.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default grace for ports that may be between two calls of their owner.
const DEFAULT_MIN_AGE: &str = "10m";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print what would be removed and why; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep ports changed less than this long ago (`600`, `90s`, `10m`, `1h`).
    #[arg(long, default_value = DEFAULT_MIN_AGE, value_parser = parse_age)]
    min_age: Duration,
    /// Only ports on this Neutron network (id; repeatable). Host devices
    /// whose port does not exist are collected regardless.
    #[arg(long = "network")]
    networks: Vec<String>,
    /// Docker's API socket.
    #[arg(long, default_value = DOCKER_SOCKET, env = "KURYR_DOCKER_SOCKET")]
    docker_socket: PathBuf,
    /// The libnetwork plugin socket (its file name is the Docker driver
    /// name; default `[DEFAULT] plugin_socket`).
    #[arg(long)]
    plugin_socket: Option<PathBuf>,
}

/// Parses `600`, `90s`, `10m`, `1h`.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 600, 90s, 10m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

/// The Docker driver name Kuryr serves: the plugin socket's file stem.
pub(crate) fn driver_name(plugin_socket: &Path) -> String {
    plugin_socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kuryr".into())
}

/// Docker's view over its API socket (HTTP/1.0, one connection per call).
pub(crate) struct DockerOwners {
    socket: PathBuf,
}

impl DockerOwners {
    pub(crate) fn new(socket: impl Into<PathBuf>) -> Self {
        DockerOwners { socket: socket.into() }
    }

    async fn network(&self, id: &str) -> DockerAnswer {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("{id:?} is not a Docker network id"));
        }
        let (status, body) = tokio::time::timeout(
            DOCKER_TIMEOUT,
            docker_get(&self.socket, &format!("/networks/{id}")),
        )
        .await
        .map_err(|_| format!("no answer within {DOCKER_TIMEOUT:?}"))?
        .map_err(|e| format!("{}: {e}", self.socket.display()))?;
        match status {
            404 => Ok(None),
            200 => parse_network(&body).map(Some),
            other => Err(format!("GET /networks/{id}: HTTP {other}")),
        }
    }
}

impl DockerOwners {
    /// `(id, name)` of Docker's networks of this driver.
    pub(crate) async fn networks_of_driver(
        &self,
        driver: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let filters = serde_json::json!({ "driver": [driver] }).to_string();
        let path = format!("/networks?filters={}", percent_encode(&filters));
        let (status, body) = tokio::time::timeout(DOCKER_TIMEOUT, docker_get(&self.socket, &path))
            .await
            .map_err(|_| format!("no answer within {DOCKER_TIMEOUT:?}"))?
            .map_err(|e| format!("{}: {e}", self.socket.display()))?;
        if status != 200 {
            return Err(format!("GET /networks: HTTP {status}"));
        }
        let value: Value =
            serde_json::from_str(&body).map_err(|e| format!("Docker sent non-JSON: {e}"))?;
        Ok(value
            .as_array()
            .map(|nets| {
                nets.iter()
                    .map(|n| {
                        let field = |k: &str| n[k].as_str().unwrap_or_default().to_string();
                        (field("Id"), field("Name"))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Owners for DockerOwners {
    fn docker_network<'a>(
        &'a self,
        docker_network_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = DockerAnswer> + Send + 'a>> {
        Box::pin(self.network(docker_network_id))
    }
}

fn parse_network(body: &str) -> Result<DockerNetwork, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("Docker sent non-JSON: {e}"))?;
    let driver = value["Driver"].as_str().unwrap_or_default().to_string();
    let endpoints = value["Containers"]
        .as_object()
        .map(|m| m.values().filter_map(|c| c["EndpointID"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(DockerNetwork { driver, endpoints })
}

/// One GET over a unix socket.
pub(crate) async fn docker_get(socket: &Path, path: &str) -> std::io::Result<(u16, String)> {
    unix_http(socket, "GET", path, b"").await
}

/// One request over a unix socket. HTTP/1.0, so the reply is neither
/// chunked nor kept alive: the body is whatever follows the head.
pub(crate) async fn unix_http(
    socket: &Path,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket).await?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: kuryr\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head in the reply"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad HTTP status line"))?;
    Ok((status, body.to_string()))
}

/// Everything a run needs, opened from the configuration.
pub(crate) struct Collector {
    pub neutron: Neutron,
    pub switch: Arc<dyn Switch>,
    pub netlink: Netlink,
    pub settings: Settings,
    pub owners: DockerOwners,
}

impl Collector {
    pub(crate) async fn open(
        config: &Config,
        neutron: Neutron,
        docker_socket: &Path,
        plugin_socket: &Path,
        min_age: Duration,
        networks: BTreeSet<String>,
    ) -> Result<Collector> {
        let (netlink, switch) = crate::clients::host_plumbing(config).await?;
        let settings = Settings {
            host: crate::clients::host_name(config)?,
            bridge: config.binding.integration_bridge.clone(),
            docker_driver: driver_name(plugin_socket),
            min_age,
            // Pool ports belong to the pool of the process that made them
            // (tag `kuryr.pool.<service>:<socket hash>`), even with
            // `[vif_pool]` off: a network may ask for a pool with
            // `-o kuryr.ports_pool_min`, and at start the pool re-adopts
            // or deletes what it finds. GC never races it for them.
            keep_pool_ports: true,
            networks,
            veth_binding: config.binding.driver == "veth",
        };
        Ok(Collector {
            neutron,
            switch,
            netlink,
            settings,
            owners: DockerOwners::new(docker_socket),
        })
    }

    fn host(&self) -> Host<'_> {
        Host { neutron: &self.neutron, switch: self.switch.as_ref(), netlink: &self.netlink }
    }

    /// The snapshot and what GC would do with it.
    pub(crate) async fn survey(&self) -> Result<(gc::Snapshot, gc::Plan)> {
        let snapshot = gc::collect(&self.host(), &self.owners, &self.settings).await?;
        let plan = gc::plan(&snapshot, &self.settings);
        Ok((snapshot, plan))
    }

    /// One pass: snapshot, plan, and (unless `dry_run`) apply. Returns the
    /// report lines and whether every action succeeded.
    pub(crate) async fn run(&self, dry_run: bool) -> Result<(Vec<String>, bool)> {
        let host = self.host();
        let (_, plan) = self.survey().await?;
        let mut lines = Vec::new();
        for kept in &plan.kept {
            lines.push(format!("keep port {}: {}", kept.port_id, kept.reason));
        }
        let mut ok = true;
        if dry_run {
            for action in &plan.actions {
                lines.push(format!("would {action}"));
            }
        } else {
            for outcome in gc::apply(&host, &plan.actions).await {
                match outcome.error {
                    None => lines.push(format!("{}", outcome.action)),
                    Some(err) => {
                        ok = false;
                        lines.push(format!("FAILED to {}: {err}", outcome.action));
                    }
                }
            }
        }
        let counts: Vec<String> =
            gc::summary(&plan.actions).into_iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        lines.push(format!(
            "gc{}: {}; {} ports in use, {} kept (too young, or not decidable now)",
            if dry_run { " (dry run)" } else { "" },
            if counts.is_empty() { "nothing to remove".to_string() } else { counts.join(", ") },
            plan.live,
            plan.kept.len()
        ));
        Ok((lines, ok))
    }
}

pub(crate) async fn run(config: Config, args: Args) -> Result<()> {
    let neutron = crate::clients::neutron(&config)?;
    let plugin_socket = args.plugin_socket.unwrap_or_else(|| config.default.plugin_socket.clone());
    let context = Collector::open(
        &config,
        neutron,
        &args.docker_socket,
        &plugin_socket,
        args.min_age,
        args.networks.into_iter().collect(),
    )
    .await?;
    let (lines, ok) = context.run(args.dry_run).await?;
    for line in lines {
        println!("{line}");
    }
    if !ok {
        bail!("some objects could not be removed");
    }
    Ok(())
}

/// GC at daemon start, in the background: the plugin socket is already
/// served (dockerd may be calling it while it starts, and GC asks dockerd),
/// and Docker's ports are kept when Docker does not answer. It runs again
/// every grace period, so what a crash left too young to collect at start
/// (an address port whose ReleaseAddress died with the plugin) goes too.
pub(crate) fn spawn_at_start(config: &Config, neutron: Neutron, plugin_socket: PathBuf) {
    let config = config.clone();
    tokio::spawn(async move {
        let min_age = parse_age(DEFAULT_MIN_AGE).unwrap_or(Duration::from_secs(600));
        let context = match Collector::open(
            &config,
            neutron,
            Path::new(DOCKER_SOCKET),
            &plugin_socket,
            min_age,
            BTreeSet::new(),
        )
        .await
        {
            Ok(c) => c,
            Err(err) => return warn!(%err, "background gc: not run"),
        };
        loop {
            match context.run(false).await {
                Ok((lines, _)) => {
                    for line in lines {
                        info!("background gc: {line}");
                    }
                }
                Err(err) => warn!(%err, "background gc failed"),
            }
            tokio::time::sleep(min_age).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_age("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_age("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert!(parse_age("ten").is_err());
        assert!(parse_age("5d").is_err());
    }

    #[test]
    fn driver_from_socket() {
        assert_eq!(driver_name(Path::new("/run/docker/plugins/kuryr.sock")), "kuryr");
        assert_eq!(driver_name(Path::new("/run/docker/plugins/kt12.sock")), "kt12");
    }

    #[test]
    fn docker_network_endpoints() {
        let body = r#"{"Name":"n","Driver":"kuryr","Containers":{"c1":{"EndpointID":"e1"},"c2":{"EndpointID":"e2"}}}"#;
        let net = parse_network(body).expect("parses");
        assert_eq!(net.driver, "kuryr");
        assert_eq!(net.endpoints.len(), 2);
        assert!(net.endpoints.contains("e2"));
        let empty = parse_network(r#"{"Driver":"kuryr","Containers":{}}"#).expect("parses");
        assert!(empty.endpoints.is_empty());
        assert!(parse_network("<html>").is_err());
        assert_eq!(percent_encode(r#"{"a":["b"]}"#), "%7B%22a%22%3A%5B%22b%22%5D%7D");
    }
}
