//! The controller's pure decisions about a pod: does it need a Neutron
//! port ([`PortNeed::of`]), the KuryrPort it should have
//! ([`desired_kuryrport`]), and the POST body of its port
//! ([`port_create`]), named, tagged and owned through
//! `kuryr_core::owner::Owner::Pod`. No I/O: the reconciler acts on these.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kuryr_core::config::NeutronDefaultsOptions;
use kuryr_core::owner::Owner;
use openstack::neutron::{FixedIpRequest, PortCreate};

use crate::crds::{Finalizer, KuryrPort, KuryrPortSpec, NODE_NAME_LABEL};
use crate::{required, MissingField};

/// The kubelet's annotation naming where a pod came from (`api` unless
/// static).
const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";

/// A pod's `status.phase`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Accepted, containers not all running (or no phase yet).
    Pending,
    /// Bound to a node, a container running.
    Running,
    /// Every container ended with success; none will restart.
    Succeeded,
    /// Every container ended, one with failure; none will restart.
    Failed,
    /// The state could not be obtained, or a phase this version does not
    /// know.
    Unknown,
}

impl PodPhase {
    /// The phase of `pod` (`Pending` before the apiserver writes one).
    pub fn of(pod: &Pod) -> PodPhase {
        match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
            None | Some("Pending") => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            Some(_) => PodPhase::Unknown,
        }
    }

    /// Whether its containers are done for good (its port can go).
    pub fn is_finished(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// Whether a pod needs a Neutron port, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortNeed {
    /// Scheduled, on the pod network, not finished: it needs one.
    Needed,
    /// Not scheduled yet: no node to bind a port to.
    NotScheduled,
    /// `hostNetwork: true`: it uses its node's network.
    HostNetwork,
    /// Its containers are done (`Succeeded` or `Failed`): a port it has can go.
    Finished,
    /// Being deleted: a port it has can go.
    Deleting,
}

impl PortNeed {
    /// The decision for `pod`.
    pub fn of(pod: &Pod) -> PortNeed {
        let spec = pod.spec.as_ref();
        if pod.metadata.deletion_timestamp.is_some() {
            PortNeed::Deleting
        } else if spec.and_then(|s| s.host_network).unwrap_or(false) {
            PortNeed::HostNetwork
        } else if PodPhase::of(pod).is_finished() {
            PortNeed::Finished
        } else if spec.and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty) {
            PortNeed::NotScheduled
        } else {
            PortNeed::Needed
        }
    }

    /// Whether a port the pod has should be released (and its finalizers
    /// removed): it will not use it again.
    pub fn releases(self) -> bool {
        matches!(self, PortNeed::Finished | PortNeed::Deleting)
    }
}

/// Who a pod is, as its port and KuryrPort name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// Its namespace.
    pub namespace: String,
    /// Its name (also its KuryrPort's).
    pub name: String,
    /// Its uid (its port's `device_id`).
    pub uid: String,
    /// Its node (its port's `binding:host_id`).
    pub node: String,
}

impl PodIdentity {
    /// The identity of a scheduled pod.
    pub fn of(pod: &Pod) -> Result<PodIdentity, MissingField> {
        let meta = &pod.metadata;
        let label = || {
            let part = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
            format!("pod {}/{}", part(&meta.namespace), part(&meta.name))
        };
        Ok(PodIdentity {
            namespace: required(label, meta.namespace.as_ref(), "metadata.namespace")?,
            name: required(label, meta.name.as_ref(), "metadata.name")?,
            uid: required(label, meta.uid.as_ref(), "metadata.uid")?,
            node: required(
                label,
                pod.spec.as_ref().and_then(|s| s.node_name.as_ref()),
                "spec.nodeName",
            )?,
        })
    }

    /// Its owner, for Neutron (`kuryr_core::owner`), in `cluster`.
    pub fn owner(&self, cluster: &str) -> Owner {
        Owner::Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            cluster: cluster.to_string(),
        }
    }
}

/// Whether `pod` is static (from a kubelet manifest, seen through its
/// mirror pod), as upstream tells it.
pub fn is_static(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_SOURCE_ANNOTATION))
        .is_some_and(|source| source != "api")
}

