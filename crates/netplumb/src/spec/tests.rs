use super::*;
use netlink_packet_route::link::LinkFlags;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteHeader};
use netlink_packet_route::AddressFamily;
use rtnetlink::packet_core::{Emitable, Parseable};

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn attr<'a, T>(msg: &'a LinkMessage, f: impl Fn(&'a LinkAttribute) -> Option<T>) -> Option<T> {
    msg.attributes.iter().find_map(f)
}

/// The link attributes the tests look at (the first of each kind, as the
/// kernel reads them).
#[derive(Default)]
struct Attrs<'a> {
    name: Option<&'a str>,
    mtu: Option<u32>,
    mac: Option<&'a [u8]>,
    parent: Option<u32>,
}

fn attrs(msg: &LinkMessage) -> Attrs<'_> {
    let mut out = Attrs::default();
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => _ = out.name.get_or_insert(n),
            LinkAttribute::Mtu(m) => _ = out.mtu.get_or_insert(*m),
            LinkAttribute::Address(m) => _ = out.mac.get_or_insert(m),
            LinkAttribute::Link(i) => _ = out.parent.get_or_insert(*i),
            _ => {}
        }
    }
    out
}

fn name_attr(msg: &LinkMessage) -> Option<&str> {
    attrs(msg).name
}

fn mtu_attr(msg: &LinkMessage) -> Option<u32> {
    attrs(msg).mtu
}

fn mac_attr(msg: &LinkMessage) -> Option<&[u8]> {
    attrs(msg).mac
}

fn parent_attr(msg: &LinkMessage) -> Option<u32> {
    attrs(msg).parent
}

fn info(msg: &LinkMessage) -> &Vec<LinkInfo> {
    attr(msg, |a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    })
    .expect("IFLA_LINKINFO present")
}

fn info_data(msg: &LinkMessage) -> &InfoData {
    info(msg)
        .iter()
        .find_map(|i| match i {
            LinkInfo::Data(d) => Some(d),
            _ => None,
        })
        .expect("IFLA_INFO_DATA present")
}

fn roundtrip(msg: &LinkMessage) -> LinkMessage {
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.emit(&mut buf);
    LinkMessage::parse(buf.as_slice()).expect("emitted message parses back")
}

#[test]
fn veth_sets_mtu_and_mac_on_both_ends_and_host_up() {
    let spec = VethSpec::new("tap-host", "tap-peer")
        .mtu(1442)
        .host_mac(mac("fe:16:3e:00:00:01"))
        .peer_mac(mac("fa:16:3e:00:00:02"));
    spec.validate().unwrap();
    let msg = veth_message(&spec);

    assert!(msg.header.flags.contains(LinkFlags::Up));
    assert!(msg.header.change_mask.contains(LinkFlags::Up));
    assert_eq!(name_attr(&msg), Some("tap-host"));
    assert_eq!(mtu_attr(&msg), Some(1442));
    assert_eq!(mac_attr(&msg).map(<[u8]>::to_vec), Some(vec![0xfe, 0x16, 0x3e, 0, 0, 1]));
    assert!(info(&msg).contains(&LinkInfo::Kind(InfoKind::Veth)));

    let InfoData::Veth(InfoVeth::Peer(peer)) = info_data(&msg) else {
        panic!("veth info data must carry the peer");
    };
    assert!(!peer.header.flags.contains(LinkFlags::Up), "peer stays down by default");
    assert_eq!(name_attr(peer), Some("tap-peer"));
    assert_eq!(mtu_attr(peer), Some(1442));
    assert_eq!(mac_attr(peer).map(<[u8]>::to_vec), Some(vec![0xfa, 0x16, 0x3e, 0, 0, 2]));
    assert!(attr(peer, |a| match a {
        LinkAttribute::NetNsFd(f) => Some(*f),
        _ => None,
    })
    .is_none());

    // The wire encoding round-trips (the peer is a nested ifinfomsg).
    let back = roundtrip(&msg);
    let InfoData::Veth(InfoVeth::Peer(peer_back)) = info_data(&back) else {
        panic!("peer lost in encoding");
    };
    assert_eq!(peer_back, peer);
}

#[test]
fn veth_peer_in_netns_and_up() {
    let ns = Netns::current().unwrap();
    let spec = VethSpec::new("h0", "eth0").peer_netns(ns.clone()).peer_up(true);
    spec.validate().unwrap();
    let msg = veth_message(&spec);
    let InfoData::Veth(InfoVeth::Peer(peer)) = info_data(&msg) else {
        panic!("peer missing");
    };
    assert!(!peer.header.flags.contains(LinkFlags::Up), "peer_up is applied after creation");
    assert_eq!(
        attr(peer, |a| match a {
            LinkAttribute::NetNsFd(f) => Some(*f),
            _ => None,
        }),
        Some(ns.raw_fd())
    );
    assert!(mtu_attr(&msg).is_none());
}

