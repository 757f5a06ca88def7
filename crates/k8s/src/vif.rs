//! A KuryrPort's `status.vifs` entry: everything the node daemon needs to
//! bind one interface without asking Neutron (port id, MAC, addresses with
//! prefix and gateway, MTU, routes, DNS, the binding mode, whether Neutron
//! says the port is ACTIVE), and [`Vif::of_port`], the one place it is
//! built from a Neutron port and its subnets. Serialized camelCase.
//!
//! Upstream stored os-vif objects here; ours are plain typed fields. The
//! CRD keeps the field open (`crate::crds`), so either validates.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use kuryr_core::binding::{NestedMode, PlugRequest};
use kuryr_core::layout::{Layout, LayoutError};
use netplumb::RouteSpec;
use openstack::neutron::{Port, PortStatus, Subnet, VifType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The interface name of a pod's (only, for now) vif in `status.vifs`.
pub const DEFAULT_IFNAME: &str = "eth0";

/// Why a Neutron port cannot become a vif yet (or at all).
#[derive(Debug, thiserror::Error)]
pub enum VifError {
    /// Its addresses, routes or DNS cannot be read from its subnets.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Neutron gave it a MAC that does not parse.
    #[error("port {port} has MAC {mac:?}, which is not a MAC address")]
    BadMac {
        /// The port.
        port: String,
        /// Its `mac_address`.
        mac: String,
    },
    /// No mechanism driver bound it to its host (yet): `binding:vif_type`
    /// is unset, `unbound` or `binding_failed`.
    #[error("port {port} is not bound (binding:vif_type {vif_type:?}): is binding:host_id its node's OVN chassis or agent host?")]
    NotBound {
        /// The port.
        port: String,
        /// Its `binding:vif_type`.
        vif_type: String,
    },
    /// It is bound in a way no node daemon plugs.
    #[error("port {port} has binding:vif_type {vif_type:?}, which Kuryr cannot plug (supported: ovs, bridge)")]
    UnsupportedVifType {
        /// The port.
        port: String,
        /// Its `binding:vif_type`.
        vif_type: String,
    },
    /// A nested VLAN binding needs the trunk subport's VLAN id.
    #[error("port {port} is bound nested-vlan but has no VLAN id")]
    NoVlanId {
        /// The port.
        port: String,
    },
}

/// How the node daemon binds the vif.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Binding {
    /// A veth whose host end is on the OVS integration bridge
    /// (`binding:vif_type=ovs`).
    Ovs,
    /// A veth whose host end is on the network's Linux bridge
    /// (`binding:vif_type=bridge`).
    Bridge,
    /// A VLAN link of the VM's NIC: the port is a subport of the VM port's
    /// trunk (upstream's `nested-vlan`).
    NestedVlan {
        /// The subport's VLAN id.
        vlan_id: u16,
    },
    /// A macvlan of the VM's NIC, the port's addresses paired on the VM
    /// port (upstream's `nested-macvlan`).
    NestedMacvlan,
    /// An ipvlan (L2) of the VM's NIC, sharing its MAC.
    NestedIpvlan,
}

impl Binding {
    /// Bare metal: how a port bound to its node is plugged, from its
    /// `binding:vif_type`.
    pub fn of_vif_type(port: &Port) -> Result<Binding, VifError> {
        match &port.binding_vif_type {
            VifType::Ovs => Ok(Binding::Ovs),
            VifType::Bridge => Ok(Binding::Bridge),
            other if !other.is_bound() => Err(VifError::NotBound {
                port: port.id.to_string(),
                vif_type: other.as_str().to_string(),
            }),
            other => Err(VifError::UnsupportedVifType {
                port: port.id.to_string(),
                vif_type: other.as_str().to_string(),
            }),
        }
    }

