//! The Neutron-backed [`Driver`]: Docker's network and IPAM calls become
//! Neutron networks, subnets, subnetpools and ports, bound on this host
//! through [`kuryr_core::binding`].
//!
//! Neutron is the only source of truth. The caches below only save calls:
//! every entry can be rebuilt from Neutron's names and tags (or OVSDB's
//! `external_ids`) after a restart, and each handler does so on a miss.
//! docs/mapping.md describes the mapping and the calls each handler makes.

mod addresses;
mod claim;
mod endpoints;
mod exposure;
#[cfg(test)]
mod fake_neutron;
mod networks;
mod pool_id;
mod pool_release;
#[cfg(test)]
mod pool_tests;
mod pools;
mod subnets;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kuryr_core::binding::{Binder, Plugged};
use kuryr_core::config::Config;
use kuryr_core::lifecycle::{Lifecycle, LifecycleSettings};
use kuryr_core::vif_pool::{PoolKey, PoolSettings, PooledPort, PortPool};
use openstack::neutron::{Neutron, Port, SecurityGroupId, Subnet};

use crate::api::{DriverError, DriverResult};
use crate::wire::Scope;

pub use pools::PoolId;

/// What the driver needs from `kuryr.conf`, resolved once at start.
#[derive(Debug, Clone)]
pub struct DriverSettings {
    /// `[DEFAULT] capability_scope`.
    pub scope: Scope,
    /// `[DEFAULT] local_default_address_space`.
    pub local_address_space: String,
    /// `[DEFAULT] global_default_address_space`.
    pub global_address_space: String,
    /// `[DEFAULT] subnetpool_name_prefix`.
    pub subnetpool_name_prefix: String,
    /// `[neutron] default_subnetpool_v4`.
    pub default_subnetpool_v4: String,
    /// `[neutron] default_subnetpool_v6`.
    pub default_subnetpool_v6: String,
    /// `[neutron] enable_dhcp`.
    pub enable_dhcp: bool,
    /// `[DEFAULT] process_external_connectivity`.
    pub process_external_connectivity: bool,
    /// `[DEFAULT] ip_range_as_subnet`: `--ip-range` is the subnet, as
    /// upstream makes it.
    pub ip_range_as_subnet: bool,
    /// `[binding] veth_dst_prefix`.
    pub veth_dst_prefix: String,
    /// `[vif_pool]`: the pools of networks without their own options
    /// (`min = 0`: off). Forced off for bindings other than veth.
    pub pool: PoolSettings,
    /// The host, the ACTIVE wait (zero: none) and this plugin's pool tag
    /// ([`kuryr_core::naming::pool_owner_tag`] of the socket it serves).
    pub lifecycle: LifecycleSettings,
}

impl DriverSettings {
    /// Settings from `kuryr.conf`; `host` is this host's `binding:host_id`.
    pub fn from_config(config: &Config, host: String) -> Self {
        let d = &config.default;
        let n = &config.neutron;
        DriverSettings {
            scope: match d.capability_scope {
                kuryr_core::config::CapabilityScope::Local => Scope::Local,
                kuryr_core::config::CapabilityScope::Global => Scope::Global,
            },
            local_address_space: d.local_default_address_space.clone(),
            global_address_space: d.global_default_address_space.clone(),
            subnetpool_name_prefix: d.subnetpool_name_prefix.clone(),
            default_subnetpool_v4: n.default_subnetpool_v4.clone(),
            default_subnetpool_v6: n.default_subnetpool_v6.clone(),
            enable_dhcp: n.enable_dhcp,
            process_external_connectivity: d.process_external_connectivity,
            ip_range_as_subnet: d.ip_range_as_subnet,
            veth_dst_prefix: config.binding.veth_dst_prefix.clone(),
            pool: PoolSettings::from_config(config),
            lifecycle: LifecycleSettings::from_config(
                config,
                host,
                kuryr_core::naming::pool_owner_tag("docker", &config.default.plugin_socket),
            ),
        }
    }
}

/// A Docker network as Neutron has it.
#[derive(Debug, Clone)]
struct NetworkInfo {
    neutron_id: String,
    mtu: Option<u32>,
    subnets: Vec<Subnet>,
}

/// What a Docker pool id resolves to.
#[derive(Debug, Clone)]
struct PoolInfo {
    cidr: IpNet,
    /// `--ip-range`, applied as the subnet's allocation pool.
    sub_pool: Option<IpNet>,
    subnet: Option<Subnet>,
}

/// A plugged endpoint.
#[derive(Debug, Clone)]
struct EndpointInfo {
    port: Port,
    plugged: Plugged,
    subnets: Vec<Subnet>,
    exposed_sg: Option<SecurityGroupId>,
    /// When CreateEndpoint saw the port ACTIVE (EndpointOperInfo answers
    /// from this for [`ACTIVE_SEEN_FRESH`], then asks Neutron).
    active_seen: Option<Instant>,
    /// The pool the port came from (it goes back there on release).
    pool: Option<PoolKey>,
}

