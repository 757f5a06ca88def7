//! Garbage collection: what this host's Kuryr made and nobody uses any
//! more (docs/reliability.md § Garbage collection).
//!
//! Three phases. [`collect`] takes a snapshot: host devices first (OVS
//! interfaces, `tap…` veths), then Neutron. A port is always created before
//! its host devices and unplugged before it is deleted, so a host device
//! whose port is missing from the later Neutron listing really has none.
//! [`plan`] is pure: it decides from the snapshot and the owners' liveness
//! (Docker, CNI) what to remove and why. [`apply`] does it.
//!
//! It never deletes what Kuryr did not make: only ports with
//! `device_owner=compute:kuryr`, the `compute:kuryr` tag and this host's
//! `binding:host_id`; adopted ports (`kuryr.port.existing`) are reset and
//! untagged; host devices only when named `tap<port id[:11]>` after a port
//! that does not exist. When an owner cannot be asked (Docker down), its
//! ports are kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netplumb::ovs::{InterfaceRecord, Switch};
use netplumb::Netlink;
use openstack::neutron::{FixedIp, Neutron, PortUpdate, Query, Resource};
use serde::Deserialize;
use tracing::{info, warn};

use crate::binding::{IFACE_ID_KEY, OWNER_KEY};
use crate::naming::{self, OVS_POOL_KEY, POOL_PORT_NAME, POOL_TAG as POOL_PORT_TAG};
use crate::owner::OwnerKind;

const HOST_VETH_PREFIX: &str = "tap";

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why collecting the snapshot or applying an action failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A Neutron call failed.
    #[error("{what}: {source}")]
    Neutron {
        /// What was being done.
        what: String,
        /// Neutron's error.
        #[source]
        source: openstack::Error,
    },
    /// Netlink or OVSDB failed.
    #[error("{what}: {source}")]
    Host {
        /// What was being done.
        what: String,
        /// The host's error.
        #[source]
        source: netplumb::Error,
    },
}

/// A Docker network as Docker sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerNetwork {
    /// Its driver name (`kuryr`, or a test's own name).
    pub driver: String,
    /// Endpoint ids of the containers attached to it.
    pub endpoints: BTreeSet<String>,
}

/// What Docker says of one network: `Ok(None)` when it has no such
/// network, `Err` (with the reason) when it did not answer.
pub type DockerAnswer = Result<Option<DockerNetwork>, String>;

/// Asks the container runtimes who still uses what. Implemented over
/// Docker's API in the `kuryr` binary, by a fake in tests.
pub trait Owners: Send + Sync {
    /// Docker's view of the network with this Docker id.
    fn docker_network<'a>(&'a self, docker_network_id: &'a str) -> BoxFuture<'a, DockerAnswer>;
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `binding:host_id` of this host.
    pub host: String,
    /// The integration bridge.
    pub bridge: String,
    /// The Docker driver name this Kuryr serves (the plugin socket's stem).
    pub docker_driver: String,
    /// Ports younger than this (since their last update) are kept: their
    /// owner may be between two calls (RequestAddress and CreateEndpoint,
    /// or a CNI ADD between its POST and its plug).
    pub min_age: Duration,
    /// Pools are configured (`[vif_pool] ports_pool_min > 0`): pool ports
    /// are kept.
    pub keep_pool_ports: bool,
    /// Only ports on these Neutron networks (empty: all).
    pub networks: BTreeSet<String>,
    /// Containers get a veth pair (`[binding] driver = veth`), so a CNI
    /// attachment lives as long as its host veth. Nested drivers have no
    /// host veth: their CNI ports are kept.
    pub veth_binding: bool,
}

