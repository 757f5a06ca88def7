//! What an ADD answers: the port's addresses, routes and DNS from its
//! subnets ([`Layout`]), and the CNI result built from them and the bound
//! interfaces (docs/cni.md § Result).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::proto::AttachmentRequest;
use crate::spec::{Interface, IpConfig, Route};
use crate::{AddResult, CniError};
use kuryr_core::lifecycle::Bound;
use netplumb::{IpNet, RouteSpec};
use openstack::neutron::{Port, Subnet};

/// The addresses, routes and DNS of a port, from its subnets.
#[derive(Debug, Default)]
pub(super) struct Layout {
    pub(super) addresses: Vec<(IpNet, Option<IpAddr>)>,
    pub(super) routes: Vec<RouteSpec>,
    pub(super) nameservers: Vec<String>,
}

/// The CNI result of an attachment (chained after `prevResult`, if any).
pub(super) fn add_result(
    req: &AttachmentRequest,
    bound: &Bound,
    mac: &str,
    network_mtu: Option<u32>,
    layout: Layout,
    netns_path: &str,
) -> AddResult {
    let mut interfaces = vec![
        Interface {
            name: bound.plugged.host_ifname.clone(),
            mac: bound.host_mac.map(|m| m.to_string()),
            mtu: network_mtu,
            ..Interface::default()
        },
        Interface {
            name: req.ifname.clone(),
            mac: Some(mac.to_string()),
            mtu: network_mtu,
            sandbox: Some(netns_path.to_string()),
            ..Interface::default()
        },
    ];
    // Nested (macvlan/ipvlan/vlan in a VM): no host end.
    interfaces.retain(|i| !i.name.is_empty());
    let container_index = u32::from(interfaces.len() > 1);
    let ours = AddResult {
        cni_version: None,
        interfaces,
        ips: layout
            .addresses
            .iter()
            .map(|(addr, gw)| IpConfig::new(*addr, *gw, Some(container_index)))
            .collect(),
        routes: layout.routes.iter().map(|r| Route::new(r.dest, r.gateway)).collect(),
        dns: crate::spec::Dns { nameservers: layout.nameservers, ..Default::default() },
    };
    match &req.prev_result {
        Some(prev) => {
            let mut chained = prev.clone();
            chained.append(ours);
            chained
        }
        None => ours,
    }
}

/// Addresses (with prefix and gateway), routes (a default route per family
/// via the first gateway, then every subnet's host_routes) and DNS servers
/// of a port, from its network's subnets.
pub(super) fn layout_of(port: &Port, subnets: &[Subnet]) -> Result<Layout, CniError> {
    let mut layout = Layout::default();
    let mut defaults = BTreeSet::new();
    let mut extra_routes = Vec::new();
    for fixed in &port.fixed_ips {
        let subnet = subnets.iter().find(|s| s.id == fixed.subnet_id).ok_or_else(|| {
            CniError::try_again_later(format!(
                "subnet {} of port {} is gone",
                fixed.subnet_id, port.id
            ))
        })?;
        let cidr: IpNet = subnet.cidr.parse().map_err(|e| {
            CniError::internal(format!("subnet {} has cidr {:?}: {e}", subnet.id, subnet.cidr))
        })?;
        let address = IpNet::new(fixed.ip_address, cidr.prefix_len())
            .map_err(|e| CniError::internal(format!("address {}: {e}", fixed.ip_address)))?;
        layout.addresses.push((address, subnet.gateway_ip));
        if let Some(gw) = subnet.gateway_ip {
            if defaults.insert(gw.is_ipv4()) {
                let mut route = RouteSpec::default_via(gw);
                if !cidr.contains(&gw) {
                    route = route.onlink();
                }
                layout.routes.push(route);
            }
        }
        for hr in &subnet.host_routes {
            let dest: IpNet = hr.destination.parse().map_err(|e| {
                CniError::internal(format!(
                    "subnet {} host route {:?}: {e}",
                    subnet.id, hr.destination
                ))
            })?;
            let route = RouteSpec::new(dest.trunc()).via(hr.nexthop);
            if !extra_routes.contains(&route) {
                extra_routes.push(route);
            }
        }
        for ns in &subnet.dns_nameservers {
            if !layout.nameservers.contains(ns) {
                layout.nameservers.push(ns.clone());
            }
        }
    }
    // A host route that is itself a default route replaces ours.
    for route in extra_routes {
        if route.dest.prefix_len() == 0 {
            layout.routes.retain(|r| {
                r.dest.prefix_len() != 0 || r.dest.addr().is_ipv4() != route.dest.addr().is_ipv4()
            });
        }
        layout.routes.push(route);
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::neutron::{FixedIp, HostRoute};

    fn subnet(id: &str, cidr: &str, gw: Option<&str>) -> Subnet {
        Subnet {
            dns_nameservers: vec!["10.0.0.53".into()],
            ..openstack::fake::subnet(id, "n", cidr, gw)
        }
    }

    #[test]
    fn layout_has_default_and_host_routes() {
        let mut v4 = subnet("s4", "10.1.0.0/24", Some("10.1.0.1"));
        v4.host_routes = vec![HostRoute {
            destination: "192.168.0.0/16".into(),
            nexthop: "10.1.0.254".parse().expect("ip"),
        }];
        let v6 = subnet("s6", "fd00::/64", Some("fd00::1"));
        let mut port: Port = serde_json::from_value(serde_json::json!({
            "id": "p", "network_id": "n", "mac_address": "fa:16:3e:00:00:01"
        }))
        .expect("port");
        port.fixed_ips = vec![
            FixedIp { subnet_id: "s4".into(), ip_address: "10.1.0.5".parse().expect("ip") },
            FixedIp { subnet_id: "s6".into(), ip_address: "fd00::5".parse().expect("ip") },
        ];
        let layout = layout_of(&port, &[v4, v6]).expect("layout");
        let addrs: Vec<String> = layout.addresses.iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(addrs, ["10.1.0.5/24", "fd00::5/64"]);
        let routes: Vec<String> = layout.routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes.len(), 3, "{routes:?}");
        assert_eq!(layout.nameservers, ["10.0.0.53"]);
        assert!(layout_of(&port, &[]).is_err());
    }
}
