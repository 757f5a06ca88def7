//! The Neutron side of nested binding: the VM's own port (found by
//! `[binding] link_iface`'s MAC), its allowed address pairs (macvlan,
//! ipvlan) and its trunk's subports (vlan) (docs/nested.md).

use super::*;

impl VmPortClient {
    /// A client for the VM port behind `link_iface`, found on first use.
    pub fn new(neutron: Neutron, netlink: Netlink, link_iface: impl Into<String>) -> Self {
        VmPortClient {
            neutron,
            netlink,
            link_iface: link_iface.into(),
            vm_port: OnceCell::new(),
            pairs: tokio::sync::Mutex::new(None),
        }
    }

    /// The VM's NIC in the host namespace.
    pub fn link_iface(&self) -> &str {
        &self.link_iface
    }

    /// The VM port: the Neutron port whose MAC is `link_iface`'s (one
    /// `GET /ports?mac_address=`, then cached). Upstream kuryr-kubernetes
    /// finds it by the node's IP instead; the MAC names the NIC exactly.
    pub async fn vm_port(&self, for_port: &str) -> Result<&VmPort, BindError> {
        self.vm_port.get_or_try_init(|| self.find_vm_port(for_port)).await
    }

    async fn find_vm_port(&self, for_port: &str) -> Result<VmPort, BindError> {
        let nested = |reason: String| BindError::Nested { port_id: for_port.to_string(), reason };
        let link = self
            .netlink
            .link(&self.link_iface)
            .await
            .map_err(|source| BindError::Plumbing { port_id: for_port.to_string(), source })?;
        let mac =
            link.mac.ok_or_else(|| nested(format!("link_iface {} has no MAC", self.link_iface)))?;
        let found = self
            .neutron
            .list_ports(&Query::new().mac_address(mac.to_string()))
            .await
            .map_err(|source| BindError::Neutron { port_id: for_port.to_string(), source })?;
        let port = match found.as_slice() {
            [one] => one,
            [] => {
                return Err(nested(format!(
                    "no Neutron port has MAC {mac} of link_iface {}: is this the VM's NIC?",
                    self.link_iface
                )))
            }
            many => {
                return Err(nested(format!(
                    "{} Neutron ports have MAC {mac} of link_iface {}",
                    many.len(),
                    self.link_iface
                )))
            }
        };
        info!(vm_port = %port.id, link_iface = %self.link_iface, "found the VM port");
        Ok(VmPort {
            id: port.id.clone(),
            mac: port.mac_address.clone(),
            trunk_id: port.trunk_details.as_ref().map(|t| t.trunk_id.clone()),
        })
    }

