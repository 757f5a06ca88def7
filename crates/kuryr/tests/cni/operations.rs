//! The daemon's housekeeping: GC of leaked attachments, STATUS following
//! Neutron, and bad configuration's error codes.

use super::*;

#[test]
fn gc_removes_leaked_and_keeps_valid() {
    let mut f = cni_fixture!("gc_removes_leaked_and_keeps_valid");
    let ns_keep = f.new_netns("keep");
    let ns_leak = f.new_netns("leak");
    let keep = f.container_id("keep");
    let leak = f.container_id("leak");
    let conf = f.conf("1.1.0");
    f.add(&keep, &ns_keep, "eth0", &conf);
    f.add(&leak, &ns_leak, "eth0", &conf);
    let keep_port = f.port_of(&keep);
    let leak_port = f.port_of(&leak);
    // Another CNI network's attachments are not this GC's business.
    let mut other_conf = conf.clone();
    other_conf["name"] = json!(format!("kct{}other", f.suffix));
    let other = f.container_id("oth");
    f.add(&other, &ns_leak, "eth1", &other_conf);

    // An attachment whose Neutron port was deleted behind Kuryr's back:
    // only its host side is left for GC to find.
    let (ns_orphan, orphan) = f.new_container("orph");
    f.add(&orphan, &ns_orphan, "eth0", &conf);
    let orphan_port = f.port_of(&orphan);
    f.stack
        .block_on(f.stack.neutron.delete_port(&orphan_port.id))
        .expect("deleting the port behind Kuryr's back");
    let (orphan_host, _) = veth_names(&orphan_port.id);
    assert!(link_exists(&orphan_host));

    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/valid-attachments"] = json!([{"containerID": keep, "ifname": "eth0"}]);
    let gc = CniCall {
        command: "GC",
        ..CniCall::default()
    };
    f.call(&gc, &gc_conf).expect_ok("GC");
    f.assert_gone(&leak, &leak_port.id);
    f.assert_gone(&orphan, &orphan_port.id);
    assert!(!in_netns(&ns_orphan, &["link", "show"]).contains("eth0"));
    assert_eq!(f.port_of(&keep).id, keep_port.id);
    let (keep_host, _) = veth_names(&keep_port.id);
    assert!(link_exists(&keep_host));
    assert!(in_netns(&ns_keep, &["link", "show"]).contains("eth0"));
    assert_eq!(f.ports_of(&other).len(), 1);

    // A GC without the list removes nothing.
    let err = f.call(&gc, &conf);
    assert_eq!(err.code(), 7);
    assert_eq!(f.ports_of(&keep).len(), 1);

    f.del(&keep, Some(&ns_keep), "eth0", &conf);
    f.del(&other, Some(&ns_leak), "eth1", &other_conf);
}

#[test]
fn status_follows_neutron() {
    let mut f = cni_fixture!("status_follows_neutron");
    let status = CniCall {
        command: "STATUS",
        ..CniCall::default()
    };
    f.call(&status, &f.conf("1.1.0")).expect_ok("STATUS");

    // A port nothing listens on: bind, note it, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let dir = f.dir.join("down");
    std::fs::create_dir_all(&dir).expect("dir");
    let down = Daemon::start(
        &dir,
        &["--debug"],
        &[
            ("OS_ENDPOINT", &endpoint),
            ("OS_NEUTRON_ENDPOINT", &endpoint),
        ],
    );
    let out = cni(&down.socket, &status, &f.conf("1.1.0"));
    assert_eq!(out.code(), 50, "{}", out.stdout);
    assert!(out.stdout.contains("Neutron"), "{}", out.stdout);
    // ADD meanwhile is "try again later" and leaves nothing.
    let (netns, cid) = f.new_container("s");
    let add = CniCall::attachment("ADD", &cid, &netns, "eth0");
    let out = cni(&down.socket, &add, &f.conf("1.1.0"));
    assert_eq!(out.code(), 11, "{}", out.stdout);
    assert!(f.ports_of(&cid).is_empty());
}

#[test]
fn bad_config_gives_the_right_code_and_leaves_nothing() {
    let mut f = cni_fixture!("bad_config_gives_the_right_code_and_leaves_nothing");
    let (netns, cid) = f.new_container("bad");
    let add = CniCall::attachment("ADD", &cid, &netns, "eth0");
    let mut typo = f.conf("1.1.0");
    typo["neutron"]["netwrk"] = json!("pods");
    let out = f.call(&add, &typo);
    assert_eq!(out.code(), 2, "{}", out.stdout);
    assert!(out.stdout.contains("neutron.netwrk"), "{}", out.stdout);

    let mut missing = f.conf("1.1.0");
    missing["neutron"]["network"] = json!(format!("no-such-net-{}", f.suffix));
    let out = f.call(&add, &missing);
    assert_eq!(out.code(), 7, "{}", out.stdout);
    assert!(out.stdout.contains("no-such-net"), "{}", out.stdout);

    let mut none = f.conf("1.1.0");
    none["neutron"] = json!({});
    assert_eq!(f.call(&add, &none).code(), 7);

    let mut bad_sg = f.conf("1.1.0");
    bad_sg["neutron"]["security_groups"] = json!([format!("no-such-sg-{}", f.suffix)]);
    assert_eq!(f.call(&add, &bad_sg).code(), 7);

    let gone_netns = CniCall {
        netns: Some("/var/run/netns/kct-no-such-netns"),
        ..add.clone()
    };
    assert_eq!(f.call(&gone_netns, &f.conf("1.1.0")).code(), 4);

    // An ifname the netns already has: the port is made, plugging fails,
    // and everything is undone.
    in_netns(
        &netns,
        &["link", "add", "eth0", "type", "veth", "peer", "name", "x0"],
    );
    let out = f.call(&add, &f.conf("1.1.0"));
    assert_eq!(out.code(), 101, "{}", out.stdout);

    assert!(f.ports_of(&cid).is_empty(), "a failed ADD left a port");
    let links = in_netns(&netns, &["-o", "link", "show"]);
    assert_eq!(links.lines().count(), 3, "{links}");
}
