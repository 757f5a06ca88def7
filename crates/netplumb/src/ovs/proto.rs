//! RFC 7047 value encoding and the transactions we send, as pure functions
//! (unit-tested for their exact JSON shape), plus `update2` diff handling.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::ovs::{InterfaceState, PortSpec};

/// The database served by ovsdb-server for Open vSwitch.
pub(crate) const DB: &str = "Open_vSwitch";

// ----- encoding ----------------------------------------------------------

/// `["map", [[k, v], ...]]`
pub(crate) fn map(m: &BTreeMap<String, String>) -> Value {
    json!(["map", m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])
}

/// `["set", [...]]`
pub(crate) fn set(items: Vec<Value>) -> Value {
    json!(["set", items])
}

/// `["uuid", "..."]`
pub(crate) fn uuid(u: &str) -> Value {
    json!(["uuid", u])
}

/// `["named-uuid", "..."]`
pub(crate) fn named_uuid(n: &str) -> Value {
    json!(["named-uuid", n])
}

/// `[column, "==", value]`
pub(crate) fn eq(column: &str, value: Value) -> Value {
    json!([column, "==", value])
}

pub(crate) fn select(table: &str, conditions: Vec<Value>, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": conditions, "columns": columns})
}

/// A `wait` with timeout 0: fails the whole transaction ("timed out") at once
/// unless the rows matching `conditions` (projected on `columns`) compare
/// `until` ("==" or "!=") to `rows`. This is how we make read-then-write
/// sequences safe against concurrent writers, like the IDL's `verify`.
pub(crate) fn wait(
    table: &str,
    conditions: Vec<Value>,
    columns: &[&str],
    until: &str,
    rows: Vec<Value>,
) -> Value {
    json!({"op": "wait", "timeout": 0, "table": table, "where": conditions,
           "columns": columns, "until": until, "rows": rows})
}

fn comment(text: String) -> Value {
    json!({"op": "comment", "comment": text})
}

/// Mutations replacing some keys of a map column while keeping the others
/// (e.g. `ovn-installed`, written by ovn-controller): delete the keys, then
/// insert the pairs. A plain `insert` would not overwrite existing keys.
pub(crate) fn map_upsert_mutations(column: &str, m: &BTreeMap<String, String>) -> Vec<Value> {
    let keys: Vec<Value> = m.keys().map(|k| json!(k)).collect();
    vec![json!([column, "delete", set(keys)]), json!([column, "insert", map(m)])]
}

// ----- decoding ----------------------------------------------------------

fn proto(msg: impl Into<String>) -> Error {
    Error::OvsdbProtocol(msg.into())
}

/// The elements of a set column: `["set", [...]]` or a single bare atom.
fn set_elems(v: &Value) -> Vec<&Value> {
    match v.as_array() {
        Some(a) if a.len() == 2 && a[0] == "set" => {
            a[1].as_array().map(|e| e.iter().collect()).unwrap_or_default()
        }
        _ => vec![v],
    }
}

pub(crate) fn parse_uuid(v: &Value) -> Result<String> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::String(u)]) if tag == "uuid" => Ok(u.clone()),
        _ => Err(proto(format!("expected uuid, got {v}"))),
    }
}

pub(crate) fn parse_uuid_set(v: &Value) -> Result<Vec<String>> {
    set_elems(v).into_iter().map(parse_uuid).collect()
}

