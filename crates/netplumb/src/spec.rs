//! Request specifications (what to create) and the pure functions that turn
//! them into netlink messages. Kept free of I/O so the message contents can be
//! unit-tested without root or kernel support.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use ipnet::IpNet;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, IpVlanMode, LinkAttribute,
    LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{RouteMessage, RouteScope};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder,
};

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::validate::{validate_ifname, validate_mtu, validate_vlan_id, MacAddr};

/// Builder setters for a spec's optional fields, one line each, so the
/// specs' setters cannot drift apart.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: $ty) -> Self {
            self.$field = Some(value);
            self
        }
    )*};
}

/// A veth pair to create.
///
/// The host end is always brought up. The peer (container) end is left down
/// unless [`VethSpec::peer_up`] is set, so Docker can move and rename it.
/// `mtu` applies to *both* ends (rtnetlink's `LinkVeth` only sets one).
#[derive(Clone, Debug)]
pub struct VethSpec {
    /// Name of the end that stays in the caller's namespace (plugged into
    /// OVS or a bridge).
    pub host_name: String,
    /// Name of the container end.
    pub peer_name: String,
    /// MTU for both ends.
    pub mtu: Option<u32>,
    /// MAC for the host end.
    pub host_mac: Option<MacAddr>,
    /// MAC for the container end (usually the Neutron port's MAC).
    pub peer_mac: Option<MacAddr>,
    /// Create the container end directly inside this namespace (CNI), which
    /// also avoids clashing with host names such as `eth0`.
    pub peer_netns: Option<Netns>,
    /// Bring the container end up right after creation (done as a second
    /// step: the kernel cannot open a veth end before its peer exists).
    pub peer_up: bool,
}

impl VethSpec {
    /// A pair with both names and nothing else set.
    pub fn new(host_name: impl Into<String>, peer_name: impl Into<String>) -> Self {
        VethSpec {
            host_name: host_name.into(),
            peer_name: peer_name.into(),
            mtu: None,
            host_mac: None,
            peer_mac: None,
            peer_netns: None,
            peer_up: false,
        }
    }

    setters! {
        /// Set the MTU of both ends.
        mtu: u32,
        /// Set the host end's MAC.
        host_mac: MacAddr,
        /// Set the container end's MAC.
        peer_mac: MacAddr,
        /// Create the container end inside `netns`.
        peer_netns: Netns,
    }

    /// Bring the container end up at creation.
    pub fn peer_up(mut self, up: bool) -> Self {
        self.peer_up = up;
        self
    }

    /// Check names, MTU and MACs.
    pub fn validate(&self) -> Result<()> {
        validate_ifname(&self.host_name)?;
        validate_ifname(&self.peer_name)?;
        if self.host_name == self.peer_name && self.peer_netns.is_none() {
            return Err(Error::invalid("veth peer name", &self.peer_name, "same as the host end"));
        }
        if let Some(mtu) = self.mtu {
            validate_mtu(mtu)?;
        }
        for mac in [self.host_mac, self.peer_mac].into_iter().flatten() {
            mac.validate_unicast()?;
        }
        Ok(())
    }
}

/// macvlan modes (`ip link add ... type macvlan mode MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacvlanMode {
    /// Sub-interfaces of one parent talk to each other directly.
    Bridge,
    /// No traffic between sub-interfaces of one parent.
    Private,
    /// Traffic between sub-interfaces goes out to the external switch.
    Vepa,
    /// Single sub-interface that takes over the parent.
    Passthru,
}

