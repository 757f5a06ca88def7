//! The namespace reconcilers (`pod_subnets_driver = namespace`):
//! **Namespace → KuryrNetwork** (the namespace gets its KuryrNetwork,
//! `crate::namespace::desired_kuryrnetwork`) and **KuryrNetwork →
//! Neutron** (its network, subnet and router interface made, and written
//! in its status; deleted, once no pod's port is left, before its
//! finalizer goes). Failures are Events on the namespace.
//! docs/kubernetes.md § How it maps.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ObjectReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use kuryr_core::config::PodSubnetsDriver;
use serde_json::json;
use tracing::{info, instrument};

use super::error::Error;
use super::neutron::{Cleanup, NamespaceNetwork};
use super::{under_finalizer, Context, RESYNC};
use crate::crds::{Finalizer, KuryrNetwork, KuryrNetworkStatus};
use crate::namespace::{desired_kuryrnetwork, NamespaceIdentity};

/// The Event reason of a namespace whose network cannot be made.
pub const NETWORK_FAILED: &str = "KuryrNetworkFailed";

/// What a KuryrNetwork needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkStep {
    /// Its status names a network and subnet, populated: nothing.
    Populated,
    /// Find or make them, then write the status.
    Ensure,
}

/// The step for a KuryrNetwork whose status is `status`.
pub fn network_step(status: Option<&KuryrNetworkStatus>) -> NetworkStep {
    match status {
        Some(s) if s.populated == Some(true) && s.net_id.is_some() && s.subnet_id.is_some() => {
            NetworkStep::Populated
        }
        _ => NetworkStep::Ensure,
    }
}

/// The status that records `net` for a namespace labelled `labels`.
pub fn populated_status(
    net: &NamespaceNetwork,
    labels: &std::collections::BTreeMap<String, String>,
) -> KuryrNetworkStatus {
    KuryrNetworkStatus {
        net_id: Some(net.network_id.clone()),
        populated: Some(true),
        router_id: Some(net.router_id.clone()),
        subnet_cidr: Some(net.cidr.clone()),
        subnet_id: Some(net.subnet_id.clone()),
        ns_labels: Some(labels.clone()),
    }
}

fn namespace_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Namespace".into()),
        name: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