/// The fields of a port GC needs (with the timestamps the typed client
/// leaves out).
///
/// Ids and `status` stay plain strings here: GC never branches on the
/// status, and matches ids against OVSDB's and Docker's, which are strings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PortRecord {
    /// Port id.
    pub id: String,
    /// Name (`kuryr-unbound-port`, `<endpoint>-port`, `kuryr-pool-port`, `kuryr-cni-…`).
    pub name: String,
    /// Its network.
    pub network_id: String,
    /// Owner: Docker endpoint id or CNI container id.
    pub device_id: String,
    /// `compute:kuryr` for Kuryr's ports.
    pub device_owner: String,
    /// `binding:host_id`.
    #[serde(rename = "binding:host_id")]
    pub binding_host_id: String,
    /// Tags (owner, pool, adoption).
    pub tags: Vec<String>,
    /// MAC address.
    pub mac_address: String,
    /// Addresses.
    pub fixed_ips: Vec<FixedIp>,
    /// Neutron's status.
    pub status: String,
    /// Creation time (RFC 3339), for the grace period.
    pub created_at: Option<String>,
    /// Last change (RFC 3339), for the grace period.
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct IdRecord {
    id: String,
}

impl PortRecord {
    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// Seconds since the Unix epoch of the last change (created or updated).
    fn changed_at(&self) -> Option<u64> {
        let created = self.created_at.as_deref().and_then(parse_timestamp);
        let updated = self.updated_at.as_deref().and_then(parse_timestamp);
        created.max(updated)
    }

    /// `(container id, ifname)` of a CNI attachment port.
    pub fn cni_attachment(&self) -> Option<(String, String)> {
        naming::cni::attachment_of(&self.tags)
    }

    /// A ready port of a port pool (never garbage while pooled).
    pub fn is_pool_port(&self) -> bool {
        self.name == POOL_PORT_NAME || self.has_tag(POOL_PORT_TAG)
    }

    /// A user's port Kuryr adopted (`kuryr.port.existing`): reset, never deleted.
    pub fn is_adopted(&self) -> bool {
        self.has_tag(naming::EXISTING_PORT_TAG)
    }
}

/// Everything GC looks at, taken once.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Kuryr's ports bound to this host, and adopted ports.
    pub ports: Vec<PortRecord>,
    /// Every port id in Neutron (to tell a foreign port from a missing one).
    pub all_port_ids: BTreeSet<String>,
    /// Docker network id of each Neutron network the ports are on (from
    /// the network's tags), when it has one.
    pub docker_network_of: HashMap<String, String>,
    /// Docker's answer for each Docker network id involved.
    pub docker: HashMap<String, DockerAnswer>,
    /// OVS interfaces with an `iface-id`.
    pub ovs_interfaces: Vec<InterfaceRecord>,
    /// Names of the host's `tap…` veths.
    pub veths: BTreeSet<String>,
    /// When the snapshot was taken (seconds since the Unix epoch).
    pub now: u64,
}

/// One thing to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Unplug and delete a port Kuryr made.
    DeletePort {
        /// The port.
        port_id: String,
        /// Its name, for the report.
        name: String,
        /// Why it is garbage.
        reason: String,
    },
    /// Unplug an adopted port, clear its owner and host, remove Kuryr's tags.
    ResetPort {
        /// The port.
        port_id: String,
        /// Its name, for the report.
        name: String,
        /// Why it is garbage.
        reason: String,
    },
    /// An OVS port (and its veth) whose Neutron port does not exist.
    RemoveOvsPort {
        /// The OVS port's name.
        ifname: String,
        /// Its `iface-id`.
        port_id: String,
        /// Why it is garbage.
        reason: String,
    },
    /// A `tap…` veth whose Neutron port does not exist.
    RemoveVeth {
        /// The veth's name.
        ifname: String,
        /// Why it is garbage.
        reason: String,
    },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::DeletePort {
                port_id,
                name,
                reason,
            } => write!(f, "delete port {port_id} ({name}): {reason}"),
            Action::ResetPort {
                port_id,
                name,
                reason,
            } => write!(f, "reset port {port_id} ({name}): {reason}"),
            Action::RemoveOvsPort {
                ifname,
                port_id,
                reason,
            } => write!(f, "remove OVS port {ifname} (iface-id {port_id}): {reason}"),
            Action::RemoveVeth { ifname, reason } => write!(f, "remove veth {ifname}: {reason}"),
        }
    }
}

