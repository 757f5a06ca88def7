//! Binding a Neutron port to a container interface on this host, and
//! unbinding it.
//!
//! A binding is a veth pair: the host end goes where the port's
//! `binding:vif_type` says (an OVS integration bridge with the port's
//! `iface-id`, or a Linux bridge), the container end carries the port's MAC
//! and is handed to the runtime (Docker moves it into the sandbox itself; the
//! CNI path moves it). Every step undoes itself on failure, so a failed
//! plug leaves no veth and no OVS port.
//!
//! In a VM (`[binding] driver` = macvlan, ipvlan or vlan) there is no veth
//! and no OVS port: see [`nested`].

mod active;
mod announce;
mod kind;
mod nested;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use netplumb::ovs::{PortSpec, Switch};
use netplumb::{Deleted, IpNet, MacAddr, Netlink, Netns, RouteSpec, VethSpec};
use openstack::neutron::{Neutron, PortStatus, VifType};
use tracing::{debug, info, warn};

use crate::naming;

pub use active::poll_neutron_active;
pub use kind::PlugKind;
pub use nested::{NestedConfig, NestedMode, VmPort, VmPortClient};

/// `external_ids` key carrying the owner (Docker endpoint id, CNI container).
pub const OWNER_KEY: &str = "vm-uuid";
/// `external_ids` key carrying the Neutron port id (OVN's logical port).
pub const IFACE_ID_KEY: &str = "iface-id";

/// Why a port could not be plugged, unplugged or seen ACTIVE.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The port's vif_type is not one this host plugs.
    #[error("port {port_id} has binding:vif_type {vif_type:?}, which this host cannot plug (supported: ovs, bridge); is binding:host_id right and is the mechanism driver bound to this host?")]
    UnsupportedVifType {
        /// The port.
        port_id: String,
        /// Its `binding:vif_type`.
        vif_type: String,
    },
    /// Netlink or OVSDB failed.
    #[error("host plumbing for port {port_id}: {source}")]
    Plumbing {
        /// The port.
        port_id: String,
        /// What failed.
        #[source]
        source: netplumb::Error,
    },
    /// The port stayed DOWN past the deadline.
    #[error("port {port_id} did not become ACTIVE within {timeout:?} (last status {status:?})")]
    NotActive {
        /// The port.
        port_id: String,
        /// How long was waited.
        timeout: Duration,
        /// Neutron's last word on it.
        status: String,
    },
    /// A Neutron call failed.
    #[error("Neutron, for port {port_id}: {source}")]
    Neutron {
        /// The port.
        port_id: String,
        /// What failed.
        #[source]
        source: openstack::Error,
    },
    /// Neutron gave the port a MAC that does not parse.
    #[error("port {port_id} has MAC {mac:?}, which is not a MAC address")]
    BadMac {
        /// The port.
        port_id: String,
        /// Its `mac_address`.
        mac: String,
    },
    /// Nested binding cannot work as configured (no VM port for
    /// `link_iface`, the VM port is no trunk, no free VLAN id, ...).
    #[error("nested binding of port {port_id}: {reason}")]
    Nested {
        /// The container's port.
        port_id: String,
        /// What is wrong.
        reason: String,
    },
}

/// What to plug: one Neutron port, as the binder needs it.
#[derive(Debug, Clone)]
pub struct PlugRequest {
    /// The Neutron port.
    pub port_id: String,
    /// Its network (the Linux bridge binding names the bridge after it).
    pub network_id: String,
    /// Its MAC, given to the container end.
    pub mac: MacAddr,
    /// The network's MTU, when Neutron says.
    pub mtu: Option<u32>,
    /// Its `binding:vif_type` (`ovs`, `bridge`).
    pub vif_type: VifType,
    /// Who uses the port (Docker endpoint id): OVS `external_ids:vm-uuid`.
    pub owner_id: String,
    /// The port's addresses: nested macvlan/ipvlan allow them on the VM
    /// port (the veth binding does not use them).
    pub fixed_ips: Vec<IpAddr>,
}

