//! Kuryr's Kubernetes adapter (issue 14). It owns:
//!
//! - [`client`]: the apiserver client of `[kubernetes]`;
//! - [`controller`]: `kuryr controller`'s reconcilers (namespaces and pods
//!   to Neutron), its Neutron side, its Events and leader election;
//! - [`crds`]: the custom resources, compatible with upstream
//!   kuryr-kubernetes' (`openstack.org/v1` `KuryrPort` and `KuryrNetwork`),
//!   their label and finalizer names, and the CRD YAML generated from them;
//! - [`vif`]: what a KuryrPort's status tells the node daemon about one
//!   interface, so it binds without asking Neutron;
//! - [`pod`]: the controller's pure decisions about a pod (does it need a
//!   port, its desired KuryrPort, its Neutron port's body);
//! - [`namespace`]: the same for a namespace (its desired KuryrNetwork,
//!   its network's and subnet's bodies);
//! - [`node`]: the node daemon's decision on a CNI ADD (bind its pod's
//!   vif, checked against `K8S_POD_UID`, or wait);
//! - [`daemon`]: the node daemon's Kubernetes mode, `K8sCni`, the CNI
//!   handler acting on [`node`]'s decisions over a watched cache of the
//!   node's KuryrPorts (it binds only; no Neutron port is made or deleted);
//! - [`MissingField`]: an object the apiserver would never send.
//!
//! It translates only: Neutron names and tags come from
//! `kuryr_core::naming` (through `kuryr_core::owner::Owner::Pod`), a port's
//! addresses and routes from `kuryr_core::layout`. The decisions are pure;
//! [`client`], [`controller`] and [`daemon`] do the I/O.

pub mod client;
pub mod controller;
pub mod crds;
pub mod daemon;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod vif;

/// An object without a field the apiserver always sets (a malformed
/// object, or a test's): the controller cannot act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object} has no {field}")]
pub struct MissingField {
    /// The object, as far as it is known (`pod shop/web-0`).
    pub object: String,
    /// The field (`metadata.uid`).
    pub field: &'static str,
}

/// `field` of `object`, when set and not empty.
fn required(
    object: impl FnOnce() -> String,
    value: Option<&String>,
    field: &'static str,
) -> Result<String, MissingField> {
    value.filter(|v| !v.is_empty()).cloned().ok_or_else(|| MissingField { object: object(), field })
}

/// `extra` (`[neutron_defaults] resource_tags`) appended to `tags`, each once.
fn add_tags(tags: &mut Vec<String>, extra: &[String]) {
    for tag in extra {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
}