/// Namespace → KuryrNetwork.
#[instrument(skip_all, fields(namespace = %ns.name_any()))]
pub async fn reconcile_namespace(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ctx.settings.subnets_driver != PodSubnetsDriver::Namespace {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let regarding = ns.object_ref(&());
    let key = format!("namespace/{name}");
    ctx.guarded("k8s_reconcile_namespace", key, regarding, NETWORK_FAILED, async {
        // A namespace being deleted takes its KuryrNetwork with it.
        if ns.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        if ctx.networks.get(&ObjectRef::new(&name).within(&name)).is_some() {
            return Ok(Action::requeue(RESYNC));
        }
        let project = ctx.settings.defaults.project.clone().unwrap_or_default();
        let kn = desired_kuryrnetwork(&ns, &project)?;
        let api: Api<KuryrNetwork> = Api::namespaced(ctx.client.clone(), &name);
        match api.create(&PostParams::default(), &kn).await {
            Ok(_) => info!("created the namespace's KuryrNetwork"),
            // The store had not seen it yet.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::requeue(RESYNC))
    })
    .await
}

/// The error policy of the namespace reconciler.
pub fn namespace_error(ns: Arc<Namespace>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry(&format!("namespace/{}", ns.name_any()), err)
}

/// KuryrNetwork → Neutron network, subnet and router interface.
#[instrument(skip_all, fields(namespace = %kn.namespace().unwrap_or_default()))]
pub async fn reconcile_network(kn: Arc<KuryrNetwork>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kn.namespace().unwrap_or_default();
    if !ctx.serves(&ns) {
        return Ok(Action::requeue(RESYNC));
    }
    let key = format!("kuryrnetwork/{ns}");
    let api: Api<KuryrNetwork> = Api::namespaced(ctx.client.clone(), &ns);
    let regarding = namespace_ref(&ns);
    let (ctx_ref, api_ref) = (&ctx, &api);
    let result = ctx
        .guarded(
            "k8s_reconcile_kuryrnetwork",
            key,
            regarding,
            NETWORK_FAILED,
            under_finalizer(
                &api,
                Finalizer::KuryrNetwork,
                kn.clone(),
                move |kn| async move { apply(&kn, ctx_ref, api_ref).await },
                move |kn| async move { cleanup(&kn, ctx_ref).await },
            ),
        )
        .await;
    ctx.network_failure(&ns, result.as_ref().err().map(ToString::to_string));
    result
}

/// The error policy of the KuryrNetwork reconciler.
pub fn network_error(kn: Arc<KuryrNetwork>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry(&format!("kuryrnetwork/{}", kn.namespace().unwrap_or_default()), err)
}

fn identity(kn: &KuryrNetwork, ctx: &Context) -> NamespaceIdentity {
    let name = kn.spec.ns_name.clone();
    let uid = ctx
        .namespaces
        .get(&ObjectRef::new(&name))
        .and_then(|ns| ns.meta().uid.clone())
        .unwrap_or_default();
    NamespaceIdentity { name, uid }
}

async fn namespace_identity(kn: &KuryrNetwork, ctx: &Context) -> Result<NamespaceIdentity, Error> {
    let id = identity(kn, ctx);
    if !id.uid.is_empty() {
        return Ok(id);
    }
    // Not in the store (yet): ask.
    let ns = Api::<Namespace>::all(ctx.client.clone()).get(&id.name).await?;
    Ok(NamespaceIdentity::of(&ns)?)
}

async fn apply(kn: &KuryrNetwork, ctx: &Context, api: &Api<KuryrNetwork>) -> Result<Action, Error> {
    if network_step(kn.status.as_ref()) == NetworkStep::Populated {
        return Ok(Action::requeue(RESYNC));
    }
    let id = namespace_identity(kn, ctx).await?;
    let net = ctx.side.ensure_namespace_network(&id).await?;
    let status = populated_status(&net, &kn.spec.ns_labels);
    api.patch_status(
        &kn.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    info!(network = %net.network_id, subnet = %net.subnet_id, cidr = %net.cidr, "KuryrNetwork populated");
    Ok(Action::requeue(RESYNC))
}

async fn cleanup(kn: &KuryrNetwork, ctx: &Context) -> Result<Action, Error> {
    let id = identity(kn, ctx);
    let recorded =
        kn.status.as_ref().and_then(|s| s.net_id.clone().map(|net| (net, s.subnet_id.clone())));
    match ctx.side.delete_namespace_network(&id, recorded).await? {
        Cleanup::Done => Ok(Action::await_change()),
        // An error, not Ok: the finalizer must stay until they are gone.
        Cleanup::PortsRemain(count) => Err(Error::PortsRemain { namespace: id.name, count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_populated_network_is_left_alone() {
        assert_eq!(network_step(None), NetworkStep::Ensure);
        let mut status = KuryrNetworkStatus { populated: Some(true), ..Default::default() };
        assert_eq!(network_step(Some(&status)), NetworkStep::Ensure, "no ids");
        status.net_id = Some("n1".into());
        status.subnet_id = Some("s1".into());
        assert_eq!(network_step(Some(&status)), NetworkStep::Populated);
        status.populated = Some(false);
        assert_eq!(network_step(Some(&status)), NetworkStep::Ensure);
    }

    #[test]
    fn the_status_is_upstreams() {
        let net = NamespaceNetwork {
            network_id: "n1".into(),
            subnet_id: "s1".into(),
            cidr: "10.0.1.0/24".into(),
            router_id: "r1".into(),
        };
        let labels = BTreeMap::from([("team".to_string(), "blue".to_string())]);
        let v = serde_json::to_value(populated_status(&net, &labels)).expect("json");
        assert_eq!(
            v,
            json!({"netId": "n1", "populated": true, "routerId": "r1",
                   "subnetCIDR": "10.0.1.0/24", "subnetId": "s1", "nsLabels": {"team": "blue"}})
        );
    }
}
