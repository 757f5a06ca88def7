//! Nested binding: containers inside a Nova VM, riding on the VM's own
//! Neutron port (the Magnum case). There is no tap on the hypervisor for
//! the container, so no OVS port here: the container's Neutron port is
//! only a record of its address, and the VM port carries the traffic.
//!
//! - `macvlan`: a macvlan (bridge mode) on `link_iface` with the container
//!   port's MAC; the port's IPs and MAC become allowed address pairs of the
//!   VM port, so the VM port's port security lets them through.
//! - `ipvlan`: an ipvlan (L2) on `link_iface`; the container shares the VM
//!   NIC's MAC, so the pairs carry the container's IPs with the VM's MAC.
//! - `vlan`: the VM port is a trunk parent; the container port becomes a
//!   subport with a free VLAN id and the container gets a VLAN subinterface
//!   of `link_iface` with the port's MAC.
//!
//! Neutron replaces the whole `allowed_address_pairs` list on update, so
//! every change is a read-modify-write guarded by `If-Match:
//! revision_number` and retried on 412. VLAN ids come from the trunk's
//! subports as Neutron has them (not a per-process map, which collides
//! between processes) and are retried on 409 `DuplicateSubPort`.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;

use netplumb::{IpvlanMode, IpvlanSpec, MacvlanMode, MacvlanSpec, Netlink, Netns, VlanSpec};
use openstack::neutron::{AddressPair, Neutron, Port, PortId, PortUpdate, Query, SubPort, TrunkId};
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use super::{configure_container_end, BindError, NetnsTarget, PlugKind, PlugRequest, Plugged};
use crate::naming;

/// How often a read-modify-write of the VM port (412) or a subport add
/// (409) is tried before giving up: enough for tens of attachments racing
/// on one VM.
const MAX_ATTEMPTS: usize = 30;
/// VLAN ids a subport may use (802.1Q; 0 and 4095 are reserved).
const VLAN_IDS: std::ops::RangeInclusive<u16> = 1..=4094;

/// Which nested driver (`[binding] driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestedMode {
    /// `[binding] driver = macvlan` (upstream `nested`): a macvlan of `link_iface`, the addresses paired on the VM port.
    Macvlan,
    /// `ipvlan`: an ipvlan (L2) of `link_iface` sharing the VM's MAC, the addresses paired on the VM port.
    Ipvlan,
    /// `vlan`: a trunk subport, a VLAN link of `link_iface` with the subport's MAC.
    Vlan,
}

impl NestedMode {
    /// The mode for a `[binding] driver` name (short form, as the config
    /// stores it); `None` for `veth`. Upstream's `nested` driver is macvlan.
    pub fn from_driver(driver: &str) -> Option<Self> {
        match driver {
            "macvlan" | "nested" => Some(NestedMode::Macvlan),
            "ipvlan" => Some(NestedMode::Ipvlan),
            "vlan" => Some(NestedMode::Vlan),
            _ => None,
        }
    }

    /// The driver's short name (`macvlan`, `ipvlan`, `vlan`).
    pub fn as_str(self) -> &'static str {
        match self {
            NestedMode::Macvlan => "macvlan",
            NestedMode::Ipvlan => "ipvlan",
            NestedMode::Vlan => "vlan",
        }
    }

    /// Whether a port bound this way ever goes ACTIVE. A port that is only
    /// an allowed address pair of the VM port is never bound to a host and
    /// stays DOWN in Neutron (upstream does not wait for it either); a
    /// trunk subport is bound with its parent and goes ACTIVE.
    pub fn goes_active(self) -> bool {
        self == NestedMode::Vlan
    }
}

/// Settings of the nested drivers.
#[derive(Debug, Clone)]
pub struct NestedConfig {
    /// The driver.
    pub mode: NestedMode,
    /// The VM's NIC (`[binding] link_iface`), in the host namespace.
    pub link_iface: String,
}