pub(crate) fn parse_map(v: &Value) -> Result<BTreeMap<String, String>> {
    let bad = || proto(format!("expected string map, got {v}"));
    let arr = v.as_array().ok_or_else(bad)?;
    if arr.len() != 2 || arr[0] != "map" {
        return Err(bad());
    }
    let mut out = BTreeMap::new();
    for pair in arr[1].as_array().ok_or_else(bad)? {
        match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(k), Value::String(v)]) => {
                out.insert(k.clone(), v.clone());
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn parse_opt<T>(v: &Value, what: &str, f: impl Fn(&Value) -> Option<T>) -> Result<Option<T>> {
    let elems = set_elems(v);
    match elems.as_slice() {
        [] => Ok(None),
        [one] => {
            f(one).map(Some).ok_or_else(|| proto(format!("expected optional {what}, got {v}")))
        }
        _ => Err(proto(format!("expected at most one {what}, got {v}"))),
    }
}

pub(crate) fn parse_opt_int(v: &Value) -> Result<Option<i64>> {
    parse_opt(v, "integer", Value::as_i64)
}

pub(crate) fn parse_opt_string(v: &Value) -> Result<Option<String>> {
    parse_opt(v, "string", |x| x.as_str().map(str::to_string))
}

pub(crate) fn column<'a>(row: &'a Value, name: &str) -> Result<&'a Value> {
    row.get(name).ok_or_else(|| proto(format!("row lacks column {name:?}: {row}")))
}

pub(crate) fn column_str(row: &Value, name: &str) -> Result<String> {
    column(row, name)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| proto(format!("column {name:?} is not a string: {row}")))
}

/// Rows of the `i`-th operation's result (a `select`).
pub(crate) fn rows(results: &[Value], i: usize) -> Result<&Vec<Value>> {
    results
        .get(i)
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .ok_or_else(|| proto(format!("result {i} has no rows")))
}

/// `count` of the `i`-th operation's result (update, mutate, delete).
pub(crate) fn count(results: &[Value], i: usize) -> Result<u64> {
    results
        .get(i)
        .and_then(|r| r.get("count"))
        .and_then(Value::as_u64)
        .ok_or_else(|| proto(format!("result {i} has no count")))
}

/// Check a `transact` reply: any operation (or the commit, reported as an
/// extra trailing element) carrying `error` fails the whole call.
pub(crate) fn check_transact(what: &str, n_ops: usize, result: Value) -> Result<Vec<Value>> {
    let Value::Array(results) = result else {
        return Err(proto(format!("transact result is not an array: {result}")));
    };
    if let Some(failed) = results.iter().find(|r| r.get("error").is_some_and(|e| !e.is_null())) {
        return Err(Error::OvsdbTransaction {
            what: what.into(),
            error: failed.get("error").map(value_text).unwrap_or_default(),
            details: failed.get("details").map(value_text),
        });
    }
    if results.len() < n_ops {
        return Err(proto(format!(
            "transact returned {} results for {n_ops} operations",
            results.len()
        )));
    }
    Ok(results)
}

pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// True when a transaction failed because one of our `wait` preconditions no
/// longer held (someone changed the rows meanwhile): re-read and retry.
pub(crate) fn is_wait_failure(e: &Error) -> bool {
    matches!(e, Error::OvsdbTransaction { error, .. } if error == "timed out")
}

// ----- transactions ------------------------------------------------------

/// Read what add-port needs: the bridge (and its ports), the port and the
/// interface of that name.
pub(crate) fn add_port_read_ops(spec: &PortSpec) -> Vec<Value> {
    vec![
        select("Bridge", vec![eq("name", json!(spec.bridge))], &["_uuid", "ports"]),
        select("Port", vec![eq("name", json!(spec.port))], &["_uuid", "interfaces"]),
        select("Interface", vec![eq("name", json!(spec.port))], &["_uuid", "type"]),
    ]
}

/// Create Interface + Port and attach the port to the bridge, in one
/// transaction guarded by "the port still does not exist" and "the bridge
/// exists".
pub(crate) fn add_port_insert_ops(spec: &PortSpec) -> Vec<Value> {
    let mut port_row = json!({"name": spec.port, "interfaces": named_uuid("iface")});
    if let Some(tag) = spec.tag {
        port_row["tag"] = json!(tag);
    }
    vec![
        wait("Port", vec![eq("name", json!(spec.port))], &["name"], "==", vec![]),
        wait(
            "Bridge",
            vec![eq("name", json!(spec.bridge))],
            &["name"],
            "==",
            vec![json!({"name": spec.bridge})],
        ),
        json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
               "row": {"name": spec.port, "type": spec.iface_type.as_str(), "external_ids": map(&spec.external_ids)}}),
        json!({"op": "insert", "table": "Port", "uuid-name": "port", "row": port_row}),
        json!({"op": "mutate", "table": "Bridge", "where": [eq("name", json!(spec.bridge))],
               "mutations": [["ports", "insert", set(vec![named_uuid("port")])]]}),
        comment(format!("netplumb: add-port {} {}", spec.bridge, spec.port)),
    ]
}

