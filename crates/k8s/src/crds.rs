//! The custom resources, compatible with upstream kuryr-kubernetes' so an
//! operator switching finds the same objects: group `openstack.org`,
//! version `v1`, the namespaced kinds `KuryrPort` (one per pod) and
//! `KuryrNetwork` (one per namespace), upstream's label and finalizer
//! names, and the CRD YAML of `deploy/kubernetes/crds.yaml`, generated from
//! these types ([`yaml`]; regenerate with `KURYR_REGEN=1 cargo test -p
//! kuryr-k8s crds`).
//!
//! Where upstream's schema leaves an object open
//! (`x-kubernetes-preserve-unknown-fields`: a KuryrPort's `vifs`, a
//! KuryrNetwork's `nsLabels`) ours does too, so an object upstream wrote
//! still validates; the Rust types are typed all the same. Unlike
//! upstream, both kinds have the status subresource.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vif::Vif;

/// Label on a KuryrPort naming its pod's node: what a node daemon selects
/// its KuryrPorts by.
pub const NODE_NAME_LABEL: &str = "kuryr.openstack.org/nodeName";

/// Upstream's finalizers, each naming what must be undone before its
/// object goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalizer {
    /// On a KuryrPort: its Neutron port is released (or pooled again).
    KuryrPort,
    /// On a KuryrNetwork: its network, subnet and router interface are
    /// deleted.
    KuryrNetwork,
    /// On a pod with a KuryrPort: the KuryrPort is released.
    Pod,
}

impl Finalizer {
    /// Its name, as upstream wrote it.
    pub fn as_str(self) -> &'static str {
        match self {
            Finalizer::KuryrPort => "kuryr.openstack.org/kuryrport-finalizer",
            Finalizer::KuryrNetwork => "kuryrnetwork.finalizers.kuryr.openstack.org",
            Finalizer::Pod => "kuryr.openstack.org/pod-finalizer",
        }
    }

    /// Whether `meta` carries it.
    pub fn is_on(self, meta: &ObjectMeta) -> bool {
        meta.finalizers.iter().flatten().any(|f| f == self.as_str())
    }
}

/// What a KuryrPort asks for: the port of one pod on its node.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[kube(group = "openstack.org", version = "v1", kind = "KuryrPort", namespaced)]
#[kube(shortname = "kp", status = "KuryrPortStatus", derive = "PartialEq")]
#[kube(doc = "The Neutron port of one pod, made by the Kuryr controller and bound by its node.")]
#[kube(
    printcolumn = r#"{"name":"PodUID","type":"string","description":"Pod UID","jsonPath":".spec.podUid"}"#
)]
#[kube(
    printcolumn = r#"{"name":"Nodename","type":"string","description":"Name of the node corresponding pod lives in","jsonPath":".spec.podNodeName"}"#
)]
#[kube(
    printcolumn = r#"{"name":"labels","type":"string","description":"Labels for the CRD","jsonPath":".metadata.labels"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KuryrPortSpec {
    /// The pod's uid: what the CNI ADD checks `K8S_POD_UID` against.
    pub pod_uid: String,
    /// The pod's node (`spec.nodeName`), also the port's `binding:host_id`.
    pub pod_node_name: String,
    /// Whether the pod is static (a kubelet's manifest, seen through its
    /// mirror pod).
    #[serde(default)]
    pub pod_static: bool,
}

/// What the controller made for a KuryrPort.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
pub struct KuryrPortStatus {
    /// One vif per interface name (`crate::vif::DEFAULT_IFNAME`); empty
    /// until the port is made.
    #[schemars(schema_with = "open_object")]
    pub vifs: BTreeMap<String, Vif>,
}

/// What a KuryrNetwork asks for: the network of one namespace.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[kube(kind = "KuryrNetwork", group = "openstack.org", version = "v1", namespaced)]
#[kube(status = "KuryrNetworkStatus", shortname = "kns", derive = "PartialEq")]
#[kube(doc = "The Neutron network, subnet and router interface of one namespace.")]
#[kube(
    printcolumn = r#"{"name":"SUBNET-CIDR","type":"string","description":"The subnet CIDR allocated to the namespace","jsonPath":".status.subnetCIDR"}"#
)]
#[kube(printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct KuryrNetworkSpec {
    /// The namespace.
    pub ns_name: String,
    /// The OpenStack project its Neutron objects are made in.
    pub project_id: String,
    /// The namespace's labels.
    #[schemars(schema_with = "open_object")]
    pub ns_labels: BTreeMap<String, String>,
}

/// What the controller made for a KuryrNetwork (upstream's fields, each
/// `null` until known).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct KuryrNetworkStatus {
    /// The Neutron network.
    pub net_id: Option<String>,
    /// Whether the network is ready for the namespace's pods.
    pub populated: Option<bool>,
    /// The router its subnet is attached to.
    pub router_id: Option<String>,
    /// The subnet's CIDR (upstream's spelling).
    #[serde(rename = "subnetCIDR")]
    pub subnet_cidr: Option<String>,
    /// The subnet.
    pub subnet_id: Option<String>,
    /// The labels the network was last made for.
    #[schemars(schema_with = "open_object")]
    pub ns_labels: Option<BTreeMap<String, String>>,
}

/// Upstream's schema of an open map: any object, kept as written.
fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Both CRDs, in the order they are applied.
pub fn crds() -> Vec<CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![KuryrPort::crd(), KuryrNetwork::crd()]
}

