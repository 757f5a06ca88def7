//! `kuryr daemon`: the node agent behind the `kuryr-cni` plugin. Serves
//! the CNI protocol on a unix socket and does the Neutron calls and the
//! netns plumbing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kuryr_core::binding::{Binder, NestedConfig, NestedMode};
use kuryr_core::config::Config;
use netplumb::ovs::{OvsdbClient, Switch};
use netplumb::Netlink;
use openstack::neutron::Neutron;
use tokio::sync::watch;
use tracing::{info, warn};

use kuryr_cni_daemon::{NeutronCni, Settings};

/// The binder for `[binding] driver`: as is for veth; for macvlan, ipvlan
/// and vlan, nested on `[binding] link_iface` (docs/nested.md).
pub(crate) fn nested_binder(binder: Binder, config: &Config, neutron: &Neutron) -> Result<Binder> {
    let driver = config.binding.driver.as_str();
    let Some(mode) = NestedMode::from_driver(driver) else {
        if driver != "veth" {
            bail!("[binding] driver = {driver}: not a binding driver this host can use");
        }
        return Ok(binder);
    };
    let Some(link_iface) = config.binding.link_iface.clone() else {
        bail!("[binding] driver = {driver} needs [binding] link_iface (the VM's NIC)");
    };
    info!(
        driver,
        link_iface, "nested binding: containers ride on the VM's port"
    );
    Ok(binder.with_nested(neutron.clone(), NestedConfig { mode, link_iface }))
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Unix socket to serve (the plugin's `KURYR_CNI_SOCKET`).
    #[arg(long, default_value = kuryr_cni_daemon::proto::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// `ip:port` serving `/metrics` and `/healthz` (overrides `[DEFAULT] metrics_address`).
    #[arg(long)]
    metrics_address: Option<String>,
    /// Skip the garbage collection (`kuryr gc`) run in the background (at start, then every 10 minutes).
    /// Tests that leave leaks on purpose set `KURYR_NO_GC=true`.
    #[arg(long, env = "KURYR_NO_GC")]
    no_gc: bool,
}

pub(crate) async fn run(config: Config, args: Args) -> Result<()> {
    let auth = kuryr_core::credentials::resolve(&config.neutron, |name| std::env::var(name).ok())?;
    let neutron = Neutron::new(auth).context("building the Neutron client")?;
    if let Err(err) = neutron.list_extensions().await {
        warn!(%err, "Neutron is not answering yet; STATUS reports 50 until it does");
    }
    let host = crate::host_name(&config)?;
    let netlink = Netlink::host().await.context("opening netlink")?;
    let switch: Arc<dyn Switch> = Arc::new(OvsdbClient::new(config.binding.ovsdb_socket.clone()));
    let binder = Binder::new(netlink, switch, config.binding.integration_bridge.clone());
    let binder = nested_binder(binder, &config, &neutron)?;
    let settings = Settings {
        host: host.clone(),
        active_timeout: Duration::from_secs(config.neutron.vif_plugging_timeout),
        active_is_fatal: config.neutron.vif_plugging_is_fatal,
        pool: kuryr_core::vif_pool::PoolSettings::from_config(&config),
        pool_owner_tag: kuryr_core::naming::pool_owner_tag("cni", &args.socket),
    };
    let health = Arc::new(crate::metrics::Health::new(Arc::new(neutron.clone())));
    let gc_neutron = neutron.clone();
    let handler = Arc::new(NeutronCni::new(neutron, binder, settings));
    // Before serving: the first ADD after a restart takes a pool port found again.
    handler.recover_pools().await;
    let socket = kuryr_cni_daemon::CniSocket::bind(&args.socket)
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
    if !args.no_gc {
        crate::gc::spawn_at_start(&config, gc_neutron, config.default.plugin_socket.clone());
    }
    crate::libnetwork::wait_for_signal().await?;
    info!("shutting down");
    let _ = stop_tx.send(true);
    server.await.context("CNI server task")??;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics listener task")??;
    }
    Ok(())
}
