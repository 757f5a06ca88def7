//! Functional tests of `kuryr daemon` and the real `kuryr-cni` binary
//! against the stack of `scripts/stack` (Neutron ML2/OVN, OVS `br-int`).
//!
//! Run them with `scripts/test`, or by hand:
//! `eval "$(scripts/stack env)"; cargo build -p kuryr-cni; cargo test -p kuryr --test cni`.
//! Without `KURYR_STACK_AUTH` every test prints a skip notice and passes.
//!
//! Each test runs its own daemon on its own socket, with its own Neutron
//! network and netns (random names), and checks what a user would: the
//! plugin's output and exit code, the Neutron port (owner, device, host,
//! tags, status), the interface inside the netns, the host veth and OVS
//! port. ADD and DEL latencies are printed (`latency ADD ...`), never
//! asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kuryr_testkit::cni_util::{cni_invoke, CniCall, CniOut, Daemon};
use kuryr_testkit::*;
use openstack::neutron::{HostRoute, Port, Query, SubnetCreate};
use serde_json::{json, Value};

const DEVICE_OWNER: &str = "compute:kuryr";

// ------------------------------------------------------------- the daemon

// ------------------------------------------------------------- plugin calls

fn cni(socket: &Path, call: &CniCall<'_>, conf: &Value) -> CniOut {
    let out = cni_invoke(socket, call, conf);
    if matches!(call.command, "ADD" | "DEL") && out.success {
        eprintln!(
            "latency {} {} ms",
            call.command,
            out.elapsed.as_secs_f64() * 1000.0
        );
    }
    out
}

// ------------------------------------------------------------- fixture

/// One test's world: a daemon, a Neutron network with a /24 subnet
/// (gateway .1, a host route, a DNS server), netns made on demand.
/// Dropping it removes what the test or a failed assertion left.
struct Fixture {
    stack: Stack,
    daemon: Option<Daemon>,
    dir: PathBuf,
    suffix: String,
    net_name: String,
    net_id: String,
    prefix: String,
    extra_networks: Vec<String>,
    netns: Vec<String>,
}

impl Fixture {
    fn new(stack: Stack) -> Fixture {
        let suffix = hex(8);
        let dir = std::env::temp_dir().join(format!("kuryr-cni-test-{suffix}"));
        std::fs::create_dir_all(&dir).expect("test dir");
        let mut f = Fixture {
            stack,
            daemon: None,
            dir,
            suffix: suffix.clone(),
            net_name: format!("kct-{suffix}"),
            net_id: String::new(),
            prefix: fresh_v4(),
            extra_networks: Vec::new(),
            netns: Vec::new(),
        };
        let (id, prefix) = f.make_network(&f.net_name.clone());
        f.net_id = id;
        f.prefix = prefix;
        f.daemon = Some(Daemon::start(&f.dir, &["--debug"], &[]));
        f
    }

    /// A network with one subnet; returns its id and `a.b.c` prefix.
    fn make_network(&mut self, name: &str) -> (String, String) {
        let s = &self.stack;
        let net = s.create_network_named(name.to_string());
        self.extra_networks.push(net.id.clone());
        let prefix = fresh_v4();
        s.block_on(s.neutron.create_subnet(&SubnetCreate {
            name: Some(format!("{name}-v4")),
            gateway_ip: Some(Some(format!("{prefix}.1").parse().expect("ip"))),
            host_routes: Some(vec![HostRoute {
                destination: "192.168.250.0/24".into(),
                nexthop: format!("{prefix}.254").parse().expect("ip"),
            }]),
            dns_nameservers: Some(vec!["10.0.0.53".into()]),
            ..SubnetCreate::new(net.id.clone(), format!("{prefix}.0/24"))
        }))
        .expect("creating the subnet");
        (net.id, prefix)
    }

    fn socket(&self) -> PathBuf {
        self.daemon.as_ref().expect("daemon").socket.clone()
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("daemon")
    }