/// A port kept although it may be garbage, and why (reported, so an
/// operator sees what GC could not decide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The port.
    pub port_id: String,
    /// Why it was kept.
    pub reason: String,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What to remove, in order.
    pub actions: Vec<Action>,
    /// What was kept though it may be garbage.
    pub kept: Vec<Kept>,
    /// Ports found in use.
    pub live: usize,
}

/// Verdict on one port.
enum Verdict {
    Live,
    Keep(String),
    Garbage(String),
}

/// Decides what to remove. Pure: no I/O.
pub fn plan(snapshot: &Snapshot, settings: &Settings) -> Plan {
    let mut out = Plan::default();
    let mut handled_ports = BTreeSet::new();
    for port in &snapshot.ports {
        if !settings.networks.is_empty() && !settings.networks.contains(&port.network_id) {
            continue;
        }
        handled_ports.insert(port.id.clone());
        match verdict(port, snapshot, settings) {
            Verdict::Live => out.live += 1,
            Verdict::Keep(reason) => out.kept.push(Kept {
                port_id: port.id.clone(),
                reason,
            }),
            Verdict::Garbage(reason) => {
                let (port_id, name) = (port.id.clone(), port.name.clone());
                out.actions.push(if port.is_adopted() {
                    Action::ResetPort {
                        port_id,
                        name,
                        reason,
                    }
                } else {
                    Action::DeletePort {
                        port_id,
                        name,
                        reason,
                    }
                });
            }
        }
    }
    let mut host_handled = BTreeSet::new();
    for iface in &snapshot.ovs_interfaces {
        let Some(port_id) = iface.external_ids.get(IFACE_ID_KEY) else {
            continue;
        };
        if iface.name != naming::host_veth_name(port_id) || !made_by_kuryr(iface) {
            continue;
        }
        if snapshot.all_port_ids.contains(port_id) {
            continue;
        }
        host_handled.insert(iface.name.clone());
        out.actions.push(Action::RemoveOvsPort {
            ifname: iface.name.clone(),
            port_id: port_id.clone(),
            reason: "its Neutron port does not exist".into(),
        });
    }
    for veth in &snapshot.veths {
        let Some(prefix) = veth.strip_prefix(HOST_VETH_PREFIX) else {
            continue;
        };
        if host_handled.contains(veth) || !looks_like_port_prefix(prefix) {
            continue;
        }
        if snapshot
            .all_port_ids
            .iter()
            .any(|id| id.starts_with(prefix))
        {
            continue;
        }
        out.actions.push(Action::RemoveVeth {
            ifname: veth.clone(),
            reason: "no Neutron port has this id prefix".into(),
        });
    }
    out
}

/// Kuryr's OVS interfaces carry the owner (`vm-uuid`) or a pool mark.
fn made_by_kuryr(iface: &InterfaceRecord) -> bool {
    iface.external_ids.contains_key(OWNER_KEY) || iface.external_ids.contains_key(OVS_POOL_KEY)
}

