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

mod cnitool;
mod lifecycle;

const DEVICE_OWNER: &str = "compute:kuryr";

// ------------------------------------------------------------- the daemon

// ------------------------------------------------------------- plugin calls

fn cni(socket: &Path, call: &CniCall<'_>, conf: &Value) -> CniOut {
    let out = cni_invoke(socket, call, conf);
    if matches!(call.command, "ADD" | "DEL") && out.success {
        eprintln!("latency {} {} ms", call.command, out.elapsed.as_secs_f64() * 1000.0);
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
        let (suffix, dir) = fresh_dir("kuryr-cni-test");
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
        self.extra_networks.push(net.id.to_string());
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
        (net.id.into_string(), prefix)
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

    /// A fresh netns and a container id for one attachment, both named
    /// after `tag`.
    fn new_container(&mut self, tag: &str) -> (String, String) {
        (self.new_netns(tag), self.container_id(tag))
    }

    /// A fresh container (see [`Fixture::new_container`]) with eth0 added
    /// by a plain ADD in CNI `version`, and its port.
    fn attach(&mut self, tag: &str, version: &str) -> Attached {
        let (netns, cid) = self.new_container(tag);
        let conf = self.conf(version);
        self.add(&cid, &netns, "eth0", &conf);
        let port = self.port_of(&cid);
        Attached { netns, cid, conf, port }
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
        let call = CniCall::attachment("ADD", cid, netns, ifname);
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
        assert!(!self.stack.local().ovs_ports().contains(&host), "OVS port {host} left");
    }
}

/// What [`Fixture::attach`] made.
struct Attached {
    netns: String,
    cid: String,
    conf: Value,
    port: Port,
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

/// This binary's [`Fixture`], or a skip: the calling test returns at once
/// when there is no stack.
macro_rules! cni_fixture {
    ($test:expr) => {
        match fixture($test) {
            Some(f) => f,
            None => return,
        }
    };
}
use cni_fixture;

fn fixture(test: &str) -> Option<Fixture> {
    stack(test).map(Fixture::new)
}

fn in_netns(netns_path: &str, args: &[&str]) -> String {
    let name = Path::new(netns_path).file_name().expect("netns name").to_string_lossy().to_string();
    let mut full = vec!["netns", "exec", &name, "ip"];
    full.extend_from_slice(args);
    ok("ip", &full)
}

/// The string `field` of each item of a CNI result's list `list`
/// (`address` of each of `ips`, `dst` of each of `routes`).
fn each_of<'a>(result: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    result[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} in {result}"))
        .iter()
        .filter_map(|item| item[field].as_str())
        .collect()
}

fn link_json(netns_path: &str, ifname: &str) -> Value {
    let text = in_netns(netns_path, &["-j", "addr", "show", "dev", ifname]);
    let mut all: Vec<Value> = serde_json::from_str(&text).expect("ip -j addr");
    all.remove(0)
}

// ------------- the daemon's housekeeping

#[test]
fn gc_removes_leaked_and_keeps_valid() {
    let mut f = cni_fixture!("gc_removes_leaked_and_keeps_valid");
    let (ns_keep, keep) = f.new_container("keep");
    let (ns_leak, leak) = f.new_container("leak");
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
    let gc = CniCall { command: "GC", ..CniCall::default() };
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
    let status = CniCall { command: "STATUS", ..CniCall::default() };
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
        &[("OS_ENDPOINT", &endpoint), ("OS_NEUTRON_ENDPOINT", &endpoint)],
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

    let gone_netns = CniCall { netns: Some("/var/run/netns/kct-no-such-netns"), ..add.clone() };
    assert_eq!(f.call(&gone_netns, &f.conf("1.1.0")).code(), 4);

    // An ifname the netns already has: the port is made, plugging fails,
    // and everything is undone.
    in_netns(&netns, &["link", "add", "eth0", "type", "veth", "peer", "name", "x0"]);
    let out = f.call(&add, &f.conf("1.1.0"));
    assert_eq!(out.code(), 101, "{}", out.stdout);

    assert!(f.ports_of(&cid).is_empty(), "a failed ADD left a port");
    let links = in_netns(&netns, &["-o", "link", "show"]);
    assert_eq!(links.lines().count(), 3, "{links}");
}

// ------------- addresses and networks

#[test]
fn dual_stack_addresses_and_routes() {
    let mut f = cni_fixture!("dual_stack_addresses_and_routes");
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
    let (netns, cid) = f.new_container("d");
    let conf = f.conf("1.1.0");
    let result = f.add(&cid, &netns, "eth0", &conf);
    let port = f.port_of(&cid);
    let v6_ip =
        port.fixed_ips.iter().find(|ip| ip.ip_address.is_ipv6()).expect("a v6 address").ip_address;
    let addrs = each_of(&result, "ips", "address");
    assert!(addrs.contains(&format!("{v6_ip}/64").as_str()), "{addrs:?}");
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(result["dns"]["nameservers"], json!(["10.0.0.53", "fd00::53"]));
    let routes6 = in_netns(&netns, &["-6", "route", "show"]);
    assert!(routes6.contains(&format!("default via {v6}::1 dev eth0")), "{routes6}");
    let addr6 = in_netns(&netns, &["-6", "addr", "show", "dev", "eth0"]);
    assert!(addr6.contains(&format!("{v6_ip}/64")), "{addr6}");
    assert!(!addr6.contains("tentative dadfailed"), "{addr6}");

    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result;
    let check = CniCall::attachment("CHECK", &cid, &netns, "eth0");
    f.wait_active(&port.id);
    f.call(&check, &check_conf).expect_ok("CHECK");
    f.del(&cid, Some(&netns), "eth0", &conf);
    f.assert_gone(&cid, &port.id);
}

#[test]
fn recreated_network_is_looked_up_again() {
    let mut f = cni_fixture!("recreated_network_is_looked_up_again");
    let netns = f.new_netns("r");
    let conf = f.conf("1.1.0");
    let first = f.container_id("r1");
    f.add(&first, &netns, "eth0", &conf);
    f.del(&first, Some(&netns), "eth0", &conf);
    // Same name, new network: the daemon's cached id is stale.
    f.stack.block_on(f.stack.neutron.delete_network(&f.net_id)).expect("deleting the network");
    let name = f.net_name.clone();
    let (new_id, _) = f.make_network(&name);
    let second = f.container_id("r2");
    let add = CniCall::attachment("ADD", &second, &netns, "eth0");
    let out = f.call(&add, &conf);
    assert_eq!(out.code(), 11, "{}", out.stdout);
    assert!(f.ports_of(&second).is_empty());
    f.add(&second, &netns, "eth0", &conf);
    assert_eq!(f.port_of(&second).network_id, new_id);
    f.del(&second, Some(&netns), "eth0", &conf);
}
