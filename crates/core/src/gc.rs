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
use openstack::neutron::{FixedIp, Neutron, Query, Resource};
use serde::Deserialize;
use tracing::{info, warn};

use crate::binding::{IFACE_ID_KEY, OWNER_KEY};
use crate::naming::{self, OVS_POOL_KEY, POOL_PORT_NAME, POOL_TAG as POOL_PORT_TAG};
use crate::owner::OwnerKind;

mod apply;
mod plan;

pub use apply::{apply, collect, Host, Outcome};
pub use plan::plan;

const HOST_VETH_PREFIX: &str = "tap";

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why collecting the snapshot or applying an action failed: a Neutron
/// or host step, as in the lifecycle.
pub type GcError = crate::lifecycle::LifecycleError;

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
            Action::DeletePort { port_id, name, reason } => {
                write!(f, "delete port {port_id} ({name}): {reason}")
            }
            Action::ResetPort { port_id, name, reason } => {
                write!(f, "reset port {port_id} ({name}): {reason}")
            }
            Action::RemoveOvsPort { ifname, port_id, reason } => {
                write!(f, "remove OVS port {ifname} (iface-id {port_id}): {reason}")
            }
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

/// Parses Neutron's `2026-11-28T04:00:00Z` (also with fractions or
/// `+00:00`) to seconds since the Unix epoch.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    let secs = openstack::time::parse_timestamp(text)?;
    // Whole seconds are enough for a grace period of minutes.
    (secs >= 0.0).then_some(secs as u64)
}

/// Seconds since the Unix epoch now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
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
mod tests;