    fn new_netns(&mut self, tag: &str) -> String {
        let name = format!("kct-{}-{tag}", self.suffix);
        ok("ip", &["netns", "add", &name]);
        self.netns.push(name.clone());
        format!("/var/run/netns/{name}")
    }

    fn container_id(&self, tag: &str) -> String {
        format!("{}{}{}", tag, self.suffix, hex(48))
    }

    fn conf(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": format!("kct{}", self.suffix),
            "type": "kuryr-cni",
            "neutron": {"network": self.net_name},
        })
    }

    fn call(&self, call: &CniCall<'_>, conf: &Value) -> CniOut {
        cni(&self.socket(), call, conf)
    }

    fn add(&self, cid: &str, netns: &str, ifname: &str, conf: &Value) -> Value {
        let call = CniCall {
            command: "ADD",
            container_id: Some(cid),
            netns: Some(netns),
            ifname: Some(ifname),
            ..CniCall::default()
        };
        self.call(&call, conf).expect_ok("ADD").json()
    }

    fn del(&self, cid: &str, netns: Option<&str>, ifname: &str, conf: &Value) {
        let call = CniCall {
            command: "DEL",
            container_id: Some(cid),
            netns,
            ifname: Some(ifname),
            ..CniCall::default()
        };
        self.call(&call, conf).expect_ok("DEL");
    }

    fn ports_of(&self, cid: &str) -> Vec<Port> {
        self.stack.ports(Query::new().device_id(cid))
    }

    fn port_of(&self, cid: &str) -> Port {
        let mut ports = self.ports_of(cid);
        assert_eq!(ports.len(), 1, "ports of {cid}: {ports:?}");
        ports.remove(0)
    }

    /// ADD returns on ovn-installed; Neutron's status follows shortly.
    fn wait_active(&self, port_id: &str) {
        wait_for("the port to be ACTIVE", Duration::from_secs(30), || {
            let port = self.stack.port(port_id)?;
            (port.status == "ACTIVE").then_some(())
        });
    }

    /// Nothing of an attachment is left: port, host veth, OVS port.
    fn assert_gone(&self, cid: &str, port_id: &str) {
        assert!(self.ports_of(cid).is_empty(), "port of {cid} left");
        assert!(self.stack.port(port_id).is_none(), "port {port_id} left");
        let (host, _) = veth_names(port_id);
        assert!(!link_exists(&host), "veth {host} left");
        assert!(
            !ovs_ports(&self.stack.bridge).contains(&host),
            "OVS port {host} left"
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Stop the daemon first so nothing races the cleanup.
        self.daemon.take();
        for net in &self.extra_networks {
            self.stack.remove_network_and_ports(net);
        }
        for ns in &self.netns {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(test: &str) -> Option<Fixture> {
    stack(test).map(Fixture::new)
}

fn in_netns(netns_path: &str, args: &[&str]) -> String {
    let name = Path::new(netns_path)
        .file_name()
        .expect("netns name")
        .to_string_lossy()
        .to_string();
    let mut full = vec!["netns", "exec", &name, "ip"];
    full.extend_from_slice(args);
    ok("ip", &full)
}

fn link_json(netns_path: &str, ifname: &str) -> Value {
    let text = in_netns(netns_path, &["-j", "addr", "show", "dev", ifname]);
    let mut all: Vec<Value> = serde_json::from_str(&text).expect("ip -j addr");
    all.remove(0)
}

// ------------------------------------------------------------- tests

#[test]
fn add_check_del_lifecycle() {
    let Some(mut f) = fixture("add_check_del_lifecycle") else {
        return;
    };
    let netns = f.new_netns("a");
    let cid = f.container_id("a");
    let conf = f.conf("1.1.0");
    let result = f.add(&cid, &netns, "eth0", &conf);

    let port = f.port_of(&cid);
    assert_eq!(port.device_owner, DEVICE_OWNER);
    assert_eq!(port.device_id, cid);
    assert_eq!(port.binding_host_id, f.stack.host);
    assert_eq!(port.network_id, f.net_id);
    f.wait_active(&port.id);
    assert_eq!(port.name, format!("kuryr-cni-{}-eth0", &cid[..12]));
    for tag in [
        DEVICE_OWNER.to_string(),
        format!("kuryr.cni.cid.lh:{}", &cid[..cid.len().div_ceil(2)]),
        format!("kuryr.cni.cid.uh:{}", &cid[cid.len().div_ceil(2)..]),
        "kuryr.cni.ifname:eth0".to_string(),
        format!("kuryr.cni.net:kct{}", f.suffix),
    ] {
        assert!(
            port.tags.contains(&tag),
            "tag {tag} missing: {:?}",
            port.tags
        );
    }
    let ip = port.fixed_ips[0].ip_address.to_string();
    let mtu = f
        .stack
        .network(&f.net_id)
        .expect("network")
        .mtu
        .expect("mtu");

    // The interface as the container sees it.
    let link = link_json(&netns, "eth0");
    assert_eq!(link["ifname"], "eth0");
    assert_eq!(link["address"], port.mac_address.as_str());
    assert_eq!(link["mtu"], mtu);
    assert!(link["flags"]
        .as_array()
        .expect("flags")
        .contains(&json!("UP")));
    let addrs: Vec<String> = link["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect();
    assert_eq!(addrs, vec![format!("{ip}/24")]);
    let routes = in_netns(&netns, &["route", "show"]);
    assert!(
        routes.contains(&format!("default via {}.1 dev eth0", f.prefix)),
        "{routes}"
    );
    assert!(
        routes.contains(&format!("192.168.250.0/24 via {}.254 dev eth0", f.prefix)),
        "{routes}"
    );

    // The result.
    assert_eq!(result["cniVersion"], "1.1.0");
    let (host, _) = veth_names(&port.id);
    assert_eq!(result["interfaces"][0]["name"], host.as_str());
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["interfaces"][1]["mac"], port.mac_address.as_str());
    assert_eq!(result["interfaces"][1]["sandbox"], netns.as_str());
    assert_eq!(result["interfaces"][1]["mtu"], mtu);
    assert_eq!(result["ips"][0]["address"], format!("{ip}/24"));
    assert_eq!(result["ips"][0]["gateway"], format!("{}.1", f.prefix));
    assert_eq!(result["ips"][0]["interface"], 1);
    assert!(result["ips"][0].get("version").is_none());
    assert_eq!(result["dns"]["nameservers"], json!(["10.0.0.53"]));
    let dsts: Vec<&str> = result["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["dst"].as_str())
        .collect();
    assert_eq!(dsts, ["0.0.0.0/0", "192.168.250.0/24"]);

    // Host side.
    assert!(link_exists(&host));
    assert_eq!(
        ovs_interfaces_with("iface-id", &port.id),
        vec![host.clone()]
    );
    assert_eq!(
        ovs_external_id(&host, "vm-uuid").as_deref(),
        Some(cid.as_str())
    );
    assert_eq!(
        ovs_external_id(&host, "kuryr-cni-ifname").as_deref(),
        Some("eth0")
    );
    assert_eq!(
        ovs_external_id(&host, "kuryr-cni-net"),
        Some(format!("kct{}", f.suffix))
    );

    // CHECK passes with the result as prevResult.
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result.clone();
    let check = CniCall {
        command: "CHECK",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
    f.call(&check, &check_conf).expect_ok("CHECK");

    // CHECK names what drifted: a route removed inside the netns.
    in_netns(&netns, &["route", "del", "192.168.250.0/24"]);
    let drifted = f.call(&check, &check_conf);
    assert_eq!(drifted.code(), 103, "{}", drifted.stdout);
    assert!(
        drifted.stdout.contains("192.168.250.0/24"),
        "{}",
        drifted.stdout
    );

    // CHECK of an unknown attachment.
    let other = CniCall {
        container_id: Some("nosuchcontainer"),
        ..check.clone()
    };
    assert_eq!(f.call(&other, &check_conf).code(), 3);

    f.del(&cid, Some(&netns), "eth0", &conf);
    f.assert_gone(&cid, &port.id);
    assert!(!in_netns(&netns, &["link", "show"]).contains("eth0"));
    // Idempotent.
    f.del(&cid, Some(&netns), "eth0", &conf);
    f.del(&cid, None, "eth0", &conf);
}

#[test]
fn two_containers_ping_through_ovn_in_older_versions() {
    let Some(mut f) = fixture("two_containers_ping_through_ovn_in_older_versions") else {
        return;
    };
    let ns1 = f.new_netns("p1");
    let ns2 = f.new_netns("p2");
    let c1 = f.container_id("p");
    let c2 = f.container_id("q");
    let r1 = f.add(&c1, &ns1, "eth0", &f.conf("0.4.0"));
    let r2 = f.add(&c2, &ns2, "eth0", &f.conf("0.3.1"));
    for r in [&r1, &r2] {
        assert_eq!(r["ips"][0]["version"], "4", "{r}");
        assert!(r["interfaces"][1].get("mtu").is_none(), "{r}");
    }
    assert_eq!(r1["cniVersion"], "0.4.0");
    assert_eq!(r2["cniVersion"], "0.3.1");
    let ip2 = f.port_of(&c2).fixed_ips[0].ip_address.to_string();
    let ns1_name = ns1.trim_start_matches("/var/run/netns/").to_string();
    let ping = |count: &str| {
        run(
            "ip",
            &[
                "netns", "exec", &ns1_name, "ping", "-c", count, "-i", "0.2", "-W", "1", &ip2,
            ],
        )
        .status
        .success()
    };
    // ovn-installed means the flows are in; allow a moment for ARP.
    wait_for("a ping through OVN", Duration::from_secs(15), || {
        ping("1").then_some(())
    });
    assert!(ping("3"), "pings after the first one failed");
    let p1 = f.port_of(&c1).id;
    let p2 = f.port_of(&c2).id;
    f.del(&c1, Some(&ns1), "eth0", &f.conf("0.4.0"));
    f.del(&c2, Some(&ns2), "eth0", &f.conf("0.3.1"));
    f.assert_gone(&c1, &p1);
    f.assert_gone(&c2, &p2);
}

#[test]
fn second_attachment_by_namespace_mapping() {
    let Some(mut f) = fixture("second_attachment_by_namespace_mapping") else {
        return;
    };
    let other_name = format!("kct-{}-b", f.suffix);
    let (other_id, other_prefix) = f.make_network(&other_name);
    let netns = f.new_netns("m");
    let cid = f.container_id("m");
    f.add(&cid, &netns, "eth0", &f.conf("1.0.0"));
    let mut mapped = f.conf("1.0.0");
    mapped["neutron"]["namespace_networks"] = json!({"team-b": other_name});
    let call = CniCall {
        command: "ADD",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth1"),
        args: Some("IgnoreUnknown=1;K8S_POD_NAMESPACE=team-b;K8S_POD_NAME=web-0"),
        ..CniCall::default()
    };
    let result = f.call(&call, &mapped).expect_ok("ADD eth1").json();
    assert_eq!(result["interfaces"][1]["name"], "eth1");
    let ports = f.ports_of(&cid);
    assert_eq!(ports.len(), 2, "{ports:?}");
    let eth1 = ports
        .iter()
        .find(|p| p.tags.contains(&"kuryr.cni.ifname:eth1".to_string()))
        .expect("eth1 port");
    assert_eq!(eth1.network_id, other_id);
    let addr = in_netns(&netns, &["-4", "-o", "addr", "show", "dev", "eth1"]);
    assert!(addr.contains(&format!("{other_prefix}.")), "{addr}");
    // DEL of eth1 leaves eth0 alone.
    let eth1_id = eth1.id.clone();
    f.del(&cid, Some(&netns), "eth1", &mapped);
    assert!(f.stack.port(&eth1_id).is_none());
    assert_eq!(f.ports_of(&cid).len(), 1);
    assert!(in_netns(&netns, &["link", "show"]).contains("eth0"));
    f.del(&cid, Some(&netns), "eth0", &f.conf("1.0.0"));
    assert!(f.ports_of(&cid).is_empty());
}

#[test]
fn del_after_netns_is_gone() {
    let Some(mut f) = fixture("del_after_netns_is_gone") else {
        return;
    };
    let netns = f.new_netns("g");
    let cid = f.container_id("g");
    let conf = f.conf("1.1.0");
    f.add(&cid, &netns, "eth0", &conf);
    let port = f.port_of(&cid);
    let name = f.netns.pop().expect("netns");
    ok("ip", &["netns", "del", &name]);
    f.del(&cid, None, "eth0", &conf);
    f.assert_gone(&cid, &port.id);
    // The runtime may still pass the old path.
    f.del(&cid, Some(&netns), "eth0", &conf);
}

#[test]
fn del_after_daemon_kill9_and_restart() {
    let Some(mut f) = fixture("del_after_daemon_kill9_and_restart") else {
        return;
    };
    let netns = f.new_netns("k");
    let cid = f.container_id("k");
    let conf = f.conf("1.1.0");
    f.add(&cid, &netns, "eth0", &conf);
    let port = f.port_of(&cid);
    f.daemon().kill9();
    // While it is down: try again later, promptly.
    let del = CniCall {
        command: "DEL",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
    assert_eq!(f.call(&del, &conf).code(), 11);
    f.daemon().restart();
    f.del(&cid, Some(&netns), "eth0", &conf);
    f.assert_gone(&cid, &port.id);
}

#[test]
fn gc_removes_leaked_and_keeps_valid() {
    let Some(mut f) = fixture("gc_removes_leaked_and_keeps_valid") else {
        return;
    };
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
    let ns_orphan = f.new_netns("orph");
    let orphan = f.container_id("orph");
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
    let Some(mut f) = fixture("status_follows_neutron") else {
        return;
    };
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
    let netns = f.new_netns("s");
    let cid = f.container_id("s");
    let add = CniCall {
        command: "ADD",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
    let out = cni(&down.socket, &add, &f.conf("1.1.0"));
    assert_eq!(out.code(), 11, "{}", out.stdout);
    assert!(f.ports_of(&cid).is_empty());
}

#[test]
fn bad_config_gives_the_right_code_and_leaves_nothing() {
    let Some(mut f) = fixture("bad_config_gives_the_right_code_and_leaves_nothing") else {
        return;
    };
    let netns = f.new_netns("bad");
    let cid = f.container_id("bad");
    let add = CniCall {
        command: "ADD",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
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

// ------------------------------------------------------------- cnitool

/// A cnitool over Debian's libcni (golang-github-appc-cni-dev), built once
/// per test run: `cnitool add|check|del <conflist> <netns>`.
const CNITOOL_GO: &str = r#"package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: cnitool add|check|del <conflist> <netns>"))
	}
	conf, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{ContainerID: os.Getenv("CNI_CONTAINERID"), NetNS: os.Args[3], IfName: os.Getenv("CNI_IFNAME")}
	for _, kv := range strings.Split(os.Getenv("CNI_ARGS"), ";") {
		if p := strings.SplitN(kv, "=", 2); len(p) == 2 {
			rt.Args = append(rt.Args, [2]string{p[0], p[1]})
		}
	}
	ctx := context.Background()
	switch os.Args[1] {
	case "add":
		res, err := cni.AddNetworkList(ctx, conf, rt)
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, conf, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, conf, rt); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
"#;

const GOPATH: &str = "/usr/share/gocode";

/// The built cnitool, or `None` (after saying why) without Go or libcni.
fn cnitool(test: &str) -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let libcni = Path::new(GOPATH).join("src/github.com/containernetworking/cni/libcni");
            if !libcni.exists() || run("sh", &["-c", "command -v go"]).stdout.is_empty() {
                eprintln!("{test}: skipped: needs go and golang-github-appc-cni-dev");
                return None;
            }
            // Content-addressed, so reruns reuse it and parallel runs of
            // the test binary do not clash (each builds, then renames).
            let key = std::hash::BuildHasher::hash_one(
                &std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default(),
                CNITOOL_GO,
            );
            let home = kuryr_bin()
                .parent()
                .expect("target dir")
                .join("kuryr-cnitool");
            let dir = home.join(format!("{key:016x}"));
            if dir.join("cnitool").exists() {
                return Some(dir.join("cnitool"));
            }
            let work = home.join(format!("build-{}", hex(8)));
            std::fs::create_dir_all(&work).expect("cnitool build dir");
            std::fs::write(work.join("main.go"), CNITOOL_GO).expect("main.go");
            let out = Command::new("go")
                .args(["build", "-o", "cnitool", "main.go"])
                .current_dir(&work)
                .env("GO111MODULE", "off")
                .env("GOPATH", GOPATH)
                .env("GOCACHE", home.join("gocache"))
                .output()
                .expect("running go build");
            assert!(
                out.status.success(),
                "building cnitool: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if std::fs::rename(&work, &dir).is_err() {
                // Another run won the race; use its build.
                let _ = std::fs::remove_dir_all(&work);
            }
            Some(dir.join("cnitool"))
        })
        .clone()
}

#[test]
fn cnitool_chain_with_tuning_and_portmap() {
    let Some(mut f) = fixture("cnitool_chain_with_tuning_and_portmap") else {
        return;
    };
    let Some(tool) = cnitool("cnitool_chain_with_tuning_and_portmap") else {
        return;
    };
    // The shipped conflist (Debian's plugins speak up to 1.0.0), pointed
    // at this test's network.
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/cni/10-kuryr.conflist"
    );
    let mut conflist: Value = serde_json::from_str(
        &std::fs::read_to_string(shipped).expect("deploy/cni/10-kuryr.conflist"),
    )
    .expect("conflist JSON");
    conflist["name"] = json!(format!("kct{}", f.suffix));
    conflist["plugins"][0]["neutron"] = json!({"network": f.net_name});
    let conf_path = f.dir.join("10-kuryr.conflist");
    std::fs::write(&conf_path, conflist.to_string()).expect("conflist");
    let bin_dir = kuryr_cni_bin()
        .parent()
        .expect("bin dir")
        .to_string_lossy()
        .to_string();
    let socket = f.socket();
    let cache = f.dir.join("cache");
    let tool_run = |verb: &str, cid: &str, netns: &str| {
        let started = Instant::now();
        let out = Command::new(&tool)
            .args([verb, &conf_path.to_string_lossy(), netns])
            .env("KURYR_CNI_SOCKET", &socket)
            .env("CNI_PATH", format!("{bin_dir}:/usr/lib/cni"))
            .env("CNI_CONTAINERID", cid)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_CACHE_DIR", &cache)
            .output()
            .expect("running cnitool");
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success(),
            "cnitool {verb} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("latency cnitool {verb} {ms} ms");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut seen = Vec::new();
    for round in 0..3 {
        let netns = f.new_netns(&format!("t{round}"));
        let cid = f.container_id(&format!("t{round}"));
        let result: Value = serde_json::from_str(&tool_run("add", &cid, &netns)).expect("result");
        assert_eq!(result["cniVersion"], "1.0.0");
        assert_eq!(result["interfaces"][1]["name"], "eth0");
        let port = f.port_of(&cid);
        f.wait_active(&port.id);
        assert_eq!(
            result["ips"][0]["address"]
                .as_str()
                .expect("address")
                .split('/')
                .next(),
            Some(port.fixed_ips[0].ip_address.to_string().as_str())
        );
        // tuning ran after us in the same netns.
        let name = netns.trim_start_matches("/var/run/netns/");
        let somaxconn = ok(
            "ip",
            &["netns", "exec", name, "sysctl", "-n", "net.core.somaxconn"],
        );
        assert_eq!(somaxconn, "512");
        tool_run("check", &cid, &netns);
        tool_run("del", &cid, &netns);
        f.assert_gone(&cid, &port.id);
        seen.push(port.id);
    }
    assert_eq!(seen.len(), 3);
}

#[test]
fn dual_stack_addresses_and_routes() {
    let Some(mut f) = fixture("dual_stack_addresses_and_routes") else {
        return;
    };
    let v6 = fresh_v6();
    let s = &f.stack;
    s.block_on(s.neutron.create_subnet(&SubnetCreate {
        name: Some(format!("{}-v6", f.net_name)),
        ip_version: 6,
        gateway_ip: Some(Some(format!("{v6}::1").parse().expect("ip"))),
        dns_nameservers: Some(vec!["fd00::53".into()]),
        ..SubnetCreate::new(f.net_id.clone(), format!("{v6}::/64"))
    }))
    .expect("creating the v6 subnet");
    let netns = f.new_netns("d");
    let cid = f.container_id("d");
    let conf = f.conf("1.1.0");
    let result = f.add(&cid, &netns, "eth0", &conf);
    let port = f.port_of(&cid);
    let v6_ip = port
        .fixed_ips
        .iter()
        .find(|ip| ip.ip_address.is_ipv6())
        .expect("a v6 address")
        .ip_address;
    let addrs: Vec<&str> = result["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .collect();
    assert!(addrs.contains(&format!("{v6_ip}/64").as_str()), "{addrs:?}");
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(
        result["dns"]["nameservers"],
        json!(["10.0.0.53", "fd00::53"])
    );
    let routes6 = in_netns(&netns, &["-6", "route", "show"]);
    assert!(
        routes6.contains(&format!("default via {v6}::1 dev eth0")),
        "{routes6}"
    );
    let addr6 = in_netns(&netns, &["-6", "addr", "show", "dev", "eth0"]);
    assert!(addr6.contains(&format!("{v6_ip}/64")), "{addr6}");
    assert!(!addr6.contains("tentative dadfailed"), "{addr6}");

    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result;
    let check = CniCall {
        command: "CHECK",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
    f.wait_active(&port.id);
    f.call(&check, &check_conf).expect_ok("CHECK");
    f.del(&cid, Some(&netns), "eth0", &conf);
    f.assert_gone(&cid, &port.id);
}

#[test]
fn recreated_network_is_looked_up_again() {
    let Some(mut f) = fixture("recreated_network_is_looked_up_again") else {
        return;
    };
    let netns = f.new_netns("r");
    let conf = f.conf("1.1.0");
    let first = f.container_id("r1");
    f.add(&first, &netns, "eth0", &conf);
    f.del(&first, Some(&netns), "eth0", &conf);
    // Same name, new network: the daemon's cached id is stale.
    f.stack
        .block_on(f.stack.neutron.delete_network(&f.net_id))
        .expect("deleting the network");
    let name = f.net_name.clone();
    let (new_id, _) = f.make_network(&name);
    let second = f.container_id("r2");
    let add = CniCall {
        command: "ADD",
        container_id: Some(&second),
        netns: Some(&netns),
        ifname: Some("eth0"),
        ..CniCall::default()
    };
    let out = f.call(&add, &conf);
    assert_eq!(out.code(), 11, "{}", out.stdout);
    assert!(f.ports_of(&second).is_empty());
    f.add(&second, &netns, "eth0", &conf);
    assert_eq!(f.port_of(&second).network_id, new_id);
    f.del(&second, Some(&netns), "eth0", &conf);
}
