//! `kuryr daemon`: the node agent behind the `kuryr-cni` plugin. Serves
//! the CNI protocol on a unix socket and does the Neutron calls and the
//! netns plumbing.

use kuryr_core::lifecycle::LifecycleSettings;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use kuryr_core::config::Config;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::clients::Clients;
use crate::shutdown::{stopped, wait_for_signal};

use kuryr_cni_daemon::{NeutronCni, Settings};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Unix socket to serve (the plugin's `KURYR_CNI_SOCKET`).
    #[arg(long, default_value = kuryr_cni_daemon::proto::DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(flatten)]
    service: crate::ServiceArgs,
}

pub(crate) async fn run(config: Config, args: Args) -> Result<()> {
    let clients = Clients::open(&config).await?;
    let (neutron, host) = (clients.neutron, clients.host);
    if let Err(err) = neutron.list_extensions().await {
        warn!(%err, "Neutron is not answering yet; STATUS reports 50 until it does");
    }
    let settings = Settings {
        lifecycle: LifecycleSettings::from_config(
            &config,
            host.clone(),
            kuryr_core::naming::pool_owner_tag("cni", &args.socket),
        ),
        pool: kuryr_core::vif_pool::PoolSettings::from_config(&config),
    };
    let health = Arc::new(crate::metrics::Health::new(Arc::new(neutron.clone())));
    let gc_neutron = neutron.clone();
    let handler = Arc::new(NeutronCni::new(neutron, clients.binder, settings));
    // Before serving: the first ADD after a restart takes a pool port found again.
    handler.recover_pools().await;
    let socket = kuryr_cni_daemon::Listener::unix(&args.socket)
        .await
        .with_context(|| format!("binding {}", args.socket.display()))?;
    info!(
        host,
        socket = %args.socket.display(),
        version = env!("CARGO_PKG_VERSION"),
        "kuryr daemon serving CNI"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = kuryr_cni_daemon::router(handler);
    let bound = std::future::ready(Ok(socket));
    let server = crate::metrics::serve_app(bound, app, health.clone(), stopped(stop_rx.clone()));
    let metrics = crate::metrics::spawn(&args.service, &config, health, stopped(stop_rx)).await?;
    if !args.service.no_gc {
        crate::gc::spawn_at_start(&config, gc_neutron, config.default.plugin_socket.clone());
    }
    wait_for_signal().await?;
    info!("shutting down");
    let _ = stop_tx.send(true);
    server.await.context("CNI server task")??;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics listener task")??;
    }
    Ok(())
}