impl From<MacvlanMode> for MacVlanMode {
    fn from(m: MacvlanMode) -> Self {
        match m {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// A sub-interface to create on a parent link: a macvlan ([`MacvlanSpec`]),
/// an 802.1Q VLAN ([`VlanSpec`]) or an ipvlan ([`IpvlanSpec`]). `K`, the
/// [`kind`](Self::kind), is what makes it one of those.
#[derive(Clone, Debug)]
pub struct SubLinkSpec<K> {
    /// New link name.
    pub name: String,
    /// Parent link, in the handle's namespace.
    pub parent: String,
    /// The macvlan or ipvlan mode, or the VLAN id (1..=4094).
    pub kind: K,
    /// MAC for the new link (the Neutron port's MAC in nested mode). Not
    /// for an ipvlan, which has its parent's.
    pub mac: Option<MacAddr>,
    /// MTU for the new link (must not exceed the parent's).
    pub mtu: Option<u32>,
    /// Create the link directly in this namespace (nested CNI: straight
    /// into the container).
    pub netns: Option<Netns>,
}

/// A macvlan sub-interface to create on a parent link.
pub type MacvlanSpec = SubLinkSpec<MacvlanMode>;
/// An 802.1Q VLAN subinterface to create (needs the kernel's 8021q); its
/// kind is the VLAN id.
pub type VlanSpec = SubLinkSpec<u16>;
/// An ipvlan sub-interface to create (needs the kernel's ipvlan).
pub type IpvlanSpec = SubLinkSpec<IpvlanMode>;

impl<K> SubLinkSpec<K> {
    /// A sub-interface with name, parent and kind.
    pub fn new(name: impl Into<String>, parent: impl Into<String>, kind: K) -> Self {
        SubLinkSpec {
            name: name.into(),
            parent: parent.into(),
            kind,
            mac: None,
            mtu: None,
            netns: None,
        }
    }

    setters! {
        /// Set the MAC.
        mac: MacAddr,
        /// Set the MTU.
        mtu: u32,
        /// Create it inside `netns`.
        netns: Netns,
    }

    /// What every sub-interface checks: both names, the MTU, the MAC.
    fn validate_link(&self) -> Result<()> {
        validate_ifname(&self.name)?;
        validate_ifname(&self.parent)?;
        if let Some(mtu) = self.mtu {
            validate_mtu(mtu)?;
        }
        if let Some(mac) = self.mac {
            mac.validate_unicast()?;
        }
        Ok(())
    }
}

impl MacvlanSpec {
    /// Check names, MTU and MAC.
    pub fn validate(&self) -> Result<()> {
        self.validate_link()
    }
}

impl VlanSpec {
    /// Check names, id, MTU and MAC.
    pub fn validate(&self) -> Result<()> {
        validate_vlan_id(self.kind)?;
        self.validate_link()
    }
}

/// ipvlan modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpvlanMode {
    /// Layer 2: the sub-interface does its own ARP/ND.
    L2,
    /// Layer 3: the parent routes for the sub-interfaces.
    L3,
}
impl IpvlanSpec {
    /// Check names and MTU, and that no MAC is asked for.
    pub fn validate(&self) -> Result<()> {
        if let Some(mac) = self.mac {
            return Err(Error::invalid("ipvlan mac", mac, "an ipvlan has its parent's MAC"));
        }
        self.validate_link()
    }
}

/// What creating a sub-interface needs from its kind, so that one function
/// creates all three.
pub(crate) trait SubLinkKind: Sized + std::fmt::Debug {
    /// The kind, for the log; also the kernel support an `EOPNOTSUPP`
    /// shows missing.
    const FEATURE: &'static str;
    /// The spec's own checks.
    fn check(spec: &SubLinkSpec<Self>) -> Result<()>;
    /// The `RTM_NEWLINK` message, for the parent's index.
    fn message(spec: &SubLinkSpec<Self>, parent_index: u32) -> LinkMessage;
}

/// Each kind points at its spec's `validate` and message builder.
macro_rules! sub_link_kind {
    ($($kind:ty: $feature:literal, $message:ident;)*) => {$(
        impl SubLinkKind for $kind {
            const FEATURE: &'static str = $feature;
            fn check(spec: &SubLinkSpec<Self>) -> Result<()> {
                spec.validate()
            }
            fn message(spec: &SubLinkSpec<Self>, parent_index: u32) -> LinkMessage {
                $message(spec, parent_index)
            }
        }
    )*};
}

sub_link_kind! {
    MacvlanMode: "macvlan", macvlan_message;
    u16: "vlan (8021q)", vlan_message;
    IpvlanMode: "ipvlan", ipvlan_message;
}

/// A route to add on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination; `0.0.0.0/0` or `::/0` for a default route.
    pub dest: IpNet,
    /// Next hop. Without one the route is on-link (scope link).
    pub gateway: Option<IpAddr>,
    /// Treat the gateway as directly reachable even if no address of the
    /// link covers it (gateway outside the subnet).
    pub onlink: bool,
    /// Route metric (priority).
    pub metric: Option<u32>,
}

impl RouteSpec {
    /// A route to `dest`, on-link, no metric.
    pub fn new(dest: IpNet) -> Self {
        RouteSpec { dest, gateway: None, onlink: false, metric: None }
    }