#[test]
fn veth_validation() {
    assert!(VethSpec::new("same", "same").validate().is_err());
    assert!(VethSpec::new("way-too-long-name-x", "p").validate().is_err());
    assert!(VethSpec::new("h", "p").mtu(10).validate().is_err());
    assert!(VethSpec::new("h", "p").peer_mac(mac("01:00:00:00:00:01")).validate().is_err());
}

/// Checks what every sub-interface request carries (a valid spec, its kind
/// and data, the parent, a stable encoding) and returns it for the rest.
#[track_caller]
fn checked_sub_link<K: SubLinkKind>(
    spec: &SubLinkSpec<K>,
    parent: u32,
    kind: InfoKind,
    data: InfoData,
) -> LinkMessage {
    K::check(spec).unwrap();
    let msg = K::message(spec, parent);
    assert!(info(&msg).contains(&LinkInfo::Kind(kind)));
    assert_eq!(info_data(&msg), &data);
    assert_eq!(parent_attr(&msg), Some(parent));
    assert_eq!(roundtrip(&msg), msg);
    msg
}

#[test]
fn macvlan_request() {
    for (mode, wire) in [
        (MacvlanMode::Bridge, MacVlanMode::Bridge),
        (MacvlanMode::Private, MacVlanMode::Private),
        (MacvlanMode::Vepa, MacVlanMode::Vepa),
        (MacvlanMode::Passthru, MacVlanMode::Passthrough),
    ] {
        let spec = MacvlanSpec::new("mv0", "eth1", mode).mac(mac("fa:16:3e:aa:bb:cc")).mtu(1400);
        let data = InfoData::MacVlan(vec![InfoMacVlan::Mode(wire)]);
        let msg = checked_sub_link(&spec, 7, InfoKind::MacVlan, data);
        assert_eq!(mtu_attr(&msg), Some(1400));
        assert_eq!(mac_attr(&msg).map(<[u8]>::len), Some(6));
    }
}

#[test]
fn vlan_request() {
    let spec = VlanSpec::new("eth1.100", "eth1", 100).mac(mac("fa:16:3e:01:02:03"));
    let data = InfoData::Vlan(vec![InfoVlan::Id(100)]);
    let msg = checked_sub_link(&spec, 3, InfoKind::Vlan, data);
    assert_eq!(mac_attr(&msg).map(<[u8]>::to_vec), Some(vec![0xfa, 0x16, 0x3e, 1, 2, 3]));
    assert!(!msg.header.flags.contains(LinkFlags::Up));
    assert!(VlanSpec::new("v", "eth1", 0).validate().is_err());
    assert!(VlanSpec::new("v", "eth1", 4095).validate().is_err());
}

#[test]
fn ipvlan_request() {
    for (mode, wire) in [(IpvlanMode::L2, IpVlanMode::L2), (IpvlanMode::L3, IpVlanMode::L3)] {
        let spec = IpvlanSpec::new("ipv0", "eth1", mode);
        let data = InfoData::IpVlan(vec![InfoIpVlan::Mode(wire)]);
        checked_sub_link(&spec, 9, InfoKind::IpVlan, data);
    }
    let with_mac = IpvlanSpec::new("ipv0", "eth1", IpvlanMode::L2).mac(mac("fa:16:3e:00:00:01"));
    assert!(matches!(with_mac.validate(), Err(Error::InvalidValue { what: "ipvlan mac", .. })));
}

