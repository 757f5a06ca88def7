//! Functional tests of `kuryr gc` against the real stack: leaks made on
//! purpose (a port left by a killed RequestAddress, a CNI port whose netns
//! is gone, a veth whose port is gone, an OVS port without a Neutron port,
//! an adopted port whose endpoint is gone) are listed by `--dry-run`, which
//! removes nothing, and removed by `gc`, which leaves a live container's
//! port, a live CNI attachment and everything foreign alone.
//!
//! `eval "$(scripts/stack env)"; cargo test -p kuryr --test gc`.

use kuryr_testkit::*;
use openstack::neutron::{FixedIpRequest, Port, PortCreate, Query, Resource};

const DEVICE_OWNER: &str = "compute:kuryr";

/// `kuryr gc <args>` with the fixture's config, scoped to `network`.
fn kuryr_gc(f: &Fixture, network: &str, args: &[&str]) -> (bool, String) {
    let socket = f.kuryr.socket.to_string_lossy().into_owned();
    let mut all = vec!["gc", "--network", network, "--plugin-socket", &socket];
    all.extend_from_slice(args);
    f.kuryr_command(&all)
}

/// A port left by a RequestAddress whose CreateEndpoint never came:
/// ours, unbound.
fn unbound_port(f: &Fixture, network: &str) -> Port {
    let body = ours(f, network, "kuryr-unbound-port", "", &[DEVICE_OWNER]);
    make_port(f, network, body)
}

fn make_port(f: &Fixture, network: &str, body: PortCreate) -> Port {
    let s = &f.stack;
    let subnet = s.subnets(Query::new().network_id(network)).remove(0);
    let port = s
        .block_on(s.neutron.create_port(&PortCreate {
            fixed_ips: Some(vec![FixedIpRequest { subnet_id: Some(subnet.id), ip_address: None }]),
            ..body
        }))
        .expect("creating a port");
    f.made(Resource::Ports, &port.id);
    port
}

fn ours(f: &Fixture, network: &str, name: &str, device_id: &str, tags: &[&str]) -> PortCreate {
    PortCreate {
        name: Some(name.into()),
        device_owner: Some(DEVICE_OWNER.into()),
        device_id: Some(device_id.into()),
        binding_host_id: Some(f.stack.local().host.clone()),
        tags: Some(tags.iter().map(ToString::to_string).collect()),
        ..PortCreate::new(network)
    }
}

/// A port as the CNI daemon makes one for container `cid` on `eth0`
/// (Neutron side only).
fn cni_port(f: &Fixture, network: &str, cid: &str) -> Port {
    let cid_tag = format!("kuryr.cni.cid.lh:{cid}");
    let tags = [DEVICE_OWNER, &cid_tag, "kuryr.cni.ifname:eth0", "kuryr.cni.net:gc"];
    make_port(f, network, ours(f, network, &format!("kuryr-cni-{cid}-eth0"), cid, &tags))
}

fn veth(name: &str) {
    let peer = format!("t_c{}", &name[3..]);
    ok("ip", &["link", "add", name, "type", "veth", "peer", "name", &peer]);
}

fn ovs_port(name: &str, iface_id: &str) {
    veth(name);
    ok(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "add-port",
            "br-int",
            name,
            "--",
            "set",
            "Interface",
            name,
            &format!("external_ids:iface-id={iface_id}"),
            "external_ids:vm-uuid=gc-test-leak",
        ],
    );
}

fn would(out: &str, what: &str, id: &str) -> bool {
    out.lines().any(|l| l.starts_with(&format!("would {what}")) && l.contains(id))
}

fn did(out: &str, what: &str, id: &str) -> bool {
    out.lines().any(|l| l.starts_with(what) && l.contains(id))
}

fn mentioned_for_removal(out: &str, id: &str) -> bool {
    out.lines().any(|l| l.contains(id) && !l.starts_with("keep port"))
}

