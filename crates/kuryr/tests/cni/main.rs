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

mod addresses;
mod cnitool;
mod lifecycle;
mod operations;

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

    /// A fresh netns and a container id for one attachment, both named
    /// after `tag`.
    fn new_container(&mut self, tag: &str) -> (String, String) {
        (self.new_netns(tag), self.container_id(tag))
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
