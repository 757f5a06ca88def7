//! The real [`Switch`]: OVSDB JSON-RPC over ovsdb-server's unix socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::ovs::proto::{self, eq, select, DB};
use crate::ovs::rpc::RpcConn;
use crate::ovs::{
    AddPortOutcome, BridgeOutcome, DatapathType, InterfaceRecord, InterfaceState, PortSpec, Switch,
    DEFAULT_OVSDB_SOCKET,
};
use crate::validate::validate_ifname;
use crate::Deleted;

mod interfaces;

/// How many times a read-then-write operation is retried when a concurrent
/// writer invalidated what was read (a failed `wait` guard).
const ATTEMPTS: usize = 3;

/// Native OVSDB client for the `Open_vSwitch` database.
///
/// Connects lazily and reconnects after the connection breaks (e.g. OVS
/// restarted). Every call is bounded by the RPC timeout (default 10 s, like
/// `ovs-vsctl --timeout=10`).
///
/// It never bumps `next_cfg` nor waits for `cur_cfg` (what `ovs-vsctl` does
/// unless `--no-wait`): that only says ovs-vswitchd has applied the change,
/// which nothing here depends on for correctness. The database commit is
/// the source of truth; the readiness signals that matter are waited for
/// explicitly and more precisely: [`OvsdbClient::wait_ofport`] (vswitchd has
/// opened the device) and [`Switch::wait_ovn_installed`] (ovn-controller has
/// installed the flows, which implies the former). It also keeps working,
/// as ovs-vsctl `--no-wait` does, when vswitchd is not running.
pub struct OvsdbClient {
    path: PathBuf,
    rpc_timeout: Duration,
    conn: tokio::sync::Mutex<Option<Arc<RpcConn>>>,
    monitor_seq: AtomicU64,
}

impl std::fmt::Debug for OvsdbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OvsdbClient")
            .field("path", &self.path)
            .field("rpc_timeout", &self.rpc_timeout)
            .finish()
    }
}

