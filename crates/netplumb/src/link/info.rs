//! What the kernel reports back: a link's state and attributes, a veth
//! pair's two ends, addresses and routes, parsed from rtnetlink messages.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol,
};

use crate::spec;
use crate::validate::MacAddr;

/// Operational state of a link (`IFLA_OPERSTATE`, RFC 2863).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperState {
    /// Up and able to pass packets.
    Up,
    /// Down.
    Down,
    /// Down because the lower layer (e.g. veth peer) is down.
    LowerLayerDown,
    /// Not determinable (e.g. loopback, some virtual devices).
    Unknown,
    /// Waiting for an external event.
    Dormant,
    /// A component is missing.
    NotPresent,
    /// In test mode.
    Testing,
    /// A value unknown to this crate.
    Other(u8),
}

impl From<&State> for OperState {
    fn from(s: &State) -> Self {
        match s {
            State::Up => OperState::Up,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Unknown => OperState::Unknown,
            State::Dormant => OperState::Dormant,
            State::NotPresent => OperState::NotPresent,
            State::Testing => OperState::Testing,
            State::Other(v) => OperState::Other(*v),
            _ => OperState::Unknown,
        }
    }
}

/// Scope of an address or route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Global.
    Universe,
    /// Site-local.
    Site,
    /// Valid on this link only (e.g. fe80::/64, on-link routes).
    Link,
    /// Valid on this host only.
    Host,
    /// Destination does not exist.
    Nowhere,
    /// Other value.
    Other(u8),
}

impl From<u8> for Scope {
    fn from(v: u8) -> Self {
        match v {
            0 => Scope::Universe,
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            255 => Scope::Nowhere,
            other => Scope::Other(other),
        }
    }
}

/// What we know about a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index (namespace-local).
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, if it has an Ethernet one.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u32,
    /// Operational state.
    pub oper_state: OperState,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// Index of the master (bridge) if enslaved.
    pub master: Option<u32>,
    /// Link kind (`veth`, `bridge`, `macvlan`...), if virtual.
    pub kind: Option<String>,
    /// Parent/peer index (`IFLA_LINK`): the macvlan parent or the veth peer.
    /// May refer to another namespace.
    pub parent: Option<u32>,
}

impl LinkInfo {
    pub(super) fn from_message(msg: &LinkMessage) -> Self {
        let mut info = LinkInfo {
            index: msg.header.index,
            name: String::new(),
            mac: None,
            mtu: 0,
            oper_state: OperState::Unknown,
            admin_up: msg.header.flags.contains(LinkFlags::Up),
            master: None,
            kind: spec::link_kind(msg),
            parent: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => info.name = n.clone(),
                LinkAttribute::Address(a) => info.mac = MacAddr::from_slice(a),
                LinkAttribute::Mtu(m) => info.mtu = *m,
                LinkAttribute::OperState(s) => info.oper_state = s.into(),
                LinkAttribute::Controller(c) if *c != 0 => info.master = Some(*c),
                LinkAttribute::Link(l) if *l != 0 => info.parent = Some(*l),
                _ => {}
            }
        }
        info
    }
}

/// Both ends of a veth pair as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VethPair {
    /// The host end, in the handle's namespace.
    pub host: LinkInfo,
    /// The container end, in the namespace it was created in.
    pub peer: LinkInfo,
}

/// An address configured on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    /// Address with prefix length.
    pub addr: IpNet,
    /// Scope (link for fe80::/64).
    pub scope: Scope,
    /// Still running DAD (IPv6); not usable yet.
    pub tentative: bool,
    /// DAD found a duplicate (IPv6).
    pub dad_failed: bool,
}

/// Who installed a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOrigin {
    /// The kernel (connected/prefix routes).
    Kernel,
    /// Boot-time / `ip route` default protocol.
    Boot,
    /// Added statically (what [`Netlink::add_route`](super::Netlink::add_route) uses).
    Static,
    /// IPv6 router advertisement.
    Ra,
    /// Anything else.
    Other(u8),
}

impl From<RouteProtocol> for RouteOrigin {
    fn from(p: RouteProtocol) -> Self {
        match p {
            RouteProtocol::Kernel => RouteOrigin::Kernel,
            RouteProtocol::Boot => RouteOrigin::Boot,
            RouteProtocol::Static => RouteOrigin::Static,
            RouteProtocol::Ra => RouteOrigin::Ra,
            other => RouteOrigin::Other(u8::from(other)),
        }
    }
}

/// A route of the main table going out of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination prefix (`0.0.0.0/0` / `::/0` for default).
    pub dest: IpNet,
    /// Next hop, if any.
    pub gateway: Option<IpAddr>,
    /// Route scope.
    pub scope: Scope,
    /// Who installed it.
    pub origin: RouteOrigin,
    /// Metric.
    pub metric: Option<u32>,
    /// On-link flag.
    pub onlink: bool,
}

impl RouteInfo {
    pub(super) fn from_message(msg: &RouteMessage) -> Option<Self> {
        let mut dest_addr: Option<IpAddr> = None;
        let mut gateway = None;
        let mut metric = None;
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dest_addr = route_addr(a),
                RouteAttribute::Gateway(a) => gateway = route_addr(a),
                RouteAttribute::Priority(p) => metric = Some(*p),
                _ => {}
            }
        }
        let dest_addr = match dest_addr {
            Some(a) => a,
            None => match msg.header.address_family {
                netlink_packet_route::AddressFamily::Inet => IpAddr::from([0u8; 4]),
                netlink_packet_route::AddressFamily::Inet6 => IpAddr::from([0u8; 16]),
                _ => return None,
            },
        };
        let dest = IpNet::new(dest_addr, msg.header.destination_prefix_length).ok()?;
        Some(RouteInfo {
            dest,
            gateway,
            scope: Scope::from(u8::from(msg.header.scope)),
            origin: msg.header.protocol.into(),
            metric,
            onlink: msg.header.flags.contains(RouteFlags::Onlink),
        })
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

pub(super) fn route_table(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}

pub(super) fn route_oif(msg: &RouteMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

impl AddressInfo {
    pub(super) fn from_message(msg: &AddressMessage) -> Option<Self> {
        let mut local = None;
        let mut address = None;
        let mut flags = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Flags(f) => flags = Some(*f),
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer
        // on point-to-point links, and the only one present for IPv6.
        let addr = IpNet::new(local.or(address)?, msg.header.prefix_len).ok()?;
        let header = msg.header.flags;
        let tentative = flags.map_or(header.contains(AddressHeaderFlags::Tentative), |f| {
            f.contains(AddressFlags::Tentative)
        });
        let dad_failed = flags.map_or(header.contains(AddressHeaderFlags::Dadfailed), |f| {
            f.contains(AddressFlags::Dadfailed)
        });
        Some(AddressInfo {
            addr,
            scope: Scope::from(u8::from(msg.header.scope)),
            tentative,
            dad_failed,
        })
    }
}