/// What the VM port is, found once by `link_iface`'s MAC.
#[derive(Debug, Clone)]
pub struct VmPort {
    /// The VM port's id.
    pub id: PortId,
    /// Its MAC (how it was found).
    pub mac: String,
    /// Set when the VM port is a trunk parent.
    pub trunk_id: Option<TrunkId>,
}

/// What unplug needs later: the container's pairs (its IPs and MACs; the
/// port may be gone by then, and the macvlan may have gone with the
/// container's netns, so neither can tell), and where the link is.
#[derive(Debug, Clone)]
struct Record {
    owner_id: String,
    pairs: Vec<AddressPair>,
    link: LinkPlace,
}

#[derive(Debug, Clone)]
enum LinkPlace {
    /// Docker: created in the host namespace as `t_c…`; Docker moves it
    /// into the sandbox and back out on leave.
    Host(String),
    /// CNI: created straight in the container's netns. Kept by path and
    /// identity, not by an open handle: a handle would keep the netns (and
    /// the link in it) alive after the runtime deleted it.
    Netns { path: std::path::PathBuf, id: Option<(u64, u64)>, ifname: String },
}

/// The VM port's pairs as last seen, with the revision they belong to.
#[derive(Debug, Clone)]
struct PairsState {
    pairs: Vec<AddressPair>,
    revision: Option<u64>,
}

/// The Neutron side of nested binding: the VM port, its allowed address
/// pairs and its trunk's subports. Public so that it can be driven (and
/// tested) without the kernel side.
pub struct VmPortClient {
    neutron: Neutron,
    netlink: Netlink,
    link_iface: String,
    vm_port: OnceCell<VmPort>,
    /// In-process writers queue here; other processes are caught by
    /// `If-Match`.
    pairs: tokio::sync::Mutex<Option<PairsState>>,
}

