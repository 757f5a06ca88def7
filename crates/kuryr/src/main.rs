//! `kuryr`: Neutron networking for containers. One binary, with a
//! subcommand per role.

mod clients;
mod controller;
mod daemon;
mod gc;
mod libnetwork;
mod metrics;
mod shutdown;
mod status;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kuryr_core::config::{Config, DEFAULT_CONFIG_FILE};
use tracing_subscriber::EnvFilter;

/// Kuryr: Neutron networking for containers.
#[derive(Parser)]
#[command(name = "kuryr", version, about)]
struct Cli {
    /// kuryr.conf to read (oslo INI, upstream option names).
    #[arg(long, global = true, env = "KURYR_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// `binding:host_id` of this host (overrides `[DEFAULT] host`; default: the hostname).
    #[arg(long, global = true, env = "KURYR_HOST")]
    host: Option<String>,
    /// Log at debug level (or set RUST_LOG).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Docker libnetwork remote network and IPAM driver `kuryr`.
    Libnetwork(libnetwork::Args),
    /// Serve the CNI node daemon for the `kuryr-cni` plugin.
    Daemon(daemon::Args),
    /// Run the Kubernetes controller: pods to Neutron ports, namespaces to networks.
    Controller(controller::Args),
    /// Print the configuration in force (secrets hidden) and check the credentials.
    CheckConfig,
    /// Remove what this host's Kuryr made and nobody uses (ports, veths, OVS ports).
    Gc(gc::Args),
    /// Print this host's view: networks, attachments, pools and health.
    Status(status::Args),
}

/// The flags of the two long-running services (`libnetwork`, `daemon`):
/// their health endpoint and their background garbage collection.
#[derive(clap::Args)]
pub(crate) struct ServiceArgs {
    /// `ip:port` serving `/metrics` and `/healthz` (overrides `[DEFAULT] metrics_address`).
    #[arg(long)]
    metrics_address: Option<String>,
    /// Skip the garbage collection (`kuryr gc`) run in the background (at start, then every 10 minutes).
    /// Tests that leave leaks on purpose set `KURYR_NO_GC=true`.
    #[arg(long, env = "KURYR_NO_GC")]
    no_gc: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut config = load_config(cli.config_file.as_deref())?;
    if let Some(host) = cli.host.filter(|h| !h.trim().is_empty()) {
        config.default.host = Some(host.trim().to_string());
    }
    init_logging(cli.debug || config.default.debug);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Libnetwork(args) => runtime.block_on(libnetwork::run(config, args)),
        Command::Daemon(args) => runtime.block_on(daemon::run(config, args)),
        Command::Controller(args) => runtime.block_on(controller::run(config, args)),
        Command::CheckConfig => check_config(&config),
        Command::Gc(args) => runtime.block_on(gc::run(config, args)),
        Command::Status(args) => runtime.block_on(status::run(config, args)),
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    Ok(Config::load(&path, required)?)
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn check_config(config: &Config) -> Result<()> {
    let auth = kuryr_core::credentials::resolve(&config.neutron, |name| std::env::var(name).ok())?;
    println!("host: {}", clients::host_name(config)?);
    println!("auth_type: {}", auth.effective_auth_type());
    if let Some(url) = &auth.auth_url {
        println!("auth_url: {url}");
    }
    if let Some(endpoint) = &auth.endpoint {
        println!("endpoint: {endpoint}");
    }
    println!("plugin_socket: {}", config.default.plugin_socket.display());
    println!("integration_bridge: {}", config.binding.integration_bridge);
    Ok(())
}
