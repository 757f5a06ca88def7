//! Filling a pool in the background: a batch of ports in one POST,
//! plugged, and kept only once ovn-installed and ACTIVE (docs/operations.md).

use super::*;

impl PortPool {
    /// Starts a refill task unless one runs or the pool has enough.
    pub(super) fn maybe_refill(self: &Arc<Self>, key: &PoolKey) {
        {
            let mut pools = self.pools();
            let Some(state) = pools.get_mut(key) else {
                return;
            };
            if state.refilling
                || !state.settings.enabled()
                || state.ready.len() >= state.settings.min
            {
                return;
            }
            state.refilling = true;
        }
        let pool = self.clone();
        let key = key.clone();
        tokio::spawn(async move { pool.refill(key).await });
    }

    /// Refills until the pool holds `min` ready ports, one batch (one bulk
    /// POST) at a time, at most one batch per `update_frequency`.
    pub(super) async fn refill(self: Arc<Self>, key: PoolKey) {
        loop {
            let plan = {
                let mut pools = self.pools();
                let Some(state) = pools.get_mut(&key) else {
                    return;
                };
                let s = state.settings;
                if !s.enabled() || state.ready.len() >= s.min {
                    state.refilling = false;
                    return;
                }
                let mut count = s.batch.max(1);
                if s.max > 0 {
                    count = count.min(s.max.saturating_sub(state.ready.len()));
                }
                if count == 0 {
                    state.refilling = false;
                    return;
                }
                let wait = state
                    .last_refill
                    .map(|t| s.update_frequency.saturating_sub(t.elapsed()))
                    .unwrap_or_default();
                (count, wait, state.mtu)
            };
            let (count, wait, mtu) = plan;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let made = self.make_batch(&key, count, mtu).await;
            let stop = {
                let mut pools = self.pools();
                match pools.get_mut(&key) {
                    Some(state) => {
                        state.last_refill = Some(Instant::now());
                        let on = state.settings.enabled();
                        let made_ok = matches!(made, Ok(ref ports) if !ports.is_empty());
                        if let Ok(ports) = &made {
                            if on {
                                state.ready.extend(ports.iter().cloned());
                            }
                        }
                        if !on || !made_ok {
                            state.refilling = false;
                        }
                        (!on, !made_ok)
                    }
                    None => (true, true),
                }
            };
            match (made, stop) {
                // The pool was drained while this batch was made.
                (Ok(ports), (true, _)) => {
                    join_all(ports.iter().map(|p| self.discard(&p.port.id))).await;
                    return;
                }
                (Err(err), _) => {
                    warn!(network_id = %key.network_id, %err, "refilling the port pool failed; retried at the next take");
                    return;
                }
                (Ok(_), (_, true)) => return,
                (Ok(ports), _) => {
                    info!(network_id = %key.network_id, subnet_id = %key.subnet_id, ports = ports.len(), ready = self.ready_count(&key), "port pool refilled");
                    self.publish(&key);
                }
            }
        }
    }

    /// One bulk POST of `count` ports, each plugged and waited for
    /// (`ovn-installed`) concurrently; a port that fails is deleted.
    pub(super) async fn make_batch(
        &self,
        key: &PoolKey,
        count: usize,
        mtu: Option<u32>,
    ) -> Result<Vec<PooledPort>, PoolError> {
        let mtu = match mtu {
            Some(mtu) => Some(mtu),
            None => {
                self.neutron
                    .get_network(&key.network_id)
                    .await
                    .map_err(|e| failed(&key.network_id, format!("reading the network: {e}")))?
                    .mtu
            }
        };
        let body = PortCreate {
            name: Some(naming::POOL_PORT_NAME.to_string()),
            fixed_ips: Some(vec![FixedIpRequest {
                subnet_id: Some(key.subnet_id.clone().into()),
                ip_address: None,
            }]),
            device_owner: Some(naming::DEVICE_OWNER.to_string()),
            device_id: Some(String::new()),
            binding_host_id: Some(key.host.clone()),
            admin_state_up: Some(true),
            security_groups: (!key.security_groups.is_empty())
                .then(|| key.security_groups.iter().map(Into::into).collect()),
            tags: Some(self.pool_tags().iter().map(ToString::to_string).collect()),
            ..PortCreate::new(key.network_id.clone())
        };
        let bodies = vec![body; count];
        let ports = self
            .neutron
            .create_ports(&bodies)
            .await
            .map_err(|e| failed(&key.network_id, format!("creating {count} ports: {e}")))?;
        let plugged = join_all(ports.into_iter().map(|p| self.prepare(p, mtu))).await;
        let plugged: Vec<PooledPort> = plugged.into_iter().flatten().collect();
        Ok(self.confirm_active(plugged).await)
    }