/// `deploy/kubernetes/crds.yaml`: both CRDs as one multi-document YAML.
pub fn yaml() -> String {
    let mut out = String::from(
        "# Generated from crates/k8s/src/crds.rs: do not edit. Regenerate with\n\
         # KURYR_REGEN=1 cargo test -p kuryr-k8s crds\n",
    );
    for crd in crds() {
        out.push_str("---\n");
        // A CRD always serializes: it is plain data with string keys.
        out.push_str(&serde_yaml_ng::to_string(&crd).expect("a CRD serializes to YAML"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::{CustomResourceExt, Resource};
    use serde_json::json;

    const CHECKED_IN: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes/crds.yaml");

    /// The checked-in YAML is the generated one; `KURYR_REGEN=1` rewrites it.
    #[test]
    fn crds_yaml_is_generated() {
        let generated = yaml();
        if std::env::var_os("KURYR_REGEN").is_some() {
            std::fs::write(CHECKED_IN, &generated).expect("write deploy/kubernetes/crds.yaml");
        }
        let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
        assert!(
            checked_in == generated,
            "deploy/kubernetes/crds.yaml is not what crates/k8s/src/crds.rs generates: \
             regenerate it with `KURYR_REGEN=1 cargo test -p kuryr-k8s crds` and commit it"
        );
    }

    #[test]
    fn names_are_upstreams() {
        assert_eq!(KuryrPort::api_version(&()), "openstack.org/v1");
        assert_eq!(KuryrNetwork::api_version(&()), "openstack.org/v1");
        let kp = KuryrPort::crd();
        assert_eq!(kp.metadata.name.as_deref(), Some("kuryrports.openstack.org"));
        assert_eq!(kp.spec.scope, "Namespaced");
        assert_eq!(kp.spec.names.short_names, Some(vec!["kp".to_string()]));
        assert_eq!(kp.spec.names.plural, "kuryrports");
        assert_eq!(kp.spec.names.singular.as_deref(), Some("kuryrport"));
        let kns = KuryrNetwork::crd();
        assert_eq!(kns.metadata.name.as_deref(), Some("kuryrnetworks.openstack.org"));
        assert_eq!(kns.spec.names.short_names, Some(vec!["kns".to_string()]));
        assert_eq!(kns.spec.names.plural, "kuryrnetworks");
        let columns = |crd: &CustomResourceDefinition| -> Vec<(String, String, String)> {
            crd.spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.type_.clone(), c.json_path.clone()))
                .collect()
        };
        assert_eq!(
            columns(&kp),
            [
                ("PodUID".into(), "string".into(), ".spec.podUid".into()),
                ("Nodename".into(), "string".into(), ".spec.podNodeName".into()),
                ("labels".into(), "string".into(), ".metadata.labels".into()),
            ]
        );
        assert_eq!(
            columns(&kns),
            [
                ("SUBNET-CIDR".into(), "string".into(), ".status.subnetCIDR".into()),
                ("Age".into(), "date".into(), ".metadata.creationTimestamp".into()),
            ]
        );
    }

    #[test]
    fn schemas_keep_upstreams_open_fields_and_required_lists() {
        let schema = |crd: CustomResourceDefinition| {
            let v = crd.spec.versions[0].schema.clone().expect("schema");
            serde_json::to_value(v.open_api_v3_schema).expect("json")
        };
        let kp = schema(KuryrPort::crd());
        let spec = &kp["properties"]["spec"];
        assert_eq!(spec["required"], json!(["podNodeName", "podUid"]));
        assert_eq!(spec["properties"]["podStatic"]["type"], "boolean");
        let vifs = &kp["properties"]["status"]["properties"]["vifs"];
        assert_eq!(vifs["type"], "object");
        assert_eq!(vifs["x-kubernetes-preserve-unknown-fields"], true);
        assert!(vifs.get("additionalProperties").is_none(), "open like upstream's: {vifs}");
        assert_eq!(kp["properties"]["status"]["required"], json!(["vifs"]));
        let kns = schema(KuryrNetwork::crd());
        let spec = &kns["properties"]["spec"];
        assert_eq!(spec["required"], json!(["nsLabels", "nsName", "projectId"]));
        let status = &kns["properties"]["status"]["properties"];
        for field in ["netId", "populated", "routerId", "subnetCIDR", "subnetId", "nsLabels"] {
            assert!(status.get(field).is_some(), "status.{field} missing: {status}");
        }
    }

    #[test]
    fn an_upstream_kuryrnetwork_reads() {
        let kns: KuryrNetwork = serde_json::from_value(json!({
            "apiVersion": "openstack.org/v1",
            "kind": "KuryrNetwork",
            "metadata": {"name": "shop", "namespace": "shop",
                         "finalizers": ["kuryrnetwork.finalizers.kuryr.openstack.org"]},
            "spec": {"nsName": "shop", "projectId": "p1", "nsLabels": {"team": "blue"}},
            "status": {"netId": "n1", "populated": true, "routerId": "r1",
                       "subnetCIDR": "10.0.1.0/24", "subnetId": "s1", "nsLabels": {}}
        }))
        .expect("upstream's object");
        assert_eq!(kns.spec.ns_labels["team"], "blue");
        let status = kns.status.expect("status");
        assert_eq!(status.subnet_cidr.as_deref(), Some("10.0.1.0/24"));
        assert_eq!(status.populated, Some(true));
    }
}
