//! Port pools: Neutron ports created ahead of time in bulk, bound to this
//! host and pre-plugged (veth pair made, host end in the integration bridge
//! with the port's `iface-id`), so OVN has bound them and Neutron reports
//! them ACTIVE before any container asks. A container takes a ready port
//! and waits on no Neutron round trip.
//!
//! A pool is keyed by [`PoolKey`] (network, subnet, host, security groups,
//! project). In Neutron a pool port is named [`naming::POOL_PORT_NAME`],
//! owned by [`naming::DEVICE_OWNER`] with an empty device_id, and tagged
//! [`naming::DEVICE_OWNER`] and [`naming::POOL_TAG`]; its OVS interface
//! carries `external_ids:kuryr-pool=<network id>` and no `vm-uuid`. That is
//! all a restart needs to find a pool again ([`PortPool::recover`]).
//! docs/benchmarks.md explains what a claim defers and why that is safe.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::join_all;
use openstack::neutron::{
    FixedIpRequest, Neutron, Port, PortCreate, PortId, PortStatus, PortUpdate, Query, Resource,
    VifType,
};
use tracing::{debug, info, warn};

use crate::binding::{Binder, PlugKind, PlugRequest, Plugged, OWNER_KEY};
use crate::naming;

/// What a pool serves: ports alike in everything a container may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    /// The Neutron network.
    pub network_id: String,
    /// Pool ports have one fixed IP, on this subnet.
    pub subnet_id: String,
    /// `binding:host_id`.
    pub host: String,
    /// Sorted; empty means Neutron's default group of the project.
    pub security_groups: Vec<String>,
    /// Empty means the caller's own project.
    pub project_id: String,
}

impl PoolKey {
    /// A key; the security groups are sorted here, so their order never splits a pool.
    pub fn new(
        network_id: impl Into<String>,
        subnet_id: impl Into<String>,
        host: impl Into<String>,
        mut security_groups: Vec<String>,
        project_id: impl Into<String>,
    ) -> Self {
        security_groups.sort();
        security_groups.dedup();
        PoolKey {
            network_id: network_id.into(),
            subnet_id: subnet_id.into(),
            host: host.into(),
            security_groups,
            project_id: project_id.into(),
        }
    }

    /// The key of a port as Neutron has it (one made by a pool).
    pub fn of_port(port: &Port) -> Option<Self> {
        let subnet = port.fixed_ips.first()?.subnet_id.clone();
        Some(PoolKey::new(
            port.network_id.clone(),
            subnet,
            port.binding_host_id.clone(),
            Vec::new(),
            String::new(),
        ))
    }
}

/// Sizes of one pool (`[vif_pool]`, or a network's own options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Refill when fewer ports than this are ready; 0 turns the pool off.
    pub min: usize,
    /// Released ports beyond this many ready ones are deleted; 0: no limit.
    pub max: usize,
    /// Ports made by one refill (one bulk POST).
    pub batch: usize,
    /// Least time between two refills of one pool.
    pub update_frequency: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { min: 0, max: 0, batch: 10, update_frequency: Duration::from_secs(1) }
    }
}

impl PoolSettings {
    /// `[vif_pool]`; off unless the binding driver is veth (nested
    /// bindings plug no veth a pool could hold).
    pub fn from_config(config: &crate::config::Config) -> Self {
        let p = &config.vif_pool;
        PoolSettings {
            min: if config.binding.driver == "veth" { p.ports_pool_min } else { 0 },
            max: p.ports_pool_max,
            batch: p.ports_pool_batch,
            update_frequency: Duration::from_secs(p.ports_pool_update_frequency),
        }
    }

    /// Whether pools are on (`min > 0`).
    pub fn enabled(&self) -> bool {
        self.min > 0
    }

    /// Whether `ready` ports leave room for one more.
    fn has_room(&self, ready: usize) -> bool {
        self.max == 0 || ready < self.max
    }
}

/// How long a new pool port may take to become ACTIVE: `[neutron]
/// vif_plugging_timeout`, or 30 s where that is 0 (no wait): a pool port
/// that never became ACTIVE must not be served.
pub fn ready_timeout(vif_plugging_timeout: Duration) -> Duration {
    if vif_plugging_timeout.is_zero() {
        Duration::from_secs(30)
    } else {
        vif_plugging_timeout
    }
}

