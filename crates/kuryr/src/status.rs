//! `kuryr status`: the view a daemon rebuilds after a restart (Neutron
//! tags, OVSDB external_ids, host veths, Docker), whether or not the
//! daemons run, plus their health.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kuryr_core::config::Config;
use kuryr_core::gc::{Action, Plan, PortRecord, Snapshot};
use kuryr_core::naming;
use openstack::neutron::{Neutron, Query};
use serde_json::{json, Value};

use crate::gc::{unix_http, Collector, DOCKER_SOCKET};

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Docker's API socket.
    #[arg(long, default_value = DOCKER_SOCKET, env = "KURYR_DOCKER_SOCKET")]
    docker_socket: PathBuf,
    /// The libnetwork plugin socket (default `[DEFAULT] plugin_socket`).
    #[arg(long)]
    plugin_socket: Option<PathBuf>,
    /// The CNI daemon's socket.
    #[arg(long, default_value = kuryr_cni_daemon::proto::DEFAULT_SOCKET, env = "KURYR_CNI_SOCKET")]
    cni_socket: PathBuf,
}

pub(crate) async fn run(config: Config, args: Args) -> Result<()> {
    let neutron = crate::clients::neutron(&config)?;
    let plugin_socket =
        args.plugin_socket.clone().unwrap_or_else(|| config.default.plugin_socket.clone());
    let mut health = BTreeMap::new();
    let neutron_ok = probe_neutron(&neutron).await;
    health.insert("neutron", neutron_ok.clone());
    health.insert("libnetwork_socket", probe_socket(&plugin_socket, "/Plugin.Activate", b"").await);
    let status_call = json!({"command": "STATUS", "config": {"cniVersion": "1.1.0", "name": "kuryr-status", "type": "kuryr-cni"}});
    health.insert(
        "cni_socket",
        probe_socket(
            &args.cni_socket,
            kuryr_cni_daemon::proto::CALL_PATH,
            status_call.to_string().as_bytes(),
        )
        .await,
    );
    let context = Collector::open(
        &config,
        neutron.clone(),
        &args.docker_socket,
        &plugin_socket,
        Duration::from_secs(600),
        BTreeSet::new(),
    )
    .await?;
    let docker_networks = context.owners.networks_of_driver(&context.settings.docker_driver).await;
    health.insert(
        "docker",
        match &docker_networks {
            Ok(_) => Probe::ok("answers"),
            Err(e) => Probe::bad(e.clone()),
        },
    );
    let mut view = json!({
        "host": context.settings.host,
        "docker_driver": context.settings.docker_driver,
        "health": health.iter().map(|(k, p)| (k.to_string(), p.to_json())).collect::<serde_json::Map<_, _>>(),
    });
    let survey = if neutron_ok.ok { Some(context.survey().await?) } else { None };
    if let Some((snapshot, plan)) = &survey {
        let docker_networks = docker_networks.unwrap_or_default();
        view["networks"] = networks_view(&neutron, &docker_networks, snapshot).await?;
        view["attachments"] = Value::Array(attachments_view(snapshot, plan));
        view["pools"] = pools_view(snapshot);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print_text(&view);
    }
    if !neutron_ok.ok {
        bail!("Neutron is not answering: {}", neutron_ok.detail);
    }
    Ok(())
}

#[derive(Clone)]
struct Probe {
    ok: bool,
    detail: String,
}

impl Probe {
    fn ok(detail: impl Into<String>) -> Probe {
        Probe { ok: true, detail: detail.into() }
    }
    fn bad(detail: impl Into<String>) -> Probe {
        Probe { ok: false, detail: detail.into() }
    }
    fn to_json(&self) -> Value {
        json!({"ok": self.ok, "detail": self.detail})
    }
}

