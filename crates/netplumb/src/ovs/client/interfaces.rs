//! Interfaces: finding them by external id, reading and changing their
//! `external_ids`, and waiting on an OVSDB monitor until one is ready
//! (`ovn-installed`, an `ofport`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::ovs::proto::{self, eq, select};
use crate::ovs::rpc::RpcConn;
use crate::ovs::{validate_external_ids, InterfaceRecord, InterfaceState};
use crate::validate::{validate_ifname, validate_ovs_key};

use super::OvsdbClient;

/// Cancels a monitor when the waiter returns or is dropped.
struct MonitorGuard {
    conn: Arc<RpcConn>,
    id: String,
    rpc_timeout: Duration,
}

impl Drop for MonitorGuard {
    fn drop(&mut self) {
        self.conn.unregister_monitor(&self.id);
        if self.conn.is_closed() {
            return;
        }
        // Tell the server to stop sending updates; nobody waits for the reply.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let conn = Arc::clone(&self.conn);
            let id = self.id.clone();
            let timeout = self.rpc_timeout;
            rt.spawn(async move {
                let _ = conn.call("monitor_cancel", json!([id]), timeout).await;
            });
        }
    }
}

impl OvsdbClient {
    /// See [`Switch::find_interfaces`](crate::ovs::Switch::find_interfaces).
    pub async fn find_interfaces(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<InterfaceRecord>> {
        validate_ovs_key(key)?;
        if let Some(v) = value {
            crate::validate::validate_ovs_value("ovs external_ids value", v)?;
        }
        let cond = match value {
            Some(v) => vec![json!([
                "external_ids",
                "includes",
                proto::map(&BTreeMap::from([(key.to_string(), v.to_string())]))
            ])],
            None => vec![],
        };
        let res = self
            .transact(
                "find interfaces",
                vec![
                    select("Interface", cond, &["_uuid", "name", "type", "external_ids", "ofport"]),
                    select("Port", vec![], &["_uuid", "interfaces"]),
                    select("Bridge", vec![], &["name", "ports"]),
                ],
            )
            .await?;
        // Join Interface -> Port -> Bridge on our side.
        let mut port_of_iface = BTreeMap::new();
        for p in proto::rows(&res, 1)? {
            let pu = proto::parse_uuid(proto::column(p, "_uuid")?)?;
            for iu in proto::parse_uuid_set(proto::column(p, "interfaces")?)? {
                port_of_iface.insert(iu, pu.clone());
            }
        }
        let mut bridge_of_port = BTreeMap::new();
        for b in proto::rows(&res, 2)? {
            let name = proto::column_str(b, "name")?;
            for pu in proto::parse_uuid_set(proto::column(b, "ports")?)? {
                bridge_of_port.insert(pu, name.clone());
            }
        }
        let mut out = Vec::new();
        for row in proto::rows(&res, 0)? {
            let external_ids = proto::parse_map(proto::column(row, "external_ids")?)?;
            if !external_ids.contains_key(key) {
                continue;
            }
            let iu = proto::parse_uuid(proto::column(row, "_uuid")?)?;
            out.push(InterfaceRecord {
                name: proto::column_str(row, "name")?,
                iface_type: proto::column_str(row, "type")?,
                external_ids,
                ofport: proto::parse_opt_int(proto::column(row, "ofport")?)?,
                bridge: port_of_iface.get(&iu).and_then(|pu| bridge_of_port.get(pu)).cloned(),
            });
        }
        Ok(out)
    }

    /// See [`Switch::interface_external_ids`](crate::ovs::Switch::interface_external_ids).
    pub async fn interface_external_ids(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        validate_ifname(name)?;
        let what = "read interface external_ids";
        let ids = self.column_of_named(what, "Interface", name, "external_ids").await?;
        ids.as_ref().map(proto::parse_map).transpose()
    }

    /// See [`Switch::set_interface_external_ids`](crate::ovs::Switch::set_interface_external_ids). [`Error::InterfaceNotFound`] if
    /// there is no such interface.
    pub async fn set_interface_external_ids(
        &self,
        name: &str,
        ids: &BTreeMap<String, String>,
    ) -> Result<()> {
        validate_ifname(name)?;
        validate_external_ids(ids)?;
        if ids.is_empty() {
            return Ok(());
        }
        let res = self
            .transact(
                "set interface external_ids",
                vec![
                    json!({"op": "mutate", "table": "Interface", "where": [eq("name", json!(name))],
                            "mutations": proto::map_upsert_mutations("external_ids", ids)}),
                ],
            )
            .await?;
        if proto::count(&res, 0)? == 0 {
            return Err(Error::InterfaceNotFound { name: name.into() });
        }
        Ok(())
    }

    /// Remove some external_ids keys of an interface (missing keys or
    /// interface are fine).
    pub async fn remove_interface_external_ids(&self, name: &str, keys: &[&str]) -> Result<()> {
        validate_ifname(name)?;
        for k in keys {
            validate_ovs_key(k)?;
        }
        let keys: Vec<Value> = keys.iter().map(|k| json!(k)).collect();
        self.transact(
            "remove interface external_ids",
            vec![json!({"op": "mutate", "table": "Interface", "where": [eq("name", json!(name))],
                        "mutations": [["external_ids", "delete", proto::set(keys)]]})],
        )
        .await?;
        Ok(())
    }

    /// See [`Switch::update_interface_external_ids`](crate::ovs::Switch::update_interface_external_ids): set `set` and remove
    /// `remove` in one transaction. [`Error::InterfaceNotFound`] if there
    /// is no such interface.
    pub async fn update_interface_external_ids(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        remove: &[&str],
    ) -> Result<()> {
        validate_ifname(name)?;
        validate_external_ids(set)?;
        for k in remove {
            validate_ovs_key(k)?;
        }
        let mut mutations = proto::map_upsert_mutations("external_ids", set);
        let removed: Vec<Value> =
            remove.iter().filter(|k| !set.contains_key(**k)).map(|k| json!(k)).collect();
        mutations.push(json!(["external_ids", "delete", proto::set(removed)]));
        let res = self
            .transact(
                "update interface external_ids",
                vec![
                    json!({"op": "mutate", "table": "Interface", "where": [eq("name", json!(name))],
                            "mutations": mutations}),
                ],
            )
            .await?;
        if proto::count(&res, 0)? == 0 {
            return Err(Error::InterfaceNotFound { name: name.into() });
        }
        Ok(())
    }

    /// Wait until the Interface `name` satisfies `ready`, using a
    /// `monitor_cond` on that row: the initial state is checked first, then
    /// every change pushed by ovsdb-server, until `timeout`. The interface
    /// does not need to exist yet. [`Error::Timeout`] reports the last state.
    pub async fn wait_interface<F>(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        ready: F,
    ) -> Result<InterfaceState>
    where
        F: Fn(&InterfaceState) -> bool,
    {
        validate_ifname(name)?;
        let deadline = Instant::now() + timeout;
        let conn = self.conn().await?;
        let id = format!("netplumb-{}", self.monitor_seq.fetch_add(1, Ordering::Relaxed));
        let mut updates = conn.register_monitor(&id);
        let guard =
            MonitorGuard { conn: Arc::clone(&conn), id: id.clone(), rpc_timeout: self.rpc_timeout };
        let rpc_timeout = self.rpc_timeout.min(timeout.max(Duration::from_millis(1)));
        let initial =
            conn.call("monitor_cond", proto::monitor_iface_params(&id, name), rpc_timeout).await?;
        let mut rows = BTreeMap::new();
        proto::apply_interface_updates(&mut rows, &initial)?;
        loop {
            if let Some(state) = rows.values().find(|s| ready(s)) {
                drop(guard);
                return Ok(state.clone());
            }
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(Some(update)) => proto::apply_interface_updates(&mut rows, &update)?,
                Ok(None) => {
                    return Err(Error::OvsdbDisconnected {
                        reason: format!("connection lost while waiting for {what}"),
                    })
                }
                Err(_) => {
                    let last = match rows.values().next() {
                        Some(s) => format!(
                            "external_ids={:?} ofport={:?} error={:?}",
                            s.external_ids, s.ofport, s.error
                        ),
                        None => format!("no interface named {name}"),
                    };
                    return Err(Error::Timeout {
                        what: format!("{what} on interface {name}"),
                        timeout,
                        last: Some(last),
                    });
                }
            }
        }
    }

    /// See [`Switch::wait_ovn_installed`](crate::ovs::Switch::wait_ovn_installed).
    pub async fn wait_ovn_installed(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<InterfaceState> {
        self.wait_interface(
            name,
            timeout,
            "external_ids:ovn-installed=true",
            InterfaceState::ovn_installed,
        )
        .await
    }

    /// Wait until ovs-vswitchd has opened the interface (a positive
    /// `ofport`). Useful without OVN; with OVN, `wait_ovn_installed`
    /// implies it. Needs a running vswitchd.
    pub async fn wait_ofport(&self, name: &str, timeout: Duration) -> Result<i64> {
        let state = self
            .wait_interface(name, timeout, "an ofport", |s| s.ofport.is_some_and(|p| p > 0))
            .await?;
        state.ofport.ok_or_else(|| Error::OvsdbProtocol("ofport vanished".into()))
    }
}
