//! CHECK: the attachment in the netns against its Neutron port
//! ([`check_interface`], the netns half, serves Kubernetes mode too).

use crate::proto::AttachmentRequest;
use crate::CniError;
use kuryr_core::layout::Layout;
use netplumb::{MacAddr, Netlink, Netns};
use openstack::neutron::{PortStatus, Query};

use super::layout::layout_of;
use super::{errors, NeutronCni};

pub(super) async fn check(cni: &NeutronCni, req: &AttachmentRequest) -> Result<(), CniError> {
    let ports = cni.ports_of(&req.container_id, &req.ifname).await?;
    let port = match ports.as_slice() {
        [one] => one,
        [] => {
            return Err(CniError::unknown_container(format!(
                "no Neutron port for container {} ifname {} on host {}",
                req.container_id, req.ifname, cni.settings.lifecycle.host
            )))
        }
        many => {
            return Err(errors::mismatch(format!(
                "{} Neutron ports claim this attachment",
                many.len()
            )))
        }
    };
    // ADD returns on the local ovn-installed signal, which comes before
    // Neutron's status update: either counts as ACTIVE.
    if port.status != PortStatus::Active && !cni.binder.ovn_installed(&port.id).await {
        return Err(errors::mismatch(format!("port {} is {}, not ACTIVE", port.id, port.status)));
    }
    let subnets = cni
        .neutron
        .list_subnets(&Query::new().network_id(&port.network_id))
        .await
        .map_err(|e| errors::neutron("listing the subnets", &e))?;
    let layout = layout_of(port, &subnets)?;
    let network = cni.resolve_network("the port's network", &port.network_id).await?;
    let want_mac: Option<MacAddr> = port.mac_address.parse().ok();
    check_interface(req, &port.id, want_mac, network.mtu, &layout).await
}

/// The netns half of CHECK: `CNI_IFNAME` inside `CNI_NETNS` exists, is up,
/// has `mac` and `mtu` (when known), every address and route of `layout`;
/// and every address `prevResult` gives it is the port's. `port_id` names
/// the port in the messages.
pub async fn check_interface(
    req: &AttachmentRequest,
    port_id: &str,
    want_mac: Option<MacAddr>,
    mtu: Option<u32>,
    layout: &Layout,
) -> Result<(), CniError> {
    let netns_path = req.netns.as_deref().unwrap_or_default();
    let netns = Netns::from_path(netns_path)
        .map_err(|e| errors::mismatch(format!("CNI_NETNS={netns_path}: {e}")))?;
    let inside = Netlink::in_netns(&netns)
        .await
        .map_err(|e| errors::plumbing("opening netlink in the netns", &e))?;
    let ifname = &req.ifname;
    let link = inside
        .get_link(ifname)
        .await
        .map_err(|e| errors::plumbing("reading the interface", &e))?
        .ok_or_else(|| errors::mismatch(format!("no interface {ifname} in {netns_path}")))?;
    if link.mac != want_mac {
        return Err(errors::mismatch(format!(
            "{ifname} has MAC {:?}, port {port_id} has {}",
            link.mac.map(|m| m.to_string()),
            want_mac.map(|m| m.to_string()).unwrap_or_default()
        )));
    }
    if !link.admin_up {
        return Err(errors::mismatch(format!("{ifname} is down")));
    }
    if let Some(mtu) = mtu {
        if link.mtu != mtu {
            return Err(errors::mismatch(format!(
                "{ifname} has MTU {}, the network of port {port_id} has {mtu}",
                link.mtu
            )));
        }
    }
    let present =
        inside.addresses(ifname).await.map_err(|e| errors::plumbing("reading addresses", &e))?;
    for (want, _) in &layout.addresses {
        if !present.iter().any(|a| a.addr == *want) {
            return Err(errors::mismatch(format!(
                "{ifname} lacks address {want} of port {port_id}"
            )));
        }
    }
    let routes = inside.routes(ifname).await.map_err(|e| errors::plumbing("reading routes", &e))?;
    for want in &layout.routes {
        if !routes.iter().any(|r| r.dest == want.dest && r.gateway == want.gateway) {
            return Err(errors::mismatch(format!("{ifname} lacks route {want}")));
        }
    }
    check_prev_result(req, netns_path, &layout.addresses)
}

/// Every address the chain's result gives our interface must be the port's.
fn check_prev_result(
    req: &AttachmentRequest,
    netns_path: &str,
    ours: &[(netplumb::IpNet, Option<std::net::IpAddr>)],
) -> Result<(), CniError> {
    let Some(prev) = &req.prev_result else {
        return Ok(());
    };
    let our_index = prev
        .interfaces
        .iter()
        .position(|i| i.name == req.ifname && i.sandbox.as_deref() == Some(netns_path));
    let Some(our_index) = our_index else {
        return Err(errors::mismatch(format!(
            "prevResult has no interface {} in {netns_path}",
            req.ifname
        )));
    };
    for ip in &prev.ips {
        if ip.interface.map(|i| i as usize) != Some(our_index) {
            continue;
        }
        if !ours.iter().any(|(a, _)| *a == ip.address) {
            return Err(errors::mismatch(format!(
                "prevResult gives {} address {}, which its Neutron port does not hold",
                req.ifname, ip.address
            )));
        }
    }
    Ok(())
}