    /// Adds `add` to the VM port's allowed address pairs and drops every
    /// pair whose IP and MAC match one in `remove`. A read-modify-write
    /// guarded by the port's revision, retried on 412: concurrent writers
    /// (here or in another process) never lose each other's pairs.
    pub async fn update_pairs(
        &self,
        for_port: &str,
        add: &[AddressPair],
        remove: &[AddressPair],
    ) -> Result<(), BindError> {
        let vm = self.vm_port(for_port).await?.clone();
        let neutron_err = |source| BindError::Neutron { port_id: for_port.to_string(), source };
        let mut cached = self.pairs.lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let state = match cached.take() {
                Some(state) => state,
                None => match self.neutron.get_port(&vm.id).await {
                    Ok(port) => pairs_state(&port),
                    // The VM port is gone: its pairs went with it.
                    Err(err) if err.is_not_found() && add.is_empty() => return Ok(()),
                    Err(err) => return Err(neutron_err(err)),
                },
            };
            let wanted = merged_pairs(&state.pairs, add, remove);
            if wanted == state.pairs {
                *cached = Some(state);
                return Ok(());
            }
            let body = PortUpdate { allowed_address_pairs: Some(wanted), ..PortUpdate::default() };
            let reply = match state.revision {
                Some(revision) => {
                    self.neutron.update_port_if_revision(&vm.id, &body, revision).await
                }
                // No revision-if-match in this Neutron: last writer wins.
                None => self.neutron.update_port(&vm.id, &body).await,
            };
            let err = match reply {
                Ok(port) => {
                    *cached = Some(pairs_state(&port));
                    debug!(vm_port = %vm.id, port_id = for_port, attempt, "allowed address pairs updated");
                    return Ok(());
                }
                Err(err) => err,
            };
            if err.is_not_found() && add.is_empty() {
                return Ok(());
            }
            if err.is_precondition_failed() && attempt < MAX_ATTEMPTS {
                debug!(vm_port = %vm.id, attempt, "VM port changed meanwhile; re-reading");
                // Writers that collided spread out instead of colliding again.
                tokio::time::sleep(jitter(attempt)).await;
                continue;
            }
            if err.is_bad_request() {
                // Refused as asked: what was read is still current.
                *cached = Some(state);
            }
            return Err(pairs_refused(for_port, &vm.id, err));
        }
        Err(BindError::Nested {
            port_id: for_port.to_string(),
            reason: format!("VM port {} kept changing; gave up", vm.id),
        })
    }

    fn trunk_id<'a>(&self, vm: &'a VmPort, for_port: &str) -> Result<&'a str, BindError> {
        vm.trunk_id.as_deref().ok_or_else(|| BindError::Nested {
            port_id: for_port.to_string(),
            reason: format!(
                "VM port {} is not a trunk parent: the vlan driver needs a trunk (Neutron's trunk service plugin)",
                vm.id
            ),
        })
    }

    /// Makes `port_id` a VLAN subport of the VM's trunk and returns its
    /// VLAN id: a free id as the trunk's subports say, retried on 409
    /// (`DuplicateSubPort`: another attachment took the id meanwhile). A
    /// port that already is a subport (a retried attach) keeps its id.
    pub async fn add_subport(&self, port_id: &str) -> Result<u16, BindError> {
        let vm = self.vm_port(port_id).await?;
        let trunk_id = self.trunk_id(vm, port_id)?;
        let neutron_err = |source| BindError::Neutron { port_id: port_id.to_string(), source };
        let mut sub_ports = self.neutron.get_subports(trunk_id).await.map_err(neutron_err)?;
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(id) = vlan_of(&sub_ports, port_id) {
                return Ok(id);
            }
            let vlan_id = pick_free_vlan(&sub_ports).ok_or_else(|| BindError::Nested {
                port_id: port_id.to_string(),
                reason: format!("trunk {trunk_id} has no free VLAN id"),
            })?;
            let sub = SubPort::vlan(port_id, u32::from(vlan_id));
            match self.neutron.add_subports(trunk_id, &[sub]).await {
                Ok(_) => {
                    debug!(port_id, trunk_id, vlan_id, attempt, "subport added");
                    return Ok(vlan_id);
                }
                Err(err) if err.is_conflict() && attempt < MAX_ATTEMPTS => {
                    debug!(port_id, vlan_id, attempt, %err, "VLAN id taken meanwhile; re-reading the trunk");
                    sub_ports = self.neutron.get_subports(trunk_id).await.map_err(neutron_err)?;
                }
                Err(err) => return Err(neutron_err(err)),
            }
        }
        Err(BindError::Nested {
            port_id: port_id.to_string(),
            reason: format!("no VLAN id could be claimed on trunk {trunk_id}"),
        })
    }

    /// Removes `port_id` from the VM's trunk; not being a subport is fine.
    pub async fn remove_subport(&self, port_id: &str) -> Result<(), BindError> {
        let vm = self.vm_port(port_id).await?;
        let trunk_id = self.trunk_id(vm, port_id)?;
        match self.neutron.remove_subports(trunk_id, &[port_id]).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(source) => Err(BindError::Neutron { port_id: port_id.to_string(), source }),
        }
    }
}

/// A refused pair update, with what to do about it when Neutron says why.
pub(super) fn pairs_refused(port_id: &str, vm_port: &str, err: openstack::Error) -> BindError {
    let reason = match err.neutron_type() {
        Some("InvalidVirtualMACAddress") => format!(
            "Neutron refuses a foreign MAC in the allowed address pairs of VM port {vm_port} ({err}); \
             ML2/OVN (Neutron 29 at least) accepts only VRRP MACs (00:00:5e:00:01:XX) there on a bound port, \
             so the macvlan driver needs the container's MAC in that range (docker run --mac-address) \
             or another driver (ipvlan or vlan); see docs/nested.md"
        ),
        Some("AllowedAddressPairExhausted") => format!(
            "VM port {vm_port} is full ({err}): each container in the VM takes a pair per address; \
             raise Neutron's max_allowed_address_pair or use the vlan driver"
        ),
        _ => {
            return BindError::Neutron {
                port_id: port_id.to_string(),
                source: err,
            }
        }
    };
    BindError::Nested { port_id: port_id.to_string(), reason }
}

pub(super) fn pairs_state(port: &Port) -> PairsState {
    PairsState { pairs: port.allowed_address_pairs.clone(), revision: port.revision_number }
}

/// `current` without the pairs in `remove`, then with the pairs of `add`
/// that are not there yet. Addresses compare as addresses (`fd00::1` and
/// `fd00:0::1` are one), MACs case-insensitively.
pub(crate) fn merged_pairs(
    current: &[AddressPair],
    add: &[AddressPair],
    remove: &[AddressPair],
) -> Vec<AddressPair> {
    let mut out: Vec<AddressPair> =
        current.iter().filter(|p| !remove.iter().any(|r| same_pair(p, r))).cloned().collect();
    for pair in add {
        if !out.iter().any(|p| same_pair(p, pair)) {
            out.push(pair.clone());
        }
    }
    out
}
