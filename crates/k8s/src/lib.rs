//! Kuryr's Kubernetes adapter (issue 14; this is its groundwork, no
//! controller runs yet). It owns:
//!
//! - [`crds`]: the custom resources, compatible with upstream
//!   kuryr-kubernetes' (`openstack.org/v1` `KuryrPort` and `KuryrNetwork`),
//!   their label and finalizer names, and the CRD YAML generated from them;
//! - [`vif`]: what a KuryrPort's status tells the node daemon about one
//!   interface, so it binds without asking Neutron;
//! - [`pod`]: the controller's pure decisions about a pod (does it need a
//!   port, its desired KuryrPort, its Neutron port's body).
//!
//! It translates only: Neutron names and tags come from
//! `kuryr_core::naming` (through `kuryr_core::owner::Owner::Pod`), a port's
//! addresses and routes from `kuryr_core::layout`. Every function here is
//! pure; the I/O (kube-rs reconcilers, Neutron calls) comes later.

pub mod crds;
pub mod pod;
pub mod vif;