/// may-exist: the port is already on the bridge, so only refresh the
/// interface's external_ids (keeping other keys), its type if it differs,
/// and the tag if one is asked for. Guarded by "the port is still on the
/// bridge".
pub(crate) fn add_port_update_ops(
    spec: &PortSpec,
    port_uuid: &str,
    iface_uuid: &str,
    set_type: bool,
) -> Vec<Value> {
    let mut ops = vec![wait(
        "Bridge",
        vec![
            eq("name", json!(spec.bridge)),
            json!(["ports", "includes", set(vec![uuid(port_uuid)])]),
        ],
        &["name"],
        "==",
        vec![json!({"name": spec.bridge})],
    )];
    if !spec.external_ids.is_empty() {
        ops.push(
            json!({"op": "mutate", "table": "Interface", "where": [eq("_uuid", uuid(iface_uuid))],
                        "mutations": map_upsert_mutations("external_ids", &spec.external_ids)}),
        );
    }
    if set_type {
        ops.push(
            json!({"op": "update", "table": "Interface", "where": [eq("_uuid", uuid(iface_uuid))],
                        "row": {"type": spec.iface_type.as_str()}}),
        );
    }
    if let Some(tag) = spec.tag {
        ops.push(json!({"op": "update", "table": "Port", "where": [eq("_uuid", uuid(port_uuid))],
                        "row": {"tag": tag}}));
    }
    ops.push(comment(format!("netplumb: add-port --may-exist {} {}", spec.bridge, spec.port)));
    ops
}

/// Detach a port from its bridge; OVSDB garbage-collects the Port and its
/// Interfaces (they are not root tables). Guarded by "still attached".
pub(crate) fn del_port_ops(bridge_uuid: &str, port_uuid: &str, port: &str) -> Vec<Value> {
    vec![
        wait(
            "Bridge",
            vec![
                eq("_uuid", uuid(bridge_uuid)),
                json!(["ports", "includes", set(vec![uuid(port_uuid)])]),
            ],
            &["_uuid"],
            "==",
            vec![json!({"_uuid": uuid(bridge_uuid)})],
        ),
        json!({"op": "mutate", "table": "Bridge", "where": [eq("_uuid", uuid(bridge_uuid))],
               "mutations": [["ports", "delete", set(vec![uuid(port_uuid)])]]}),
        comment(format!("netplumb: del-port {port}")),
    ]
}

/// Create a bridge with its internal port, like `ovs-vsctl add-br`.
pub(crate) fn add_bridge_ops(name: &str, datapath_type: &str) -> Vec<Value> {
    vec![
        wait("Bridge", vec![eq("name", json!(name))], &["name"], "==", vec![]),
        json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
               "row": {"name": name, "type": "internal"}}),
        json!({"op": "insert", "table": "Port", "uuid-name": "port",
               "row": {"name": name, "interfaces": named_uuid("iface")}}),
        json!({"op": "insert", "table": "Bridge", "uuid-name": "br",
               "row": {"name": name, "ports": named_uuid("port"), "datapath_type": datapath_type}}),
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
               "mutations": [["bridges", "insert", set(vec![named_uuid("br")])]]}),
        comment(format!("netplumb: add-br {name}")),
    ]
}

pub(crate) fn del_bridge_ops(bridge_uuid: &str, name: &str) -> Vec<Value> {
    vec![
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
               "mutations": [["bridges", "delete", set(vec![uuid(bridge_uuid)])]]}),
        comment(format!("netplumb: del-br {name}")),
    ]
}

/// Columns monitored on Interface by the waiters.
pub(crate) const IFACE_MONITOR_COLUMNS: [&str; 4] = ["name", "external_ids", "ofport", "error"];