/// The KuryrPort a scheduled pod should have, as upstream made it: named
/// after the pod in its namespace, owned by it, labelled with its node,
/// with the KuryrPort finalizer and no vif yet.
pub fn desired_kuryrport(pod: &Pod) -> Result<KuryrPort, MissingField> {
    let id = PodIdentity::of(pod)?;
    // Set once PodIdentity::of found the name.
    let owner = pod.controller_owner_ref(&()).ok_or_else(|| MissingField {
        object: format!("pod {}/{}", id.namespace, id.name),
        field: "metadata.name",
    })?;
    let mut kp = KuryrPort::new(
        &id.name,
        KuryrPortSpec {
            pod_uid: id.uid,
            pod_node_name: id.node.clone(),
            pod_static: is_static(pod),
        },
    );
    kp.metadata.namespace = Some(id.namespace);
    kp.metadata.labels = Some(BTreeMap::from([(NODE_NAME_LABEL.to_string(), id.node)]));
    kp.metadata.finalizers = Some(vec![Finalizer::KuryrPort.as_str().to_string()]);
    kp.metadata.owner_references = Some(vec![owner]);
    Ok(kp)
}

/// The POST body of the port of pod `id` in `cluster`, on `subnet_id` of
/// `network_id` (the namespace's, or `[neutron_defaults] pod_subnet`'s):
/// named `<namespace>/<pod>`, `device_id` the pod's uid, `compute:kuryr`,
/// bound to the pod's node, in `defaults`' project with its
/// `pod_security_groups` (none: Neutron's default group), tagged with its
/// namespace, its cluster and `defaults`' `resource_tags`.
pub fn port_create(
    id: &PodIdentity,
    cluster: &str,
    network_id: &str,
    subnet_id: &str,
    defaults: &NeutronDefaultsOptions,
) -> PortCreate {
    let mut create = id.owner(cluster).port_create(network_id, Some(id.node.clone()));
    create.fixed_ips = Some(vec![FixedIpRequest::subnet(subnet_id)]);
    if !defaults.pod_security_groups.is_empty() {
        create.security_groups =
            Some(defaults.pod_security_groups.iter().map(|s| s.as_str().into()).collect());
    }
    create.project_id = defaults.project.as_deref().map(Into::into);
    if let Some(tags) = create.tags.as_mut() {
        crate::add_tags(tags, &defaults.resource_tags);
    }
    create
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuryr_core::naming::pod as naming;
    use serde_json::json;

    const UID: &str = "0b0e7c2a-1111-2222-3333-444455556666";
    const CLUSTER: &str = "6f1c0f5e-0d4b-4a51-9d39-8c2d1f0e7a11";

    fn pod(extra: serde_json::Value) -> Pod {
        let mut base = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop", "uid": UID},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "kbox"}]},
            "status": {"phase": "Pending"}
        });
        merge(&mut base, extra);
        serde_json::from_value(base).expect("pod")
    }

    fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
        match (base, extra) {
            (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    #[test]
    fn which_pods_need_a_port() {
        assert_eq!(PortNeed::of(&pod(json!({}))), PortNeed::Needed);
        assert_eq!(PortNeed::of(&pod(json!({"status": {"phase": "Running"}}))), PortNeed::Needed);
        assert_eq!(PortNeed::of(&pod(json!({"status": {"phase": null}}))), PortNeed::Needed);
        assert_eq!(PortNeed::of(&pod(json!({"spec": {"nodeName": null}}))), PortNeed::NotScheduled);
        assert_eq!(PortNeed::of(&pod(json!({"spec": {"nodeName": ""}}))), PortNeed::NotScheduled);
        assert_eq!(
            PortNeed::of(&pod(json!({"spec": {"hostNetwork": true}}))),
            PortNeed::HostNetwork
        );
        for phase in ["Succeeded", "Failed"] {
            let need = PortNeed::of(&pod(json!({"status": {"phase": phase}})));
            assert_eq!(need, PortNeed::Finished, "{phase}");
            assert!(need.releases());
        }
        let deleting = pod(json!({"metadata": {"deletionTimestamp": "2026-12-06T04:00:00Z"}}));
        assert_eq!(PortNeed::of(&deleting), PortNeed::Deleting);
        assert!(!PortNeed::Needed.releases() && !PortNeed::HostNetwork.releases());
        assert_eq!(PodPhase::of(&pod(json!({"status": {"phase": "Weird"}}))), PodPhase::Unknown);
    }

    #[test]
    fn the_desired_kuryrport_is_upstreams() {
        let kp = desired_kuryrport(&pod(json!({}))).expect("kuryrport");
        let v = serde_json::to_value(&kp).expect("json");
        assert_eq!(v["apiVersion"], "openstack.org/v1");
        assert_eq!(v["kind"], "KuryrPort");
        assert_eq!(v["metadata"]["name"], "web-0");
        assert_eq!(v["metadata"]["namespace"], "shop");
        assert_eq!(v["metadata"]["labels"], json!({"kuryr.openstack.org/nodeName": "node-1"}));
        assert_eq!(v["metadata"]["finalizers"], json!(["kuryr.openstack.org/kuryrport-finalizer"]));
        let owner = &v["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "Pod");
        assert_eq!(owner["uid"], UID);
        assert_eq!(owner["name"], "web-0");
        assert_eq!(v["spec"], json!({"podUid": UID, "podNodeName": "node-1", "podStatic": false}));
        assert!(kp.status.is_none());
        let mirror =
            pod(json!({"metadata": {"annotations": {"kubernetes.io/config.source": "file"}}}));
        assert!(desired_kuryrport(&mirror).expect("kuryrport").spec.pod_static);
        let api = pod(json!({"metadata": {"annotations": {"kubernetes.io/config.source": "api"}}}));
        assert!(!is_static(&api));
    }

    #[test]
    fn a_pod_without_its_identity_is_refused() {
        let err = desired_kuryrport(&pod(json!({"metadata": {"uid": null}}))).expect_err("no uid");
        assert_eq!(err.to_string(), "pod shop/web-0 has no metadata.uid");
        let err = PodIdentity::of(&pod(json!({"spec": {"nodeName": null}}))).expect_err("no node");
        assert!(err.to_string().contains("spec.nodeName"), "{err}");
    }

    #[test]
    fn finalizers_are_found() {
        let p = pod(json!({"metadata": {"finalizers": ["kuryr.openstack.org/pod-finalizer"]}}));
        assert!(Finalizer::Pod.is_on(&p.metadata));
        assert!(!Finalizer::KuryrPort.is_on(&p.metadata));
        assert!(!Finalizer::Pod.is_on(&pod(json!({})).metadata));
        assert_eq!(Finalizer::KuryrNetwork.as_str(), "kuryrnetwork.finalizers.kuryr.openstack.org");
    }

    #[test]
    fn the_port_is_named_tagged_and_bound_to_the_node() {
        let id = PodIdentity::of(&pod(json!({}))).expect("identity");
        let defaults = NeutronDefaultsOptions {
            project: Some("p1".into()),
            pod_subnet: None,
            pod_security_groups: vec!["sg1".into()],
            resource_tags: vec!["cluster-a".into()],
        };
        let body =
            serde_json::to_value(port_create(&id, CLUSTER, "n1", "s1", &defaults)).expect("json");
        assert_eq!(body["name"], "shop/web-0");
        assert_eq!(body["device_id"], UID);
        assert_eq!(body["device_owner"], "compute:kuryr");
        assert_eq!(body["binding:host_id"], "node-1");
        assert_eq!(body["network_id"], "n1");
        assert_eq!(body["fixed_ips"], json!([{"subnet_id": "s1"}]));
        assert_eq!(body["security_groups"], json!(["sg1"]));
        assert_eq!(body["project_id"], "p1");
        let tags: Vec<String> = serde_json::from_value(body["tags"].clone()).expect("tags");
        assert_eq!(naming::namespace_of(&tags), Some("shop"));
        assert_eq!(naming::cluster_of(&tags), Some(CLUSTER));
        assert!(tags.contains(&"cluster-a".to_string()));
        let bare = port_create(&id, CLUSTER, "n1", "s1", &NeutronDefaultsOptions::default());
        assert_eq!(bare.security_groups, None, "no groups: Neutron's default");
        assert_eq!(bare.project_id, None);
    }
}
