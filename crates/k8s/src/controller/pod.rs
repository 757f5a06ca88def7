//! The pod reconcilers: **Pod → KuryrPort** (a pod that needs a port gets
//! the pod finalizer and its KuryrPort; a finished or deleting one has its
//! KuryrPort deleted, then loses the finalizer: [`pod_step`]) and
//! **KuryrPort → Neutron port** (the port made, or found in the index, and
//! its vif written in the status; deleted before the KuryrPort's finalizer
//! goes). Failures are Events on the pod. docs/kubernetes.md § How it
//! maps.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use kuryr_core::config::PodSubnetsDriver;
use serde_json::json;
use tracing::{debug, info, instrument};

use super::error::Error;
use super::{under_finalizer, Context, RESYNC};
use crate::crds::{Finalizer, KuryrPort};
use crate::pod::{desired_kuryrport, PodIdentity, PortNeed};
use crate::vif::DEFAULT_IFNAME;

/// The Event reason of a pod whose port cannot be made or released.
pub const PORT_FAILED: &str = "KuryrPortFailed";

/// What is seen of a pod's KuryrPort (the one named after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenKuryrPort {
    /// Its `podUid` is the pod's (else it is a former pod's of that name).
    pub ours: bool,
    /// It is being deleted.
    pub deleting: bool,
}

/// What the pod reconciler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStep {
    /// Nothing to do.
    Nothing,
    /// The pod needs a port: put the finalizer on, create the KuryrPort.
    Ensure {
        /// The pod finalizer is missing.
        add_finalizer: bool,
        /// The KuryrPort is missing.
        create_kuryrport: bool,
    },
    /// A former pod's KuryrPort has the pod's name: delete it first.
    DeleteStaleKuryrPort,
    /// The pod is done with its port: delete its KuryrPort.
    DeleteKuryrPort,
    /// Its KuryrPort is going (its port being released): wait.
    WaitKuryrPortGone,
    /// Its KuryrPort is gone: drop the pod finalizer.
    RemoveFinalizer,
}

/// The step for a pod that `need`s (or not) a port, with or without the
/// pod finalizer, whose KuryrPort is `kp`.
pub fn pod_step(need: PortNeed, has_finalizer: bool, kp: Option<SeenKuryrPort>) -> PodStep {
    let ours = kp.filter(|k| k.ours);
    if need == PortNeed::Needed {
        return match kp {
            Some(SeenKuryrPort { deleting: true, .. }) => PodStep::WaitKuryrPortGone,
            Some(SeenKuryrPort { ours: false, .. }) => PodStep::DeleteStaleKuryrPort,
            Some(_) if has_finalizer => PodStep::Nothing,
            found => {
                PodStep::Ensure { add_finalizer: !has_finalizer, create_kuryrport: found.is_none() }
            }
        };
    }
    match ours {
        Some(SeenKuryrPort { deleting: false, .. }) => PodStep::DeleteKuryrPort,
        Some(_) => PodStep::WaitKuryrPortGone,
        None if has_finalizer => PodStep::RemoveFinalizer,
        None => PodStep::Nothing,
    }
}

/// The merge patch that sets a pod's finalizers to `finalizers`, only if
/// the pod is still at `resource_version` (else 409, and a retry).
fn finalizers_patch(resource_version: Option<&str>, finalizers: &[String]) -> serde_json::Value {
    json!({"metadata": {"resourceVersion": resource_version, "finalizers": finalizers}})
}

fn pod_key(ns: &str, name: &str) -> String {
    format!("pod/{ns}/{name}")
}

