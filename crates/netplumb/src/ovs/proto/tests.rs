use super::*;
use crate::ovs::InterfaceType;

fn ids(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn neutron_spec() -> PortSpec {
    PortSpec::new("br-int", "tap1234")
        .external_id("iface-id", "5e0f…port")
        .external_id("attached-mac", "fa:16:3e:00:00:01")
        .external_id("iface-status", "active")
        .external_id("vm-uuid", "c0ffee")
}

#[test]
fn encodings() {
    assert_eq!(map(&ids(&[("a", "1"), ("b", "2")])), json!(["map", [["a", "1"], ["b", "2"]]]));
    assert_eq!(map(&BTreeMap::new()), json!(["map", []]));
    assert_eq!(uuid("x"), json!(["uuid", "x"]));
    assert_eq!(named_uuid("n"), json!(["named-uuid", "n"]));
    assert_eq!(set(vec![json!(1)]), json!(["set", [1]]));
}

#[test]
fn decodings() {
    assert_eq!(parse_map(&json!(["map", [["k", "v"]]])).unwrap(), ids(&[("k", "v")]));
    assert!(parse_map(&json!(["set", []])).is_err());
    assert!(parse_map(&json!(["map", [["k", 1]]])).is_err());
    assert_eq!(parse_uuid_set(&json!(["uuid", "a"])).unwrap(), vec!["a"]);
    assert_eq!(
        parse_uuid_set(&json!(["set", [["uuid", "a"], ["uuid", "b"]]])).unwrap(),
        vec!["a", "b"]
    );
    assert_eq!(parse_uuid_set(&json!(["set", []])).unwrap(), Vec::<String>::new());
    assert_eq!(parse_opt_int(&json!(["set", []])).unwrap(), None);
    assert_eq!(parse_opt_int(&json!(7)).unwrap(), Some(7));
    assert_eq!(parse_opt_int(&json!(["set", [-1]])).unwrap(), Some(-1));
    assert!(parse_opt_int(&json!(["set", [1, 2]])).is_err());
    assert_eq!(parse_opt_string(&json!("boom")).unwrap(), Some("boom".into()));
}

#[test]
fn transact_errors_are_typed() {
    let ok = check_transact("t", 2, json!([{"rows": []}, {"count": 1}])).unwrap();
    assert_eq!(count(&ok, 1).unwrap(), 1);
    let err =
        check_transact("add-port", 2, json!([{"error": "timed out", "details": "wait"}, null]))
            .unwrap_err();
    assert!(is_wait_failure(&err));
    assert_eq!(err.to_string(), "ovsdb transaction (add-port) failed: timed out: wait");
    // Commit failure reported as an extra element.
    let err =
        check_transact("x", 1, json!([{}, {"error": "constraint violation", "details": "dup"}]))
            .unwrap_err();
    assert!(
        matches!(err, Error::OvsdbTransaction { ref error, .. } if error == "constraint violation")
    );
    assert!(!is_wait_failure(&err));
    assert!(check_transact("x", 2, json!([{}])).is_err());
    assert!(check_transact("x", 1, json!({"not": "array"})).is_err());
}

#[test]
fn add_port_insert_shape() {
    let spec = neutron_spec();
    let ops = add_port_insert_ops(&spec);
    assert_eq!(
        ops[0],
        json!({"op": "wait", "timeout": 0, "table": "Port", "where": [["name", "==", "tap1234"]],
               "columns": ["name"], "until": "==", "rows": []})
    );
    assert_eq!(
        ops[1],
        json!({"op": "wait", "timeout": 0, "table": "Bridge", "where": [["name", "==", "br-int"]],
               "columns": ["name"], "until": "==", "rows": [{"name": "br-int"}]})
    );
    assert_eq!(
        ops[2],
        json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
               "row": {"name": "tap1234", "type": "", "external_ids": ["map", [
                   ["attached-mac", "fa:16:3e:00:00:01"], ["iface-id", "5e0f…port"],
                   ["iface-status", "active"], ["vm-uuid", "c0ffee"]]]}})
    );
    assert_eq!(
        ops[3],
        json!({"op": "insert", "table": "Port", "uuid-name": "port",
               "row": {"name": "tap1234", "interfaces": ["named-uuid", "iface"]}})
    );
    assert_eq!(
        ops[4],
        json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", "br-int"]],
               "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]})
    );
    assert_eq!(ops[5]["op"], "comment");

    let tagged = PortSpec::new("br", "p").iface_type(InterfaceType::Internal).tag(100);
    let ops = add_port_insert_ops(&tagged);
    assert_eq!(ops[2]["row"]["type"], "internal");
    assert_eq!(ops[3]["row"]["tag"], 100);
}

