//! How a port was plugged on this host.

use std::fmt;

use openstack::neutron::VifType;

use super::NestedMode;

/// How a port was plugged ([`Plugged::vif_type`](super::Plugged::vif_type)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlugKind {
    /// A veth pair whose host end went where the port's `binding:vif_type`
    /// said: [`VifType::Ovs`] (the integration bridge) or
    /// [`VifType::Bridge`] (the network's Linux bridge). An endpoint rebuilt
    /// from Neutron carries whatever vif_type Neutron reports now.
    Veth(VifType),
    /// A nested driver's link (containers in a VM): no host end.
    Nested(NestedMode),
}

impl PlugKind {
    /// A veth pair plugged into OVS.
    pub const OVS: PlugKind = PlugKind::Veth(VifType::Ovs);

    /// Whether the host end is on OVS or a Linux bridge (a veth pair this
    /// host plugged).
    pub fn is_veth(&self) -> bool {
        matches!(self, PlugKind::Veth(VifType::Ovs | VifType::Bridge))
    }

    /// The vif_type (`ovs`, `bridge`, ...) or the nested mode (`macvlan`,
    /// `ipvlan`, `vlan`).
    pub fn as_str(&self) -> &str {
        match self {
            PlugKind::Veth(vif_type) => vif_type.as_str(),
            PlugKind::Nested(mode) => mode.as_str(),
        }
    }
}

impl fmt::Display for PlugKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
