//! Open vSwitch through its database: a native OVSDB (RFC 7047) JSON-RPC
//! client over the unix socket, with no `ovs-vsctl` subprocess.
//!
//! * [`OvsdbClient`] is the real implementation; [`Switch`] is the trait
//!   callers should depend on, and [`fake::FakeSwitch`] an in-memory double
//!   for their unit tests.
//! * Interfaces plugged for Neutron carry `external_ids` `iface-id`,
//!   `attached-mac`, `iface-status` and `vm-uuid` ([`PortSpec::neutron`]).
//!   ovn-controller binds the logical port named by `iface-id` and, once the
//!   port's flows are installed, sets `external_ids:ovn-installed="true"` on
//!   the Interface: [`Switch::wait_ovn_installed`] waits for that with an
//!   OVSDB monitor (no polling).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::validate::{
    validate_ifname, validate_ovs_key, validate_ovs_tag, validate_ovs_value, MacAddr,
};
use crate::Deleted;

mod client;
pub mod fake;
mod proto;
mod rpc;

pub use client::OvsdbClient;

/// Default path of ovsdb-server's unix socket.
pub const DEFAULT_OVSDB_SOCKET: &str = "/var/run/openvswitch/db.sock";

/// `external_ids` key naming the Neutron port (OVN logical switch port).
pub const IFACE_ID: &str = "iface-id";
/// `external_ids` key with the port's MAC.
pub const ATTACHED_MAC: &str = "attached-mac";
/// `external_ids` key with the VIF status (`active`).
pub const IFACE_STATUS: &str = "iface-status";
/// `external_ids` key with the instance (container/sandbox) id.
pub const VM_UUID: &str = "vm-uuid";
/// `external_ids` key set to `"true"` by ovn-controller once flows are in.
pub const OVN_INSTALLED: &str = "ovn-installed";

/// Type of an OVS Interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InterfaceType {
    /// A kernel network device that already exists (veth end, tap): `""`.
    #[default]
    System,
    /// A device created by OVS itself: `"internal"`.
    Internal,
}

impl InterfaceType {
    /// The value of the Interface `type` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            InterfaceType::System => "",
            InterfaceType::Internal => "internal",
        }
    }
}

/// Datapath type of a bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatapathType {
    /// The kernel datapath (`system`).
    System,
    /// The userspace datapath (`netdev`), used on this project's machines.
    Netdev,
}

impl DatapathType {
    /// The value of the Bridge `datapath_type` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            DatapathType::System => "system",
            DatapathType::Netdev => "netdev",
        }
    }
}

/// A port to plug into a bridge (one Interface of the same name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Bridge name, e.g. `br-int`.
    pub bridge: String,
    /// Port (and interface) name: the host-side device name.
    pub port: String,
    /// Interface type.
    pub iface_type: InterfaceType,
    /// Interface `external_ids` to set (other existing keys are kept).
    pub external_ids: BTreeMap<String, String>,
    /// Port `tag` (access VLAN), if any.
    pub tag: Option<u16>,
}

impl PortSpec {
    /// A system port with no external_ids.
    pub fn new(bridge: impl Into<String>, port: impl Into<String>) -> Self {
        PortSpec {
            bridge: bridge.into(),
            port: port.into(),
            iface_type: InterfaceType::System,
            external_ids: BTreeMap::new(),
            tag: None,
        }
    }

    /// The external_ids Neutron/OVN expect on a VIF (what `ovs-vsctl
    /// add-port ... external_ids:iface-id=PORT attached-mac=MAC
    /// iface-status=active vm-uuid=ID` writes).
    pub fn neutron(
        bridge: impl Into<String>,
        port: impl Into<String>,
        iface_id: &str,
        attached_mac: MacAddr,
        vm_uuid: &str,
    ) -> Self {
        PortSpec::new(bridge, port)
            .external_id(IFACE_ID, iface_id)
            .external_id(ATTACHED_MAC, attached_mac.to_string())
            .external_id(IFACE_STATUS, "active")
            .external_id(VM_UUID, vm_uuid)
    }

    /// Add one external_id.
    pub fn external_id(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.external_ids.insert(key.into(), value.into());
        self
    }

    /// Set the interface type.
    pub fn iface_type(mut self, t: InterfaceType) -> Self {
        self.iface_type = t;
        self
    }

    /// Set the port's VLAN tag.
    pub fn tag(mut self, tag: u16) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Validate every value that would be sent to OVSDB.
    pub fn validate(&self) -> Result<()> {
        validate_ifname(&self.bridge)?;
        validate_ifname(&self.port)?;
        validate_external_ids(&self.external_ids)?;
        if let Some(tag) = self.tag {
            validate_ovs_tag(tag)?;
        }
        Ok(())
    }
}

/// Validate the keys and values of an external_ids map, and the formats of
/// the well-known keys.
pub fn validate_external_ids(ids: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in ids {
        validate_ovs_key(k)?;
        validate_ovs_value("ovs external_ids value", v)?;
    }
    if let Some(mac) = ids.get(ATTACHED_MAC) {
        mac.parse::<MacAddr>()?;
    }
    if let Some(id) = ids.get(IFACE_ID) {
        if id.is_empty() {
            return Err(Error::invalid("iface-id", id, "empty"));
        }
    }
    Ok(())
}

