//! `kuryr daemon`: the node agent behind the `kuryr-cni` plugin. Serves
//! the CNI protocol on a unix socket and does the Neutron calls and the
//! netns plumbing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kuryr_core::binding::Binder;
use kuryr_core::config::Config;
use netplumb::ovs::{OvsdbClient, Switch};
use netplumb::Netlink;
use openstack::neutron::Neutron;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cni::{NeutronCni, Settings};

#[derive(clap::Args)]
pub struct Args {
    /// Unix socket to serve (the plugin's `KURYR_CNI_SOCKET`).
    #[arg(long, default_value = kuryr_cni::proto::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// `ip:port` serving `/metrics` and `/healthz` (overrides `[DEFAULT] metrics_address`).
    #[arg(long)]
    metrics_address: Option<String>,
}

pub async fn run(config: Config, args: Args) -> Result<()> {
    if config.binding.driver != "veth" {
        bail!(
            "[binding] driver = {}: only the veth driver is implemented for CNI",
            config.binding.driver
        );
    }
    let auth = kuryr_core::credentials::resolve(&config.neutron, |name| std::env::var(name).ok())?;
    let neutron = Neutron::new(auth).context("building the Neutron client")?;
    if let Err(err) = neutron.list_extensions().await {
        warn!(%err, "Neutron is not answering yet; STATUS reports 50 until it does");
    }
    let host = crate::host_name(&config)?;
    let netlink = Netlink::host().await.context("opening netlink")?;
    let switch: Arc<dyn Switch> = Arc::new(OvsdbClient::new(config.binding.ovsdb_socket.clone()));
    let binder = Binder::new(netlink, switch, config.binding.integration_bridge.clone());
    let settings = Settings {
        host: host.clone(),
        active_timeout: Duration::from_secs(config.neutron.vif_plugging_timeout),
        active_is_fatal: config.neutron.vif_plugging_is_fatal,
    };
    let health = Arc::new(crate::metrics::Health::new(Arc::new(neutron.clone())));
    let handler = Arc::new(NeutronCni::new(neutron, binder, settings));
    let socket = kuryr_cni::CniSocket::bind(&args.socket)
        .await
        .with_context(|| format!("binding {}", args.socket.display()))?;
    info!(
        host,
        socket = %args.socket.display(),
        version = env!("CARGO_PKG_VERSION"),
        "kuryr daemon serving CNI"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    health.set_served(true);
    let server = {
        let (health, stop) = (health.clone(), crate::libnetwork::stopped(stop_rx.clone()));
        tokio::spawn(async move {
            let result = socket.serve(handler, stop).await;
            health.set_served(false);
            result
        })
    };
    let metrics = crate::metrics::spawn(
        args.metrics_address.as_deref(),
        &config,
        health,
        crate::libnetwork::stopped(stop_rx),
    )
    .await?;
    crate::libnetwork::wait_for_signal().await?;
    info!("shutting down");
    let _ = stop_tx.send(true);
    server.await.context("CNI server task")??;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics listener task")??;
    }
    Ok(())
}