/// How long an ACTIVE seen by CreateEndpoint answers EndpointOperInfo
/// without asking Neutron: Docker calls it twice right after Join, only to
/// read port mappings.
const ACTIVE_SEEN_FRESH: Duration = Duration::from_secs(2);

/// A container address as Neutron holds it: on one subnet. Overlapping
/// CIDRs are normal in Neutron (two networks, each with a container at
/// 10.0.0.5), so an address alone names no port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SubnetAddr {
    subnet_id: String,
    ip: IpAddr,
}

impl SubnetAddr {
    fn new(subnet_id: &str, ip: IpAddr) -> Self {
        SubnetAddr { subnet_id: subnet_id.to_string(), ip }
    }

    /// Every address of the port, each on its own subnet.
    fn of_port(port: &Port) -> impl Iterator<Item = SubnetAddr> + '_ {
        port.fixed_ips.iter().map(|f| SubnetAddr::new(&f.subnet_id, f.ip_address))
    }
}

#[derive(Default)]
struct Cache {
    /// Docker network id → Neutron network.
    networks: HashMap<String, NetworkInfo>,
    /// Docker pool id → pool.
    pools: HashMap<String, PoolInfo>,
    /// Subnetpool name → id (the default pools).
    pool_ids: HashMap<String, String>,
    /// Address → port handed out by RequestAddress.
    addresses: HashMap<SubnetAddr, Port>,
    /// Docker endpoint id → endpoint.
    endpoints: HashMap<String, EndpointInfo>,
    /// Address → pool port handed out by RequestAddress, not yet claimed
    /// by CreateEndpoint.
    pooled: HashMap<SubnetAddr, (PoolKey, PooledPort)>,
    /// Address → pool port reset by DeleteEndpoint (veth intact), to go
    /// back to its pool at ReleaseAddress.
    returning: HashMap<SubnetAddr, (PoolKey, PooledPort)>,
    /// Neutron network id → its own pool sizes (`-o kuryr.ports_pool_*`).
    pool_settings: HashMap<String, PoolSettings>,
    /// Docker endpoint id → its sandbox (`Join`'s `SandboxKey`), until
    /// `ProgramExternalConnectivity` announces the addresses from there.
    sandboxes: HashMap<String, String>,
}

/// A Neutron update that runs after Docker got its reply.
struct Background {
    /// The port's Neutron network: DeleteNetwork waits for these first.
    network_id: String,
    task: tokio::task::JoinHandle<()>,
}

/// The Docker driver backed by Neutron.
pub struct KuryrDriver {
    neutron: Neutron,
    binder: Binder,
    settings: DriverSettings,
    cache: Mutex<Cache>,
    /// Provision and bind, and the port pools (`kuryr_core::lifecycle`).
    lifecycle: Lifecycle,
    /// Deferred Neutron work, by port id (docs/benchmarks.md says why each
    /// is safe to defer). A new task for a port runs after the previous one.
    background: Mutex<HashMap<String, Background>>,
}

impl KuryrDriver {
    /// A driver using this Neutron client and binder.
    pub fn new(neutron: Neutron, binder: Binder, settings: DriverSettings) -> Self {
        let lifecycle = Lifecycle::new(neutron.clone(), binder.clone(), settings.lifecycle.clone());
        KuryrDriver {
            neutron,
            binder,
            settings,
            cache: Mutex::new(Cache::default()),
            lifecycle,
            background: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `work` for `port_id` after Docker's reply, behind any earlier
    /// work for the same port. Failures are logged by `work` itself.
    pub(crate) fn defer<F>(&self, port_id: &str, network_id: &str, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut background = self.background();
        let previous = background.remove(port_id).map(|b| b.task);
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            work.await;
        });
        background
            .insert(port_id.to_string(), Background { network_id: network_id.to_string(), task });
        // Finished entries are dropped here, so the map stays small.
        background.retain(|_, b| !b.task.is_finished());
    }

    /// Waits for the deferred work of ports matching `which`.
    async fn settle(&self, which: impl Fn(&str, &Background) -> bool) {
        let tasks: Vec<_> = {
            let mut background = self.background();
            let ids: Vec<String> = background
                .iter()
                .filter(|(id, b)| which(id, b))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| background.remove(id)).map(|b| b.task).collect()
        };
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Waits for the deferred work on one network's ports (before the
    /// network, or one of its addresses, is reused or deleted).
    pub(crate) async fn settle_network(&self, network_id: &str) {
        self.settle(|_, b| b.network_id == network_id).await;
    }

    /// Waits for the deferred work on one port (before it is deleted).
    pub(crate) async fn settle_port(&self, port_id: &str) {
        self.settle(|id, _| id == port_id).await;
    }

    /// Before a network's subnet or the network itself goes: work deferred
    /// past a reply on its ports (owner updates, pool ports on their way
    /// back, or deleted above the pool's max) finishes, and its pool ports,
    /// which Docker knows nothing of, are deleted.
    pub(crate) async fn empty_network(&self, network_id: &str) {
        self.settle_network(network_id).await;
        self.lifecycle
            .pool()
            .drain_network(
                network_id,
                &self.settings.lifecycle.host,
                self.pool_settings_of(network_id).enabled(),
            )
            .await;
    }

