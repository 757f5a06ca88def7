//! Who a port is for: the owner kinds (a Docker endpoint, a CNI
//! attachment, a Kubernetes pod) as one type. Each kind's Neutron name,
//! `device_id`, tags and OVS `external_ids` are derived here from
//! [`crate::naming`], once, for the lifecycle ([`crate::lifecycle`]) and
//! GC ([`crate::gc`]) alike (docs/architecture.md § Owners).

use std::collections::BTreeMap;

use openstack::neutron::PortCreate;

use crate::binding::OWNER_KEY;
use crate::naming::{self, cni, pod};

/// The kinds of owner, for what is asked of each (GC's liveness question,
/// crash recovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    /// A Docker libnetwork endpoint.
    DockerEndpoint,
    /// A standalone CNI attachment `(container id, ifname)`.
    CniAttachment,
    /// A Kubernetes pod.
    Pod,
}

impl OwnerKind {
    /// The kind a port's tags name, if it names one. Docker's endpoint tags
    /// are upstream's network-id halves (a network carries them too), so a
    /// port is a Docker endpoint's when it carries those and nothing more
    /// specific.
    pub fn of_tags(tags: &[String]) -> Option<Self> {
        if cni::attachment_of(tags).is_some() {
            Some(OwnerKind::CniAttachment)
        } else if pod::namespace_of(tags).is_some() {
            Some(OwnerKind::Pod)
        } else if naming::id_from_tags(tags).is_some()
            || naming::docker_network_from_tags(tags).is_some()
        {
            Some(OwnerKind::DockerEndpoint)
        } else {
            None
        }
    }

    /// The kind an OVS interface's `external_ids` name (a claimed port):
    /// a CNI attachment carries its ifname next to `vm-uuid`, a pod's
    /// interface (plugged by a node daemon in Kubernetes mode, `vm-uuid`
    /// its uid) its sandbox's container id; a Docker endpoint only
    /// `vm-uuid`.
    pub fn of_ovs_external_ids(ids: &BTreeMap<String, String>) -> Option<Self> {
        if ids.get(OWNER_KEY).is_none_or(|o| o.is_empty()) {
            None
        } else if ids.contains_key(pod::OVS_CONTAINER_KEY) {
            Some(OwnerKind::Pod)
        } else if ids.contains_key(cni::OVS_IFNAME_KEY) {
            Some(OwnerKind::CniAttachment)
        } else {
            Some(OwnerKind::DockerEndpoint)
        }
    }
}

/// Who a port is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A Docker endpoint on a Docker network.
    DockerEndpoint {
        /// The endpoint id (64 hex).
        endpoint: String,
        /// The Docker network id.
        docker_network: String,
    },
    /// A CNI attachment.
    CniAttachment {
        /// `CNI_CONTAINERID`.
        container_id: String,
        /// `CNI_IFNAME`.
        ifname: String,
        /// The CNI configuration's `name`.
        cni_network: String,
    },
    /// A Kubernetes pod.
    Pod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its uid.
        uid: String,
        /// Its cluster's id (`naming::pod::cluster_tag`).
        cluster: String,
    },
}

/// What Neutron records of an owner on its port: one PUT (name and
/// device_id) and one tag PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    /// The port's name; `None` keeps the one it has (an adopted port's).
    pub name: Option<String>,
    /// `device_id`.
    pub device_id: String,
    /// Every tag the port should carry.
    pub tags: Vec<String>,
}

impl Owner {
    /// Its kind.
    pub fn kind(&self) -> OwnerKind {
        match self {
            Owner::DockerEndpoint { .. } => OwnerKind::DockerEndpoint,
            Owner::CniAttachment { .. } => OwnerKind::CniAttachment,
            Owner::Pod { .. } => OwnerKind::Pod,
        }
    }

    /// The port's `device_id`, also the OVS interface's `vm-uuid`.
    pub fn device_id(&self) -> &str {
        match self {
            Owner::DockerEndpoint { endpoint, .. } => endpoint,
            Owner::CniAttachment { container_id, .. } => container_id,
            Owner::Pod { uid, .. } => uid,
        }
    }

    /// The port's name.
    pub fn port_name(&self) -> String {
        match self {
            Owner::DockerEndpoint { endpoint, .. } => naming::port_name(endpoint),
            Owner::CniAttachment { container_id, ifname, .. } => {
                cni::port_name(container_id, ifname)
            }
            Owner::Pod { namespace, name, .. } => pod::port_name(namespace, name),
        }
    }

    /// The tags a port made for this owner carries.
    pub fn port_tags(&self) -> Vec<String> {
        match self {
            Owner::DockerEndpoint { endpoint, docker_network } => {
                let mut tags = vec![naming::DEVICE_OWNER.to_string()];
                tags.extend(naming::id_tags(endpoint));
                tags.extend(naming::docker_network_tags(docker_network));
                tags
            }
            Owner::CniAttachment { container_id, ifname, cni_network } => {
                cni::port_tags(container_id, ifname, cni_network)
            }
            Owner::Pod { namespace, cluster, .. } => pod::port_tags(namespace, cluster),
        }
    }

    /// The POST body of a new port for this owner on `network_id`: named,
    /// tagged and owned for its kind, up, and bound to `host` when given
    /// (`binding:host_id`). The caller adds addresses, security groups or
    /// a project.
    pub fn port_create(&self, network_id: &str, host: Option<String>) -> PortCreate {
        PortCreate {
            name: Some(self.port_name()),
            device_owner: Some(naming::DEVICE_OWNER.to_string()),
            device_id: Some(self.device_id().to_string()),
            binding_host_id: host,
            admin_state_up: Some(true),
            tags: Some(self.port_tags()),
            ..PortCreate::new(network_id)
        }
    }