    /// Keeps the ports Neutron reports ACTIVE (one GET for the batch, then
    /// a short backoff; flows are in already, Neutron's status follows
    /// ovn-installed within moments). The rest are deleted at the timeout.
    pub(super) async fn confirm_active(&self, mut waiting: Vec<PooledPort>) -> Vec<PooledPort> {
        let deadline = Instant::now() + self.active_timeout;
        let mut pause = Duration::from_millis(100);
        let mut active = Vec::new();
        while !waiting.is_empty() {
            let query = waiting
                .iter()
                .fold(Query::new(), |q, p| q.id(p.port.id.clone()))
                .fields(["id", "status"]);
            match self.neutron.list_ports(&query).await {
                Ok(ports) => {
                    let up: Vec<&str> = ports
                        .iter()
                        .filter(|p| p.status == PortStatus::Active)
                        .map(|p| p.id.as_str())
                        .collect();
                    let (now_up, still): (Vec<_>, Vec<_>) =
                        waiting.into_iter().partition(|p| up.contains(&p.port.id.as_str()));
                    active.extend(now_up.into_iter().map(|mut p| {
                        p.port.status = PortStatus::Active;
                        p
                    }));
                    waiting = still;
                }
                Err(err) => warn!(%err, "reading pool ports' status"),
            }
            if waiting.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        for p in &waiting {
            warn!(port_id = %p.port.id, "pool port not ACTIVE in Neutron in time; deleting it");
        }
        join_all(waiting.iter().map(|p| self.discard(&p.port.id))).await;
        active
    }

    /// Pre-plugs one new pool port and waits for it; deletes it on failure.
    pub(super) async fn prepare(&self, port: Port, mtu: Option<u32>) -> Option<PooledPort> {
        match self.plug_ready(&port, mtu).await {
            Ok(plugged) => Some(PooledPort { port, plugged }),
            Err(err) => {
                warn!(port_id = %port.id, %err, "pool port not ready; deleting it");
                self.discard(&port.id).await;
                None
            }
        }
    }

    pub(super) async fn plug_ready(
        &self,
        port: &Port,
        mtu: Option<u32>,
    ) -> Result<Plugged, String> {
        let request = PlugRequest::of_port(port, "", mtu).map_err(|e| e.to_string())?;
        if request.vif_type != VifType::Ovs {
            // Only OVS gives the local ovn-installed signal a pool relies on.
            return Err(format!(
                "binding:vif_type {:?}: pools need ovs",
                request.vif_type.as_str()
            ));
        }
        let plugged = self.binder.plug(&request).await.map_err(|e| e.to_string())?;
        let mut set = BTreeMap::new();
        set.insert(naming::OVS_POOL_KEY.to_string(), port.network_id.to_string());
        self.binder
            .switch()
            .update_interface_external_ids(&plugged.host_ifname, &set, &[OWNER_KEY])
            .await
            .map_err(|e| e.to_string())?;
        self.binder
            .switch()
            .wait_ovn_installed(&plugged.host_ifname, self.active_timeout)
            .await
            .map_err(|e| format!("not ovn-installed: {e}"))?;
        Ok(plugged)
    }
}