    /// Default route (v4 or v6, from the gateway's family) via `gateway`.
    pub fn default_via(gateway: IpAddr) -> Self {
        let dest = match gateway {
            IpAddr::V4(_) => IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            IpAddr::V6(_) => IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0),
        }
        .expect("prefix length 0 is valid for both families");
        RouteSpec::new(dest).via(gateway)
    }

    /// Set the next hop.
    pub fn via(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Mark the next hop on-link.
    pub fn onlink(mut self) -> Self {
        self.onlink = true;
        self
    }

    /// Set the metric.
    pub fn metric(mut self, metric: u32) -> Self {
        self.metric = Some(metric);
        self
    }

    /// Families must match and the destination must be a network address.
    pub fn validate(&self) -> Result<()> {
        if let Some(gw) = self.gateway {
            if gw.is_ipv4() != self.dest.addr().is_ipv4() {
                return Err(Error::invalid(
                    "route gateway",
                    gw,
                    format!("family differs from {}", self.dest),
                ));
            }
            if gw.is_unspecified() || gw.is_multicast() {
                return Err(Error::invalid("route gateway", gw, "must be a unicast address"));
            }
        }
        if self.dest.trunc() != self.dest {
            return Err(Error::invalid(
                "route destination",
                self.dest,
                format!("host bits set (did you mean {}?)", self.dest.trunc()),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.dest)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if self.onlink {
            write!(f, " onlink")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

fn opt_attrs(mtu: Option<u32>, mac: Option<MacAddr>) -> Vec<LinkAttribute> {
    let mut attrs = Vec::new();
    if let Some(mtu) = mtu {
        attrs.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        attrs.push(LinkAttribute::Address(mac.octets().to_vec()));
    }
    attrs
}

fn with_attrs<T>(mut b: LinkMessageBuilder<T>, attrs: Vec<LinkAttribute>) -> LinkMessageBuilder<T> {
    for a in attrs {
        b = b.append_extra_attribute(a);
    }
    b
}

/// RTM_NEWLINK for a veth pair: one message carries both ends, so creation is
/// atomic (both or neither). The peer's `ifinfomsg` carries its own name, MTU,
/// MAC, target netns and up flag.
pub(crate) fn veth_message(spec: &VethSpec) -> LinkMessage {
    // The peer is never brought up here: at that point of veth_newlink() its
    // own peer (the host end) is not registered yet and veth_open() fails
    // with ENOTCONN. `peer_up` is applied after creation instead.
    let mut peer =
        with_attrs(LinkUnspec::new_with_name(&spec.peer_name), opt_attrs(spec.mtu, spec.peer_mac));
    if let Some(ns) = &spec.peer_netns {
        peer = peer.setns_by_fd(ns.raw_fd());
    }
    let peer_msg = peer.build();

    let host = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(spec.host_name.clone())
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)));
    with_attrs(host, opt_attrs(spec.mtu, spec.host_mac)).build()
}

/// RTM_NEWLINK for a macvlan on parent `parent_index`.
pub(crate) fn macvlan_message(spec: &MacvlanSpec, parent_index: u32) -> LinkMessage {
    let data = InfoData::MacVlan(vec![InfoMacVlan::Mode(spec.kind.into())]);
    sub_link_message(spec, parent_index, InfoKind::MacVlan, data)
}

/// RTM_NEWLINK for a VLAN subinterface on parent `parent_index`.
pub(crate) fn vlan_message(spec: &VlanSpec, parent_index: u32) -> LinkMessage {
    let data = InfoData::Vlan(vec![InfoVlan::Id(spec.kind)]);
    sub_link_message(spec, parent_index, InfoKind::Vlan, data)
}

/// RTM_NEWLINK for an ipvlan on parent `parent_index`.
pub(crate) fn ipvlan_message(spec: &IpvlanSpec, parent_index: u32) -> LinkMessage {
    let mode = match spec.kind {
        IpvlanMode::L2 => IpVlanMode::L2,
        IpvlanMode::L3 => IpVlanMode::L3,
    };
    let data = InfoData::IpVlan(vec![InfoIpVlan::Mode(mode)]);
    sub_link_message(spec, parent_index, InfoKind::IpVlan, data)
}

/// RTM_NEWLINK for any sub-interface: its kind and data on the parent,
/// then what every kind may set.
fn sub_link_message<K>(
    spec: &SubLinkSpec<K>,
    parent_index: u32,
    kind: InfoKind,
    data: InfoData,
) -> LinkMessage {
    let mut b = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(kind)
        .name(spec.name.clone())
        .link(parent_index)
        .set_info_data(data);
    b = with_attrs(b, opt_attrs(spec.mtu, spec.mac));
    if let Some(ns) = &spec.netns {
        b = b.setns_by_fd(ns.raw_fd());
    }
    b.build()
}

/// RTM_NEWLINK for a Linux bridge, created up.
pub(crate) fn bridge_message(name: &str) -> LinkMessage {
    LinkBridge::new(name).build()
}

/// RTM_NEWLINK (change) moving link `index` into the namespace behind `fd`.
pub(crate) fn setns_message(index: u32, fd: RawFd) -> LinkMessage {
    LinkUnspec::new_with_index(index).setns_by_fd(fd).build()
}

/// RTM_NEWADDR for `net` on link `index`.
///
/// IPv6 addresses get `IFA_F_NODAD`: without it a new address is "tentative"
/// for about a second while Duplicate Address Detection runs, and the
/// container cannot use it as a source or bind to it yet (EADDRNOTAVAIL).
/// Uniqueness is already guaranteed by Neutron's IPAM (and OVN port security
/// drops spoofing), so DAD buys nothing here and costs startup latency.
pub(crate) fn address_message(index: u32, net: IpNet) -> AddressMessage {
    match net {
        IpNet::V4(n) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(n.addr(), n.prefix_len())
            .build(),
        IpNet::V6(n) => {
            let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(n.addr(), n.prefix_len())
                .build();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
            msg
        }
    }
}

/// RTM_NEWROUTE for `spec` out of link `index`, main table, proto static.
pub(crate) fn route_message(index: u32, spec: &RouteSpec) -> RouteMessage {
    let scope = if spec.gateway.is_some() { RouteScope::Universe } else { RouteScope::Link };
    // validate() makes the families match; a gateway of the other family
    // is left out rather than sent.
    let gateway = spec.gateway.filter(|g| g.is_ipv4() == spec.dest.addr().is_ipv4());
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(spec.dest.addr(), spec.dest.prefix_len())
        .expect("an IpNet's prefix length fits its family")
        .output_interface(index)
        .scope(scope);
    if let Some(gateway) = gateway {
        b = b.gateway(gateway).expect("the gateway has the destination's family");
    }
    if spec.onlink {
        b = b.onlink();
    }
    let mut msg = b.build();
    if let Some(metric) = spec.metric {
        msg.attributes.push(netlink_packet_route::route::RouteAttribute::Priority(metric));
    }
    msg
}

/// Kind (`veth`, `bridge`...) from a link message's IFLA_LINKINFO.
pub(crate) fn link_kind(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.to_string()),
            _ => None,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