    /// In a VM: the nested `mode` the controller is configured for, with
    /// the subport's VLAN id for [`NestedMode::Vlan`].
    pub fn nested(
        port: &Port,
        mode: NestedMode,
        vlan_id: Option<u16>,
    ) -> Result<Binding, VifError> {
        match mode {
            NestedMode::Vlan => vlan_id
                .map(|vlan_id| Binding::NestedVlan { vlan_id })
                .ok_or_else(|| VifError::NoVlanId { port: port.id.to_string() }),
            NestedMode::Macvlan => Ok(Binding::NestedMacvlan),
            NestedMode::Ipvlan => Ok(Binding::NestedIpvlan),
        }
    }

    /// Whether a port bound this way goes ACTIVE in Neutron (a port that
    /// is only an address pair of the VM port never does).
    pub fn goes_active(self) -> bool {
        !matches!(self, Binding::NestedMacvlan | Binding::NestedIpvlan)
    }

    /// The nested mode it asks for; `None` on bare metal (a veth).
    pub fn nested_mode(self) -> Option<NestedMode> {
        match self {
            Binding::Ovs | Binding::Bridge => None,
            Binding::NestedVlan { .. } => Some(NestedMode::Vlan),
            Binding::NestedMacvlan => Some(NestedMode::Macvlan),
            Binding::NestedIpvlan => Some(NestedMode::Ipvlan),
        }
    }

    /// The `binding:vif_type` the binder plugs by: `ovs`, `bridge`, and
    /// `unbound` for the nested modes (their ports are not bound to a
    /// host; the nested binder ignores it).
    pub fn vif_type(self) -> VifType {
        match self {
            Binding::Ovs => VifType::Ovs,
            Binding::Bridge => VifType::Bridge,
            Binding::NestedVlan { .. } | Binding::NestedMacvlan | Binding::NestedIpvlan => {
                VifType::Unbound
            }
        }
    }

    /// The mode's name as in the KuryrPort (`ovs`, `nested-vlan`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Ovs => "ovs",
            Binding::Bridge => "bridge",
            Binding::NestedVlan { .. } => "nested-vlan",
            Binding::NestedMacvlan => "nested-macvlan",
            Binding::NestedIpvlan => "nested-ipvlan",
        }
    }
}

/// A MAC address, written lowercase with colons (Neutron's and OVS's way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub netplumb::MacAddr);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        netplumb::MacAddr::from_str(&text).map(Mac).map_err(serde::de::Error::custom)
    }
}

/// One address of the vif.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VifAddress {
    /// The address with its subnet's prefix (`10.0.1.5/24`).
    pub address: IpNet,
    /// Its subnet's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Its subnet.
    pub subnet_id: String,
}

/// One route of the vif.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VifRoute {
    /// Where to (`0.0.0.0/0` for a default route).
    pub destination: IpNet,
    /// Via; on-link without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The gateway is outside every address's subnet: reach it on-link.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub onlink: bool,
}

/// What the pod's end of a vif is configured with: its addresses, routes
/// and DNS (a `kuryr_core::layout::Layout`, as written in the status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifLayout {
    /// Its addresses.
    pub addresses: Vec<VifAddress>,
    /// Routes: a default per family via the first gateway, then the
    /// subnets' host routes.
    pub routes: Vec<VifRoute>,
    /// DNS servers of its subnets.
    pub dns: Vec<String>,
}

/// One interface of a pod, as the node daemon binds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vif {
    /// The Neutron port.
    pub port_id: String,
    /// Its network (the Linux bridge binding names the bridge after it).
    pub network_id: String,
    /// Its MAC, given to the pod's end.
    pub mac: Mac,
    /// The network's MTU (`null` when Neutron does not say).
    pub mtu: Option<u32>,
    /// Addresses, routes and DNS (inline: `addresses`, `routes`, `dns`).
    #[serde(flatten)]
    pub layout: VifLayout,
    /// How to bind it.
    pub binding: Binding,
    /// Whether Neutron said the port is ACTIVE when this was written.
    pub active: bool,
}

