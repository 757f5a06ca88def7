//! `kuryr controller`: the Kubernetes controller (docs/kubernetes.md
//! § The controller). Level-triggered kube-rs reconcilers, run together
//! until told to stop:
//!
//! - **Namespace → KuryrNetwork** and **KuryrNetwork → Neutron**
//!   ([`namespace`]): a network, subnet and router interface per namespace
//!   (`pod_subnets_driver = namespace`);
//! - **Pod → KuryrPort** and **KuryrPort → Neutron port** ([`pod`]): a port
//!   per scheduled pod, its vif written in the KuryrPort's status for the
//!   node daemon;
//! - with `controller_ha`, only while holding the Lease ([`leader`]).
//!
//! What they decide is pure (`crate::pod`, `crate::namespace`, the plans
//! in the submodules); the Neutron calls are in [`neutron`], which keeps
//! them few (an index of the cluster's ports by pod uid, listed once at
//! start; subnets and MTUs fetched once). Every failure becomes an Event
//! on the pod or namespace ([`error`]) and a requeue with backoff. Nothing
//! here is state that the apiserver and Neutron's tags cannot rebuild.

pub mod error;
pub mod leader;
pub mod namespace;
pub mod neutron;
pub mod pod;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kuryr_core::config::{
    Config, NamespaceSubnetOptions, NeutronDefaultsOptions, PodSubnetsDriver, PodVifDriver,
};
use openstack::neutron::Neutron;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::crds::{KuryrNetwork, KuryrPort};
pub use error::Error;
use neutron::NeutronSide;

/// The name the controller reports Events and holds the Lease under.
pub const CONTROLLER_NAME: &str = "kuryr-controller";

/// Why the controller stopped other than being told to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The apiserver could not be asked what the controller needs at start.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The configuration asks for something the controller does not do.
    #[error("{0}")]
    Unsupported(String),
    /// Another replica took the Lease: stop reconciling (the process
    /// exits and starts again as a standby).
    #[error("lost the leader Lease")]
    LostLeadership,
}

/// What the controller is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[kubernetes] pod_subnets_driver`.
    pub subnets_driver: PodSubnetsDriver,
    /// `[kubernetes] pod_vif_driver`.
    pub vif_driver: PodVifDriver,
    /// `[neutron_defaults]`.
    pub defaults: NeutronDefaultsOptions,
    /// `[namespace_subnet]`.
    pub namespace_subnet: NamespaceSubnetOptions,
    /// `[kubernetes] controller_ha`.
    pub ha: bool,
    /// Where the Lease lives: the controller's own namespace
    /// (`POD_NAMESPACE`), else `kube-system`.
    pub lease_namespace: String,
    /// This replica's name in Events and in the Lease.
    pub identity: String,
    /// Only namespaces with these labels (a label selector) are served;
    /// `None`: all of them.
    pub namespace_selector: Option<String>,
}

impl Settings {
    /// The settings of `config`, for replica `identity`.
    pub fn from_config(config: &Config, identity: String) -> Settings {
        let k = config.kubernetes.clone().unwrap_or_default();
        Settings {
            subnets_driver: k.pod_subnets_driver,
            vif_driver: k.pod_vif_driver,
            defaults: config.neutron_defaults.clone(),
            namespace_subnet: config.namespace_subnet.clone(),
            ha: k.controller_ha,
            lease_namespace: std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "kube-system".into()),
            identity,
            namespace_selector: None,
        }
    }
}

/// What every reconcile works with.
pub struct Context {
    client: kube::Client,
    side: NeutronSide,
    settings: Settings,
    recorder: Recorder,
    namespaces: Store<Namespace>,
    networks: Store<KuryrNetwork>,
    kuryrports: Store<KuryrPort>,
    failures: Mutex<HashMap<String, u32>>,
    network_failures: Mutex<HashMap<String, String>>,
}

impl Context {
    /// Whether namespace `ns` is served (`namespace_selector`).
    fn serves(&self, ns: &str) -> bool {
        self.settings.namespace_selector.is_none()
            || self.namespaces.get(&ObjectRef::new(ns)).is_some()
    }

