//! The pure half of GC: from a [`Snapshot`], which ports and host devices
//! are garbage, and why; each owner kind answers its own liveness question.

use super::*;

/// Verdict on one port.
pub(super) enum Verdict {
    Live,
    Keep(String),
    Garbage(String),
}

/// Decides what to remove. Pure: no I/O.
pub fn plan(snapshot: &Snapshot, settings: &Settings) -> Plan {
    let mut out = Plan::default();
    let mut handled_ports = BTreeSet::new();
    for port in &snapshot.ports {
        if !settings.networks.is_empty() && !settings.networks.contains(&port.network_id) {
            continue;
        }
        handled_ports.insert(port.id.clone());
        match verdict(port, snapshot, settings) {
            Verdict::Live => out.live += 1,
            Verdict::Keep(reason) => out.kept.push(Kept { port_id: port.id.clone(), reason }),
            Verdict::Garbage(reason) => {
                let (port_id, name) = (port.id.clone(), port.name.clone());
                out.actions.push(if port.is_adopted() {
                    Action::ResetPort { port_id, name, reason }
                } else {
                    Action::DeletePort { port_id, name, reason }
                });
            }
        }
    }
    let mut host_handled = BTreeSet::new();
    for iface in &snapshot.ovs_interfaces {
        let Some(port_id) = iface.external_ids.get(IFACE_ID_KEY) else {
            continue;
        };
        if iface.name != naming::host_veth_name(port_id) || !made_by_kuryr(iface) {
            continue;
        }
        if snapshot.all_port_ids.contains(port_id) {
            continue;
        }
        host_handled.insert(iface.name.clone());
        out.actions.push(Action::RemoveOvsPort {
            ifname: iface.name.clone(),
            port_id: port_id.clone(),
            reason: "its Neutron port does not exist".into(),
        });
    }
    for veth in &snapshot.veths {
        let Some(prefix) = veth.strip_prefix(HOST_VETH_PREFIX) else {
            continue;
        };
        if host_handled.contains(veth) || !looks_like_port_prefix(prefix) {
            continue;
        }
        if snapshot.all_port_ids.iter().any(|id| id.starts_with(prefix)) {
            continue;
        }
        out.actions.push(Action::RemoveVeth {
            ifname: veth.clone(),
            reason: "no Neutron port has this id prefix".into(),
        });
    }
    out
}

/// Kuryr's OVS interfaces carry the owner (`vm-uuid`) or a pool mark.
pub(super) fn made_by_kuryr(iface: &InterfaceRecord) -> bool {
    iface.external_ids.contains_key(OWNER_KEY) || iface.external_ids.contains_key(OVS_POOL_KEY)
}