async fn probe_neutron(neutron: &Neutron) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, neutron.list_extensions()).await {
        Ok(Ok(ext)) => Probe::ok(format!("answers ({} extensions)", ext.len())),
        Ok(Err(e)) => Probe::bad(e.to_string()),
        Err(_) => Probe::bad(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

async fn probe_socket(socket: &Path, path: &str, body: &[u8]) -> Probe {
    let name = socket.display();
    if !socket.exists() {
        return Probe::bad(format!("{name}: absent (daemon not running)"));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, unix_http(socket, "POST", path, body)).await {
        Ok(Ok((200, _))) => Probe::ok(format!("{name}: served")),
        Ok(Ok((status, body))) => {
            Probe::bad(format!("{name}: answers HTTP {status}: {}", body.trim()))
        }
        Ok(Err(e)) => Probe::bad(format!("{name}: {e}")),
        Err(_) => Probe::bad(format!("{name}: no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// Docker networks of this driver with their Neutron network, and the
/// Neutron networks of CNI attachments.
async fn networks_view(
    neutron: &Neutron,
    docker_networks: &[(String, String)],
    snapshot: &Snapshot,
) -> Result<Value> {
    let mut out = Vec::new();
    for (id, name) in docker_networks {
        let found = neutron
            .list_networks(&Query::new().tags(naming::id_tags(id)).fields(["id", "name"]))
            .await
            .with_context(|| format!("looking up the Neutron network of Docker network {id}"))?;
        let neutron_ids: Vec<String> = found.into_iter().map(|n| n.id.into_string()).collect();
        out.push(json!({
            "kind": "docker",
            "docker_network": id,
            "name": name,
            "neutron_network": neutron_ids.first(),
        }));
    }
    let cni: BTreeSet<(String, String)> = snapshot
        .ports
        .iter()
        .filter(|p| p.cni_attachment().is_some())
        .map(|p| {
            let name = p
                .tags
                .iter()
                .find_map(|t| t.strip_prefix("kuryr.cni.net:"))
                .unwrap_or_default()
                .to_string();
            (name, p.network_id.clone())
        })
        .collect();
    for (name, network) in cni {
        out.push(json!({"kind": "cni", "name": name, "neutron_network": network}));
    }
    Ok(Value::Array(out))
}

fn owner_of(port: &PortRecord) -> String {
    let adopted = if port.is_adopted() { " (adopted)" } else { "" };
    if port.is_pool_port() {
        return "pool".into();
    }
    if let Some((container, ifname)) = port.cni_attachment() {
        return format!("cni {}/{ifname}", short(&container));
    }
    if port.device_id.is_empty() {
        format!("docker address, no endpoint yet{adopted}")
    } else {
        format!("docker endpoint {}{adopted}", short(&port.device_id))
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn gc_state(plan: &Plan, port_id: &str) -> String {
    for action in &plan.actions {
        match action {
            Action::DeletePort { port_id: id, reason, .. }
            | Action::ResetPort { port_id: id, reason, .. }
                if id == port_id =>
            {
                return format!("garbage: {reason}")
            }
            _ => {}
        }
    }
    match plan.kept.iter().find(|k| k.port_id == port_id) {
        Some(kept) => format!("kept: {}", kept.reason),
        None => "in use".into(),
    }
}

fn attachments_view(snapshot: &Snapshot, plan: &Plan) -> Vec<Value> {
    snapshot
        .ports
        .iter()
        .map(|port| {
            let veth = naming::host_veth_name(&port.id);
            let ovs = snapshot
                .ovs_interfaces
                .iter()
                .find(|i| i.external_ids.get("iface-id") == Some(&port.id));
            let ips: Vec<String> = port
                .fixed_ips
                .iter()
                .map(|f| f.ip_address.to_string())
                .collect();
            json!({
                "owner": owner_of(port),
                "port_id": port.id,
                "network_id": port.network_id,
                "ips": ips,
                "mac": port.mac_address,
                "host_veth": veth,
                "host_veth_exists": snapshot.veths.contains(&veth),
                "ovs_port": ovs.map(|i| i.name.clone()),
                "ovn_installed": ovs.map(|i| i.external_ids.get("ovn-installed").map(String::as_str) == Some("true")),
                "neutron_status": port.status,
                "gc": gc_state(plan, &port.id),
            })
        })
        .collect()
}

fn pools_view(snapshot: &Snapshot) -> Value {
    let mut pools: BTreeMap<String, usize> = BTreeMap::new();
    for port in snapshot.ports.iter().filter(|p| p.is_pool_port()) {
        *pools.entry(port.network_id.clone()).or_default() += 1;
    }
    json!(pools)
}

fn print_text(view: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    println!("host: {}  docker driver: {}", text(&view["host"]), text(&view["docker_driver"]));
    println!("health:");
    if let Some(health) = view["health"].as_object() {
        for (name, probe) in health {
            let mark = if probe["ok"].as_bool() == Some(true) { "ok" } else { "FAIL" };
            println!("  {name:<18} {mark:<4} {}", text(&probe["detail"]));
        }
    }
    if let Some(networks) = view["networks"].as_array() {
        println!("networks:");
        if networks.is_empty() {
            println!("  (none)");
        }
        for n in networks {
            let docker = n["docker_network"].as_str().map(short).unwrap_or_default();
            println!(
                "  {:<6} {:<24} {:<12} -> neutron {}",
                text(&n["kind"]),
                text(&n["name"]),
                docker,
                text(&n["neutron_network"])
            );
        }
    }
    if let Some(attachments) = view["attachments"].as_array() {
        println!("attachments:");
        if attachments.is_empty() {
            println!("  (none)");
        }
        for a in attachments {
            let ips: Vec<String> =
                a["ips"].as_array().map(|l| l.iter().map(text).collect()).unwrap_or_default();
            let veth = if a["host_veth_exists"].as_bool() == Some(true) {
                text(&a["host_veth"])
            } else {
                "-".into()
            };
            let ovn = match a["ovn_installed"].as_bool() {
                Some(true) => "ovn-installed",
                Some(false) => "ovs",
                None => "no-ovs-port",
            };
            println!(
                "  {} port {} ip {} mac {} veth {} {} neutron {} [{}]",
                text(&a["owner"]),
                text(&a["port_id"]),
                ips.join(","),
                text(&a["mac"]),
                veth,
                ovn,
                text(&a["neutron_status"]),
                text(&a["gc"])
            );
        }
    }
    if let Some(pools) = view["pools"].as_object() {
        if !pools.is_empty() {
            println!("pools:");
            for (network, n) in pools {
                println!("  network {network}: {n} ready ports");
            }
        }
    }
}