    /// Counts a failure of `key`; how many in a row.
    fn failed(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn failures_of(&self, key: &str) -> u32 {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied().unwrap_or(0)
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Remembers why namespace `ns`'s network is not made (for the pods
    /// waiting on it), or forgets it.
    fn network_failure(&self, ns: &str, why: Option<String>) {
        let mut all = self.network_failures.lock().unwrap_or_else(|p| p.into_inner());
        match why {
            Some(why) => all.insert(ns.to_string(), why),
            None => all.remove(ns),
        };
    }

    fn network_failure_of(&self, ns: &str) -> Option<String> {
        self.network_failures.lock().unwrap_or_else(|p| p.into_inner()).get(ns).cloned()
    }

    /// Tells `err` in a Warning Event on `regarding` (best effort).
    async fn tell(&self, regarding: &ObjectReference, reason: &str, err: &Error) {
        let mut note = err.to_string();
        if note.len() > 1000 {
            let mut end = 1000;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_string(),
            note: Some(note),
            action: err.kind().to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            warn!(error = %e, reason, "publishing an Event");
        }
    }

    /// Runs one reconcile of `key`: counts it (metrics), tells a failure
    /// in an Event on `regarding` (a waiting one only once it lasts), and
    /// keeps the failure count the error policy backs off by.
    async fn guarded(
        &self,
        operation: &'static str,
        key: String,
        regarding: ObjectReference,
        reason: &str,
        run: impl Future<Output = Result<Action, Error>>,
    ) -> Result<Action, Error> {
        let started = Instant::now();
        let result = run.await;
        let kind = result.as_ref().err().map(Error::kind);
        kuryr_core::metrics::global().observe(operation, started.elapsed(), kind);
        match &result {
            Ok(_) => self.succeeded(&key),
            Err(err) => {
                let n = self.failed(&key);
                if !err.is_waiting() || n >= error::tells_after() {
                    warn!(object = %key, error = %err, failures = n, "reconcile failed");
                    self.tell(&regarding, reason, err).await;
                } else {
                    info!(object = %key, error = %err, "waiting");
                }
            }
        }
        result
    }

    /// The error policy: back off by the failures in a row of `key`.
    fn retry(&self, key: &str, err: &Error) -> Action {
        Action::requeue(error::retry_after(err, self.failures_of(key)))
    }
}

/// Runs `apply` while the object lives, or `cleanup` once it is being
/// deleted, under `name` (kube-rs' finalizer helper puts the finalizer on
/// first and removes it once `cleanup` succeeds); its errors as ours.
async fn under_finalizer<K, A, C>(
    api: &Api<K>,
    name: crate::crds::Finalizer,
    obj: Arc<K>,
    apply: impl FnOnce(Arc<K>) -> A,
    cleanup: impl FnOnce(Arc<K>) -> C,
) -> Result<Action, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
    A: Future<Output = Result<Action, Error>>,
    C: Future<Output = Result<Action, Error>>,
{
    use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
    finalizer(api, name.as_str(), obj, |event| async move {
        match event {
            FinalizerEvent::Apply(obj) => apply(obj).await,
            FinalizerEvent::Cleanup(obj) => cleanup(obj).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// Runs the controller until `stop` says so: reads the cluster id, waits
/// for the Lease with `controller_ha`, indexes the cluster's ports, then
/// reconciles. `ready` is told whether it is reconciling (for `/healthz`).
pub async fn run(
    client: kube::Client,
    neutron: Neutron,
    settings: Settings,
    stop: watch::Receiver<bool>,
    ready: impl Fn(bool) + Send + Sync + 'static,
) -> Result<(), RunError> {
    if settings.vif_driver != PodVifDriver::NeutronVif {
        return Err(RunError::Unsupported(format!(
            "[kubernetes] pod_vif_driver = {:?}: the controller binds pods' ports to their nodes only (neutron-vif); nested drivers are not supported yet",
            settings.vif_driver
        )));
    }
    let cluster = cluster_id(&client).await?;
    info!(cluster, identity = %settings.identity, "Kuryr controller starting");
    let (leading_tx, mut leading) = watch::channel(!settings.ha);
    if settings.ha {
        let elector = leader::Elector::new(
            client.clone(),
            &settings.lease_namespace,
            settings.identity.clone(),
        );
        tokio::spawn(elector.run(leading_tx, stop.clone()));
        info!(namespace = %settings.lease_namespace, lease = leader::LEASE_NAME, "standing by for the leader Lease");
        tokio::select! {
            r = leading.wait_for(|l| *l) => { if r.is_err() { return Ok(()) } }
            _ = stopped(stop.clone()) => return Ok(()),
        }
    }
    let side = NeutronSide::new(
        neutron,
        cluster,
        settings.defaults.clone(),
        settings.namespace_subnet.clone(),
    );
    // The index must be whole before a pod is reconciled, or a port made
    // before a crash would be made again.
    let mut attempt = 0;
    loop {
        match side.index_ports().await {
            Ok(_) => break,
            Err(err) => {
                attempt += 1;
                warn!(%err, "indexing the cluster's ports; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(error::backoff(attempt)) => {}
                    _ = stopped(stop.clone()) => return Ok(()),
                }
            }
        }
    }
    let mut wc_ns = watcher::Config::default();
    if let Some(selector) = &settings.namespace_selector {
        wc_ns = wc_ns.labels(selector);
    }
    let ns_ctl = Controller::new(Api::<Namespace>::all(client.clone()), wc_ns);
    let kn_ctl =
        Controller::new(Api::<KuryrNetwork>::all(client.clone()), watcher::Config::default());
    let kp_ctl = Controller::new(Api::<KuryrPort>::all(client.clone()), watcher::Config::default());
    let pod_ctl = Controller::new(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .owns(Api::<KuryrPort>::all(client.clone()), watcher::Config::default());
    let reporter =
        Reporter { controller: CONTROLLER_NAME.into(), instance: Some(settings.identity.clone()) };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        side,
        settings,
        namespaces: ns_ctl.store(),
        networks: kn_ctl.store(),
        kuryrports: kp_ctl.store(),
        failures: Mutex::default(),
        network_failures: Mutex::default(),
    });
    // Stop on `stop`, or when leadership is lost.
    let (halt_tx, halt_rx) = watch::channel(false);
    let lost = {
        let stop = stop.clone();
        let halt_tx = halt_tx.clone();
        tokio::spawn(async move {
            let lost = tokio::select! {
                r = leading.wait_for(|l| !*l) => r.is_ok(),
                _ = stopped(stop) => false,
            };
            let _ = halt_tx.send(true);
            lost
        })
    };
    let halt = || stopped(halt_rx.clone());
    ready(true);
    info!("reconciling");
    // Each reconciler stops with the others (a lost Lease, a shutdown).
    macro_rules! serve {
        ($ctl:expr, $reconcile:path, $error_policy:path, $kind:literal) => {
            $ctl.graceful_shutdown_on(halt())
                .run($reconcile, $error_policy, ctx.clone())
                .for_each(|r| logged($kind, r))
        };
    }
    let namespaces =
        serve!(ns_ctl, namespace::reconcile_namespace, namespace::namespace_error, "namespace");
    let networks =
        serve!(kn_ctl, namespace::reconcile_network, namespace::network_error, "kuryrnetwork");
    let ports = serve!(kp_ctl, pod::reconcile_kuryrport, pod::kuryrport_error, "kuryrport");
    let pods = serve!(pod_ctl, pod::reconcile_pod, pod::pod_error, "pod");
    futures::join!(namespaces, networks, ports, pods);
    ready(false);
    let _ = halt_tx.send(true);
    if lost.await.unwrap_or(false) {
        return Err(RunError::LostLeadership);
    }
    info!(neutron_calls = ?ctx.side.neutron().calls(), "controller stopped");
    Ok(())
}

/// Logs what a controller's stream yields other than a reconcile's own
/// failure (which the reconcile told already).
async fn logged<K: kube::Resource>(
    controller: &'static str,
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<Error, watcher::Error>>,
) {
    match result {
        Ok(_) | Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
        // A requeue of an object deleted meanwhile: nothing to do.
        Err(kube::runtime::controller::Error::ObjectNotFound(r)) => {
            tracing::debug!(controller, object = %r, "gone before its requeue")
        }
        Err(other) => warn!(controller, error = %other, "controller"),
    }
}

/// The cluster id: the uid of `kube-system`, stable for the cluster's
/// life and needing no option.
pub async fn cluster_id(client: &kube::Client) -> Result<String, RunError> {
    let ns = Api::<Namespace>::all(client.clone()).get("kube-system").await?;
    ns.metadata.uid.ok_or_else(|| {
        RunError::Unsupported("the kube-system namespace has no uid: not a real apiserver".into())
    })
}

/// Resolves once `rx` says stop (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// How long a healthy object waits before it is looked at again anyway
/// (level-triggered: a missed watch event is caught up).
const RESYNC: Duration = Duration::from_secs(300);
