//! An in-memory [`Switch`] for unit tests of callers (no OVS needed).
//!
//! It follows the same semantics as [`OvsdbClient`](super::OvsdbClient):
//! may-exist add, if-exists delete, [`Error::PortOnOtherBridge`],
//! [`Error::BridgeNotFound`], validation, and a real (notification driven)
//! ovn-installed wait. Tests play ovn-controller with
//! [`FakeSwitch::mark_ovn_installed`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::ovs::{
    validate_external_ids, AddPortOutcome, InterfaceRecord, InterfaceState, InterfaceType,
    PortSpec, Switch, OVN_INSTALLED,
};
use crate::validate::{validate_ifname, validate_ovs_key};
use crate::Deleted;

/// One fake interface (= port of the same name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeInterface {
    /// Bridge holding it.
    pub bridge: String,
    /// Interface type.
    pub iface_type: InterfaceType,
    /// external_ids.
    pub external_ids: BTreeMap<String, String>,
    /// Port tag.
    pub tag: Option<u16>,
}

/// The whole fake switch state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeState {
    /// Bridge names.
    pub bridges: BTreeSet<String>,
    /// Interfaces by name.
    pub interfaces: BTreeMap<String, FakeInterface>,
}

/// In-memory switch.
#[derive(Debug)]
pub struct FakeSwitch {
    state: Mutex<FakeState>,
    version: watch::Sender<u64>,
}

impl Default for FakeSwitch {
    fn default() -> Self {
        FakeSwitch { state: Mutex::new(FakeState::default()), version: watch::Sender::new(0) }
    }
}

impl FakeSwitch {
    /// A switch with one bridge.
    pub fn with_bridge(name: &str) -> Self {
        let s = Self::default();
        s.add_bridge(name);
        s
    }

    /// Add a bridge.
    pub fn add_bridge(&self, name: &str) {
        self.modify(|st| {
            st.bridges.insert(name.to_string());
        });
    }

    /// A copy of the current state, for assertions.
    pub fn snapshot(&self) -> FakeState {
        self.lock().clone()
    }

    /// Play ovn-controller: set `ovn-installed=true` on an interface.
    pub fn mark_ovn_installed(&self, name: &str) {
        self.modify(|st| {
            if let Some(i) = st.interfaces.get_mut(name) {
                i.external_ids.insert(OVN_INSTALLED.into(), "true".into());
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn modify<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        let out = f(&mut self.lock());
        self.version.send_modify(|v| *v += 1);
        out
    }

    fn state_of(&self, name: &str) -> Option<InterfaceState> {
        self.lock().interfaces.get(name).map(|i| InterfaceState {
            name: name.to_string(),
            external_ids: i.external_ids.clone(),
            ofport: Some(1),
            error: None,
        })
    }

    fn add_port_sync(&self, spec: &PortSpec) -> Result<AddPortOutcome> {
        spec.validate()?;
        self.modify(|st| {
            if !st.bridges.contains(&spec.bridge) {
                return Err(Error::BridgeNotFound { name: spec.bridge.clone() });
            }
            match st.interfaces.get_mut(&spec.port) {
                Some(i) if i.bridge != spec.bridge => Err(Error::PortOnOtherBridge {
                    port: spec.port.clone(),
                    expected: spec.bridge.clone(),
                    actual: i.bridge.clone(),
                }),
                Some(i) => {
                    i.iface_type = spec.iface_type;
                    i.external_ids.extend(spec.external_ids.clone());
                    if spec.tag.is_some() {
                        i.tag = spec.tag;
                    }
                    Ok(AddPortOutcome::Updated)
                }
                None => {
                    st.interfaces.insert(
                        spec.port.clone(),
                        FakeInterface {
                            bridge: spec.bridge.clone(),
                            iface_type: spec.iface_type,
                            external_ids: spec.external_ids.clone(),
                            tag: spec.tag,
                        },
                    );
                    Ok(AddPortOutcome::Created)
                }
            }
        })
    }

    fn delete_port_sync(&self, bridge: Option<&str>, port: &str) -> Result<Deleted> {
        validate_ifname(port)?;
        self.modify(|st| match st.interfaces.get(port) {
            None => Ok(Deleted::Absent),
            Some(i) if bridge.is_some_and(|b| b != i.bridge) => Err(Error::PortOnOtherBridge {
                port: port.into(),
                expected: bridge.unwrap_or_default().into(),
                actual: i.bridge.clone(),
            }),
            Some(_) => {
                st.interfaces.remove(port);
                Ok(Deleted::Removed)
            }
        })
    }

    async fn wait_until_installed(&self, name: &str, timeout: Duration) -> Result<InterfaceState> {
        validate_ifname(name)?;
        let mut rx = self.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(s) = self.state_of(name).filter(InterfaceState::ovn_installed) {
                return Ok(s);
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Err(Error::Timeout {
                    what: format!("external_ids:ovn-installed=true on interface {name}"),
                    timeout,
                    last: None,
                });
            }
        }
    }
}

impl Switch for FakeSwitch {
    fn add_port<'a>(&'a self, spec: &'a PortSpec) -> BoxFuture<'a, Result<AddPortOutcome>> {
        Box::pin(async move { self.add_port_sync(spec) })
    }

    fn delete_port<'a>(
        &'a self,
        bridge: Option<&'a str>,
        port: &'a str,
    ) -> BoxFuture<'a, Result<Deleted>> {
        Box::pin(async move { self.delete_port_sync(bridge, port) })
    }