impl OvsdbClient {
    /// A client for the socket at `path` (not connected yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OvsdbClient {
            path: path.into(),
            rpc_timeout: Duration::from_secs(10),
            conn: tokio::sync::Mutex::new(None),
            monitor_seq: AtomicU64::new(1),
        }
    }

    /// A client for [`DEFAULT_OVSDB_SOCKET`].
    pub fn default_socket() -> Self {
        Self::new(DEFAULT_OVSDB_SOCKET)
    }

    /// Bound every single RPC by `timeout`.
    pub fn with_rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Connect now (and check the database answers), instead of on first use.
    pub async fn connect(&self) -> Result<()> {
        let conn = self.conn().await?;
        let dbs = conn.call("list_dbs", json!([]), self.rpc_timeout).await?;
        let has_db = dbs.as_array().is_some_and(|a| a.iter().any(|d| d == DB));
        if !has_db {
            return Err(Error::OvsdbProtocol(format!(
                "ovsdb-server does not serve {DB} (has {dbs})"
            )));
        }
        Ok(())
    }

    async fn conn(&self) -> Result<Arc<RpcConn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.is_closed() {
                return Ok(Arc::clone(c));
            }
            debug!(path = %self.path.display(), "ovsdb connection lost, reconnecting");
        }
        let c = RpcConn::connect(&self.path).await?;
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Run one transaction. If the cached connection turns out to be dead
    /// (OVS restarted), retry once on a fresh one. That is safe for every
    /// transaction we send: writes are guarded by `wait` preconditions or are
    /// idempotent mutations, so a write that did commit before the
    /// connection died fails its guard (and callers re-read) rather than
    /// applying twice.
    async fn transact(&self, what: &str, ops: Vec<Value>) -> Result<Vec<Value>> {
        let n_ops = ops.len();
        let mut params = vec![json!(DB)];
        params.extend(ops);
        let params = Value::Array(params);
        let conn = self.conn().await?;
        let result = match conn.call("transact", params.clone(), self.rpc_timeout).await {
            Err(Error::OvsdbDisconnected { reason }) => {
                debug!(%reason, what, "ovsdb connection dropped, retrying on a new one");
                self.conn().await?.call("transact", params, self.rpc_timeout).await?
            }
            other => other?,
        };
        proto::check_transact(what, n_ops, result)
    }

    /// See [`Switch::add_port`].
    pub async fn add_port(&self, spec: &PortSpec) -> Result<AddPortOutcome> {
        spec.validate()?;
        let what = format!("add-port {} {}", spec.bridge, spec.port);
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match self.add_port_once(spec, &what).await {
                Err(e)
                    if proto::is_wait_failure(&e)
                        || matches!(e, Error::OvsdbDisconnected { .. }) =>
                {
                    debug!(error = %e, "add-port raced with another writer, retrying");
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::OvsdbProtocol("add-port retries exhausted".into())))
    }

    async fn add_port_once(&self, spec: &PortSpec, what: &str) -> Result<AddPortOutcome> {
        let read = self.transact(what, proto::add_port_read_ops(spec)).await?;
        let bridge = proto::rows(&read, 0)?
            .first()
            .ok_or_else(|| Error::BridgeNotFound { name: spec.bridge.clone() })?;
        let bridge_ports = proto::parse_uuid_set(proto::column(bridge, "ports")?)?;
        let port = proto::rows(&read, 1)?.first();
        let iface = proto::rows(&read, 2)?.first();

        let Some(port) = port else {
            self.transact(what, proto::add_port_insert_ops(spec)).await?;
            info!(bridge = %spec.bridge, port = %spec.port, "ovs port created");
            return Ok(AddPortOutcome::Created);
        };
        let port_uuid = proto::parse_uuid(proto::column(port, "_uuid")?)?;
        if !bridge_ports.contains(&port_uuid) {
            let actual = self.bridge_of_port(&port_uuid).await?.unwrap_or_else(|| "(none)".into());
            return Err(Error::PortOnOtherBridge {
                port: spec.port.clone(),
                expected: spec.bridge.clone(),
                actual,
            });
        }
        let iface = iface.ok_or_else(|| {
            Error::OvsdbProtocol(format!("port {} has no interface of the same name", spec.port))
        })?;
        let iface_uuid = proto::parse_uuid(proto::column(iface, "_uuid")?)?;
        let set_type = proto::column_str(iface, "type")? != spec.iface_type.as_str();
        self.transact(what, proto::add_port_update_ops(spec, &port_uuid, &iface_uuid, set_type))
            .await?;
        info!(bridge = %spec.bridge, port = %spec.port, "ovs port already there, interface updated");
        Ok(AddPortOutcome::Updated)
    }

    async fn bridge_of_port(&self, port_uuid: &str) -> Result<Option<String>> {
        let res = self
            .transact(
                "find bridge of port",
                vec![select(
                    "Bridge",
                    vec![json!(["ports", "includes", proto::set(vec![proto::uuid(port_uuid)])])],
                    &["name"],
                )],
            )
            .await?;
        proto::rows(&res, 0)?.first().map(|r| proto::column_str(r, "name")).transpose()
    }

    /// See [`Switch::delete_port`].
    pub async fn delete_port(&self, bridge: Option<&str>, port: &str) -> Result<Deleted> {
        validate_ifname(port)?;
        if let Some(b) = bridge {
            validate_ifname(b)?;
        }
        let what = format!("del-port {port}");
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match self.delete_port_once(bridge, port, &what).await {
                Err(e)
                    if proto::is_wait_failure(&e)
                        || matches!(e, Error::OvsdbDisconnected { .. }) =>
                {
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::OvsdbProtocol("del-port retries exhausted".into())))
    }

    async fn delete_port_once(
        &self,
        bridge: Option<&str>,
        port: &str,
        what: &str,
    ) -> Result<Deleted> {
        let read = self
            .transact(
                what,
                vec![
                    select("Port", vec![eq("name", json!(port))], &["_uuid"]),
                    select("Bridge", vec![], &["_uuid", "name", "ports"]),
                ],
            )
            .await?;
        let Some(port_row) = proto::rows(&read, 0)?.first() else {
            return Ok(Deleted::Absent);
        };
        let port_uuid = proto::parse_uuid(proto::column(port_row, "_uuid")?)?;
        let mut owner = None;
        for b in proto::rows(&read, 1)? {
            if proto::parse_uuid_set(proto::column(b, "ports")?)?.contains(&port_uuid) {
                owner = Some((
                    proto::parse_uuid(proto::column(b, "_uuid")?)?,
                    proto::column_str(b, "name")?,
                ));
            }
        }
        let Some((bridge_uuid, bridge_name)) = owner else {
            // Unreferenced ports are garbage-collected at commit: gone.
            return Ok(Deleted::Absent);
        };
        if let Some(expected) = bridge {
            if expected != bridge_name {
                return Err(Error::PortOnOtherBridge {
                    port: port.into(),
                    expected: expected.into(),
                    actual: bridge_name,
                });
            }
        }
        self.transact(what, proto::del_port_ops(&bridge_uuid, &port_uuid, port)).await?;
        info!(bridge = %bridge_name, port, "ovs port deleted");
        Ok(Deleted::Removed)
    }

    /// Create a bridge (with its internal port, like `ovs-vsctl add-br`) if
    /// it does not exist. Meant for tests and tooling; Kuryr itself only
    /// plugs ports into an existing integration bridge.
    pub async fn ensure_bridge(&self, name: &str, datapath: DatapathType) -> Result<BridgeOutcome> {
        validate_ifname(name)?;
        if self.bridge_uuid(name).await?.is_some() {
            return Ok(BridgeOutcome::Existing);
        }
        match self
            .transact(&format!("add-br {name}"), proto::add_bridge_ops(name, datapath.as_str()))
            .await
        {
            Ok(_) => {
                info!(bridge = name, "ovs bridge created");
                Ok(BridgeOutcome::Created)
            }
            Err(e) if proto::is_wait_failure(&e) => Ok(BridgeOutcome::Existing),
            Err(e) => Err(e),
        }
    }

    /// Delete a bridge and all its ports (if-exists).
    pub async fn delete_bridge(&self, name: &str) -> Result<Deleted> {
        validate_ifname(name)?;
        let Some(uuid) = self.bridge_uuid(name).await? else {
            return Ok(Deleted::Absent);
        };
        self.transact(&format!("del-br {name}"), proto::del_bridge_ops(&uuid, name)).await?;
        info!(bridge = name, "ovs bridge deleted");
        Ok(Deleted::Removed)
    }

    /// Names of the ports of a bridge.
    pub async fn bridge_ports(&self, bridge: &str) -> Result<Vec<String>> {
        validate_ifname(bridge)?;
        let res = self
            .transact(
                "list ports",
                vec![
                    select("Bridge", vec![eq("name", json!(bridge))], &["ports"]),
                    select("Port", vec![], &["_uuid", "name"]),
                ],
            )
            .await?;
        let b = proto::rows(&res, 0)?
            .first()
            .ok_or_else(|| Error::BridgeNotFound { name: bridge.into() })?;
        let wanted = proto::parse_uuid_set(proto::column(b, "ports")?)?;
        let mut names = Vec::new();
        for p in proto::rows(&res, 1)? {
            if wanted.contains(&proto::parse_uuid(proto::column(p, "_uuid")?)?) {
                names.push(proto::column_str(p, "name")?);
            }
        }
        names.sort();
        Ok(names)
    }

    async fn bridge_uuid(&self, name: &str) -> Result<Option<String>> {
        let uuid = self.column_of_named("find bridge", "Bridge", name, "_uuid").await?;
        uuid.as_ref().map(proto::parse_uuid).transpose()
    }

    /// Column `column` of the `table` row named `name`, if there is one.
    async fn column_of_named(
        &self,
        what: &str,
        table: &str,
        name: &str,
        column: &str,
    ) -> Result<Option<Value>> {
        let find = select(table, vec![eq("name", json!(name))], &[column]);
        let res = self.transact(what, vec![find]).await?;
        proto::rows(&res, 0)?.first().map(|r| proto::column(r, column).cloned()).transpose()
    }
}

