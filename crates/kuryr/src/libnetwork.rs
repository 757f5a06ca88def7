//! `kuryr libnetwork`: the Docker remote network and IPAM driver.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kuryr_core::config::Config;
use kuryr_libnetwork::{DriverSettings, KuryrDriver, Listener};
use openstack::neutron::Neutron;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::clients::Clients;
use crate::shutdown::{stopped, wait_for_signal};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Unix socket to serve (overrides `[DEFAULT] plugin_socket`).
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    #[command(flatten)]
    service: crate::ServiceArgs,
}

pub(crate) async fn run(config: Config, args: Args) -> Result<()> {
    let clients = Clients::open(&config).await?;
    let (neutron, host) = (clients.neutron, clients.host);
    check_neutron(&neutron).await;
    let mut settings = DriverSettings::from_config(&config, host.clone());
    if let Some(socket) = &args.socket {
        // Pool ports belong to the socket served (one plugin per socket).
        settings.lifecycle.pool_owner_tag = kuryr_core::naming::pool_owner_tag("docker", socket);
    }
    let health = Arc::new(crate::metrics::Health::new(Arc::new(neutron.clone())));
    let driver_neutron = neutron.clone();
    let driver = Arc::new(KuryrDriver::new(neutron, clients.binder, settings));
    info!(host, version = env!("CARGO_PKG_VERSION"), "kuryr libnetwork starting");

    // Before serving, so the first container after a restart is served
    // from the pool found again (one GET, plus OVSDB reads).
    driver.recover_pools().await;
    {
        let driver = driver.clone();
        tokio::spawn(async move {
            match driver.reconcile_owners().await {
                Ok(0) => {}
                Ok(n) => info!(ports = n, "recorded owners a crash left out"),
                Err(err) => warn!(%err, "reconciling port owners failed"),
            }
        });
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let socket = args.socket.unwrap_or_else(|| config.default.plugin_socket.clone());
    if !args.service.no_gc {
        crate::gc::spawn_at_start(&config, driver_neutron.clone(), socket.clone());
    }
    let app = kuryr_libnetwork::router(driver.clone());
    let stop = stopped(stop_rx.clone());
    let unix = crate::metrics::serve_app(Listener::unix(socket), app, health.clone(), stop);
    let stop = stopped(stop_rx.clone());
    let metrics = crate::metrics::spawn(&args.service, &config, health, stop).await?;
    let tcp = match &config.default.kuryr_uri {
        Some(uri) => {
            let address = tcp_address(uri)?;
            let app = kuryr_libnetwork::router(driver.clone());
            let stop = stopped(stop_rx.clone());
            Some(tokio::spawn(async move { Listener::tcp(address).await?.serve(app, stop).await }))
        }
        None => None,
    };
    wait_for_signal().await?;
    info!("shutting down");
    let _ = stop_tx.send(true);
    unix.await.context("unix socket server task")??;
    driver.settle_all().await;
    if let Some(tcp) = tcp {
        tcp.await.context("TCP server task")??;
    }
    if let Some(metrics) = metrics {
        metrics.await.context("metrics listener task")??;
    }
    Ok(())
}

/// Upstream's `kuryr_uri` (`http://127.0.0.1:23750`) as a listen address.
fn tcp_address(uri: &str) -> Result<SocketAddr> {
    let rest = uri.strip_prefix("http://").unwrap_or(uri);
    let hostport = rest.trim_end_matches('/');
    let address: SocketAddr = hostport
        .parse()
        .with_context(|| format!("[DEFAULT] kuryr_uri = {uri:?} is not http://<ip>:<port>"))?;
    if !address.ip().is_loopback() {
        warn!(%address, "the plugin API has no authentication; serving it beyond loopback exposes Neutron");
    }
    if address.port() == 0 {
        bail!("[DEFAULT] kuryr_uri = {uri:?} needs a port");
    }
    Ok(address)
}

/// Startup does not fail when Neutron is briefly away (containers keep
/// running and Docker retries), but says so.
async fn check_neutron(neutron: &Neutron) {
    match neutron.list_extensions().await {
        Ok(extensions) => {
            for needed in ["subnet_allocation", "standard-attr-tag", "binding"] {
                if !extensions.iter().any(|e| e.alias == needed) {
                    warn!(extension = needed, "Neutron lacks an extension Kuryr relies on");
                }
            }
        }
        Err(err) => warn!(%err, "Neutron is not answering yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuryr_uri_forms() {
        assert_eq!(tcp_address("http://127.0.0.1:23750").expect("ok").port(), 23750);
        assert_eq!(tcp_address("127.0.0.1:23750/").expect("ok").port(), 23750);
        assert!(tcp_address("http://localhost").is_err());
    }
}