    fn find_interfaces<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<InterfaceRecord>>> {
        Box::pin(async move {
            validate_ovs_key(key)?;
            let st = self.lock();
            Ok(st
                .interfaces
                .iter()
                .filter(|(_, i)| match (i.external_ids.get(key), value) {
                    (Some(v), Some(want)) => v == want,
                    (Some(_), None) => true,
                    (None, _) => false,
                })
                .map(|(name, i)| InterfaceRecord {
                    name: name.clone(),
                    iface_type: i.iface_type.as_str().into(),
                    external_ids: i.external_ids.clone(),
                    ofport: Some(1),
                    bridge: Some(i.bridge.clone()),
                })
                .collect())
        })
    }

    fn interface_external_ids<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>>> {
        Box::pin(async move {
            validate_ifname(name)?;
            Ok(self.lock().interfaces.get(name).map(|i| i.external_ids.clone()))
        })
    }

    fn set_interface_external_ids<'a>(
        &'a self,
        name: &'a str,
        ids: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<()>> {
        // Setting is updating with nothing to remove.
        self.update_interface_external_ids(name, ids, &[])
    }

    fn update_interface_external_ids<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        remove: &'a [&'a str],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            validate_ifname(name)?;
            validate_external_ids(set)?;
            self.modify(|st| match st.interfaces.get_mut(name) {
                Some(i) => {
                    for k in remove {
                        i.external_ids.remove(*k);
                    }
                    i.external_ids.extend(set.clone());
                    Ok(())
                }
                None => Err(Error::InterfaceNotFound { name: name.into() }),
            })
        })
    }

    fn wait_ovn_installed<'a>(
        &'a self,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<InterfaceState>> {
        Box::pin(self.wait_until_installed(name, timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn fake_follows_switch_semantics() {
        let sw: Arc<dyn Switch> = Arc::new(FakeSwitch::with_bridge("br-int"));
        let mac = "fa:16:3e:00:00:01".parse().unwrap();
        let spec = PortSpec::neutron("br-int", "tap0", "p1", mac, "vm");
        assert_eq!(sw.add_port(&spec).await.unwrap(), AddPortOutcome::Created);
        assert_eq!(sw.add_port(&spec).await.unwrap(), AddPortOutcome::Updated);
        let err = sw.add_port(&PortSpec::new("br-x", "tap1")).await.unwrap_err();
        assert!(matches!(err, Error::BridgeNotFound { .. }));
        let found = sw.find_interfaces("iface-id", Some("p1")).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bridge.as_deref(), Some("br-int"));
        assert!(sw.find_interfaces("iface-id", Some("p2")).await.unwrap().is_empty());
        let err = sw.delete_port(Some("br-ex"), "tap0").await.unwrap_err();
        assert!(matches!(err, Error::PortOnOtherBridge { .. }));
        assert_eq!(sw.delete_port(None, "tap0").await.unwrap(), Deleted::Removed);
        assert_eq!(sw.delete_port(None, "tap0").await.unwrap(), Deleted::Absent);
    }

    #[tokio::test]
    async fn update_sets_and_removes_in_one_call() {
        let sw: Arc<dyn Switch> = Arc::new(FakeSwitch::with_bridge("br-int"));
        let mac = "fa:16:3e:00:00:01".parse().unwrap();
        let spec = PortSpec::neutron("br-int", "tap0", "p1", mac, "vm");
        sw.add_port(&spec).await.unwrap();
        let set = BTreeMap::from([("kuryr-pool".to_string(), "net".to_string())]);
        sw.update_interface_external_ids("tap0", &set, &["vm-uuid", "absent"]).await.unwrap();
        let ids = sw.interface_external_ids("tap0").await.unwrap().unwrap();
        assert_eq!(ids.get("kuryr-pool").map(String::as_str), Some("net"));
        assert!(!ids.contains_key("vm-uuid"));
        assert_eq!(ids.get("iface-id").map(String::as_str), Some("p1"));
        let err = sw.update_interface_external_ids("tap9", &set, &[]).await.unwrap_err();
        assert!(matches!(err, Error::InterfaceNotFound { .. }));
    }

    #[tokio::test]
    async fn fake_ovn_installed_wait_wakes_and_times_out() {
        let sw = Arc::new(FakeSwitch::with_bridge("br-int"));
        sw.add_port(&PortSpec::new("br-int", "tap0")).await.unwrap();
        let err = sw.wait_ovn_installed("tap0", Duration::from_millis(20)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }));
        let sw2 = Arc::clone(&sw);
        let setter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            sw2.mark_ovn_installed("tap0");
        });
        let state = sw.wait_ovn_installed("tap0", Duration::from_secs(10)).await.unwrap();
        assert!(state.ovn_installed());
        setter.await.unwrap();
    }
}