/// `tap` + 11 characters of a UUID: hex digits and the dash at 8.
fn looks_like_port_prefix(prefix: &str) -> bool {
    prefix.len() == 11
        && prefix.char_indices().all(|(i, c)| match i {
            8 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

fn verdict(port: &PortRecord, snapshot: &Snapshot, settings: &Settings) -> Verdict {
    let young = match port.changed_at() {
        Some(at) => snapshot.now.saturating_sub(at) < settings.min_age.as_secs(),
        None => !settings.min_age.is_zero(),
    };
    let garbage = |reason: String| {
        if young {
            Verdict::Keep(format!(
                "{reason}, but it changed less than {}s ago",
                settings.min_age.as_secs()
            ))
        } else {
            Verdict::Garbage(reason)
        }
    };
    if port.is_pool_port() {
        let claimed = snapshot.ovs_interfaces.iter().any(|i| {
            i.external_ids.get(IFACE_ID_KEY) == Some(&port.id)
                && i.external_ids.contains_key(OWNER_KEY)
        });
        return if claimed {
            Verdict::Keep("pool port claimed by a container; its owner is not recorded yet".into())
        } else if settings.keep_pool_ports {
            Verdict::Live
        } else {
            garbage("pool port, and pools are off".into())
        };
    }
    let liveness = match OwnerKind::of_tags(&port.tags) {
        Some(OwnerKind::CniAttachment) => cni_attachment_liveness(port, snapshot, settings),
        Some(OwnerKind::Pod) => {
            Liveness::Unknown("a pod's port: the Kubernetes controller collects it".into())
        }
        // Address ports carry no owner yet: their Docker network decides.
        Some(OwnerKind::DockerEndpoint) | None => {
            docker_endpoint_liveness(port, snapshot, settings)
        }
    };
    match liveness {
        Liveness::Live => Verdict::Live,
        Liveness::Unknown(reason) => Verdict::Keep(reason),
        Liveness::Gone(reason) => garbage(reason),
    }
}

/// One owner kind's answer to "is this port's owner still there?".
enum Liveness {
    Live,
    /// Its owner is gone: why.
    Gone(String),
    /// Nobody could say: why (the port is kept).
    Unknown(String),
}

/// A CNI attachment lives as long as its host veth (its netns holds the
/// other end, and goes with the container).
fn cni_attachment_liveness(
    port: &PortRecord,
    snapshot: &Snapshot,
    settings: &Settings,
) -> Liveness {
    let Some((container_id, ifname)) = port.cni_attachment() else {
        return Liveness::Unknown("CNI port without its attachment tags".into());
    };
    if !settings.veth_binding {
        return Liveness::Unknown(format!(
            "CNI attachment {container_id}/{ifname}: nested binding, liveness unknown"
        ));
    }
    let veth = naming::host_veth_name(&port.id);
    if snapshot.veths.contains(&veth) {
        Liveness::Live
    } else {
        Liveness::Gone(format!(
            "CNI attachment {container_id}/{ifname}: its veth {veth} is gone (netns deleted)"
        ))
    }
}

/// A Docker endpoint lives while Docker lists it on its network.
fn docker_endpoint_liveness(
    port: &PortRecord,
    snapshot: &Snapshot,
    settings: &Settings,
) -> Liveness {
    let docker_net = naming::docker_network_from_tags(&port.tags)
        .or_else(|| snapshot.docker_network_of.get(&port.network_id).cloned());
    let Some(docker_net) = docker_net else {
        return Liveness::Gone(format!(
            "network {} is not (any more) a Docker network",
            port.network_id
        ));
    };
    match snapshot.docker.get(&docker_net) {
        None => Liveness::Unknown(format!("Docker network {docker_net} was not asked about")),
        Some(Err(why)) => Liveness::Unknown(format!("Docker did not answer ({why})")),
        Some(Ok(None)) => Liveness::Gone(format!("Docker network {docker_net} is gone")),
        Some(Ok(Some(net))) if net.driver != settings.docker_driver => Liveness::Unknown(format!(
            "Docker network {docker_net} belongs to driver {}",
            net.driver
        )),
        Some(Ok(Some(net))) => {
            // The owner is written to Neutron after Docker's reply (and
            // after a restart if a crash came first); OVSDB's vm-uuid has
            // it from the plug on.
            let owner = if port.device_id.is_empty() {
                plugged_owner(port, snapshot).unwrap_or_default()
            } else {
                port.device_id.clone()
            };
            if !owner.is_empty() && net.endpoints.contains(&owner) {
                Liveness::Live
            } else if owner.is_empty() {
                Liveness::Gone(format!(
                    "address port with no endpoint on Docker network {docker_net}"
                ))
            } else {
                Liveness::Gone(format!(
                    "Docker has no endpoint {} on network {docker_net}",
                    port.device_id
                ))
            }
        }
    }
}

/// The owner (`vm-uuid`) on the OVS interface plugged for `port`, if any.
fn plugged_owner(port: &PortRecord, snapshot: &Snapshot) -> Option<String> {
    snapshot
        .ovs_interfaces
        .iter()
        .find(|i| i.external_ids.get(IFACE_ID_KEY) == Some(&port.id))
        .and_then(|i| i.external_ids.get(OWNER_KEY).cloned())
}

/// Parses Neutron's `2026-11-28T04:00:00Z` (also with fractions or
/// `+00:00`) to seconds since the Unix epoch.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split('+').next()?;
    let mut t = time.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: f64 = t.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second as i64;
    u64::try_from(secs).ok()
}

/// Seconds since the Unix epoch now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Host and Neutron access for [`collect`] and [`apply`].
pub struct Host<'a> {
    /// The Neutron client.
    pub neutron: &'a Neutron,
    /// OVSDB.
    pub switch: &'a dyn Switch,
    /// Netlink.
    pub netlink: &'a Netlink,
}

/// Takes the snapshot: host devices first, then Neutron, then Docker.
pub async fn collect(
    host: &Host<'_>,
    owners: &dyn Owners,
    settings: &Settings,
) -> Result<Snapshot, GcError> {
    let ovs_interfaces = host
        .switch
        .find_interfaces(IFACE_ID_KEY, None)
        .await
        .map_err(|source| GcError::Host {
            what: "listing OVS interfaces".into(),
            source,
        })?
        .into_iter()
        .filter(|i| i.bridge.as_deref().is_none_or(|b| b == settings.bridge))
        .collect();
    let veths = host
        .netlink
        .links()
        .await
        .map_err(|source| GcError::Host {
            what: "listing links".into(),
            source,
        })?
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.name.starts_with(HOST_VETH_PREFIX))
        .map(|l| l.name)
        .collect();
    let neutron_err = |what: &str| {
        let what = what.to_string();
        move |source| GcError::Neutron { what, source }
    };
    let mut ports: Vec<PortRecord> = host
        .neutron
        .list(
            Resource::Ports,
            &Query::new()
                .device_owner(naming::DEVICE_OWNER)
                .binding_host_id(&settings.host)
                .tags([naming::DEVICE_OWNER]),
        )
        .await
        .map_err(neutron_err("listing this host's Kuryr ports"))?;
    let adopted: Vec<PortRecord> = host
        .neutron
        .list(
            Resource::Ports,
            &Query::new().tags([naming::EXISTING_PORT_TAG]),
        )
        .await
        .map_err(neutron_err("listing adopted ports"))?;
    ports.extend(
        adopted
            .into_iter()
            .filter(|p| p.binding_host_id == settings.host || p.binding_host_id.is_empty()),
    );
    // A port listed above existed after the host snapshot; one deleted
    // since then is being torn down by its owner, who unplugs it first.
    let mut all_port_ids: BTreeSet<String> = ports.iter().map(|p| p.id.clone()).collect();
    let listed: BTreeSet<String> = host
        .neutron
        .list::<IdRecord>(Resource::Ports, &Query::new().fields(["id"]))
        .await
        .map_err(neutron_err("listing port ids"))?
        .into_iter()
        .map(|p| p.id)
        .collect();
    all_port_ids.extend(listed);
    let docker_network_of = docker_networks_of(host.neutron, &ports).await?;
    let mut docker = HashMap::new();
    let wanted: BTreeSet<String> = ports
        .iter()
        .filter(|p| p.cni_attachment().is_none() && !p.is_pool_port())
        .filter_map(|p| {
            naming::docker_network_from_tags(&p.tags)
                .or_else(|| docker_network_of.get(&p.network_id).cloned())
        })
        .collect();
    for id in wanted {
        let answer = owners.docker_network(&id).await;
        docker.insert(id, answer);
    }
    Ok(Snapshot {
        ports,
        all_port_ids,
        docker_network_of,
        docker,
        ovs_interfaces,
        veths,
        now: now(),
    })
}