impl Vif {
    /// What the node's binder plugs for this vif, the port owned by
    /// `owner_id` (OVS `vm-uuid`: the pod's uid, as the port's
    /// `device_id`): built from the KuryrPort alone, without Neutron.
    pub fn plug_request(&self, owner_id: &str) -> PlugRequest {
        PlugRequest {
            port_id: self.port_id.clone(),
            network_id: self.network_id.clone(),
            mac: self.mac.0,
            mtu: self.mtu,
            vif_type: self.binding.vif_type(),
            owner_id: owner_id.to_string(),
            fixed_ips: self.layout.addresses.iter().map(|a| a.address.addr()).collect(),
        }
    }

    /// Its addresses, routes and DNS as core's [`Layout`] (what the CNI
    /// result and the netns configuration are made from).
    pub fn layout(&self) -> Layout {
        let VifLayout { addresses, routes, dns } = &self.layout;
        Layout {
            addresses: addresses.iter().map(|a| (a.address, a.gateway)).collect(),
            routes: routes
                .iter()
                .map(|r| RouteSpec {
                    dest: r.destination,
                    gateway: r.gateway,
                    onlink: r.onlink,
                    metric: None,
                })
                .collect(),
            nameservers: dns.clone(),
        }
    }

    /// The vif of `port`, bound as `binding`, on a network of `mtu`, from
    /// its network's `subnets`.
    pub fn of_port(
        port: &Port,
        subnets: &[Subnet],
        mtu: Option<u32>,
        binding: Binding,
    ) -> Result<Vif, VifError> {
        let mac = netplumb::MacAddr::from_str(&port.mac_address).map_err(|_| VifError::BadMac {
            port: port.id.to_string(),
            mac: port.mac_address.to_string(),
        })?;
        let layout = Layout::of_port(port, subnets)?;
        let addresses = layout
            .addresses
            .iter()
            .zip(&port.fixed_ips)
            .map(|((address, gateway), fixed)| VifAddress {
                address: *address,
                gateway: *gateway,
                subnet_id: fixed.subnet_id.to_string(),
            })
            .collect();
        let routes = layout
            .routes
            .iter()
            .map(|r| VifRoute { destination: r.dest, gateway: r.gateway, onlink: r.onlink })
            .collect();
        Ok(Vif {
            port_id: port.id.to_string(),
            network_id: port.network_id.to_string(),
            mac: Mac(mac),
            mtu,
            layout: VifLayout { addresses, routes, dns: layout.nameservers },
            binding,
            active: port.status == PortStatus::Active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::neutron::FixedIp;
    use serde_json::json;

    fn port(vif_type: &str) -> Port {
        Port {
            id: "p1".into(),
            network_id: "n1".into(),
            mac_address: "FA:16:3E:00:00:01".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: "s1".into(),
                ip_address: "10.0.1.5".parse().expect("ip"),
            }],
            status: PortStatus::Active,
            binding_vif_type: VifType::from(vif_type),
            ..Port::default()
        }
    }

    fn subnet() -> Subnet {
        Subnet {
            id: "s1".into(),
            cidr: "10.0.1.0/24".into(),
            gateway_ip: Some("10.0.1.1".parse().expect("ip")),
            dns_nameservers: vec!["10.0.0.53".into()],
            ..Subnet::default()
        }
    }

    #[test]
    fn a_bound_port_becomes_a_camel_case_vif() {
        let p = port("ovs");
        let vif = Vif::of_port(&p, &[subnet()], Some(1442), Binding::of_vif_type(&p).expect("ovs"))
            .expect("vif");
        assert_eq!(
            serde_json::to_value(&vif).expect("json"),
            json!({
                "portId": "p1",
                "networkId": "n1",
                "mac": "fa:16:3e:00:00:01",
                "addresses": [{"address": "10.0.1.5/24", "gateway": "10.0.1.1", "subnetId": "s1"}],
                "mtu": 1442,
                "routes": [{"destination": "0.0.0.0/0", "gateway": "10.0.1.1"}],
                "dns": ["10.0.0.53"],
                "binding": {"mode": "ovs"},
                "active": true
            })
        );
        let back: Vif =
            serde_json::from_value(serde_json::to_value(&vif).expect("json")).expect("round trip");
        assert_eq!(back, vif);
    }

    #[test]
    fn a_vif_plugs_and_lays_out_as_its_port_would() {
        let p = port("ovs");
        let subnets = [subnet()];
        let vif = Vif::of_port(&p, &subnets, Some(1442), Binding::Ovs).expect("vif");
        let req = vif.plug_request("pod-uid");
        let from_port = PlugRequest::of_port(&p, "pod-uid", Some(1442)).expect("plug");
        assert_eq!(
            (req.port_id.as_str(), req.network_id.as_str(), req.mac, req.mtu),
            (
                from_port.port_id.as_str(),
                from_port.network_id.as_str(),
                from_port.mac,
                from_port.mtu
            )
        );
        assert_eq!(
            (req.vif_type, req.owner_id, req.fixed_ips),
            (VifType::Ovs, "pod-uid".into(), from_port.fixed_ips)
        );
        assert_eq!(vif.layout(), Layout::of_port(&p, &subnets).expect("layout"));
        let nested = Vif { binding: Binding::NestedVlan { vlan_id: 7 }, ..vif };
        assert_eq!(nested.plug_request("u").vif_type, VifType::Unbound);
        assert_eq!(nested.binding.nested_mode(), Some(NestedMode::Vlan));
        assert_eq!(nested.binding.as_str(), "nested-vlan");
    }

    #[test]
    fn binding_modes() {
        assert_eq!(Binding::of_vif_type(&port("bridge")).expect("bridge"), Binding::Bridge);
        assert!(matches!(Binding::of_vif_type(&port("unbound")), Err(VifError::NotBound { .. })));
        assert!(matches!(Binding::of_vif_type(&port("")), Err(VifError::NotBound { .. })));
        assert!(matches!(
            Binding::of_vif_type(&port("vhostuser")),
            Err(VifError::UnsupportedVifType { .. })
        ));
        let p = port("unbound");
        let vlan = Binding::nested(&p, NestedMode::Vlan, Some(101)).expect("vlan");
        assert_eq!(
            serde_json::to_value(vlan).expect("json"),
            json!({"mode": "nested-vlan", "vlanId": 101})
        );
        assert!(matches!(
            Binding::nested(&p, NestedMode::Vlan, None),
            Err(VifError::NoVlanId { .. })
        ));
        let macvlan = Binding::nested(&p, NestedMode::Macvlan, None).expect("macvlan");
        assert_eq!(serde_json::to_value(macvlan).expect("json"), json!({"mode": "nested-macvlan"}));
        assert!(!macvlan.goes_active());
        assert!(vlan.goes_active());
    }

    #[test]
    fn what_cannot_become_a_vif() {
        let mut p = port("ovs");
        p.mac_address = "nope".into();
        let err = Vif::of_port(&p, &[subnet()], None, Binding::Ovs).expect_err("bad mac");
        assert!(matches!(err, VifError::BadMac { .. }), "{err}");
        let err = Vif::of_port(&port("ovs"), &[], None, Binding::Ovs).expect_err("no subnet");
        assert!(matches!(err, VifError::Layout(LayoutError::SubnetGone { .. })), "{err}");
        let bad: Result<Vif, _> = serde_json::from_value(json!({
            "portId": "p", "networkId": "n", "mac": "zz", "addresses": [], "mtu": null,
            "routes": [], "dns": [], "binding": {"mode": "ovs"}, "active": false
        }));
        assert!(bad.is_err());
    }
}