impl PlugRequest {
    /// What to plug for `port`, owned by `owner_id` (`vm-uuid`), on a
    /// network of this `mtu`: the one place a plug is built from a port.
    pub fn of_port(
        port: &openstack::neutron::Port,
        owner_id: &str,
        mtu: Option<u32>,
    ) -> Result<Self, BindError> {
        let mac = port.mac_address.parse().map_err(|_| BindError::BadMac {
            port_id: port.id.to_string(),
            mac: port.mac_address.to_string(),
        })?;
        Ok(PlugRequest {
            port_id: port.id.to_string(),
            network_id: port.network_id.to_string(),
            mac,
            mtu,
            vif_type: port.binding_vif_type.clone(),
            owner_id: owner_id.to_string(),
            fixed_ips: port.fixed_ips.iter().map(|f| f.ip_address).collect(),
        })
    }
}

/// The host devices of a plugged port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugged {
    /// The host end (`tap<port id[:11]>`).
    pub host_ifname: String,
    /// The container end before the runtime renames it (`t_c<port id[:11]>`).
    pub container_ifname: String,
    /// How it was plugged (`ovs`, `bridge`, a nested mode).
    pub vif_type: PlugKind,
}

/// How a port was seen to be ACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveVia {
    /// ovn-controller set `ovn-installed` on the OVS interface.
    OvnInstalled,
    /// Neutron reported `status=ACTIVE`.
    Neutron,
    /// Nested macvlan/ipvlan: the port is only an allowed address pair of
    /// the VM port, is never bound, and stays DOWN; nothing to wait for.
    NotAwaited,
}

/// Plugs and unplugs ports on this host.
#[derive(Clone)]
pub struct Binder {
    netlink: Netlink,
    switch: Arc<dyn Switch>,
    bridge: String,
    /// Set for the nested drivers (containers in a VM).
    nested: Option<Arc<nested::Nested>>,
}

impl Binder {
    /// A binder over this netlink handle and switch, plugging into `bridge`.
    pub fn new(netlink: Netlink, switch: Arc<dyn Switch>, bridge: impl Into<String>) -> Self {
        Binder { netlink, switch, bridge: bridge.into(), nested: None }
    }

    /// A binder for containers in a VM: every port is bound by `config`'s
    /// nested driver on `link_iface`, whatever its vif_type.
    pub fn with_nested(mut self, neutron: Neutron, config: NestedConfig) -> Self {
        let nested = nested::Nested::new(neutron, self.netlink.clone(), config);
        self.nested = Some(Arc::new(nested));
        self
    }

    /// The nested driver in use, if any.
    pub fn nested_mode(&self) -> Option<NestedMode> {
        self.nested.as_ref().map(|n| n.mode)
    }

    /// The Neutron side of nested binding (the VM port), if nested.
    pub fn vm_port_client(&self) -> Option<&VmPortClient> {
        self.nested.as_ref().map(|n| &n.client)
    }

    /// Whether ports are bound to this host (`binding:host_id`). Not in
    /// nested mode: the VM's port is bound to the hypervisor, and the
    /// container ports must stay unbound (ML2/OVN then makes a port whose
    /// IP is an allowed address pair of the VM port a `virtual` port that
    /// follows the VM port; a bound one would claim the traffic itself).
    pub fn binds_host(&self) -> bool {
        self.nested.is_none()
    }

    /// The OVS switch (OVSDB) it plugs into.
    pub fn switch(&self) -> &Arc<dyn Switch> {
        &self.switch
    }

    /// The integration bridge (`[binding] integration_bridge`).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// Creates the veth pair and plugs its host end by vif_type.
    pub async fn plug(&self, req: &PlugRequest) -> Result<Plugged, BindError> {
        if let Some(nested) = &self.nested {
            return nested.plug(&self.netlink, req, None).await;
        }
        Ok(self.plug_veth(req, None).await?.plugged)
    }