/// Docker network id of each Neutron network the ports are on, from the
/// network's `kuryr.net.uuid.lh/uh` tags.
async fn docker_networks_of(
    neutron: &Neutron,
    ports: &[PortRecord],
) -> Result<HashMap<String, String>, GcError> {
    let ids: BTreeSet<&str> = ports.iter().map(|p| p.network_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let query = ids
        .iter()
        .fold(Query::new().fields(["id", "tags"]), |q, id| q.id(*id));
    let networks = neutron
        .list_networks(&query)
        .await
        .map_err(|source| GcError::Neutron {
            what: "reading the ports' networks".into(),
            source,
        })?;
    Ok(networks
        .into_iter()
        .filter_map(|n| naming::id_from_tags(&n.tags).map(|d| (n.id.into_string(), d)))
        .collect())
}

/// What one action did.
#[derive(Debug)]
pub struct Outcome {
    /// The action.
    pub action: Action,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Carries out the plan; every action is tried, failures are reported.
pub async fn apply(host: &Host<'_>, actions: &[Action]) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        let result = apply_one(host, action).await;
        match &result {
            Ok(()) => info!(%action, "gc: done"),
            Err(err) => warn!(%action, %err, "gc: failed"),
        }
        out.push(Outcome {
            action: action.clone(),
            error: result.err().map(|e| e.to_string()),
        });
    }
    out
}

async fn apply_one(host: &Host<'_>, action: &Action) -> Result<(), GcError> {
    match action {
        Action::DeletePort { port_id, .. } => {
            unplug(host, &naming::host_veth_name(port_id)).await?;
            match host.neutron.delete_port(port_id).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(source) => Err(GcError::Neutron {
                    what: format!("deleting port {port_id}"),
                    source,
                }),
            }
        }
        Action::ResetPort { port_id, .. } => {
            unplug(host, &naming::host_veth_name(port_id)).await?;
            reset_adopted(host.neutron, port_id).await
        }
        Action::RemoveOvsPort { ifname, .. } | Action::RemoveVeth { ifname, .. } => {
            unplug(host, ifname).await
        }
    }
}

