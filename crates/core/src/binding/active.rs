//! Waiting until a bound port's dataplane is ready: ovn-controller's
//! `ovn-installed` on the OVS interface, racing Neutron's `status=ACTIVE`.

use super::*;

impl Binder {
    /// Whether the OVS interface of a port carries `ovn-installed=true`.
    pub async fn ovn_installed(&self, port_id: &str) -> bool {
        let host_ifname = naming::host_veth_name(port_id);
        match self.switch.interface_external_ids(&host_ifname).await {
            Ok(Some(ids)) => ids.get("ovn-installed").map(String::as_str) == Some("true"),
            _ => false,
        }
    }

    /// Waits until the port is ACTIVE: the local OVN signal when the port is
    /// on OVS, racing a Neutron poll that starts after `poll_delay` (in case
    /// the backend is not OVN; at once for a Linux bridge port). The first
    /// answer wins.
    pub async fn wait_active(
        &self,
        neutron: &Neutron,
        port_id: &str,
        plugged: &Plugged,
        timeout: Duration,
        poll_delay: Duration,
    ) -> Result<ActiveVia, BindError> {
        if let Some(nested) = &self.nested {
            if !nested.mode.goes_active() {
                return Ok(ActiveVia::NotAwaited);
            }
            // A subport: Neutron sets it ACTIVE once the parent is bound.
            return poll_neutron_active(neutron, port_id, timeout, Duration::ZERO).await;
        }
        let local = async {
            if plugged.vif_type != PlugKind::OVS {
                return std::future::pending::<Result<ActiveVia, BindError>>().await;
            }
            match self.switch.wait_ovn_installed(&plugged.host_ifname, timeout).await {
                Ok(_) => Ok(ActiveVia::OvnInstalled),
                // No OVN signal: leave the answer to Neutron.
                Err(_) => std::future::pending().await,
            }
        };
        // Without the OVN signal there is nothing to wait for first.
        let delay = if plugged.vif_type == PlugKind::OVS { poll_delay } else { Duration::ZERO };
        let remote = poll_neutron_active(neutron, port_id, timeout, delay);
        tokio::select! {
            res = local => res,
            res = remote => res,
        }
    }
}

/// Polls the port's status: first check after `delay`, then a short backoff
/// (50 ms doubling to 1 s), until `timeout`.
pub async fn poll_neutron_active(
    neutron: &Neutron,
    port_id: &str,
    timeout: Duration,
    delay: Duration,
) -> Result<ActiveVia, BindError> {
    let deadline = tokio::time::Instant::now() + timeout;
    tokio::time::sleep(delay.min(timeout)).await;
    let mut pause = Duration::from_millis(50);
    let mut status = String::from("unknown");
    loop {
        match neutron.get_port(port_id).await {
            Ok(port) if port.status == PortStatus::Active => return Ok(ActiveVia::Neutron),
            Ok(port) => status = port.status.to_string(),
            Err(source) if source.is_not_found() => {
                return Err(BindError::Neutron { port_id: port_id.to_string(), source })
            }
            Err(err) => warn!(port_id, %err, "polling port status"),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(BindError::NotActive { port_id: port_id.to_string(), timeout, status });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
