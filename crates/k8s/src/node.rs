//! The node daemon's pure decision on a CNI ADD in Kubernetes mode: bind
//! the vif its pod's KuryrPort carries, or wait for it. A KuryrPort of
//! another pod of the same name (the one before it, still being deleted,
//! or a stale copy in the daemon's cache) is never bound: its `podUid` is
//! checked against the ADD's `K8S_POD_UID`, the check that upstream added
//! after a stale registry gave a pod another's address.

use crate::crds::KuryrPort;
use crate::vif::Vif;

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
}