/// A ready port: ACTIVE, plugged, its container end in the host namespace.
#[derive(Debug, Clone)]
pub struct PooledPort {
    /// The Neutron port, as Neutron last showed it.
    pub port: Port,
    /// Its host devices.
    pub plugged: Plugged,
}

/// A pool operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Filling, claiming or returning failed.
    #[error("port pool of network {network_id}: {message}")]
    Failed {
        /// The pool's network.
        network_id: String,
        /// What went wrong.
        message: String,
    },
}

struct PoolState {
    settings: PoolSettings,
    mtu: Option<u32>,
    ready: VecDeque<PooledPort>,
    refilling: bool,
    last_refill: Option<Instant>,
}

impl PoolState {
    fn new(settings: PoolSettings, mtu: Option<u32>) -> Self {
        PoolState { settings, mtu, ready: VecDeque::new(), refilling: false, last_refill: None }
    }
}

/// The pools of this host. Cheap to share (`Arc`); refills run as tasks.
pub struct PortPool {
    neutron: Neutron,
    binder: Binder,
    active_timeout: Duration,
    /// [`naming::pool_owner_tag`] of this service.
    service_tag: String,
    pools: Mutex<HashMap<PoolKey, PoolState>>,
}

impl PortPool {
    /// Pools plugging through `binder`; a port not ACTIVE (ovn-installed)
    /// within `active_timeout` is deleted, never served. `service_tag`
    /// ([`naming::pool_owner_tag`]) marks the ports as this service's.
    pub fn new(
        neutron: Neutron,
        binder: Binder,
        active_timeout: Duration,
        service_tag: String,
    ) -> Arc<Self> {
        Arc::new(PortPool {
            neutron,
            binder,
            active_timeout,
            service_tag,
            pools: Mutex::new(HashMap::new()),
        })
    }

    fn pools(&self) -> MutexGuard<'_, HashMap<PoolKey, PoolState>> {
        // Plain data: a panic elsewhere leaves it usable.
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a pool's sizes (making it if new) and starts filling it.
    pub fn configure(self: &Arc<Self>, key: &PoolKey, settings: PoolSettings, mtu: Option<u32>) {
        {
            let mut pools = self.pools();
            let state = pools.entry(key.clone()).or_insert_with(|| PoolState::new(settings, mtu));
            state.settings = settings;
            if mtu.is_some() {
                state.mtu = mtu;
            }
        }
        self.publish(key);
        self.maybe_refill(key);
    }

    /// The pool's sizes, if it exists.
    pub fn settings(&self, key: &PoolKey) -> Option<PoolSettings> {
        self.pools().get(key).map(|s| s.settings)
    }

    /// Ready ports of a pool.
    pub fn ready_count(&self, key: &PoolKey) -> usize {
        self.pools().get(key).map_or(0, |s| s.ready.len())
    }