/// Nested CNI: the VLAN subinterface and the ipvlan are created straight
/// in the container's netns, with the network's MTU.
#[test]
fn vlan_and_ipvlan_into_netns_with_mtu() {
    let ns = Netns::current().unwrap();
    let netns_fd = |msg: &LinkMessage| {
        attr(msg, |a| match a {
            LinkAttribute::NetNsFd(f) => Some(*f),
            _ => None,
        })
    };
    let mtu = |msg: &LinkMessage| mtu_attr(msg);
    let vlan = VlanSpec::new("eth0", "ens3", 4094)
        .mac(mac("fa:16:3e:01:02:04"))
        .mtu(1442)
        .netns(ns.clone());
    vlan.validate().unwrap();
    let msg = vlan_message(&vlan, 2);
    assert_eq!(info_data(&msg), &InfoData::Vlan(vec![InfoVlan::Id(4094)]));
    assert_eq!(netns_fd(&msg), Some(ns.raw_fd()));
    assert_eq!(mtu(&msg), Some(1442));
    assert_eq!(roundtrip(&msg), msg);

    let ipvlan = IpvlanSpec::new("eth0", "ens3", IpvlanMode::L2).mtu(1442).netns(ns.clone());
    ipvlan.validate().unwrap();
    let msg = ipvlan_message(&ipvlan, 2);
    assert_eq!(netns_fd(&msg), Some(ns.raw_fd()));
    assert_eq!(mtu(&msg), Some(1442));
    assert!(mac_attr(&msg).map(<[u8]>::len).is_none(), "an ipvlan shares its parent's MAC");
    assert_eq!(roundtrip(&msg), msg);
    assert!(IpvlanSpec::new("eth0", "ens3", IpvlanMode::L2).mtu(10).validate().is_err());
}

#[test]
fn bridge_request_is_up() {
    let msg = bridge_message("br-knp");
    assert!(msg.header.flags.contains(LinkFlags::Up));
    assert!(info(&msg).contains(&LinkInfo::Kind(InfoKind::Bridge)));
    assert_eq!(link_kind(&msg).as_deref(), Some("bridge"));
}

#[test]
fn v6_address_has_nodad_v4_has_broadcast() {
    let v6 = address_message(4, "2001:db8::5/64".parse().unwrap());
    assert_eq!(v6.header.family, AddressFamily::Inet6);
    assert_eq!(v6.header.prefix_len, 64);
    assert_eq!(v6.header.index, 4);
    assert!(v6.header.flags.contains(AddressHeaderFlags::Nodad));
    assert!(v6.attributes.contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
    assert!(v6.attributes.contains(&AddressAttribute::Local("2001:db8::5".parse().unwrap())));

    let v4 = address_message(4, "10.0.0.5/24".parse().unwrap());
    assert_eq!(v4.header.family, AddressFamily::Inet);
    assert!(!v4.attributes.iter().any(|a| matches!(a, AddressAttribute::Flags(_))));
    assert!(v4.attributes.contains(&AddressAttribute::Broadcast("10.0.0.255".parse().unwrap())));
}

#[test]
fn route_requests() {
    let def = route_message(5, &RouteSpec::default_via("10.0.0.1".parse().unwrap()));
    assert_eq!(def.header.address_family, AddressFamily::Inet);
    assert_eq!(def.header.destination_prefix_length, 0);
    assert_eq!(def.header.table, RouteHeader::RT_TABLE_MAIN);
    assert_eq!(def.header.scope, RouteScope::Universe);
    assert!(def
        .attributes
        .contains(&RouteAttribute::Gateway(RouteAddress::Inet("10.0.0.1".parse().unwrap()))));
    assert!(def.attributes.contains(&RouteAttribute::Oif(5)));

    let host = route_message(5, &RouteSpec::new("192.168.7.7/32".parse().unwrap()));
    assert_eq!(host.header.scope, RouteScope::Link);
    assert_eq!(host.header.destination_prefix_length, 32);
    assert!(!host.attributes.iter().any(|a| matches!(a, RouteAttribute::Gateway(_))));

    let v6 = route_message(
        6,
        &RouteSpec::new("2001:db8:1::/48".parse().unwrap())
            .via("2001:db8::1".parse().unwrap())
            .onlink()
            .metric(100),
    );
    assert_eq!(v6.header.address_family, AddressFamily::Inet6);
    assert!(v6.header.flags.contains(RouteFlags::Onlink));
    assert!(v6.attributes.contains(&RouteAttribute::Priority(100)));
    assert!(v6
        .attributes
        .contains(&RouteAttribute::Gateway(RouteAddress::Inet6("2001:db8::1".parse().unwrap()))));
}

#[test]
fn route_validation() {
    RouteSpec::default_via("fe80::1".parse().unwrap()).validate().unwrap();
    assert!(RouteSpec::new("10.0.0.0/8".parse().unwrap())
        .via("2001:db8::1".parse().unwrap())
        .validate()
        .is_err());
    assert!(RouteSpec::new("10.0.0.1/8".parse().unwrap()).validate().is_err());
    assert!(RouteSpec::new("10.0.0.0/8".parse().unwrap())
        .via("0.0.0.0".parse().unwrap())
        .validate()
        .is_err());
    assert_eq!(
        RouteSpec::default_via("10.0.0.1".parse().unwrap()).metric(5).to_string(),
        "0.0.0.0/0 via 10.0.0.1 metric 5"
    );
}
