//! A port's layout inside its container: the addresses (with prefix and
//! gateway), routes and DNS servers that its network's subnets give it.
//! Written once here for every adapter that configures or reports an
//! interface (the CNI daemon's result, the Kubernetes controller's
//! KuryrPort status).

use std::collections::BTreeSet;
use std::net::IpAddr;

use netplumb::{IpNet, RouteSpec};
use openstack::neutron::{Port, Subnet};

/// Why a port's layout cannot be read from its subnets.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// An address's subnet is not among those given (deleted meanwhile).
    #[error("subnet {subnet} of port {port} is gone")]
    SubnetGone {
        /// The port.
        port: String,
        /// Its address's subnet.
        subnet: String,
    },
    /// Neutron sent a CIDR, address or host route that does not parse.
    #[error("subnet {subnet}: {what}")]
    Malformed {
        /// The subnet.
        subnet: String,
        /// What is wrong with it.
        what: String,
    },
}

/// The addresses, routes and DNS of a port, from its subnets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Each address with its subnet's prefix, and the subnet's gateway.
    pub addresses: Vec<(IpNet, Option<IpAddr>)>,
    /// A default route per family via the first gateway (on-link when the
    /// gateway is outside the subnet), then every subnet's host routes (a
    /// host route to a default destination replaces ours).
    pub routes: Vec<RouteSpec>,
    /// DNS servers of the subnets, first seen first.
    pub nameservers: Vec<String>,
}

impl Layout {
    /// The layout of `port`, from its network's `subnets`.
    pub fn of_port(port: &Port, subnets: &[Subnet]) -> Result<Layout, LayoutError> {
        let mut layout = Layout::default();
        let mut defaults = BTreeSet::new();
        let mut extra_routes = Vec::new();
        for fixed in &port.fixed_ips {
            let subnet = subnets.iter().find(|s| s.id == fixed.subnet_id).ok_or_else(|| {
                LayoutError::SubnetGone {
                    port: port.id.to_string(),
                    subnet: fixed.subnet_id.to_string(),
                }
            })?;
            let malformed =
                |what: String| LayoutError::Malformed { subnet: subnet.id.to_string(), what };
            let cidr: IpNet = subnet
                .cidr
                .parse()
                .map_err(|e| malformed(format!("cidr {:?}: {e}", subnet.cidr)))?;
            let address = IpNet::new(fixed.ip_address, cidr.prefix_len())
                .map_err(|e| malformed(format!("address {}: {e}", fixed.ip_address)))?;
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
                let dest: IpNet = hr
                    .destination
                    .parse()
                    .map_err(|e| malformed(format!("host route {:?}: {e}", hr.destination)))?;
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
        for route in extra_routes {
            if route.dest.prefix_len() == 0 {
                layout.routes.retain(|r| {
                    r.dest.prefix_len() != 0
                        || r.dest.addr().is_ipv4() != route.dest.addr().is_ipv4()
                });
            }
            layout.routes.push(route);
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::neutron::{FixedIp, HostRoute};

    fn subnet(id: &str, cidr: &str, gw: &str) -> Subnet {
        Subnet {
            id: id.into(),
            cidr: cidr.into(),
            gateway_ip: Some(gw.parse().expect("ip")),
            dns_nameservers: vec!["10.0.0.53".into()],
            ..Subnet::default()
        }
    }

    /// `s4`, 10.1.0.0/24 via .1, with one host route to `destination` via .254.
    fn v4_routed_to(destination: &str) -> Subnet {
        let mut v4 = subnet("s4", "10.1.0.0/24", "10.1.0.1");
        v4.host_routes = vec![HostRoute {
            destination: destination.into(),
            nexthop: "10.1.0.254".parse().expect("ip"),
        }];
        v4
    }

    fn port_on(addresses: &[(&str, &str)]) -> Port {
        let fixed_ips = addresses
            .iter()
            .map(|(subnet, ip)| FixedIp {
                subnet_id: (*subnet).into(),
                ip_address: ip.parse().expect("ip"),
            })
            .collect();
        Port { id: "p".into(), fixed_ips, ..Port::default() }
    }

    #[test]
    fn layout_has_default_and_host_routes() {
        let v6 = subnet("s6", "fd00::/64", "fd00::1");
        let port = port_on(&[("s4", "10.1.0.5"), ("s6", "fd00::5")]);
        let layout = Layout::of_port(&port, &[v4_routed_to("192.168.0.0/16"), v6]).expect("layout");
        let addrs: Vec<String> = layout.addresses.iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(addrs, ["10.1.0.5/24", "fd00::5/64"]);
        let routes: Vec<String> = layout.routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes.len(), 3, "{routes:?}");
        assert_eq!(layout.nameservers, ["10.0.0.53"]);
        let err = Layout::of_port(&port, &[]).expect_err("no subnets");
        assert!(matches!(err, LayoutError::SubnetGone { .. }), "{err}");
    }

    #[test]
    fn a_default_host_route_replaces_the_gateways() {
        let port = port_on(&[("s4", "10.1.0.5")]);
        let layout = Layout::of_port(&port, &[v4_routed_to("0.0.0.0/0")]).expect("layout");
        assert_eq!(layout.routes.len(), 1);
        assert_eq!(layout.routes[0].gateway, Some("10.1.0.254".parse().expect("ip")));
    }
}