/// Pod → KuryrPort.
#[instrument(skip_all, fields(pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())))]
pub async fn reconcile_pod(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let has_finalizer = Finalizer::Pod.is_on(&pod.metadata);
    // Another controller's namespace (`--namespace-selector`).
    if !ctx.serves(&ns) {
        return Ok(Action::requeue(RESYNC));
    }
    let regarding = pod.object_ref(&());
    ctx.guarded("k8s_reconcile_pod", pod_key(&ns, &name), regarding, PORT_FAILED, async {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let kp = ctx.kuryrports.get(&ObjectRef::new(&name).within(&ns));
        let seen = kp.as_ref().map(|kp| SeenKuryrPort {
            ours: kp.spec.pod_uid == uid,
            deleting: kp.metadata.deletion_timestamp.is_some(),
        });
        let need = PortNeed::of(&pod);
        let step = pod_step(need, has_finalizer, seen);
        debug!(?need, ?step, "pod");
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let kps: Api<KuryrPort> = Api::namespaced(ctx.client.clone(), &ns);
        match step {
            PodStep::Nothing => Ok(Action::requeue(RESYNC)),
            PodStep::Ensure { add_finalizer, create_kuryrport } => {
                // Checked before any write: a pod without what a port needs
                // gets neither a finalizer nor a KuryrPort.
                let desired = desired_kuryrport(&pod)?;
                if add_finalizer {
                    let mut finalizers = pod.finalizers().to_vec();
                    finalizers.push(Finalizer::Pod.as_str().to_string());
                    let patch =
                        finalizers_patch(pod.metadata.resource_version.as_deref(), &finalizers);
                    match pods.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
                        Ok(_) => {}
                        // The pod changed since it was read: look again.
                        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(soon()),
                        Err(e) => return Err(e.into()),
                    }
                }
                if create_kuryrport {
                    match kps.create(&PostParams::default(), &desired).await {
                        Ok(_) => info!("created the pod's KuryrPort"),
                        // The store had not seen it yet.
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Action::requeue(RESYNC))
            }
            PodStep::DeleteStaleKuryrPort | PodStep::DeleteKuryrPort => {
                match kps.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => info!(?step, "deleting the pod's KuryrPort"),
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                // Its deletion (a watched change of an owned object) brings
                // the pod back; the requeue is a safety net.
                Ok(Action::requeue(Duration::from_secs(5)))
            }
            PodStep::WaitKuryrPortGone => Ok(Action::requeue(Duration::from_secs(5))),
            PodStep::RemoveFinalizer => {
                let finalizers: Vec<String> = pod
                    .finalizers()
                    .iter()
                    .filter(|f| *f != Finalizer::Pod.as_str())
                    .cloned()
                    .collect();
                let patch = finalizers_patch(pod.metadata.resource_version.as_deref(), &finalizers);
                match pods.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
                    Ok(_) => info!("released: the pod finalizer is off"),
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => return Ok(soon()),
                    Err(e) => return Err(e.into()),
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
}

/// A look again shortly: a write lost a race with another writer of the
/// pod (the kubelet, the apiserver), which is no failure to tell.
fn soon() -> Action {
    Action::requeue(Duration::from_millis(200))
}

/// The error policy of the pod reconciler.
pub fn pod_error(pod: Arc<Pod>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry(&pod_key(&pod.namespace().unwrap_or_default(), &pod.name_any()), err)
}

/// The pod a KuryrPort is for, as Events name it.
fn pod_ref(kp: &KuryrPort) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: kp.metadata.name.clone(),
        namespace: kp.metadata.namespace.clone(),
        uid: Some(kp.spec.pod_uid.clone()),
        ..ObjectReference::default()
    }
}

fn kuryrport_key(kp: &KuryrPort) -> String {
    format!("kuryrport/{}/{}", kp.namespace().unwrap_or_default(), kp.name_any())
}

/// KuryrPort → Neutron port.
#[instrument(skip_all, fields(pod = %format!("{}/{}", kp.namespace().unwrap_or_default(), kp.name_any())))]
pub async fn reconcile_kuryrport(kp: Arc<KuryrPort>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kp.namespace().unwrap_or_default();
    if !ctx.serves(&ns) {
        return Ok(Action::requeue(RESYNC));
    }
    let api: Api<KuryrPort> = Api::namespaced(ctx.client.clone(), &ns);
    let (key, regarding) = (kuryrport_key(&kp), pod_ref(&kp));
    let (ctx_ref, api_ref) = (&ctx, &api);
    let reconcile = under_finalizer(
        &api,
        Finalizer::KuryrPort,
        kp.clone(),
        move |kp| async move { make_port(&kp, ctx_ref, api_ref).await },
        move |kp| async move { release_port(&kp, ctx_ref).await },
    );
    ctx.guarded("k8s_reconcile_kuryrport", key, regarding, PORT_FAILED, reconcile).await
}

/// The error policy of the KuryrPort reconciler.
pub fn kuryrport_error(kp: Arc<KuryrPort>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry(&kuryrport_key(&kp), err)
}

/// The pod a KuryrPort is for.
fn identity(kp: &KuryrPort) -> PodIdentity {
    PodIdentity {
        namespace: kp.namespace().unwrap_or_default(),
        name: kp.name_any(),
        uid: kp.spec.pod_uid.clone(),
        node: kp.spec.pod_node_name.clone(),
    }
}

/// The network and subnet of pods in namespace `ns`.
async fn pod_network(ns: &str, ctx: &Context) -> Result<(String, String), Error> {
    match ctx.settings.subnets_driver {
        PodSubnetsDriver::Namespace => {
            let kn = ctx.networks.get(&ObjectRef::new(ns).within(ns));
            let status = kn.as_ref().and_then(|kn| kn.status.as_ref());
            match status {
                Some(s) if s.populated == Some(true) => match (&s.net_id, &s.subnet_id) {
                    (Some(net), Some(subnet)) => Ok((net.clone(), subnet.clone())),
                    _ => Err(not_ready(ns, ctx)),
                },
                _ => Err(not_ready(ns, ctx)),
            }
        }
        PodSubnetsDriver::Default => {
            let id = ctx.settings.defaults.pod_subnet.clone().unwrap_or_default();
            let subnet = ctx.side.subnet_named(&id, "[neutron_defaults] pod_subnet").await?;
            Ok((subnet.network_id.to_string(), id))
        }
    }
}

fn not_ready(ns: &str, ctx: &Context) -> Error {
    Error::NetworkNotReady { namespace: ns.to_string(), why: ctx.network_failure_of(ns) }
}

async fn make_port(kp: &KuryrPort, ctx: &Context, api: &Api<KuryrPort>) -> Result<Action, Error> {
    if kp.status.as_ref().is_some_and(|s| s.vifs.contains_key(DEFAULT_IFNAME)) {
        return Ok(Action::requeue(RESYNC));
    }
    let id = identity(kp);
    let (network, subnet) = pod_network(&id.namespace, ctx).await?;
    let port = ctx.side.pod_port(&id, &network, &subnet).await?;
    // Only a port Neutron has not bound yet costs a GET.
    let port = ctx.side.refreshed(port).await?;
    let vif = ctx.side.vif_of(&port).await?;
    let patch = json!({"status": {"vifs": {DEFAULT_IFNAME: vif}}});
    api.patch_status(&kp.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    info!(port = %port.id, "the KuryrPort has its vif");
    Ok(Action::requeue(RESYNC))
}

async fn release_port(kp: &KuryrPort, ctx: &Context) -> Result<Action, Error> {
    let recorded =
        kp.status.as_ref().and_then(|s| s.vifs.get(DEFAULT_IFNAME)).map(|v| v.port_id.as_str());
    ctx.side.release_pod_ports(&kp.spec.pod_uid, recorded).await?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Option<SeenKuryrPort> = Some(SeenKuryrPort { ours: true, deleting: false });
    const OURS_GOING: Option<SeenKuryrPort> = Some(SeenKuryrPort { ours: true, deleting: true });
    const STALE: Option<SeenKuryrPort> = Some(SeenKuryrPort { ours: false, deleting: false });

    #[test]
    fn a_pod_that_needs_a_port_gets_finalizer_and_kuryrport() {
        let needed = PortNeed::Needed;
        assert_eq!(
            pod_step(needed, false, None),
            PodStep::Ensure { add_finalizer: true, create_kuryrport: true }
        );
        assert_eq!(
            pod_step(needed, true, None),
            PodStep::Ensure { add_finalizer: false, create_kuryrport: true }
        );
        assert_eq!(
            pod_step(needed, false, OURS),
            PodStep::Ensure { add_finalizer: true, create_kuryrport: false }
        );
        assert_eq!(pod_step(needed, true, OURS), PodStep::Nothing);
        assert_eq!(pod_step(needed, true, STALE), PodStep::DeleteStaleKuryrPort);
        assert_eq!(pod_step(needed, true, OURS_GOING), PodStep::WaitKuryrPortGone);
    }

    #[test]
    fn a_pod_done_with_its_port_releases_it_before_its_finalizer() {
        for need in [PortNeed::Deleting, PortNeed::Finished, PortNeed::HostNetwork] {
            assert_eq!(pod_step(need, true, OURS), PodStep::DeleteKuryrPort, "{need:?}");
            assert_eq!(pod_step(need, true, OURS_GOING), PodStep::WaitKuryrPortGone);
            assert_eq!(pod_step(need, true, None), PodStep::RemoveFinalizer);
            // A former pod's KuryrPort is not this pod's to wait for.
            assert_eq!(pod_step(need, true, STALE), PodStep::RemoveFinalizer);
            assert_eq!(pod_step(need, false, None), PodStep::Nothing);
        }
        assert_eq!(pod_step(PortNeed::NotScheduled, false, None), PodStep::Nothing);
    }

    #[test]
    fn finalizers_are_written_against_a_version() {
        let patch = finalizers_patch(Some("42"), &["a".to_string()]);
        assert_eq!(patch, json!({"metadata": {"resourceVersion": "42", "finalizers": ["a"]}}));
    }
}
