//! What an ADD answers: the port's addresses, routes and DNS from its
//! subnets (`kuryr_core::layout`), and the CNI result built from them and the bound
//! interfaces (docs/cni.md § Result).

use crate::proto::AttachmentRequest;
use crate::spec::{Interface, IpConfig, Route};
use crate::{AddResult, CniError};
use kuryr_core::layout::{Layout, LayoutError};
use kuryr_core::lifecycle::Bound;
use openstack::neutron::{Port, Subnet};

/// The CNI result of an attachment (chained after `prevResult`, if any):
/// the host and container ends of `bound` (the container end with the
/// port's `mac`), the addresses, routes and DNS of `layout`.
pub fn add_result(
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

/// The port's [`Layout`] from its network's subnets, as a CNI error when
/// it cannot be read: a subnet deleted meanwhile is worth a retry (11).
pub(super) fn layout_of(port: &Port, subnets: &[Subnet]) -> Result<Layout, CniError> {
    Layout::of_port(port, subnets).map_err(|e| match e {
        LayoutError::SubnetGone { .. } => CniError::try_again_later(e.to_string()),
        LayoutError::Malformed { .. } => CniError::internal(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openstack::neutron::FixedIp;

    #[test]
    fn a_gone_subnet_is_worth_a_retry() {
        let port = Port {
            id: "p".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: "s4".into(),
                ip_address: "10.1.0.5".parse().expect("ip"),
            }],
            ..Port::default()
        };
        let err = layout_of(&port, &[]).expect_err("no subnet");
        assert!(err.to_string().contains("subnet s4 of port p is gone"), "{err}");
    }
}