impl Switch for OvsdbClient {
    fn add_port<'a>(&'a self, spec: &'a PortSpec) -> BoxFuture<'a, Result<AddPortOutcome>> {
        Box::pin(OvsdbClient::add_port(self, spec))
    }

    fn delete_port<'a>(
        &'a self,
        bridge: Option<&'a str>,
        port: &'a str,
    ) -> BoxFuture<'a, Result<Deleted>> {
        Box::pin(OvsdbClient::delete_port(self, bridge, port))
    }

    fn find_interfaces<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<InterfaceRecord>>> {
        Box::pin(OvsdbClient::find_interfaces(self, key, value))
    }

    fn interface_external_ids<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>>> {
        Box::pin(OvsdbClient::interface_external_ids(self, name))
    }

    fn set_interface_external_ids<'a>(
        &'a self,
        name: &'a str,
        ids: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(OvsdbClient::set_interface_external_ids(self, name, ids))
    }

    fn update_interface_external_ids<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        remove: &'a [&'a str],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(OvsdbClient::update_interface_external_ids(self, name, set, remove))
    }

    fn wait_ovn_installed<'a>(
        &'a self,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<InterfaceState>> {
        Box::pin(OvsdbClient::wait_ovn_installed(self, name, timeout))
    }
}

#[cfg(test)]
mod tests;
