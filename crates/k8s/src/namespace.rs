//! The controller's pure decisions about a namespace (`pod_subnets_driver =
//! namespace`): the KuryrNetwork it should have ([`desired_kuryrnetwork`]),
//! and the bodies of its Neutron network and subnet, named and tagged by
//! `kuryr_core::naming::pod`. Its subnet is carved from `[namespace_subnet]
//! pod_subnet_pool` and attached to `pod_router` by the reconciler.

use k8s_openapi::api::core::v1::Namespace;
use kuryr_core::config::NeutronDefaultsOptions;
use kuryr_core::naming::pod as naming;
use openstack::neutron::{NetworkCreate, SubnetCreate};

use crate::crds::{Finalizer, KuryrNetwork, KuryrNetworkSpec};
use crate::{required, MissingField};

/// Who a namespace is, as its network and KuryrNetwork name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceIdentity {
    /// Its name (also its KuryrNetwork's, which lives in it).
    pub name: String,
    /// Its uid (in its network's and subnet's names).
    pub uid: String,
}

impl NamespaceIdentity {
    /// The identity of `ns`.
    pub fn of(ns: &Namespace) -> Result<NamespaceIdentity, MissingField> {
        let meta = &ns.metadata;
        let label = || format!("namespace {}", meta.name.as_deref().unwrap_or("?"));
        Ok(NamespaceIdentity {
            name: required(label, meta.name.as_ref(), "metadata.name")?,
            uid: required(label, meta.uid.as_ref(), "metadata.uid")?,
        })
    }
}

/// The KuryrNetwork `ns` should have, as upstream made it: named after the
/// namespace, in it, with the KuryrNetwork finalizer, its spec naming the
/// namespace, the project and the namespace's labels.
pub fn desired_kuryrnetwork(
    ns: &Namespace,
    project_id: &str,
) -> Result<KuryrNetwork, MissingField> {
    let id = NamespaceIdentity::of(ns)?;
    let spec = KuryrNetworkSpec {
        ns_name: id.name.clone(),
        project_id: project_id.to_string(),
        ns_labels: ns.metadata.labels.clone().unwrap_or_default(),
    };
    let mut kns = KuryrNetwork::new(&id.name, spec);
    kns.metadata.namespace = Some(id.name);
    kns.metadata.finalizers = Some(vec![Finalizer::KuryrNetwork.as_str().to_string()]);
    Ok(kns)
}

/// The POST body of namespace `id`'s network, and the tags to put on it
/// after (Neutron takes no tags in a network's create): its namespace, its
/// `cluster` and `defaults`' `resource_tags`.
pub fn network_create(
    id: &NamespaceIdentity,
    cluster: &str,
    defaults: &NeutronDefaultsOptions,
) -> (NetworkCreate, Vec<String>) {
    let create = NetworkCreate {
        name: Some(naming::namespace_network_name(&id.name, &id.uid)),
        project_id: defaults.project.as_deref().map(Into::into),
        ..NetworkCreate::default()
    };
    (create, tags(id, cluster, defaults))
}

/// The POST body of namespace `id`'s subnet on `network_id`, from the
/// subnetpool `pool_id` of IP version `ip_version` (without DHCP, as
/// upstream), and its tags.
pub fn subnet_create(
    id: &NamespaceIdentity,
    cluster: &str,
    network_id: &str,
    (pool_id, ip_version): (&str, u8),
    defaults: &NeutronDefaultsOptions,
) -> (SubnetCreate, Vec<String>) {
    let create = SubnetCreate {
        network_id: network_id.into(),
        ip_version,
        subnetpool_id: Some(pool_id.into()),
        name: Some(naming::namespace_network_name(&id.name, &id.uid)),
        enable_dhcp: Some(false),
        project_id: defaults.project.as_deref().map(Into::into),
        ..SubnetCreate::default()
    };
    (create, tags(id, cluster, defaults))
}

fn tags(id: &NamespaceIdentity, cluster: &str, defaults: &NeutronDefaultsOptions) -> Vec<String> {
    let mut tags = naming::namespace_network_tags(&id.name, cluster);
    crate::add_tags(&mut tags, &defaults.resource_tags);
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UID: &str = "3c8e5f8a-2f1e-4d8b-9a77-0c1d2e3f4a5b";

    fn namespace() -> Namespace {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "shop", "uid": UID, "labels": {"team": "blue"}}
        }))
        .expect("namespace")
    }

    #[test]
    fn the_desired_kuryrnetwork_is_upstreams() {
        let kns = desired_kuryrnetwork(&namespace(), "p1").expect("kuryrnetwork");
        let v = serde_json::to_value(&kns).expect("json");
        assert_eq!(v["kind"], "KuryrNetwork");
        assert_eq!(v["metadata"]["name"], "shop");
        assert_eq!(v["metadata"]["namespace"], "shop");
        assert_eq!(
            v["metadata"]["finalizers"],
            json!(["kuryrnetwork.finalizers.kuryr.openstack.org"])
        );
        assert_eq!(
            v["spec"],
            json!({"nsName": "shop", "projectId": "p1", "nsLabels": {"team": "blue"}})
        );
        let mut nameless = namespace();
        nameless.metadata.uid = None;
        let err = desired_kuryrnetwork(&nameless, "p1").expect_err("no uid");
        assert_eq!(err.to_string(), "namespace shop has no metadata.uid");
    }

    #[test]
    fn the_network_and_subnet_are_named_and_tagged_for_the_namespace() {
        let id = NamespaceIdentity::of(&namespace()).expect("identity");
        let defaults = NeutronDefaultsOptions {
            project: Some("p1".into()),
            resource_tags: vec!["k8s".into()],
            ..NeutronDefaultsOptions::default()
        };
        let (net, net_tags) = network_create(&id, "c1", &defaults);
        let net = serde_json::to_value(net).expect("json");
        assert_eq!(net["name"], format!("{UID}/shop"));
        assert_eq!(net["project_id"], "p1");
        assert_eq!(net_tags, ["kuryr.k8s.ns:shop", "kuryr.k8s.cluster:c1", "k8s"]);
        let (subnet, subnet_tags) = subnet_create(&id, "c1", "n1", ("sp1", 4), &defaults);
        let subnet = serde_json::to_value(subnet).expect("json");
        assert_eq!(subnet["network_id"], "n1");
        assert_eq!(subnet["subnetpool_id"], "sp1");
        assert_eq!(subnet["ip_version"], 4);
        assert_eq!(subnet["enable_dhcp"], false);
        assert_eq!(subnet["name"], format!("{UID}/shop"));
        assert!(subnet.get("cidr").is_none(), "the pool picks it: {subnet}");
        assert_eq!(subnet_tags, net_tags);
    }
}