    /// Waits for all deferred work (at shutdown, so nothing is left half done).
    pub async fn settle_all(&self) {
        self.settle(|_, _| true).await;
    }

    fn background(&self) -> MutexGuard<'_, HashMap<String, Background>> {
        self.background.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The port pools (for tests and metrics).
    pub fn port_pool(&self) -> &Arc<PortPool> {
        self.lifecycle.pool()
    }

    /// At start: re-adopts this host's ready pool ports (one GET) with the
    /// `[vif_pool]` sizes. Returns how many.
    pub async fn recover_pools(&self) -> usize {
        self.lifecycle.pool().recover(&self.settings.lifecycle.host, self.settings.pool).await
    }

    /// The pool sizes of a Neutron network.
    fn pool_settings_of(&self, network_id: &str) -> PoolSettings {
        if !self.binder.binds_host() {
            // Nested (in a VM): pools are for veth binding only, also when
            // a network asks for one (docs/nested.md).
            return PoolSettings::default();
        }
        self.cache().pool_settings.get(network_id).copied().unwrap_or(self.settings.pool)
    }

    /// The key of the pool serving addresses of `subnet` here.
    fn pool_key(&self, subnet: &Subnet) -> PoolKey {
        PoolKey::new(
            subnet.network_id.clone(),
            subnet.id.clone(),
            self.settings.lifecycle.host.clone(),
            Vec::new(),
            String::new(),
        )
    }

    /// The Neutron client (for call counts).
    pub fn neutron(&self) -> &Neutron {
        &self.neutron
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The query naming a Neutron object by `neutron.<kind>.uuid`, else
/// `neutron.<kind>.name`, and how to say it in an error.
fn by_id_or_name(
    uuid: Option<&String>,
    name: Option<&String>,
    option: &str,
) -> DriverResult<(openstack::neutron::Query, String)> {
    use openstack::neutron::Query;
    match (uuid, name) {
        (Some(id), _) => Ok((Query::new().id(id), format!("id {id}"))),
        (None, Some(name)) => Ok((Query::new().name(name), format!("name {name:?}"))),
        (None, None) => Err(DriverError::bad_request(format!("no {option} option given"))),
    }
}

/// The one Neutron `kind` (network, subnet, subnetpool) that the driver
/// option `option` names by `.uuid` or `.name` (`named`), listed with
/// `list`.
pub(crate) async fn find_named<T, Fut>(
    named: (Option<&String>, Option<&String>),
    kind: &str,
    option: &str,
    list: impl FnOnce(openstack::neutron::Query) -> Fut,
) -> DriverResult<T>
where
    Fut: std::future::Future<Output = Result<Vec<T>, openstack::Error>>,
{
    let (query, what) = by_id_or_name(named.0, named.1, option)?;
    let found =
        list(query).await.map_err(|e| neutron_error(&format!("looking up the {kind}"), e))?;
    exactly_one(found, kind, &what, option)
}

/// The one object an option named: none is 404, several are a conflict
/// (use the uuid option).
fn exactly_one<T>(found: Vec<T>, kind: &str, what: &str, option: &str) -> DriverResult<T> {
    let n = found.len();
    let mut found = found.into_iter();
    match (found.next(), n) {
        (Some(one), 1) => Ok(one),
        (None, _) => Err(DriverError::not_found(format!("no Neutron {kind} with {what}"))),
        _ => Err(DriverError::conflict(format!(
            "{n} Neutron {kind}s have {what}: use {option}.uuid"
        ))),
    }
}

/// Turns a failed lifecycle step into Docker's error shape.
pub(crate) fn lifecycle_error(err: kuryr_core::lifecycle::LifecycleError) -> DriverError {
    use kuryr_core::lifecycle::LifecycleError;
    match err {
        LifecycleError::Neutron { what, source } => neutron_error(&what, source),
        LifecycleError::Bind(err) => endpoints::bind_error(err),
        other => DriverError::internal(other.to_string()),
    }
}

/// Turns a Neutron failure into Docker's error shape, keeping Neutron's
/// status, error type and request id so an operator can find it in logs.
pub(crate) fn neutron_error(context: &str, err: openstack::Error) -> DriverError {
    if let Some(api) = err.api() {
        let kind = api.kind.as_deref().unwrap_or("error");
        let request =
            api.request_id.as_deref().map(|id| format!(" (request {id})")).unwrap_or_default();
        let message = format!("{context}: Neutron {kind}: {}{request}", api.message);
        return DriverError::new(crate::api::ErrorKind::Upstream(api.status.as_u16()), message);
    }
    if err.is_connect() || err.is_timeout() {
        return DriverError::unavailable(format!("{context}: Neutron is unreachable: {err}"));
    }
    DriverError::internal(format!("{context}: {err}"))
}