    /// The tags of a port this owner claims (an address port, a pool port,
    /// an adopted port). A Docker endpoint keeps what the port carries
    /// (an adopted port's own tags), less the pool's mark, and adds its
    /// own; the other kinds replace them with their own.
    pub fn claimed_tags(&self, current: &[String]) -> Vec<String> {
        match self {
            Owner::DockerEndpoint { endpoint, docker_network } => {
                let mut tags: Vec<String> =
                    current.iter().filter(|t| *t != naming::POOL_TAG).cloned().collect();
                for tag in naming::id_tags(endpoint)
                    .into_iter()
                    .chain(naming::docker_network_tags(docker_network))
                {
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                tags
            }
            _ => self.port_tags(),
        }
    }

    /// What Neutron should record of this owner on a port it claimed that
    /// carries `current_tags`. An adopted port keeps its name.
    pub fn record(&self, current_tags: &[String]) -> OwnerRecord {
        let adopted = current_tags.iter().any(|t| t == naming::EXISTING_PORT_TAG);
        OwnerRecord {
            name: (!adopted).then(|| self.port_name()),
            device_id: self.device_id().to_string(),
            tags: self.claimed_tags(current_tags),
        }
    }

    /// The OVS interface's `external_ids` that name this owner: `vm-uuid`,
    /// and a CNI attachment's network and ifname (what finds the host side
    /// when its Neutron port is gone).
    pub fn ovs_external_ids(&self) -> BTreeMap<String, String> {
        let mut ids = match self {
            Owner::CniAttachment { ifname, cni_network, .. } => {
                cni::ovs_external_ids(cni_network, ifname)
            }
            _ => BTreeMap::new(),
        };
        ids.insert(OWNER_KEY.to_string(), self.device_id().to_string());
        ids
    }

    /// A CNI attachment's owner, from its OVS interface's `external_ids`
    /// (after a crash, before Neutron recorded it).
    pub fn cni_from_ovs_external_ids(ids: &BTreeMap<String, String>) -> Option<Owner> {
        Some(Owner::CniAttachment {
            container_id: ids.get(OWNER_KEY)?.clone(),
            ifname: ids.get(cni::OVS_IFNAME_KEY)?.clone(),
            cni_network: ids.get(cni::OVS_NETWORK_KEY).cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: &str = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1";
    const NET: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";

    fn docker() -> Owner {
        Owner::DockerEndpoint { endpoint: EP.into(), docker_network: NET.into() }
    }

    fn cni() -> Owner {
        Owner::CniAttachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            cni_network: "kuryr".into(),
        }
    }

    fn pod() -> Owner {
        Owner::Pod {
            namespace: "default".into(),
            name: "web-0".into(),
            uid: "0b0e7c2a-1111-2222-3333-444455556666".into(),
            cluster: "c1".into(),
        }
    }

    #[test]
    fn each_kind_is_found_again_from_its_tags() {
        for owner in [docker(), cni(), pod()] {
            assert_eq!(OwnerKind::of_tags(&owner.port_tags()), Some(owner.kind()), "{owner:?}");
        }
        assert_eq!(OwnerKind::of_tags(&["compute:kuryr".into()]), None);
    }

    #[test]
    fn names_and_device_ids_follow_upstream() {
        assert_eq!(docker().port_name(), format!("{EP}-port"));
        assert_eq!(docker().device_id(), EP);
        assert_eq!(cni().port_name(), "kuryr-cni-c1-eth0");
        assert_eq!(pod().port_name(), "default/web-0");
        assert_eq!(pod().device_id(), "0b0e7c2a-1111-2222-3333-444455556666");
    }

    #[test]
    fn a_docker_claim_keeps_the_ports_own_tags_less_the_pool_mark() {
        let current = vec![
            "compute:kuryr".to_string(),
            naming::POOL_TAG.to_string(),
            "team:blue".to_string(),
        ];
        let tags = docker().claimed_tags(&current);
        assert!(!tags.contains(&naming::POOL_TAG.to_string()));
        assert!(tags.contains(&"team:blue".to_string()));
        assert_eq!(naming::id_from_tags(&tags).as_deref(), Some(EP));
        assert_eq!(naming::docker_network_from_tags(&tags).as_deref(), Some(NET));
        // Claiming twice adds nothing.
        assert_eq!(docker().claimed_tags(&tags), tags);
        // A CNI claim replaces the pool's tags with its own.
        assert_eq!(cni().claimed_tags(&current), cni().port_tags());
    }

    #[test]
    fn an_adopted_port_keeps_its_name() {
        let adopted = vec![naming::EXISTING_PORT_TAG.to_string()];
        assert_eq!(docker().record(&adopted).name, None);
        assert_eq!(docker().record(&[]).name, Some(docker().port_name()));
    }

    #[test]
    fn ovs_ids_name_the_owner_and_round_trip_for_cni() {
        let ids = cni().ovs_external_ids();
        assert_eq!(ids.get(OWNER_KEY).map(String::as_str), Some("c1"));
        assert_eq!(OwnerKind::of_ovs_external_ids(&ids), Some(OwnerKind::CniAttachment));
        assert_eq!(Owner::cni_from_ovs_external_ids(&ids), Some(cni()));
        let ids = docker().ovs_external_ids();
        assert_eq!(ids.len(), 1);
        assert_eq!(OwnerKind::of_ovs_external_ids(&ids), Some(OwnerKind::DockerEndpoint));
        assert_eq!(OwnerKind::of_ovs_external_ids(&BTreeMap::new()), None);
        let mut ids = pod().ovs_external_ids();
        ids.extend(pod::ovs_external_ids("default", "web-0", "c1", "eth0", "kuryr"));
        assert_eq!(OwnerKind::of_ovs_external_ids(&ids), Some(OwnerKind::Pod));
    }
}