async fn unplug(host: &Host<'_>, ifname: &str) -> Result<(), GcError> {
    let err = |source| GcError::Host {
        what: format!("removing {ifname}"),
        source,
    };
    host.switch.delete_port(None, ifname).await.map_err(err)?;
    host.netlink.delete_link(ifname).await.map_err(err)?;
    Ok(())
}

/// As ReleaseAddress does for an adopted port: no owner, no host, no
/// Kuryr tag; the port itself stays.
async fn reset_adopted(neutron: &Neutron, port_id: &str) -> Result<(), GcError> {
    let update = PortUpdate {
        device_owner: Some(String::new()),
        device_id: Some(String::new()),
        binding_host_id: Some(String::new()),
        ..PortUpdate::default()
    };
    let err = |what: &str| {
        let what = format!("{what} {port_id}");
        move |source| GcError::Neutron { what, source }
    };
    let current = match neutron.update_port(port_id, &update).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(err("resetting adopted port")(e)),
    };
    let kept: Vec<&String> = current
        .tags
        .iter()
        .filter(|t| !is_kuryr_port_tag(t))
        .collect();
    neutron
        .replace_tags(Resource::Ports, port_id, &kept)
        .await
        .map_err(err("untagging adopted port"))?;
    Ok(())
}

fn is_kuryr_port_tag(tag: &str) -> bool {
    tag == naming::DEVICE_OWNER || tag.starts_with("kuryr.")
}

