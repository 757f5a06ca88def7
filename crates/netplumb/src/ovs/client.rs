//! The real [`Switch`]: OVSDB JSON-RPC over ovsdb-server's unix socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::ovs::proto::{self, eq, select, DB};
use crate::ovs::rpc::RpcConn;
use crate::ovs::{
    validate_external_ids, AddPortOutcome, BridgeOutcome, DatapathType, InterfaceRecord,
    InterfaceState, PortSpec, Switch, DEFAULT_OVSDB_SOCKET,
};
use crate::validate::{validate_ifname, validate_ovs_key};
use crate::Deleted;

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
        let result = match conn
            .call("transact", params.clone(), self.rpc_timeout)
            .await
        {
            Err(Error::OvsdbDisconnected { reason }) => {
                debug!(%reason, what, "ovsdb connection dropped, retrying on a new one");
                self.conn()
                    .await?
                    .call("transact", params, self.rpc_timeout)
                    .await?
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
            .ok_or_else(|| Error::BridgeNotFound {
                name: spec.bridge.clone(),
            })?;
        let bridge_ports = proto::parse_uuid_set(proto::column(bridge, "ports")?)?;
        let port = proto::rows(&read, 1)?.first();
        let iface = proto::rows(&read, 2)?.first();

        let Some(port) = port else {
            self.transact(what, proto::add_port_insert_ops(spec))
                .await?;
            info!(bridge = %spec.bridge, port = %spec.port, "ovs port created");
            return Ok(AddPortOutcome::Created);
        };
        let port_uuid = proto::parse_uuid(proto::column(port, "_uuid")?)?;
        if !bridge_ports.contains(&port_uuid) {
            let actual = self
                .bridge_of_port(&port_uuid)
                .await?
                .unwrap_or_else(|| "(none)".into());
            return Err(Error::PortOnOtherBridge {
                port: spec.port.clone(),
                expected: spec.bridge.clone(),
                actual,
            });
        }
        let iface = iface.ok_or_else(|| {
            Error::OvsdbProtocol(format!(
                "port {} has no interface of the same name",
                spec.port
            ))
        })?;
        let iface_uuid = proto::parse_uuid(proto::column(iface, "_uuid")?)?;
        let set_type = proto::column_str(iface, "type")? != spec.iface_type.as_str();
        self.transact(
            what,
            proto::add_port_update_ops(spec, &port_uuid, &iface_uuid, set_type),
        )
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
                    vec![json!([
                        "ports",
                        "includes",
                        proto::set(vec![proto::uuid(port_uuid)])
                    ])],
                    &["name"],
                )],
            )
            .await?;
        proto::rows(&res, 0)?
            .first()
            .map(|r| proto::column_str(r, "name"))
            .transpose()
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
        self.transact(what, proto::del_port_ops(&bridge_uuid, &port_uuid, port))
            .await?;
        info!(bridge = %bridge_name, port, "ovs port deleted");
        Ok(Deleted::Removed)
    }

    /// See [`Switch::find_interfaces`].
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
                    select(
                        "Interface",
                        cond,
                        &["_uuid", "name", "type", "external_ids", "ofport"],
                    ),
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
                bridge: port_of_iface
                    .get(&iu)
                    .and_then(|pu| bridge_of_port.get(pu))
                    .cloned(),
            });
        }
        Ok(out)
    }

    /// See [`Switch::interface_external_ids`].
    pub async fn interface_external_ids(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        validate_ifname(name)?;
        let res = self
            .transact(
                "read interface external_ids",
                vec![select(
                    "Interface",
                    vec![eq("name", json!(name))],
                    &["external_ids"],
                )],
            )
            .await?;
        proto::rows(&res, 0)?
            .first()
            .map(|r| proto::parse_map(proto::column(r, "external_ids")?))
            .transpose()
    }

    /// See [`Switch::set_interface_external_ids`]. [`Error::InterfaceNotFound`] if
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
            vec![
                json!({"op": "mutate", "table": "Interface", "where": [eq("name", json!(name))],
                        "mutations": [["external_ids", "delete", proto::set(keys)]]}),
            ],
        )
        .await?;
        Ok(())
    }

    /// See [`Switch::update_interface_external_ids`]: set `set` and remove
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
        let removed: Vec<Value> = remove
            .iter()
            .filter(|k| !set.contains_key(**k))
            .map(|k| json!(k))
            .collect();
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
        let id = format!(
            "netplumb-{}",
            self.monitor_seq.fetch_add(1, Ordering::Relaxed)
        );
        let mut updates = conn.register_monitor(&id);
        let guard = MonitorGuard {
            conn: Arc::clone(&conn),
            id: id.clone(),
            rpc_timeout: self.rpc_timeout,
        };
        let rpc_timeout = self.rpc_timeout.min(timeout.max(Duration::from_millis(1)));
        let initial = conn
            .call(
                "monitor_cond",
                proto::monitor_iface_params(&id, name),
                rpc_timeout,
            )
            .await?;
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

    /// See [`Switch::wait_ovn_installed`].
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
            .wait_interface(name, timeout, "an ofport", |s| {
                s.ofport.is_some_and(|p| p > 0)
            })
            .await?;
        state
            .ofport
            .ok_or_else(|| Error::OvsdbProtocol("ofport vanished".into()))
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
            .transact(
                &format!("add-br {name}"),
                proto::add_bridge_ops(name, datapath.as_str()),
            )
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
        self.transact(
            &format!("del-br {name}"),
            proto::del_bridge_ops(&uuid, name),
        )
        .await?;
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
            .ok_or_else(|| Error::BridgeNotFound {
                name: bridge.into(),
            })?;
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
        let res = self
            .transact(
                "find bridge",
                vec![select("Bridge", vec![eq("name", json!(name))], &["_uuid"])],
            )
            .await?;
        proto::rows(&res, 0)?
            .first()
            .map(|r| proto::parse_uuid(proto::column(r, "_uuid")?))
            .transpose()
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
        Box::pin(OvsdbClient::update_interface_external_ids(
            self, name, set, remove,
        ))
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
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    /// A server that answers one `list_dbs` per connection, then hangs up.
    async fn one_shot_server(listener: UnixListener, connections: usize) {
        for _ in 0..connections {
            let (stream, _) = listener.accept().await.unwrap();
            let (rd, mut wr) = stream.into_split();
            let mut lines = BufReader::new(rd).lines();
            let req: Value =
                serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
            assert_eq!(req["method"], "list_dbs");
            let reply = json!({"id": req["id"], "result": [DB], "error": null});
            wr.write_all(reply.to_string().as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn reconnects_after_the_server_hangs_up() {
        let dir = std::env::temp_dir().join(format!("knp-ovsdb-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sock");
        let _ = std::fs::remove_file(&path);
        let server = tokio::spawn(one_shot_server(UnixListener::bind(&path).unwrap(), 2));

        let client = OvsdbClient::new(&path).with_rpc_timeout(Duration::from_secs(5));
        client.connect().await.unwrap();
        // Let the reader notice the hang-up.
        for _ in 0..500 {
            let closed = client
                .conn
                .lock()
                .await
                .as_ref()
                .is_some_and(|c| c.is_closed());
            if closed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        client.connect().await.unwrap();
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn missing_socket_is_a_connect_error() {
        let client = OvsdbClient::new("/nonexistent/knp/db.sock");
        let err = client.connect().await.unwrap_err();
        assert!(matches!(err, Error::OvsdbConnect { .. }), "{err}");
        let err = client.delete_port(None, "tap0").await.unwrap_err();
        assert!(matches!(err, Error::OvsdbConnect { .. }), "{err}");
        // Validation happens before any I/O.
        let err = client.delete_port(None, "bad name").await.unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    }
}