#[test]
fn add_port_update_keeps_other_keys() {
    let spec = neutron_spec().tag(7);
    let ops = add_port_update_ops(&spec, "P-UUID", "I-UUID", false);
    assert_eq!(
        ops[0]["where"],
        json!([["name", "==", "br-int"], ["ports", "includes", ["set", [["uuid", "P-UUID"]]]]])
    );
    assert_eq!(
        ops[1],
        json!({"op": "mutate", "table": "Interface", "where": [["_uuid", "==", ["uuid", "I-UUID"]]],
               "mutations": [
                   ["external_ids", "delete", ["set", ["attached-mac", "iface-id", "iface-status", "vm-uuid"]]],
                   ["external_ids", "insert", ["map", [
                       ["attached-mac", "fa:16:3e:00:00:01"], ["iface-id", "5e0f…port"],
                       ["iface-status", "active"], ["vm-uuid", "c0ffee"]]]]]})
    );
    assert_eq!(
        ops[2],
        json!({"op": "update", "table": "Port", "where": [["_uuid", "==", ["uuid", "P-UUID"]]], "row": {"tag": 7}})
    );
    let with_type = add_port_update_ops(&PortSpec::new("b", "p"), "P", "I", true);
    assert_eq!(with_type[1]["row"], json!({"type": ""}));
}

#[test]
fn del_port_and_bridge_shapes() {
    let ops = del_port_ops("B", "P", "tap0");
    assert_eq!(
        ops[1],
        json!({"op": "mutate", "table": "Bridge", "where": [["_uuid", "==", ["uuid", "B"]]],
               "mutations": [["ports", "delete", ["set", [["uuid", "P"]]]]]})
    );
    let ops = add_bridge_ops("knp-br1", "netdev");
    assert_eq!(
        ops[3]["row"],
        json!({"name": "knp-br1", "ports": ["named-uuid", "port"], "datapath_type": "netdev"})
    );
    assert_eq!(
        ops[4]["mutations"],
        json!([["bridges", "insert", ["set", [["named-uuid", "br"]]]]])
    );
    assert_eq!(
        del_bridge_ops("U", "b")[0]["mutations"],
        json!([["bridges", "delete", ["set", [["uuid", "U"]]]]])
    );
}

#[test]
fn monitor_cond_shape() {
    assert_eq!(
        monitor_iface_params("m1", "tap0"),
        json!(["Open_vSwitch", "m1", {"Interface": [{
            "columns": ["name", "external_ids", "ofport", "error"],
            "where": [["name", "==", "tap0"]]}]}])
    );
}

#[test]
fn update2_initial_modify_delete() {
    let mut rows = BTreeMap::new();
    apply_interface_updates(
        &mut rows,
        &json!({"Interface": {"u1": {"initial": {
            "name": "tap0", "external_ids": ["map", [["iface-id", "p1"], ["old", "x"]]],
            "ofport": ["set", []], "error": ["set", []]}}}}),
    )
    .unwrap();
    assert_eq!(rows["u1"].ofport, None);

    // Default-valued columns are omitted from initial/insert rows.
    apply_interface_updates(&mut rows, &json!({"Interface": {"u2": {"insert": {"name": "tap1"}}}}))
        .unwrap();
    assert_eq!(rows["u2"].external_ids, BTreeMap::new());
    assert_eq!(rows["u2"].ofport, None);
    rows.remove("u2");

    // ofport assigned, a key added, a key changed, a key removed.
    apply_interface_updates(
        &mut rows,
        &json!({"Interface": {"u1": {"modify": {
            "ofport": 5,
            "external_ids": ["map", [["ovn-installed", "true"], ["iface-id", "p2"], ["old", "x"]]]}}}}),
    )
    .unwrap();
    let s = &rows["u1"];
    assert_eq!(s.ofport, Some(5));
    assert_eq!(s.external_ids, ids(&[("iface-id", "p2"), ("ovn-installed", "true")]));

    // ofport -1 → 7 arrives as the symmetric difference {5, 7}... from 5.
    apply_interface_updates(
        &mut rows,
        &json!({"Interface": {"u1": {"modify": {"ofport": ["set", [5, 7]], "error": "oops"}}}}),
    )
    .unwrap();
    assert_eq!(rows["u1"].ofport, Some(7));
    assert_eq!(rows["u1"].error.as_deref(), Some("oops"));
    apply_interface_updates(
        &mut rows,
        &json!({"Interface": {"u1": {"modify": {"error": "oops"}}}}),
    )
    .unwrap();
    assert_eq!(rows["u1"].error, None);

    apply_interface_updates(&mut rows, &json!({"Interface": {"u1": {"delete": null}}})).unwrap();
    assert!(rows.is_empty());
    assert!(
        apply_interface_updates(&mut rows, &json!({"Interface": {"u9": {"modify": {}}}})).is_err()
    );
    assert!(
        apply_interface_updates(&mut rows, &json!({"Interface": {"u9": {"bogus": {}}}})).is_err()
    );
    // Other tables are ignored.
    apply_interface_updates(&mut rows, &json!({"Port": {"x": {"delete": null}}})).unwrap();
}