    /// The ports of one pool that are ready (ids), oldest first.
    pub fn ready_ports(&self, key: &PoolKey) -> Vec<PortId> {
        self.pools()
            .get(key)
            .map(|s| s.ready.iter().map(|p| p.port.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Puts a port known to be ready into a pool (made with `settings` if
    /// new), without refilling: for callers that prepared it themselves.
    pub fn add_ready(&self, key: &PoolKey, settings: PoolSettings, pooled: PooledPort) {
        self.pools()
            .entry(key.clone())
            .or_insert_with(|| PoolState::new(settings, None))
            .ready
            .push_back(pooled);
        self.publish(key);
    }

    /// Takes a ready port (no call), and refills in the background when
    /// the pool runs low. `None` when the pool is empty or off.
    pub fn take(self: &Arc<Self>, key: &PoolKey) -> Option<PooledPort> {
        let taken = {
            let mut pools = self.pools();
            let state = pools.get_mut(key)?;
            state.ready.pop_front()
        };
        self.publish(key);
        self.maybe_refill(key);
        if let Some(p) = &taken {
            debug!(port_id = %p.port.id, "pool port taken");
        }
        taken
    }

    /// Records an owner on a taken port's OVS interface (one local OVSDB
    /// transaction: the owner's `external_ids` set, `kuryr-pool` removed).
    pub async fn claim_local(
        &self,
        pooled: &PooledPort,
        owner_ids: &BTreeMap<String, String>,
    ) -> Result<(), PoolError> {
        self.binder
            .switch()
            .update_interface_external_ids(
                &pooled.plugged.host_ifname,
                owner_ids,
                &[naming::OVS_POOL_KEY],
            )
            .await
            .map_err(|e| failed(&pooled.port.network_id, format!("claiming in OVSDB: {e}")))
    }

    /// Marks a released port's OVS interface as a pool port again
    /// (`vm-uuid` removed, `kuryr-pool` set), when its veth pair is intact.
    pub async fn reset_local(&self, pooled: &PooledPort) -> Result<(), PoolError> {
        let mut set = BTreeMap::new();
        set.insert(naming::OVS_POOL_KEY.to_string(), pooled.port.network_id.to_string());
        self.binder
            .switch()
            .update_interface_external_ids(&pooled.plugged.host_ifname, &set, &[OWNER_KEY])
            .await
            .map_err(|e| failed(&pooled.port.network_id, format!("resetting in OVSDB: {e}")))
    }

    /// Returns a released port (veth intact, [`PortPool::reset_local`]
    /// done) to its pool: one PUT (name, device_id) and one tag PUT,
    /// concurrently. Deletes it instead when the pool is gone, off or full.
    /// Returns whether it was kept.
    pub async fn give_back(self: &Arc<Self>, key: &PoolKey, pooled: PooledPort) -> bool {
        let room = self
            .pools()
            .get(key)
            .is_some_and(|s| s.settings.enabled() && s.settings.has_room(s.ready.len()));
        if !room {
            self.discard(&pooled.port.id).await;
            return false;
        }
        let update = PortUpdate {
            name: Some(naming::POOL_PORT_NAME.to_string()),
            device_id: Some(String::new()),
            ..PortUpdate::default()
        };
        let tags = self.pool_tags();
        let (updated, tagged) = tokio::join!(
            self.neutron.update_port(&pooled.port.id, &update),
            self.neutron.replace_tags(Resource::Ports, &pooled.port.id, &tags)
        );
        if let Some(err) = updated.err().or(tagged.err()) {
            warn!(port_id = %pooled.port.id, %err, "returning the port to its pool failed; deleting it");
            self.discard(&pooled.port.id).await;
            return false;
        }
        let mut port = pooled.port;
        port.name = naming::POOL_PORT_NAME.to_string();
        port.device_id.clear();
        port.tags = tags.iter().map(ToString::to_string).collect();
        let kept = {
            let mut pools = self.pools();
            match pools.get_mut(key) {
                Some(state) if state.settings.has_room(state.ready.len()) => {
                    state
                        .ready
                        .push_back(PooledPort { port: port.clone(), plugged: pooled.plugged });
                    true
                }
                _ => false,
            }
        };
        if !kept {
            self.discard(&port.id).await;
            return false;
        }
        info!(port_id = %port.id, "port returned to its pool");
        self.publish(key);
        true
    }

    /// Unplugs and deletes a port (logged, never fails).
    pub async fn discard(&self, port_id: &str) {
        if let Err(err) = self.binder.unplug(port_id).await {
            warn!(port_id, %err, "unplugging a pool port failed");
        }
        match self.neutron.delete_port(port_id).await {
            Ok(()) => debug!(port_id, "pool port deleted"),
            Err(e) if e.is_not_found() => {}
            Err(err) => warn!(port_id, %err, "deleting a pool port failed"),
        }
    }

    /// Deletes every pool port of a network (before the network itself:
    /// Neutron refuses to delete a network with ports): the pools this
    /// process knows, after their refills finish, and whatever else Neutron
    /// has tagged [`naming::POOL_TAG`] on this host for it (one GET, only
    /// with `look_up`: when pools are on for the network).
    pub async fn drain_network(&self, network_id: &str, host: &str, look_up: bool) {
        let deadline = Instant::now() + self.active_timeout + Duration::from_secs(30);
        let mut ids: Vec<String> = Vec::new();
        loop {
            let busy = {
                let mut pools = self.pools();
                let keys: Vec<PoolKey> =
                    pools.keys().filter(|k| k.network_id == network_id).cloned().collect();
                let mut busy = false;
                for key in keys {
                    if let Some(state) = pools.get_mut(&key) {
                        // Stops refills: they check the pool is still on.
                        state.settings.min = 0;
                        ids.extend(state.ready.drain(..).map(|p| p.port.id.into_string()));
                        if state.refilling {
                            busy = true;
                        } else {
                            pools.remove(&key);
                            crate::metrics::global()
                                .remove_pool_size(&key.network_id, &key.subnet_id);
                        }
                    }
                }
                busy
            };
            if !busy || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let listed = if look_up {
            self.neutron
                .list_ports(
                    &Query::new()
                        .network_id(network_id)
                        .binding_host_id(host)
                        .tags([naming::POOL_TAG, self.service_tag.as_str()])
                        .fields(["id"]),
                )
                .await
        } else {
            Ok(Vec::new())
        };
        match listed {
            Ok(ports) => ids.extend(ports.into_iter().map(|p| p.id.into_string())),
            Err(err) => warn!(network_id, %err, "listing the network's pool ports failed"),
        }
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            info!(network_id, ports = ids.len(), "deleting the network's pool ports");
        }
        join_all(ids.iter().map(|id| self.discard(id))).await;
    }

    /// After a restart: finds this host's pool ports by their tag (one
    /// GET) and keeps those whose OVS interface is still a ready pool port
    /// (`kuryr-pool` set, no `vm-uuid`, `ovn-installed`); deletes the rest
    /// (the refill makes new ones). Pools found get `settings` (the
    /// `[vif_pool]` defaults). Returns how many ports were re-adopted.
    pub async fn recover(self: &Arc<Self>, host: &str, settings: PoolSettings) -> usize {
        let ports = match self
            .neutron
            .list_ports(
                &Query::new()
                    .binding_host_id(host)
                    .tags([naming::POOL_TAG, self.service_tag.as_str()]),
            )
            .await
        {
            Ok(ports) => ports,
            Err(err) => {
                warn!(%err, "listing pool ports at start failed; they are not served");
                return 0;
            }
        };
        let mut adopted = 0;
        let mut stale = Vec::new();
        let mut keys = Vec::new();
        for port in ports {
            let Some(key) = PoolKey::of_port(&port) else {
                stale.push(port.id);
                continue;
            };
            let host_ifname = naming::host_veth_name(&port.id);
            let ids = self
                .binder
                .switch()
                .interface_external_ids(&host_ifname)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            if ids.get(OWNER_KEY).is_some_and(|o| !o.is_empty()) {
                // Claimed before a crash: its owner is recorded elsewhere.
                continue;
            }
            let ready = ids.get(naming::OVS_POOL_KEY).map(String::as_str)
                == Some(port.network_id.as_str())
                && ids.get("ovn-installed").map(String::as_str) == Some("true")
                && self.binder.container_end_present(&port.id).await;
            if !ready || port.name != naming::POOL_PORT_NAME || !port.device_id.is_empty() {
                stale.push(port.id);
                continue;
            }
            let plugged = Plugged {
                host_ifname,
                container_ifname: naming::container_veth_name(&port.id),
                vif_type: PlugKind::Veth(port.binding_vif_type.clone()),
            };
            let mut pools = self.pools();
            let state = pools.entry(key.clone()).or_insert_with(|| PoolState::new(settings, None));
            state.ready.push_back(PooledPort { port, plugged });
            keys.push(key);
            adopted += 1;
        }
        if !stale.is_empty() {
            info!(ports = stale.len(), "deleting pool ports that are no longer ready");
        }
        join_all(stale.iter().map(|id| self.discard(id))).await;
        keys.sort();
        keys.dedup();
        for key in &keys {
            self.publish(key);
            self.maybe_refill(key);
        }
        if adopted > 0 {
            info!(ports = adopted, pools = keys.len(), "pool ports re-adopted");
        }
        adopted
    }

    /// The tags of a ready pool port.
    pub fn pool_tags(&self) -> [&str; 3] {
        [naming::DEVICE_OWNER, naming::POOL_TAG, &self.service_tag]
    }

    fn publish(&self, key: &PoolKey) {
        let ready = self.ready_count(key);
        crate::metrics::global().set_pool_size(&key.network_id, &key.subnet_id, ready);
    }
}

fn failed(network_id: &str, message: String) -> PoolError {
    PoolError::Failed { network_id: network_id.to_string(), message }
}

mod refill;
#[cfg(test)]
mod tests;