/// `monitor_cond` params watching one Interface row by name.
pub(crate) fn monitor_iface_params(monitor_id: &str, name: &str) -> Value {
    json!([DB, monitor_id, {"Interface": [{
        "columns": IFACE_MONITOR_COLUMNS,
        "where": [eq("name", json!(name))],
    }]}])
}

// ----- update2 -----------------------------------------------------------

impl InterfaceState {
    /// From an `update2` "initial"/"insert" row, which omits every column
    /// still at its default value (empty map, empty set).
    pub(crate) fn from_row(row: &Value) -> Result<Self> {
        Ok(InterfaceState {
            name: column_str(row, "name")?,
            external_ids: row.get("external_ids").map(parse_map).transpose()?.unwrap_or_default(),
            ofport: row.get("ofport").map(parse_opt_int).transpose()?.flatten(),
            error: row.get("error").map(parse_opt_string).transpose()?.flatten(),
        })
    }

    /// Apply an `update2` "modify" diff (ovsdb-server(7)): scalar columns
    /// carry the new value; set columns the symmetric difference; map columns
    /// pairs to add (new key), remove (same key and value) or change (same
    /// key, new value).
    pub(crate) fn apply_diff(&mut self, diff: &Value) -> Result<()> {
        if let Some(v) = diff.get("name") {
            self.name = v.as_str().ok_or_else(|| proto("name is not a string"))?.to_string();
        }
        if let Some(v) = diff.get("external_ids") {
            for (k, val) in parse_map(v)? {
                match self.external_ids.get(&k) {
                    Some(old) if *old == val => {
                        self.external_ids.remove(&k);
                    }
                    _ => {
                        self.external_ids.insert(k, val);
                    }
                }
            }
        }
        if let Some(v) = diff.get("ofport") {
            let elems: Vec<i64> = set_elems(v)
                .into_iter()
                .map(|e| e.as_i64().ok_or_else(|| proto(format!("bad ofport diff {v}"))))
                .collect::<Result<_>>()?;
            self.ofport = xor_optional(self.ofport, elems, "ofport")?;
        }
        if let Some(v) = diff.get("error") {
            let elems: Vec<String> = set_elems(v)
                .into_iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| proto(format!("bad error diff {v}")))
                })
                .collect::<Result<_>>()?;
            self.error = xor_optional(self.error.take(), elems, "error")?;
        }
        Ok(())
    }
}

fn xor_optional<T: PartialEq>(current: Option<T>, diff: Vec<T>, what: &str) -> Result<Option<T>> {
    let mut out: Vec<T> = current.into_iter().collect();
    for e in diff {
        if let Some(pos) = out.iter().position(|x| *x == e) {
            out.remove(pos);
        } else {
            out.push(e);
        }
    }
    match out.len() {
        0 => Ok(None),
        1 => Ok(out.pop()),
        _ => Err(proto(format!("{what} diff leaves more than one value"))),
    }
}

/// Apply `table-updates2` for the Interface table to `rows` (keyed by row
/// uuid).
pub(crate) fn apply_interface_updates(
    rows: &mut BTreeMap<String, InterfaceState>,
    updates: &Value,
) -> Result<()> {
    let Some(table) = updates.get("Interface") else {
        return Ok(());
    };
    let table = table.as_object().ok_or_else(|| proto(format!("bad table-updates2: {updates}")))?;
    for (row_uuid, update) in table {
        if let Some(row) = update.get("initial").or_else(|| update.get("insert")) {
            rows.insert(row_uuid.clone(), InterfaceState::from_row(row)?);
        } else if let Some(diff) = update.get("modify") {
            match rows.get_mut(row_uuid) {
                Some(state) => state.apply_diff(diff)?,
                None => return Err(proto(format!("modify for unknown row {row_uuid}"))),
            }
        } else if update.get("delete").is_some() {
            rows.remove(row_uuid);
        } else {
            return Err(proto(format!("bad row-update2: {update}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
