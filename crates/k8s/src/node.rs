//! The node daemon's pure decision on a CNI ADD in Kubernetes mode: bind
//! the vif its pod's KuryrPort carries, or wait for it. A KuryrPort of
//! another pod of the same name (the one before it, still being deleted,
//! or a stale copy in the daemon's cache) is never bound: its `podUid` is
//! checked against the ADD's `K8S_POD_UID`, the check that upstream added
//! after a stale registry gave a pod another's address.

use kuryr_core::binding::NestedMode;

use crate::crds::KuryrPort;
use crate::vif::{Binding, Vif};

/// Why an ADD cannot bind yet; each clears by itself once the controller
/// has done its part (the daemon waits, bounded, for the KuryrPort to
/// change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// The pod has no KuryrPort (yet).
    NoKuryrPort,
    /// The KuryrPort is another pod's (`podUid` is not `K8S_POD_UID`).
    OtherPod {
        /// The KuryrPort's `podUid`.
        kuryrport_uid: String,
    },
    /// The KuryrPort is being deleted.
    Deleting,
    /// The controller has not written this interface's vif yet.
    NoVif,
}

impl Wait {
    /// Why the ADD of pod `namespace/name`'s `ifname` is still waiting,
    /// worded for the CNI error once the wait gives up.
    pub fn describe(&self, namespace: &str, name: &str, ifname: &str, pod_uid: &str) -> String {
        match self {
            Wait::NoKuryrPort => format!(
                "pod {namespace}/{name} has no KuryrPort yet: is kuryr-controller running?"
            ),
            Wait::OtherPod { kuryrport_uid } => format!(
                "KuryrPort {namespace}/{name} belongs to pod uid {kuryrport_uid}, not {pod_uid} \
                 (an earlier pod of the same name): waiting for the controller to replace it"
            ),
            Wait::Deleting => format!(
                "KuryrPort {namespace}/{name} is being deleted: waiting for the controller to make a new one"
            ),
            Wait::NoVif => format!(
                "KuryrPort {namespace}/{name} has no vif for {ifname} yet: the controller has not made its Neutron port"
            ),
        }
    }
}

/// Whether this node's binder (`[binding] driver`: a veth when `nested` is
/// `None`, else that nested mode) can bind a vif bound as `binding`; the
/// error says why not.
pub fn binding_fits(binding: Binding, nested: Option<NestedMode>) -> Result<(), String> {
    if binding.nested_mode() == nested {
        return Ok(());
    }
    let driver = nested.map_or("veth", NestedMode::as_str);
    Err(format!(
        "the vif is bound {}, which this node's [binding] driver = {driver} cannot bind",
        binding.as_str()
    ))
}

/// What a CNI ADD does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddDecision<'a> {
    /// Bind this vif (and wait for it to be ACTIVE where it goes ACTIVE).
    Bind(&'a Vif),
    /// Wait for the KuryrPort to change.
    Wait(Wait),
}

/// The decision for an ADD of interface `ifname` of the pod whose uid is
/// `pod_uid` (`K8S_POD_UID`), given its KuryrPort as the daemon sees it.
pub fn on_add<'a>(
    kuryrport: Option<&'a KuryrPort>,
    pod_uid: &str,
    ifname: &str,
) -> AddDecision<'a> {
    let Some(kp) = kuryrport else { return AddDecision::Wait(Wait::NoKuryrPort) };
    if kp.spec.pod_uid != pod_uid {
        return AddDecision::Wait(Wait::OtherPod { kuryrport_uid: kp.spec.pod_uid.clone() });
    }
    if kp.metadata.deletion_timestamp.is_some() {
        return AddDecision::Wait(Wait::Deleting);
    }
    match kp.status.as_ref().and_then(|s| s.vifs.get(ifname)) {
        Some(vif) => AddDecision::Bind(vif),
        None => AddDecision::Wait(Wait::NoVif),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crds::{KuryrPortSpec, KuryrPortStatus};
    use crate::vif::DEFAULT_IFNAME;
    use serde_json::json;

    fn kuryrport(uid: &str, with_vif: bool) -> KuryrPort {
        let mut kp = KuryrPort::new(
            "web-0",
            KuryrPortSpec {
                pod_uid: uid.into(),
                pod_node_name: "node-1".into(),
                pod_static: false,
            },
        );
        if with_vif {
            let vif: Vif = serde_json::from_value(json!({
                "portId": "p1", "networkId": "n1", "mac": "fa:16:3e:00:00:01", "mtu": 1442,
                "addresses": [{"address": "10.0.1.5/24", "gateway": "10.0.1.1", "subnetId": "s1"}],
                "routes": [], "dns": [], "binding": {"mode": "ovs"}, "active": false
            }))
            .expect("vif");
            let vifs = [(DEFAULT_IFNAME.to_string(), vif)].into();
            kp.status = Some(KuryrPortStatus { vifs });
        }
        kp
    }

    #[test]
    fn binds_only_its_own_pods_vif() {
        let ready = kuryrport("uid-new", true);
        match on_add(Some(&ready), "uid-new", "eth0") {
            AddDecision::Bind(vif) => assert_eq!(vif.port_id, "p1"),
            other => panic!("expected a bind, got {other:?}"),
        }
        assert_eq!(
            on_add(Some(&ready), "uid-old", "eth0"),
            AddDecision::Wait(Wait::OtherPod { kuryrport_uid: "uid-new".into() })
        );
        assert_eq!(on_add(Some(&ready), "uid-new", "eth1"), AddDecision::Wait(Wait::NoVif));
        assert_eq!(on_add(None, "uid-new", "eth0"), AddDecision::Wait(Wait::NoKuryrPort));
        let pending = kuryrport("uid-new", false);
        assert_eq!(on_add(Some(&pending), "uid-new", "eth0"), AddDecision::Wait(Wait::NoVif));
        let mut going = kuryrport("uid-new", true);
        going.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-12-06T04:00:00Z")).expect("time"));
        assert_eq!(on_add(Some(&going), "uid-new", "eth0"), AddDecision::Wait(Wait::Deleting));
    }

    #[test]
    fn waits_name_their_cause_and_bindings_must_fit() {
        let other = Wait::OtherPod { kuryrport_uid: "X".into() };
        assert!(other
            .describe("shop", "web-0", "eth0", "Y")
            .starts_with("KuryrPort shop/web-0 belongs to pod uid X, not Y"));
        assert_eq!(
            Wait::NoKuryrPort.describe("shop", "web-0", "eth0", "Y"),
            "pod shop/web-0 has no KuryrPort yet: is kuryr-controller running?"
        );
        assert!(binding_fits(Binding::Ovs, None).is_ok());
        assert!(binding_fits(Binding::Bridge, None).is_ok());
        assert!(binding_fits(Binding::NestedMacvlan, Some(NestedMode::Macvlan)).is_ok());
        let err = binding_fits(Binding::NestedVlan { vlan_id: 3 }, None).expect_err("veth node");
        assert!(err.contains("nested-vlan") && err.contains("veth"), "{err}");
        assert!(binding_fits(Binding::Ovs, Some(NestedMode::Vlan)).is_err());
    }
}