/// `tap` + 11 characters of a UUID: hex digits and the dash at 8.
pub(super) fn looks_like_port_prefix(prefix: &str) -> bool {
    prefix.len() == 11
        && prefix.char_indices().all(|(i, c)| match i {
            8 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

pub(super) fn verdict(port: &PortRecord, snapshot: &Snapshot, settings: &Settings) -> Verdict {
    let young = match port.changed_at() {
        Some(at) => snapshot.now.saturating_sub(at) < settings.min_age.as_secs(),
        None => !settings.min_age.is_zero(),
    };
    let garbage = |reason: String| {
        if young {
            Verdict::Keep(format!(
                "{reason}, but it changed less than {}s ago",
                settings.min_age.as_secs()
            ))
        } else {
            Verdict::Garbage(reason)
        }
    };
    if port.is_pool_port() {
        let claimed = snapshot.ovs_interfaces.iter().any(|i| {
            i.external_ids.get(IFACE_ID_KEY) == Some(&port.id)
                && i.external_ids.contains_key(OWNER_KEY)
        });
        return if claimed {
            Verdict::Keep("pool port claimed by a container; its owner is not recorded yet".into())
        } else if settings.keep_pool_ports {
            Verdict::Live
        } else {
            garbage("pool port, and pools are off".into())
        };
    }
    let liveness = match OwnerKind::of_tags(&port.tags) {
        Some(OwnerKind::CniAttachment) => cni_attachment_liveness(port, snapshot, settings),
        Some(OwnerKind::Pod) => {
            Liveness::Unknown("a pod's port: the Kubernetes controller collects it".into())
        }
        // Address ports carry no owner yet: their Docker network decides.
        Some(OwnerKind::DockerEndpoint) | None => {
            docker_endpoint_liveness(port, snapshot, settings)
        }
    };
    match liveness {
        Liveness::Live => Verdict::Live,
        Liveness::Unknown(reason) => Verdict::Keep(reason),
        Liveness::Gone(reason) => garbage(reason),
    }
}

/// One owner kind's answer to "is this port's owner still there?".
pub(super) enum Liveness {
    Live,
    /// Its owner is gone: why.
    Gone(String),
    /// Nobody could say: why (the port is kept).
    Unknown(String),
}

/// A CNI attachment lives as long as its host veth (its netns holds the
/// other end, and goes with the container).
pub(super) fn cni_attachment_liveness(
    port: &PortRecord,
    snapshot: &Snapshot,
    settings: &Settings,
) -> Liveness {
    let Some((container_id, ifname)) = port.cni_attachment() else {
        return Liveness::Unknown("CNI port without its attachment tags".into());
    };
    if !settings.veth_binding {
        return Liveness::Unknown(format!(
            "CNI attachment {container_id}/{ifname}: nested binding, liveness unknown"
        ));
    }
    let veth = naming::host_veth_name(&port.id);
    if snapshot.veths.contains(&veth) {
        Liveness::Live
    } else {
        Liveness::Gone(format!(
            "CNI attachment {container_id}/{ifname}: its veth {veth} is gone (netns deleted)"
        ))
    }
}

/// A Docker endpoint lives while Docker lists it on its network.
pub(super) fn docker_endpoint_liveness(
    port: &PortRecord,
    snapshot: &Snapshot,
    settings: &Settings,
) -> Liveness {
    let docker_net = naming::docker_network_from_tags(&port.tags)
        .or_else(|| snapshot.docker_network_of.get(&port.network_id).cloned());
    let Some(docker_net) = docker_net else {
        return Liveness::Gone(format!(
            "network {} is not (any more) a Docker network",
            port.network_id
        ));
    };
    match snapshot.docker.get(&docker_net) {
        None => Liveness::Unknown(format!("Docker network {docker_net} was not asked about")),
        Some(Err(why)) => Liveness::Unknown(format!("Docker did not answer ({why})")),
        Some(Ok(None)) => Liveness::Gone(format!("Docker network {docker_net} is gone")),
        Some(Ok(Some(net))) if net.driver != settings.docker_driver => Liveness::Unknown(format!(
            "Docker network {docker_net} belongs to driver {}",
            net.driver
        )),
        Some(Ok(Some(net))) => {
            // The owner is written to Neutron after Docker's reply (and
            // after a restart if a crash came first); OVSDB's vm-uuid has
            // it from the plug on.
            let owner = if port.device_id.is_empty() {
                plugged_owner(port, snapshot).unwrap_or_default()
            } else {
                port.device_id.clone()
            };
            if !owner.is_empty() && net.endpoints.contains(&owner) {
                Liveness::Live
            } else if owner.is_empty() {
                Liveness::Gone(format!(
                    "address port with no endpoint on Docker network {docker_net}"
                ))
            } else {
                Liveness::Gone(format!(
                    "Docker has no endpoint {} on network {docker_net}",
                    port.device_id
                ))
            }
        }
    }
}

/// The owner (`vm-uuid`) on the OVS interface plugged for `port`, if any.
pub(super) fn plugged_owner(port: &PortRecord, snapshot: &Snapshot) -> Option<String> {
    snapshot
        .ovs_interfaces
        .iter()
        .find(|i| i.external_ids.get(IFACE_ID_KEY) == Some(&port.id))
        .and_then(|i| i.external_ids.get(OWNER_KEY).cloned())
}