/// Counts by kind, for the summary line.
pub fn summary(actions: &[Action]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for action in actions {
        let kind = match action {
            Action::DeletePort { .. } => "ports deleted",
            Action::ResetPort { .. } => "ports reset",
            Action::RemoveOvsPort { .. } => "OVS ports removed",
            Action::RemoveVeth { .. } => "veths removed",
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_AGO: &str = "2026-11-28T03:00:00Z";
    const NOW: &str = "2026-11-28T04:00:00Z";
    const NET: &str = "net-1";
    const DNET: &str = "d0c0";
    const P1: &str = "11111111-aaaa-bbbb-cccc-000000000001";
    const P2: &str = "22222222-aaaa-bbbb-cccc-000000000002";
    const P3: &str = "33333333-aaaa-bbbb-cccc-000000000003";

    fn settings() -> Settings {
        Settings {
            host: "h".into(),
            bridge: "br-int".into(),
            docker_driver: "kuryr".into(),
            min_age: Duration::from_secs(600),
            keep_pool_ports: true,
            networks: BTreeSet::new(),
            veth_binding: true,
        }
    }

    fn port(id: &str, name: &str, device_id: &str, tags: &[&str], at: &str) -> PortRecord {
        PortRecord {
            id: id.into(),
            name: name.into(),
            network_id: NET.into(),
            device_id: device_id.into(),
            device_owner: naming::DEVICE_OWNER.into(),
            binding_host_id: "h".into(),
            tags: tags.iter().map(ToString::to_string).collect(),
            created_at: Some(at.into()),
            ..PortRecord::default()
        }
    }

    fn snapshot(ports: Vec<PortRecord>, endpoints: &[&str]) -> Snapshot {
        let all_port_ids = ports.iter().map(|p| p.id.clone()).collect();
        Snapshot {
            ports,
            all_port_ids,
            docker_network_of: HashMap::from([(NET.into(), DNET.into())]),
            docker: HashMap::from([(
                DNET.into(),
                Ok(Some(DockerNetwork {
                    driver: "kuryr".into(),
                    endpoints: endpoints.iter().map(ToString::to_string).collect(),
                })),
            )]),
            now: parse_timestamp(NOW).expect("time"),
            ..Snapshot::default()
        }
    }

    fn ovs(name: &str, port_id: &str) -> InterfaceRecord {
        InterfaceRecord {
            name: name.into(),
            iface_type: String::new(),
            external_ids: BTreeMap::from([
                (IFACE_ID_KEY.to_string(), port_id.to_string()),
                (OWNER_KEY.to_string(), "ep".to_string()),
            ]),
            ofport: Some(1),
            bridge: Some("br-int".into()),
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2000-03-01T00:00:01Z"), Some(951_868_801));
        assert_eq!(
            parse_timestamp("2026-11-28T04:00:00.123+00:00"),
            parse_timestamp(NOW)
        );
        assert_eq!(parse_timestamp("garbage"), None);
    }

    #[test]
    fn unrecorded_owner_is_read_from_ovsdb() {
        // The owner PUT failed (or a crash came first): Neutron still says
        // kuryr-unbound-port, OVSDB knows the endpoint.
        let unrecorded = port(
            P1,
            naming::UNBOUND_PORT_NAME,
            "",
            &["compute:kuryr"],
            HOUR_AGO,
        );
        let mut snap = snapshot(vec![unrecorded], &["ep"]);
        snap.ovs_interfaces = vec![ovs("tap1", P1)];
        let plan = plan(&snap, &settings());
        assert_eq!(plan.live, 1, "{:?}", plan.actions);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }

    #[test]
    fn live_endpoint_is_kept_and_dead_ones_go() {
        let live = port(P1, "ep1-port", "ep1", &["compute:kuryr"], HOUR_AGO);
        let dead = port(P2, "ep2-port", "ep2", &["compute:kuryr"], HOUR_AGO);
        let unbound = port(
            P3,
            naming::UNBOUND_PORT_NAME,
            "",
            &["compute:kuryr"],
            HOUR_AGO,
        );
        let plan = plan(&snapshot(vec![live, dead, unbound], &["ep1"]), &settings());
        assert_eq!(plan.live, 1);
        let ids: Vec<String> = plan.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids[0].starts_with(&format!("delete port {P2}")), "{ids:?}");
        assert!(ids[1].contains("address port with no endpoint"), "{ids:?}");
    }

    #[test]
    fn young_ports_and_doubt_keep() {
        let young = port(P1, naming::UNBOUND_PORT_NAME, "", &["compute:kuryr"], NOW);
        let mut s = snapshot(vec![young.clone()], &[]);
        let p = plan(&s, &settings());
        assert!(p.actions.is_empty());
        assert!(p.kept[0].reason.contains("less than 600s"), "{p:?}");
        let mut zero = settings();
        zero.min_age = Duration::ZERO;
        assert_eq!(plan(&s, &zero).actions.len(), 1);
        // Docker did not answer: never delete.
        s.docker.insert(DNET.into(), Err("timeout".into()));
        let p = plan(&s, &zero);
        assert!(p.actions.is_empty());
        assert!(p.kept[0].reason.contains("did not answer"));
        // Another driver's network: not ours to judge.
        s.docker.insert(
            DNET.into(),
            Ok(Some(DockerNetwork {
                driver: "other".into(),
                endpoints: BTreeSet::new(),
            })),
        );
        assert!(plan(&s, &zero).actions.is_empty());
        // Docker network gone: garbage.
        s.docker.insert(DNET.into(), Ok(None));
        assert_eq!(plan(&s, &zero).actions.len(), 1);
    }

    #[test]
    fn adopted_is_reset_pool_is_kept() {
        let adopted = port(P1, "mine", "", &[naming::EXISTING_PORT_TAG], HOUR_AGO);
        let pool = port(
            P2,
            POOL_PORT_NAME,
            "",
            &["compute:kuryr", POOL_PORT_TAG],
            HOUR_AGO,
        );
        let s = snapshot(vec![adopted, pool], &[]);
        let p = plan(&s, &settings());
        assert_eq!(p.actions.len(), 1);
        assert!(matches!(&p.actions[0], Action::ResetPort { port_id, .. } if port_id == P1));
        let mut off = settings();
        off.keep_pool_ports = false;
        let p = plan(&s, &off);
        assert!(p.actions.iter().any(
            |a| matches!(a, Action::DeletePort { port_id, reason, .. } if port_id == P2 && reason.contains("pools are off"))
        ));
    }

    #[test]
    fn cni_port_lives_with_its_veth() {
        let tags = [
            "compute:kuryr",
            "kuryr.cni.cid.lh:abc",
            "kuryr.cni.cid.uh:def",
            "kuryr.cni.ifname:eth0",
        ];
        let cni = port(P1, "kuryr-cni-abcdef-eth0", "abcdef", &tags, HOUR_AGO);
        assert_eq!(cni.cni_attachment(), Some(("abcdef".into(), "eth0".into())));
        let mut s = snapshot(vec![cni], &[]);
        let p = plan(&s, &settings());
        assert!(p.actions[0].to_string().contains("abcdef/eth0"), "{p:?}");
        s.veths.insert(naming::host_veth_name(P1));
        assert_eq!(plan(&s, &settings()).live, 1);
        s.veths.clear();
        let mut nested = settings();
        nested.veth_binding = false;
        assert!(plan(&s, &nested).actions.is_empty());
    }

    #[test]
    fn host_orphans_only_when_the_port_is_missing() {
        let live = port(P1, "ep1-port", "ep1", &["compute:kuryr"], HOUR_AGO);
        let mut s = snapshot(vec![live], &["ep1"]);
        s.all_port_ids.insert(P3.into()); // someone else's port
        s.ovs_interfaces = vec![
            ovs(&naming::host_veth_name(P1), P1),
            ovs(&naming::host_veth_name(P2), P2),
            ovs(&naming::host_veth_name(P3), P3),
            ovs("tapnotours", P2),
        ];
        s.veths = [P1, P2, P3]
            .iter()
            .map(|p| naming::host_veth_name(p))
            .chain(["tap0123456789".to_string(), "tapdeadbeef-00".to_string()])
            .collect();
        let p = plan(&s, &settings());
        let lines: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            lines,
            [
                format!(
                    "remove OVS port {} (iface-id {P2}): its Neutron port does not exist",
                    naming::host_veth_name(P2)
                ),
                "remove veth tapdeadbeef-00: no Neutron port has this id prefix".to_string(),
            ]
        );
    }

    #[test]
    fn network_scope() {
        let dead = port(P2, "ep2-port", "ep2", &["compute:kuryr"], HOUR_AGO);
        let s = snapshot(vec![dead], &[]);
        let mut scoped = settings();
        scoped.networks.insert("other-net".into());
        assert!(plan(&s, &scoped).actions.is_empty());
        scoped.networks.insert(NET.into());
        assert_eq!(plan(&s, &scoped).actions.len(), 1);
    }

    #[test]
    fn summary_counts() {
        let a = Action::RemoveVeth {
            ifname: "t".into(),
            reason: "r".into(),
        };
        assert_eq!(summary(&[a.clone(), a])["veths removed"], 2);
    }
}
