//! Gratuitous ARP from a new container, so that peers which knew its
//! address at a previous holder's MAC learn the new one at once
//! ([`netplumb::garp`]). Best effort: a failure is logged, never fatal.

use super::*;

impl Binder {
    /// Docker mode: once Docker has moved the container end into the
    /// sandbox at `sandbox` and configured it (which happens when the
    /// runtime creates the container's netns, after the last plugin call),
    /// finds it by the port's MAC and sends a gratuitous ARP per address
    /// from it. Polls for at most `patience`; best effort, like
    /// [`Binder::announce`].
    pub async fn announce_in_sandbox(
        &self,
        port_id: &str,
        sandbox: &str,
        mac: MacAddr,
        ips: &[std::net::Ipv4Addr],
        patience: Duration,
    ) {
        if ips.is_empty() || !self.binds_host() {
            return;
        }
        let deadline = tokio::time::Instant::now() + patience;
        let (netns, ifname) = loop {
            if let Some(found) = configured_link(sandbox, mac, ips).await {
                break found;
            }
            if tokio::time::Instant::now() >= deadline {
                debug!(port_id, sandbox, "gratuitous ARP: interface not configured in time");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for ip in ips {
            match netplumb::garp::send_gratuitous_arp(Some(&netns), &ifname, mac, *ip).await {
                Ok(()) => debug!(port_id, %ip, "gratuitous ARP sent"),
                Err(err) => warn!(port_id, %ip, %err, "gratuitous ARP failed"),
            }
        }
    }

    /// CNI mode, once the port is ACTIVE (veth binding only): a gratuitous
    /// ARP for each IPv4 address from inside the container, so that peers which knew the
    /// address at a previous holder's MAC learn the new one at once (see
    /// [`netplumb::garp`]). Best effort: a failure is logged, never fatal.
    pub async fn announce(&self, port_id: &str, mac: MacAddr, target: &NetnsTarget) {
        // Nested: ipvlan speaks with the VM's MAC, and the VM port answers
        // for the container addresses: the port's MAC must not be claimed.
        if !self.binds_host() {
            return;
        }
        for addr in &target.addresses {
            let IpAddr::V4(ip) = addr.addr() else {
                continue;
            };
            let sent =
                netplumb::garp::send_gratuitous_arp(Some(&target.netns), &target.ifname, mac, ip)
                    .await;
            match sent {
                Ok(()) => debug!(port_id, %ip, "gratuitous ARP sent"),
                Err(err) => warn!(port_id, %ip, %err, "gratuitous ARP failed"),
            }
        }
    }
}

/// The link in `sandbox` with `mac`, once it is up and holds the first of
/// `ips`.
pub(super) async fn configured_link(
    sandbox: &str,
    mac: MacAddr,
    ips: &[std::net::Ipv4Addr],
) -> Option<(Netns, String)> {
    let netns = Netns::from_path(sandbox).ok()?;
    let inside = Netlink::in_netns(&netns).await.ok()?;
    let link = inside.links().await.ok()?.into_iter().find(|l| l.mac == Some(mac) && l.admin_up)?;
    let addresses = inside.addresses(&link.name).await.ok()?;
    let first = IpAddr::V4(*ips.first()?);
    addresses.iter().any(|a| a.addr.addr() == first).then_some((netns, link.name))
}