/// What [`Switch::add_port`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddPortOutcome {
    /// Port and interface were created.
    Created,
    /// The port was already on that bridge; its interface was refreshed.
    Updated,
}

/// What [`OvsdbClient::ensure_bridge`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeOutcome {
    /// The bridge was created.
    Created,
    /// It already existed (left as is).
    Existing,
}

/// An Interface row as found by [`Switch::find_interfaces`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceRecord {
    /// Interface name.
    pub name: String,
    /// Interface type (`""`, `"internal"`...).
    pub iface_type: String,
    /// Its external_ids.
    pub external_ids: BTreeMap<String, String>,
    /// OpenFlow port number once vswitchd picked it up (-1 on failure).
    pub ofport: Option<i64>,
    /// Bridge holding it (through its port), if any.
    pub bridge: Option<String>,
}

/// The monitored state of an Interface (see [`OvsdbClient::wait_interface`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceState {
    /// Interface name.
    pub name: String,
    /// Its external_ids.
    pub external_ids: BTreeMap<String, String>,
    /// OpenFlow port number (-1: vswitchd could not open the device).
    pub ofport: Option<i64>,
    /// vswitchd's error for the interface, if any.
    pub error: Option<String>,
}

impl InterfaceState {
    /// ovn-controller marked the port's flows as installed.
    pub fn ovn_installed(&self) -> bool {
        self.external_ids.get(OVN_INSTALLED).map(String::as_str) == Some("true")
    }
}

/// What the plumbing needs from a virtual switch. Implemented by
/// [`OvsdbClient`] (real) and [`fake::FakeSwitch`] (tests). Object safe:
/// use `Arc<dyn Switch>`.
pub trait Switch: Send + Sync {
    /// Add a port (may-exist: if it is already on that bridge, update its
    /// interface's external_ids, type and tag). [`Error::PortOnOtherBridge`]
    /// if it exists elsewhere, [`Error::BridgeNotFound`] if the bridge is
    /// missing.
    fn add_port<'a>(&'a self, spec: &'a PortSpec) -> BoxFuture<'a, Result<AddPortOutcome>>;

    /// Delete a port by name (if-exists). With `bridge`, refuse to remove it
    /// from another bridge ([`Error::PortOnOtherBridge`]).
    fn delete_port<'a>(
        &'a self,
        bridge: Option<&'a str>,
        port: &'a str,
    ) -> BoxFuture<'a, Result<Deleted>>;

    /// Interfaces whose external_ids contain `key` (with `value`, if given):
    /// e.g. every interface with an `iface-id`, to find leftovers.
    fn find_interfaces<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<InterfaceRecord>>>;

    /// An interface's external_ids; `None` if there is no such interface.
    fn interface_external_ids<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>>>;

    /// Set (insert or overwrite) some external_ids of an interface, keeping
    /// the others.
    fn set_interface_external_ids<'a>(
        &'a self,
        name: &'a str,
        ids: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Set some external_ids of an interface and remove others, in one
    /// transaction (no reader sees half of the change).
    /// [`Error::InterfaceNotFound`] if there is no such interface.
    fn update_interface_external_ids<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        remove: &'a [&'a str],
    ) -> BoxFuture<'a, Result<()>>;

    /// Wait until the interface has `external_ids:ovn-installed="true"`.
    /// Returns at once if it already has. [`Error::Timeout`] otherwise.
    fn wait_ovn_installed<'a>(
        &'a self,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<InterfaceState>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutron_spec_and_validation() {
        let mac: MacAddr = "fa:16:3e:00:00:01".parse().unwrap();
        let spec = PortSpec::neutron("br-int", "tap0", "port-uuid", mac, "vm-1");
        spec.validate().unwrap();
        assert_eq!(spec.external_ids[IFACE_ID], "port-uuid");
        assert_eq!(spec.external_ids[ATTACHED_MAC], "fa:16:3e:00:00:01");
        assert_eq!(spec.external_ids[IFACE_STATUS], "active");
        assert_eq!(spec.external_ids[VM_UUID], "vm-1");

        assert!(PortSpec::new("br-int", "bad name").validate().is_err());
        assert!(PortSpec::new("", "tap0").validate().is_err());
        assert!(PortSpec::new("br-int", "tap0").tag(4096).validate().is_err());
        assert!(PortSpec::new("br-int", "tap0").external_id("a=b", "x").validate().is_err());
        assert!(PortSpec::new("br-int", "tap0")
            .external_id("k", "line\nbreak")
            .validate()
            .is_err());
        assert!(PortSpec::new("br-int", "tap0")
            .external_id(ATTACHED_MAC, "nope")
            .validate()
            .is_err());
        assert!(PortSpec::new("br-int", "tap0").external_id(IFACE_ID, "").validate().is_err());
        assert_eq!(InterfaceType::System.as_str(), "");
        assert_eq!(InterfaceType::Internal.as_str(), "internal");
    }
}