fn same_pair(a: &AddressPair, b: &AddressPair) -> bool {
    let ip = |p: &AddressPair| {
        let bare = p.ip_address.strip_suffix("/32").unwrap_or(&p.ip_address);
        let bare = bare.strip_suffix("/128").unwrap_or(bare);
        bare.parse::<IpAddr>().ok()
    };
    let same_ip = match (ip(a), ip(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.ip_address == b.ip_address,
    };
    let same_mac = match (&a.mac_address, &b.mac_address) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    same_ip && same_mac
}

fn vlan_of(sub_ports: &[SubPort], port_id: &str) -> Option<u16> {
    sub_ports
        .iter()
        .find(|s| s.port_id == port_id)
        .and_then(|s| s.segmentation_id)
        .and_then(|id| u16::try_from(id).ok())
}

/// A random pause of up to 25 ms per attempt so far.
fn jitter(attempt: usize) -> std::time::Duration {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(attempt);
    let cap = 25 * u64::try_from(attempt).unwrap_or(u64::MAX).max(1);
    std::time::Duration::from_millis(hasher.finish() % cap)
}

/// A random VLAN id not used by `sub_ports`. Random rather than lowest
/// free so that concurrent attachments (other processes included) seldom
/// pick the same one; Neutron's 409 settles the rest.
pub(crate) fn pick_free_vlan(sub_ports: &[SubPort]) -> Option<u16> {
    let used: BTreeSet<u32> = sub_ports
        .iter()
        .filter(|s| s.segmentation_type.is_empty() || s.segmentation_type == "vlan")
        .filter_map(|s| s.segmentation_id)
        .collect();
    let free: Vec<u16> = VLAN_IDS.filter(|id| !used.contains(&u32::from(*id))).collect();
    if free.is_empty() {
        return None;
    }
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(free.len());
    let index = usize::try_from(hasher.finish() % free.len() as u64)
        .expect("an index below free.len() fits in usize");
    Some(free[index])
}

/// The nested binder: [`VmPortClient`] plus the links in the VM.
pub(crate) struct Nested {
    pub(crate) mode: NestedMode,
    pub(crate) client: VmPortClient,
    records: Mutex<HashMap<String, Record>>,
}

impl Nested {
    pub(crate) fn new(neutron: Neutron, netlink: Netlink, config: NestedConfig) -> Self {
        Nested {
            mode: config.mode,
            client: VmPortClient::new(neutron, netlink, config.link_iface),
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pairs the container's addresses need on the VM port.
    async fn pairs_for(
        &self,
        port_id: &str,
        port_mac: String,
        ips: &[IpAddr],
    ) -> Result<Vec<AddressPair>, BindError> {
        let mac = match self.mode {
            NestedMode::Macvlan => port_mac,
            NestedMode::Ipvlan => self.client.vm_port(port_id).await?.mac.clone(),
            NestedMode::Vlan => return Ok(Vec::new()),
        };
        Ok(ips
            .iter()
            .map(|ip| AddressPair { ip_address: ip.to_string(), mac_address: Some(mac.clone()) })
            .collect())
    }

    /// Neutron first (pairs or subport), then the link; the Neutron side
    /// is undone if the link cannot be made.
    pub(crate) async fn plug(
        &self,
        host: &Netlink,
        req: &PlugRequest,
        target: Option<&NetnsTarget>,
    ) -> Result<Plugged, BindError> {
        if req.fixed_ips.is_empty() && self.mode != NestedMode::Vlan {
            return Err(BindError::Nested {
                port_id: req.port_id.clone(),
                reason: "the port has no fixed IPs to allow on the VM port".into(),
            });
        }
        let pairs = self.pairs_for(&req.port_id, req.mac.to_string(), &req.fixed_ips).await?;
        let vlan_id = match self.mode {
            NestedMode::Vlan => Some(self.client.add_subport(&req.port_id).await?),
            _ => {
                self.client.update_pairs(&req.port_id, &pairs, &[]).await?;
                None
            }
        };
        let place = match target {
            Some(t) => LinkPlace::Netns {
                path: t.netns.path().to_path_buf(),
                id: t.netns.id().ok(),
                ifname: t.ifname.clone(),
            },
            None => LinkPlace::Host(naming::container_veth_name(&req.port_id)),
        };
        if let Err(err) = self.create_link(host, req, target, &place, vlan_id).await {
            self.undo_neutron(&req.port_id, &pairs).await;
            return Err(err);
        }
        let container_ifname = match &place {
            LinkPlace::Host(name) | LinkPlace::Netns { ifname: name, .. } => name.clone(),
        };
        self.records().insert(
            req.port_id.clone(),
            Record { owner_id: req.owner_id.clone(), pairs, link: place },
        );
        info!(port_id = %req.port_id, mode = ?self.mode, container_ifname, ?vlan_id, "plugged (nested)");
        Ok(Plugged {
            host_ifname: String::new(),
            container_ifname,
            vif_type: PlugKind::Nested(self.mode),
        })
    }

    async fn create_link(
        &self,
        host: &Netlink,
        req: &PlugRequest,
        target: Option<&NetnsTarget>,
        place: &LinkPlace,
        vlan_id: Option<u16>,
    ) -> Result<(), BindError> {
        let plumbing = |source| BindError::Plumbing { port_id: req.port_id.clone(), source };
        let (name, netns) = match (place, target) {
            (LinkPlace::Host(name), _) => {
                // A leftover of a crash between plug and record is replaced.
                host.delete_link(name).await.map_err(plumbing)?;
                (name.clone(), None)
            }
            (LinkPlace::Netns { ifname, .. }, Some(t)) => (ifname.clone(), Some(t.netns.clone())),
            (LinkPlace::Netns { ifname, .. }, None) => (ifname.clone(), None),
        };
        let parent = self.client.link_iface().to_string();
        let created = match (self.mode, vlan_id) {
            (NestedMode::Macvlan, _) => {
                let mut spec = MacvlanSpec::new(&name, &parent, MacvlanMode::Bridge).mac(req.mac);
                spec.mtu = req.mtu;
                spec.netns = netns;
                host.create_macvlan(&spec).await
            }
            (NestedMode::Ipvlan, _) => {
                let mut spec = IpvlanSpec::new(&name, &parent, IpvlanMode::L2);
                spec.mtu = req.mtu;
                spec.netns = netns;
                host.create_ipvlan(&spec).await
            }
            (NestedMode::Vlan, Some(id)) => {
                let mut spec = VlanSpec::new(&name, &parent, id).mac(req.mac);
                spec.mtu = req.mtu;
                spec.netns = netns;
                host.create_vlan(&spec).await
            }
            (NestedMode::Vlan, None) => {
                return Err(BindError::Nested {
                    port_id: req.port_id.clone(),
                    reason: "no VLAN id".into(),
                })
            }
        };
        created.map_err(plumbing)?;
        let Some(target) = target else {
            return Ok(());
        };
        // CNI: the link is in the container already; bring it up there and
        // give it the port's addresses and routes.
        let configured = async {
            let inside = Netlink::in_netns(&target.netns).await?;
            inside.set_up(&target.ifname).await?;
            configure_container_end(target).await
        };
        if let Err(source) = configured.await {
            if let Ok(inside) = Netlink::in_netns(&target.netns).await {
                if let Err(err) = inside.delete_link(&target.ifname).await {
                    warn!(ifname = %target.ifname, %err, "cleanup: removing the nested link failed");
                }
            }
            return Err(plumbing(source));
        }
        Ok(())
    }

    async fn undo_neutron(&self, port_id: &str, pairs: &[AddressPair]) {
        let undone = match self.mode {
            NestedMode::Vlan => self.client.remove_subport(port_id).await,
            _ => self.client.update_pairs(port_id, &[], pairs).await,
        };
        if let Err(err) = undone {
            warn!(port_id, %err, "cleanup: undoing the VM port change failed");
        }
    }

    /// Removes the link (where it still is) and the Neutron side. The pairs
    /// come from the record made at plug; without one (a restart) from the
    /// port, which still exists at that point in both callers.
    pub(crate) async fn unplug(&self, host: &Netlink, port_id: &str) -> Result<(), BindError> {
        let record = self.records().remove(port_id);
        let link = record
            .as_ref()
            .map(|r| r.link.clone())
            .unwrap_or_else(|| LinkPlace::Host(naming::container_veth_name(port_id)));
        match &link {
            LinkPlace::Host(name) => {
                host.delete_link(name).await.map_err(|source| BindError::Plumbing {
                    port_id: port_id.to_string(),
                    source,
                })?;
            }
            // The netns may be gone already, taking the link with it, or
            // its path may name another netns by now.
            LinkPlace::Netns { path, id, ifname } => match Netns::from_path(path) {
                Ok(ns) if ns.id().ok() == *id => match Netlink::in_netns(&ns).await {
                    Ok(inside) => {
                        if let Err(err) = inside.delete_link(ifname).await {
                            debug!(port_id, %err, "nested link already gone");
                        }
                    }
                    Err(err) => debug!(port_id, %err, "container netns unusable"),
                },
                _ => debug!(port_id, path = %path.display(), "container netns gone"),
            },
        }
        if self.mode == NestedMode::Vlan {
            return self.client.remove_subport(port_id).await;
        }
        let pairs = match record {
            Some(record) => record.pairs,
            None => {
                match self.client.neutron.get_port(port_id).await {
                    Ok(port) => {
                        let ips: Vec<IpAddr> =
                            port.fixed_ips.iter().map(|f| f.ip_address).collect();
                        self.pairs_for(port_id, port.mac_address.to_lowercase(), &ips).await?
                    }
                    Err(err) if err.is_not_found() => {
                        warn!(port_id, "port gone before unplug: its allowed address pairs stay on the VM port");
                        return Ok(());
                    }
                    Err(source) => {
                        return Err(BindError::Neutron { port_id: port_id.to_string(), source })
                    }
                }
            }
        };
        self.client.update_pairs(port_id, &[], &pairs).await
    }

    pub(crate) fn port_of_owner(&self, owner_id: &str) -> Option<String> {
        self.records()
            .iter()
            .find(|(_, r)| r.owner_id == owner_id)
            .map(|(port_id, _)| port_id.clone())
    }
}

#[cfg(test)]
mod tests;
mod vm_port;