    /// CNI mode: creates the veth pair with its container end directly in
    /// `target.netns`, named `target.ifname`, carrying the port's MAC and
    /// MTU, its addresses and routes, and up; plugs the host end by
    /// vif_type. Undoes everything on failure (deleting the host end also
    /// removes the container end).
    pub async fn plug_into_netns(
        &self,
        req: &PlugRequest,
        target: &NetnsTarget,
    ) -> Result<NetnsPlugged, BindError> {
        if let Some(nested) = &self.nested {
            let plugged = nested.plug(&self.netlink, req, Some(target)).await?;
            return Ok(NetnsPlugged { plugged, host_mac: None });
        }
        self.plug_veth(req, Some(target)).await
    }

    /// The veth binding: the container end stays in the host namespace
    /// (`t_c…`, for Docker to move) or goes into `target`'s netns, named
    /// and configured there.
    async fn plug_veth(
        &self,
        req: &PlugRequest,
        target: Option<&NetnsTarget>,
    ) -> Result<NetnsPlugged, BindError> {
        let vif_type = PlugKind::Veth(req.vif_type.clone());
        if !vif_type.is_veth() {
            return Err(BindError::UnsupportedVifType {
                port_id: req.port_id.clone(),
                vif_type: req.vif_type.to_string(),
            });
        }
        let host_ifname = naming::host_veth_name(&req.port_id);
        let container_ifname = match target {
            Some(target) => target.ifname.clone(),
            None => naming::container_veth_name(&req.port_id),
        };
        let plumbing = |source| BindError::Plumbing { port_id: req.port_id.clone(), source };
        // A leftover pair (a crash between plug and record) is replaced.
        self.netlink.delete_link(&host_ifname).await.map_err(plumbing)?;
        let mut spec = VethSpec::new(&host_ifname, &container_ifname).peer_mac(req.mac);
        if let Some(target) = target {
            spec = spec.peer_netns(target.netns.clone()).peer_up(true);
        }
        if let Some(mtu) = req.mtu {
            spec = spec.mtu(mtu);
        }
        let pair = self.netlink.create_veth(&spec).await.map_err(plumbing)?;
        let no_ids = BTreeMap::new();
        let configured = async {
            let extra_ids = target.map_or(&no_ids, |t| &t.external_ids);
            self.attach_host_end(req, &host_ifname, extra_ids).await?;
            match target {
                Some(target) => configure_container_end(target).await.map_err(plumbing),
                None => Ok(()),
            }
        };
        if let Err(err) = configured.await {
            self.remove_devices(&host_ifname).await;
            return Err(err);
        }
        info!(port_id = %req.port_id, host_ifname, ifname = %container_ifname, %vif_type, "plugged");
        Ok(NetnsPlugged {
            plugged: Plugged { host_ifname, container_ifname, vif_type },
            host_mac: pair.host.mac,
        })
    }

    /// `extra_ids` go on the OVS interface next to Neutron's keys.
    async fn attach_host_end(
        &self,
        req: &PlugRequest,
        host_ifname: &str,
        extra_ids: &BTreeMap<String, String>,
    ) -> Result<(), BindError> {
        let plumbing = |source| BindError::Plumbing { port_id: req.port_id.clone(), source };
        if req.vif_type == VifType::Bridge {
            let bridge = naming::linux_bridge_name(&req.network_id);
            self.netlink.ensure_bridge(&bridge).await.map_err(plumbing)?;
            self.netlink.set_master(host_ifname, &bridge).await.map_err(plumbing)?;
            return Ok(());
        }
        let mut spec =
            PortSpec::neutron(&self.bridge, host_ifname, &req.port_id, req.mac, &req.owner_id);
        for (key, value) in extra_ids {
            spec = spec.external_id(key, value);
        }
        self.switch.add_port(&spec).await.map_err(plumbing)?;
        Ok(())
    }

    /// Removes the OVS port (if any) and the veth pair. Idempotent.
    pub async fn unplug(&self, port_id: &str) -> Result<(), BindError> {
        if let Some(nested) = &self.nested {
            return nested.unplug(&self.netlink, port_id).await;
        }
        let host_ifname = naming::host_veth_name(port_id);
        let plumbing = |source| BindError::Plumbing { port_id: port_id.to_string(), source };
        self.switch.delete_port(None, &host_ifname).await.map_err(plumbing)?;
        let deleted = self.netlink.delete_link(&host_ifname).await.map_err(plumbing)?;
        debug!(port_id, host_ifname, ?deleted, "unplugged");
        Ok(())
    }