#[test]
fn gc_lists_then_removes_exactly_the_leaks() {
    let f = fixture_or_skip!("gc_lists_then_removes_exactly_the_leaks");
    let s = &f.stack;
    let (_, net, _, network) = f.fresh_neutron_network();
    let live = f.run_detached(&f.name("live"), &net, &[]);
    let live_port = s.port_of_endpoint(&live.endpoint);
    let (live_veth, _) = veth_names(&live_port.id);

    // A port left by a RequestAddress whose CreateEndpoint never came.
    let unbound = unbound_port(&f, &network.id);
    // A CNI attachment whose netns (and so its veth) is gone.
    let cni_dead = cni_port(&f, &network.id, "gcdead");
    // A CNI attachment alive: its host veth exists.
    let cni_live = cni_port(&f, &network.id, "gclive");
    let (cni_live_veth, _) = veth_names(&cni_live.id);
    veth(&cni_live_veth);
    // An adopted port whose endpoint Docker no longer has.
    let adopted = make_port(
        &f,
        &network.id,
        ours(&f, &network.id, "operator-port", &hex(64), &["kuryr.port.existing", "operator"]),
    );
    // Host devices whose Neutron port does not exist.
    let (lost_veth, _) = veth_names(&fresh_uuid());
    veth(&lost_veth);
    let lost_ovs_id = fresh_uuid();
    let (lost_ovs, _) = veth_names(&lost_ovs_id);
    ovs_port(&lost_ovs, &lost_ovs_id);

    // The default grace keeps the fresh unbound port.
    let (success, out) = kuryr_gc(&f, &network.id, &["--dry-run"]);
    assert!(success);
    assert!(did(&out, "keep port", &unbound.id), "a fresh address port is kept: {out}");

    let (success, out) = kuryr_gc(&f, &network.id, &["--dry-run", "--min-age", "0"]);
    assert!(success);
    assert!(would(&out, "delete port", &unbound.id), "{out}");
    assert!(would(&out, "delete port", &cni_dead.id), "{out}");
    assert!(would(&out, "reset port", &adopted.id), "{out}");
    assert!(would(&out, "remove veth", &lost_veth), "{out}");
    assert!(would(&out, "remove OVS port", &lost_ovs), "{out}");
    for id in [&live_port.id, &cni_live.id] {
        assert!(!mentioned_for_removal(&out, id), "{id} is in use: {out}");
    }
    // The dry run removed nothing.
    for id in [&unbound.id, &cni_dead.id, &adopted.id] {
        assert!(s.port(id).is_some(), "dry run deleted {id}");
    }
    assert!(link_exists(&lost_veth) && link_exists(&lost_ovs));
    assert!(s.local().ovs_ports().contains(&lost_ovs));
    let adopted_now = s.port(&adopted.id).expect("adopted port");
    assert_eq!(adopted_now.device_owner, DEVICE_OWNER, "dry run reset it");

    let (success, out) = kuryr_gc(&f, &network.id, &["--min-age", "0"]);
    assert!(success, "{out}");
    assert!(did(&out, "delete port", &unbound.id), "{out}");
    assert!(did(&out, "reset port", &adopted.id), "{out}");
    assert!(s.port(&unbound.id).is_none(), "unbound port left");
    assert!(s.port(&cni_dead.id).is_none(), "dead CNI port left");
    assert!(!link_exists(&lost_veth), "veth {lost_veth} left");
    assert!(!link_exists(&lost_ovs), "veth {lost_ovs} left");
    assert!(!s.local().ovs_ports().contains(&lost_ovs), "OVS port left");
    let reset = s.port(&adopted.id).expect("an adopted port is never deleted");
    assert_eq!(reset.device_owner, "");
    assert_eq!(reset.device_id, "");
    assert_eq!(reset.binding_host_id, "");
    assert_eq!(reset.tags, vec!["operator".to_string()]);
    // What is in use is untouched.
    assert!(s.port(&live_port.id).is_some(), "live container's port");
    assert!(link_exists(&live_veth), "live container's veth");
    assert!(s.port(&cni_live.id).is_some(), "live CNI port");
    assert!(link_exists(&cni_live_veth));

    // A second pass finds nothing more on this network.
    let (_, out) = kuryr_gc(&f, &network.id, &["--dry-run", "--min-age", "0"]);
    for id in [&live_port.id, &cni_live.id, &adopted.id, &unbound.id] {
        assert!(!mentioned_for_removal(&out, id), "{out}");
    }
    let _ = run("ip", &["link", "del", &cni_live_veth]);
}

#[test]
fn gc_keeps_docker_ports_when_docker_does_not_answer() {
    let f = fixture_or_skip!("gc_keeps_docker_ports_when_docker_does_not_answer");
    let s = &f.stack;
    let (_, _, _, network) = f.fresh_neutron_network();
    let unbound = unbound_port(&f, &network.id);
    let (success, out) = kuryr_gc(
        &f,
        &network.id,
        &["--min-age", "0", "--docker-socket", "/nonexistent/docker.sock"],
    );
    assert!(success, "{out}");
    assert!(did(&out, "keep port", &unbound.id), "{out}");
    assert!(out.contains("Docker did not answer"), "{out}");
    assert!(s.port(&unbound.id).is_some(), "deleted on doubt");
}
