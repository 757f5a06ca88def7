//! Unit tests of `gc`.

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
    assert_eq!(parse_timestamp("2026-11-28T04:00:00.123+00:00"), parse_timestamp(NOW));
    assert_eq!(parse_timestamp("garbage"), None);
}

#[test]
fn unrecorded_owner_is_read_from_ovsdb() {
    // The owner PUT failed (or a crash came first): Neutron still says
    // kuryr-unbound-port, OVSDB knows the endpoint.
    let unrecorded = port(P1, naming::UNBOUND_PORT_NAME, "", &["compute:kuryr"], HOUR_AGO);
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
    let unbound = port(P3, naming::UNBOUND_PORT_NAME, "", &["compute:kuryr"], HOUR_AGO);
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
        Ok(Some(DockerNetwork { driver: "other".into(), endpoints: BTreeSet::new() })),
    );
    assert!(plan(&s, &zero).actions.is_empty());
    // Docker network gone: garbage.
    s.docker.insert(DNET.into(), Ok(None));
    assert_eq!(plan(&s, &zero).actions.len(), 1);
}

#[test]
fn adopted_is_reset_pool_is_kept() {
    let adopted = port(P1, "mine", "", &[naming::EXISTING_PORT_TAG], HOUR_AGO);
    let pool = port(P2, POOL_PORT_NAME, "", &["compute:kuryr", POOL_PORT_TAG], HOUR_AGO);
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
    let tags =
        ["compute:kuryr", "kuryr.cni.cid.lh:abc", "kuryr.cni.cid.uh:def", "kuryr.cni.ifname:eth0"];
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
    let a = Action::RemoveVeth { ifname: "t".into(), reason: "r".into() };
    assert_eq!(summary(&[a.clone(), a])["veths removed"], 2);
}