    /// Best effort cleanup on an error path: log, never fail.
    async fn remove_devices(&self, host_ifname: &str) {
        if let Err(err) = self.switch.delete_port(None, host_ifname).await {
            warn!(host_ifname, %err, "cleanup: removing OVS port failed");
        }
        match self.netlink.delete_link(host_ifname).await {
            Ok(Deleted::Removed | Deleted::Absent) => {}
            Err(err) => warn!(host_ifname, %err, "cleanup: removing veth failed"),
        }
    }

    /// The Neutron port id plugged for `owner_id`, found through OVSDB
    /// alone (after a restart, without asking Neutron).
    pub async fn port_of_owner(&self, owner_id: &str) -> Result<Option<String>, netplumb::Error> {
        if let Some(nested) = &self.nested {
            // No OVS port in a VM: only what this process plugged.
            return Ok(nested.port_of_owner(owner_id));
        }
        let found = self.switch.find_interfaces(OWNER_KEY, Some(owner_id)).await?;
        Ok(found.into_iter().find_map(|iface| iface.external_ids.get(IFACE_ID_KEY).cloned()))
    }

    /// Whether the container end of a port's veth pair is in the host
    /// namespace (a pool port's, or one Docker gave back at Leave).
    pub async fn container_end_present(&self, port_id: &str) -> bool {
        let name = naming::container_veth_name(port_id);
        matches!(self.netlink.link_exists(&name).await, Ok(true))
    }

    /// CNI mode with a pre-plugged (pool) port: moves its container end
    /// into `target.netns`, renames it `target.ifname`, brings it up and
    /// gives it the addresses and routes. The OVS side is the caller's.
    pub async fn adopt_into_netns(
        &self,
        port_id: &str,
        plugged: &Plugged,
        target: &NetnsTarget,
    ) -> Result<NetnsPlugged, BindError> {
        let plumbing = |source| BindError::Plumbing { port_id: port_id.to_string(), source };
        self.netlink
            .move_to_netns(&plugged.container_ifname, &target.netns)
            .await
            .map_err(plumbing)?;
        let inside = Netlink::in_netns(&target.netns).await.map_err(plumbing)?;
        inside.rename(&plugged.container_ifname, &target.ifname).await.map_err(plumbing)?;
        inside.set_up(&target.ifname).await.map_err(plumbing)?;
        configure_container_end(target).await.map_err(plumbing)?;
        let host_mac = self
            .netlink
            .get_link(&plugged.host_ifname)
            .await
            .map_err(plumbing)?
            .and_then(|l| l.mac);
        info!(port_id, ifname = %target.ifname, "pool port moved into netns");
        Ok(NetnsPlugged {
            plugged: Plugged {
                host_ifname: plugged.host_ifname.clone(),
                container_ifname: target.ifname.clone(),
                vif_type: plugged.vif_type.clone(),
            },
            host_mac,
        })
    }
}

/// A port plugged in CNI mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsPlugged {
    /// The host and container ends.
    pub plugged: Plugged,
    /// MAC of the host end (for the CNI result).
    pub host_mac: Option<MacAddr>,
}

/// Where and how the container end goes in CNI mode.
#[derive(Debug, Clone)]
pub struct NetnsTarget {
    /// The container's network namespace.
    pub netns: Netns,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// The port's addresses with their prefixes.
    pub addresses: Vec<IpNet>,
    /// Added in order, after the addresses (gateways must be reachable).
    pub routes: Vec<RouteSpec>,
    /// Extra `external_ids` of the OVS interface (what finds the host side
    /// when its Neutron port is gone).
    pub external_ids: BTreeMap<String, String>,
}

async fn configure_container_end(target: &NetnsTarget) -> Result<(), netplumb::Error> {
    let inside = Netlink::in_netns(&target.netns).await?;
    for addr in &target.addresses {
        inside.add_address(&target.ifname, *addr).await?;
    }
    for route in &target.routes {
        match inside.add_route(&target.ifname, route).await {
            // Two subnets of one family may name the same default route.
            Ok(()) | Err(netplumb::Error::RouteExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
