//! `kuryr controller`: the Kubernetes controller (docs/kubernetes.md § The
//! controller). This only wires the configuration to
//! `kuryr_k8s::controller::run`: the apiserver client of `[kubernetes]`,
//! Neutron, `/metrics` and `/healthz`, and SIGTERM.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kuryr_core::config::Config;
use kuryr_k8s::controller::{self, Settings};
use tokio::sync::watch;
use tracing::info;

use crate::shutdown::{stopped, wait_for_signal};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Serve only namespaces with these labels (a label selector, e.g.
    /// `kuryr=on`); default: every namespace.
    #[arg(long)]
    namespace_selector: Option<String>,
    /// `ip:port` serving `/metrics` and `/healthz` (overrides `[DEFAULT] metrics_address`).
    #[arg(long)]
    metrics_address: Option<String>,
}

pub(crate) async fn run(config: Config, args: Args) -> Result<()> {
    let Some(kubernetes) = config.kubernetes.clone() else {
        bail!(
            "kuryr controller needs a [kubernetes] section in kuryr.conf (docs/kubernetes.md); \
             none in this configuration"
        );
    };
    let neutron = crate::clients::neutron(&config)?;
    let client = kuryr_k8s::client::connect(&kubernetes)
        .await
        .context("connecting to the Kubernetes apiserver")?;
    let mut settings = Settings::from_config(&config, identity());
    settings.namespace_selector = args.namespace_selector.filter(|s| !s.trim().is_empty());
    let health = Arc::new(crate::metrics::Health::new(Arc::new(neutron.clone())));
    let (stop_tx, stop_rx) = watch::channel(false);
    let service = crate::ServiceArgs { metrics_address: args.metrics_address.clone(), no_gc: true };
    let metrics =
        crate::metrics::spawn(&service, &config, health.clone(), stopped(stop_rx.clone())).await?;
    let ready = {
        let health = health.clone();
        move |reconciling: bool| health.set_served(reconciling)
    };
    let mut controller = tokio::spawn(controller::run(client, neutron, settings, stop_rx, ready));
    // It ends by itself on a fatal error (or a lost Lease: a standby then
    // starts afresh); else on SIGTERM or SIGINT.
    let result = tokio::select! {
        signal = wait_for_signal() => {
            signal?;
            info!("shutting down");
            let _ = stop_tx.send(true);
            (&mut controller).await
        }
        done = &mut controller => done,
    };
    let result = result.context("controller task")?;
    let _ = stop_tx.send(true);
    if let Some(metrics) = metrics {
        metrics.await.context("metrics listener task")??;
    }
    result.context("kuryr controller")
}

/// This replica's name in Events and in the Lease: `POD_NAME` (the
/// Deployment's downward API), else `<hostname>-<pid>`.
fn identity() -> String {
    if let Some(name) = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty()) {
        return name;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}
