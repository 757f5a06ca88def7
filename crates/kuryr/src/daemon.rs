//! `kuryr daemon`: the node agent behind the `kuryr-cni` plugin. Serves
//! the CNI protocol on a unix socket, in one of two modes:
//!
//! - standalone (no `[kubernetes]`): it makes a Neutron port per
//!   attachment and plugs it (`kuryr_cni_daemon::NeutronCni`, docs/cni.md);
//! - Kubernetes (`[kubernetes]` in kuryr.conf): it watches this node's
//!   KuryrPorts and binds only what the controller provisioned
//!   (`kuryr_k8s::daemon::K8sCni`, docs/kubernetes.md § The node daemon).

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
    match config.kubernetes.clone() {
        Some(kubernetes) => run_kubernetes(config, kubernetes, args).await,
        None => run_standalone(config, args).await,
    }
}

async fn run_standalone(config: Config, args: Args) -> Result<()> {
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
    let app = kuryr_cni_daemon::router(handler);
    serve(&config, &args, app, health, || {
        info!(
            host,
            socket = %args.socket.display(),
            version = env!("CARGO_PKG_VERSION"),
            mode = "standalone",
            "kuryr daemon serving CNI"
        );
        if !args.service.no_gc {
            crate::gc::spawn_at_start(&config, gc_neutron, config.default.plugin_socket.clone());
        }
    })
    .await
}

/// Kubernetes mode: binds the KuryrPorts the controller wrote for this
/// node (named by its `binding:host_id`, the node name the kubelet
/// registers), watched from the apiserver; no Neutron port is made or
/// deleted here, and no pool or port GC runs (pods' ports are the
/// controller's).
async fn run_kubernetes(
    config: Config,
    kubernetes: kuryr_core::config::KubernetesOptions,
    args: Args,
) -> Result<()> {
    let clients = Clients::open(&config).await?;
    let (neutron, host) = (clients.neutron, clients.host);
    let kube = kuryr_k8s::client::connect(&kubernetes)
        .await
        .context("connecting to the Kubernetes apiserver ([kubernetes])")?;
    let (ports, feed) = kuryr_k8s::daemon::ports::cache();
    let watch_task = tokio::spawn(kuryr_k8s::daemon::ports::watch(kube, host.clone(), feed));
    let lifecycle = kuryr_core::lifecycle::Lifecycle::new(
        neutron.clone(),
        clients.binder,
        LifecycleSettings::from_config(
            &config,
            host.clone(),
            kuryr_core::naming::pool_owner_tag("k8s", &args.socket),
        ),
    );
    let settings = kuryr_k8s::daemon::Settings {
        node: host.clone(),
        kuryrport_timeout: std::time::Duration::from_secs(config.cni_daemon.vif_annotation_timeout),
    };
    let handler = Arc::new(kuryr_k8s::daemon::K8sCni::new(lifecycle, ports, settings));
    let health = Arc::new(crate::metrics::Health::new(Arc::new(neutron)));
    let app = kuryr_cni_daemon::router(handler);
    let served = serve(&config, &args, app, health, || {
        info!(
            node = host,
            socket = %args.socket.display(),
            version = env!("CARGO_PKG_VERSION"),
            mode = "kubernetes",
            timeout_s = config.cni_daemon.vif_annotation_timeout,
            "kuryr daemon serving CNI: binding this node's KuryrPorts"
        );
    })
    .await;
    watch_task.abort();
    served
}

/// Serves `app` on the CNI socket, with `/metrics` and `/healthz`, until
/// SIGTERM or SIGINT; `serving` runs once the socket is bound.
async fn serve(
    config: &Config,
    args: &Args,
    app: kuryr_cni_daemon::App,
    health: Arc<crate::metrics::Health>,
    serving: impl FnOnce(),
) -> Result<()> {
    let socket = kuryr_cni_daemon::Listener::unix(&args.socket)
        .await
        .with_context(|| format!("binding {}", args.socket.display()))?;
    serving();
    let (stop_tx, stop_rx) = watch::channel(false);
    let bound = std::future::ready(Ok(socket));
    let server = crate::metrics::serve_app(bound, app, health.clone(), stopped(stop_rx.clone()));
    let metrics = crate::metrics::spawn(&args.service, config, health, stopped(stop_rx)).await?;
    wait_for_signal().await?;
    info!("shutting down");
    let _ = stop_tx.send(true);
    server.await.context("CNI server task")??;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics listener task")??;
    }
    Ok(())
}
