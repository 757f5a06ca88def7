//! The test kit: the harness of the functional tests against the real
//! stack of `scripts/stack` (Neutron ML2/OVN, OVS `br-int`, dockerd), one
//! copy for every test binary (a dev-dependency of the crates whose tests
//! use it). Modules: [`cni_util`] (the CNI daemon and `kuryr-cni`),
//! [`fault_proxy`] (a fault-injecting Neutron proxy on loopback),
//! [`upstream`] (upstream kuryr-libnetwork's `kuryr-server`).
//!
//! Each test gets a [`Fixture`]: its own `kuryr libnetwork` process serving
//! its own driver name `kt<hex>` on `/run/docker/plugins/kt<hex>.sock`, with
//! its own `kuryr.conf` in a temp dir, so tests run in parallel. Dropping
//! the fixture (also when the test panics) removes the test's containers
//! and Docker networks while the plugin still runs, kills the plugin by
//! PID, and deletes whatever Neutron objects the test made or Kuryr left.
//!
//! Credentials come from `eval "$(scripts/stack env)"`. Without
//! `KURYR_STACK_AUTH` a test prints a skip notice and passes; in keystone
//! mode it skips too (the Keystone path is tested in the openstack crate).

pub mod cni_util;
pub mod fault_proxy;
pub mod upstream;

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use openstack::neutron::{Network, Neutron, Port, PortStatus, Query, Resource, Subnet, SubnetPool};
use openstack::AuthOptions;
use serde_json::Value;

/// The `kuryr` binary of this build: `$KURYR_BIN`, else the one cargo built
/// next to the running test (`target/<profile>/kuryr`; cargo builds a
/// package's binaries before its integration tests).
pub fn kuryr_bin() -> PathBuf {
    built_binary("KURYR_BIN", "kuryr", "kuryr")
}

/// The `kuryr-cni` plugin binary, found the same way (`$KURYR_CNI_BIN`).
pub fn kuryr_cni_bin() -> PathBuf {
    built_binary("KURYR_CNI_BIN", "kuryr-cni", "kuryr-cni")
}

fn built_binary(env: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash>
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("a test runs from target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p {package}` (scripts/test builds the workspace), or set {env}",
        bin.display()
    );
    bin
}

/// Longest a docker command may take before the test fails.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(180);

// ------------------------------------------------------------- the stack

/// The stack under test.
pub struct Stack {
    rt: tokio::runtime::Runtime,
    /// An admin Neutron client.
    pub neutron: Neutron,
    /// `binding:host_id` ports bound here must carry.
    pub host: String,
    /// The integration bridge.
    pub bridge: String,
}

/// The stack, or `None` (after printing why) when the test must skip.
pub fn stack(test: &str) -> Option<Stack> {
    let Ok(auth) = std::env::var("KURYR_STACK_AUTH") else {
        eprintln!("{test}: skipped: no stack (run via scripts/test)");
        return None;
    };
    match auth.as_str() {
        "noauth" => {}
        "keystone" => {
            eprintln!(
                "{test}: skipped: the Docker tests run in noauth mode only \
                 (the Keystone path is tested in the openstack crate)"
            );
            return None;
        }
        other => panic!("KURYR_STACK_AUTH={other:?}: expected noauth or keystone"),
    }
    let opts = AuthOptions::from_env().expect("OS_* variables from scripts/stack env");
    let neutron = Neutron::new(opts).expect("a Neutron client for the stack");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let host = std::env::var("KURYR_STACK_HOST").expect("KURYR_STACK_HOST from scripts/stack env");
    let bridge = std::env::var("KURYR_STACK_BRIDGE").unwrap_or_else(|_| "br-int".into());
    Some(Stack {
        rt,
        neutron,
        host,
        bridge,
    })
}

impl Stack {
    /// Runs a future on the kit's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A network, or None when Neutron has none with that id.
    pub fn network(&self, id: &str) -> Option<Network> {
        match self.block_on(self.neutron.get_network(id)) {
            Ok(n) => Some(n),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("GET network {id}: {e}"),
        }
    }

    /// A subnet, or None.
    pub fn subnet(&self, id: &str) -> Option<Subnet> {
        match self.block_on(self.neutron.get_subnet(id)) {
            Ok(s) => Some(s),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("GET subnet {id}: {e}"),
        }
    }

    /// A subnetpool, or None.
    pub fn subnetpool(&self, id: &str) -> Option<SubnetPool> {
        match self.block_on(self.neutron.get_subnetpool(id)) {
            Ok(p) => Some(p),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("GET subnetpool {id}: {e}"),
        }
    }

    /// A port, or None.
    pub fn port(&self, id: &str) -> Option<Port> {
        match self.block_on(self.neutron.get_port(id)) {
            Ok(p) => Some(p),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("GET port {id}: {e}"),
        }
    }

    /// Networks matching the query.
    pub fn networks(&self, query: Query) -> Vec<Network> {
        self.block_on(self.neutron.list_networks(&query))
            .expect("listing networks")
    }

    /// Subnets matching the query.
    pub fn subnets(&self, query: Query) -> Vec<Subnet> {
        self.block_on(self.neutron.list_subnets(&query))
            .expect("listing subnets")
    }

    /// Subnetpools matching the query.
    pub fn subnetpools(&self, query: Query) -> Vec<SubnetPool> {
        self.block_on(self.neutron.list_subnetpools(&query))
            .expect("listing subnetpools")
    }

    /// Ports matching the query.
    pub fn ports(&self, query: Query) -> Vec<Port> {
        self.block_on(self.neutron.list_ports(&query))
            .expect("listing ports")
    }

    /// Neutron networks tagged for a Docker network (upstream's two halves).
    pub fn networks_of_docker(&self, docker_net: &str) -> Vec<Network> {
        self.networks(Query::new().tags(id_tags(docker_net)))
    }

    /// The one Neutron network Kuryr made or adopted for a Docker network.
    pub fn network_of_docker(&self, docker_net: &str) -> Network {
        let mut found = self.networks_of_docker(docker_net);
        assert_eq!(
            found.len(),
            1,
            "exactly one Neutron network tagged for Docker network {docker_net}: {found:#?}"
        );
        found.remove(0)
    }

    /// The ports of an endpoint (device_id = endpoint id).
    pub fn ports_of_endpoint(&self, endpoint: &str) -> Vec<Port> {
        self.ports(Query::new().device_id(endpoint))
    }

    /// The one port of an endpoint.
    pub fn port_of_endpoint(&self, endpoint: &str) -> Port {
        let mut ports = self.ports_of_endpoint(endpoint);
        assert_eq!(
            ports.len(),
            1,
            "exactly one Neutron port with device_id {endpoint}: {ports:#?}"
        );
        ports.remove(0)
    }

    /// Subnetpools named `kuryrPool-<cidr>`.
    pub fn kuryr_pools(&self, cidr: &str) -> Vec<SubnetPool> {
        self.subnetpools(Query::new().name(format!("kuryrPool-{cidr}")))
    }

    /// Subnets with this cidr (any network).
    pub fn subnets_with_cidr(&self, cidr: &str) -> Vec<Subnet> {
        self.subnets(Query::new().cidr(cidr))
    }

    /// Waits until an endpoint has exactly one port (device_id = endpoint
    /// id) and Neutron reports it ACTIVE; returns it.
    pub fn wait_active_port_of_endpoint(&self, endpoint: &str, timeout: Duration) -> Port {
        wait_for(
            &format!("one ACTIVE port with device_id {endpoint}"),
            timeout,
            || {
                let ports = self.ports_of_endpoint(endpoint);
                (ports.len() == 1 && ports[0].status == PortStatus::Active)
                    .then(|| ports[0].clone())
            },
        )
    }

    /// Best-effort cleanup of a network a test made: each port's host
    /// devices and the port, then the network.
    pub fn remove_network_and_ports(&self, network_id: &str) {
        let ports = self
            .block_on(
                self.neutron
                    .list_ports(&Query::new().network_id(network_id)),
            )
            .unwrap_or_default();
        for port in ports {
            cleanup_devices(&port.id);
            let _ = self.block_on(self.neutron.delete_port(&port.id));
        }
        let _ = self.block_on(self.neutron.delete_network(network_id));
    }

    /// The ports of a network other than Neutron's own
    /// (`network:distributed` metadata port, `network:dhcp`, routers).
    pub fn non_neutron_ports(&self, network_id: &str) -> Vec<Port> {
        self.ports(Query::new().network_id(network_id))
            .into_iter()
            .filter(|p| !p.device_owner.starts_with("network:"))
            .collect()
    }

    /// The id of a default subnetpool (`kuryr`, `kuryr6`).
    pub fn default_pool(&self, name: &str) -> SubnetPool {
        let mut pools = self.subnetpools(Query::new().name(name));
        assert_eq!(pools.len(), 1, "default subnetpool {name} must exist once");
        pools.remove(0)
    }
}

/// Upstream's network/endpoint id tags: `kuryr.net.uuid.lh:<id[0:32]>`,
/// `kuryr.net.uuid.uh:<id[32:64]>` (written out here, not taken from the
/// code under test).
pub fn id_tags(id: &str) -> Vec<String> {
    assert_eq!(id.len(), 64, "a Docker id has 64 hex digits: {id}");
    vec![
        format!("kuryr.net.uuid.lh:{}", &id[..32]),
        format!("kuryr.net.uuid.uh:{}", &id[32..]),
    ]
}

/// Our addition on ports: the Docker network id in two halves.
pub fn docker_net_tags(id: &str) -> Vec<String> {
    vec![
        format!("kuryr.docker.net.lh:{}", &id[..32]),
        format!("kuryr.docker.net.uh:{}", &id[32..]),
    ]
}

// ------------------------------------------------------------- randomness

/// `n` random hex digits.
pub fn hex(n: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    while out.len() < n {
        let h = RandomState::new().hash_one((
            SystemTime::now(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        ));
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(n);
    out
}

/// A fresh IPv4 /24 (as `a.b.c`, without the last octet), unique in this
/// run and unlikely to collide with anything else on the stack: the tests
/// use 10.128.0.0/9, the default pool `kuryr` is 10.10.0.0/16.
pub fn fresh_v4() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
    let base = {
        let seed = u64::from_str_radix(&hex(8), 16).expect("hex") % (120 * 256);
        let _ = NEXT.compare_exchange(u64::MAX, seed, Ordering::SeqCst, Ordering::SeqCst);
        NEXT.fetch_add(1, Ordering::SeqCst)
    };
    let n = base % (120 * 256);
    format!("10.{}.{}", 130 + n / 256, n % 256)
}

/// A fresh IPv6 /64 prefix (`fdXX:X:X:X`, use with `::/64`), written as
/// Neutron and Docker write it (no leading zeros, no zero group).
pub fn fresh_v6() -> String {
    let h = hex(14);
    let group = |s: &str| u16::from_str_radix(s, 16).expect("hex") | 1;
    format!(
        "fd{}:{:x}:{:x}:{:x}",
        &h[..2],
        group(&h[2..6]),
        group(&h[6..10]),
        group(&h[10..14])
    )
}

/// Whether IPv4 cidr `inner` lies inside `outer` (false for anything else).
pub fn v4_cidr_contains(outer: &str, inner: &str) -> bool {
    let parse = |c: &str| -> Option<(u32, u32)> {
        let (addr, len) = c.split_once('/')?;
        let addr: std::net::Ipv4Addr = addr.parse().ok()?;
        let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
        Some((u32::from(addr), len))
    };
    let (Some((o, ol)), Some((i, il))) = (parse(outer), parse(inner)) else {
        return false;
    };
    let mask = |len: u32| u32::MAX.checked_shl(32 - len).unwrap_or(0);
    il >= ol && (o & mask(ol)) == (i & mask(ol))
}

// ------------------------------------------------------------- commands

/// Runs a command (argv only) with a deadline; the test fails when it
/// cannot be started or overruns.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    run_with_timeout(cmd, args, DOCKER_TIMEOUT)
}

/// Runs a command, killing it after `timeout`.
pub fn run_with_timeout(cmd: &str, args: &[&str], timeout: Duration) -> Output {
    let mut command = Command::new(cmd);
    command.args(args);
    run_command(command, &format!("{cmd} {args:?}"), timeout)
}

/// Runs a prepared command (its environment set by the caller) with a
/// deadline, draining its pipes; panics naming `what` when it overruns.
pub fn run_command(mut cmd: Command, what: &str, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    // Drain the pipes on threads so a chatty command cannot block.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {timeout:?}");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Runs a command that must succeed; returns its trimmed stdout.
pub fn ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {} failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a command that must fail; returns its stderr (what the user sees).
pub fn fails(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        !out.status.success(),
        "{cmd} {} should have failed:\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `docker <args>`; must succeed; its stdout.
pub fn docker(args: &[&str]) -> String {
    ok("docker", args)
}

/// `docker <args>`; must fail; its stderr.
pub fn docker_fails(args: &[&str]) -> String {
    fails("docker", args)
}

/// `docker inspect` of one object, as JSON.
pub fn inspect(what: &str) -> Value {
    let text = docker(&["inspect", what]);
    let mut all: Vec<Value> = serde_json::from_str(&text).expect("docker inspect JSON");
    assert_eq!(all.len(), 1, "docker inspect {what}");
    all.remove(0)
}

/// Polls `check` until it returns `Some`, or fails the test with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

// ------------------------------------------------------------- host side

/// Whether a network device of this name exists in the host netns.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Host end (`tap<port id[:11]>`) and container end (`t_c<port id[:11]>`).
pub fn veth_names(port_id: &str) -> (String, String) {
    (
        format!("tap{}", &port_id[..11]),
        format!("t_c{}", &port_id[..11]),
    )
}

/// OVS interfaces whose `external_ids:<key>` is `value`.
pub fn ovs_interfaces_with(key: &str, value: &str) -> Vec<String> {
    let out = ok(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "--bare",
            "--columns=name",
            "find",
            "Interface",
            &format!("external_ids:{key}={value}"),
        ],
    );
    out.split_whitespace().map(str::to_string).collect()
}

/// The ports of an OVS bridge.
pub fn ovs_ports(bridge: &str) -> Vec<String> {
    ok("ovs-vsctl", &["--timeout=10", "list-ports", bridge])
        .lines()
        .map(str::to_string)
        .collect()
}

/// One `external_ids` value of an OVS interface.
pub fn ovs_external_id(iface: &str, key: &str) -> Option<String> {
    let out = run(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "get",
            "Interface",
            iface,
            &format!("external_ids:{key}"),
        ],
    );
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_matches('"')
            .to_string(),
    )
}

/// What is left on the host of a port: its veth ends, an OVS interface
/// with its iface-id, its OVS port.
pub fn host_leftovers(bridge: &str, port_id: &str) -> Vec<String> {
    let (host, container) = veth_names(port_id);
    let mut left = Vec::new();
    for name in [&host, &container] {
        if link_exists(name) {
            left.push(format!("veth {name} left on the host"));
        }
    }
    if !ovs_interfaces_with("iface-id", port_id).is_empty() {
        left.push(format!("an OVS interface with iface-id={port_id} is left"));
    }
    if ovs_ports(bridge).contains(&host) {
        left.push(format!("OVS port {host} left on {bridge}"));
    }
    left
}

/// Polls until `problems` returns none (Docker finishes some cleanup after
/// its command returns), else fails the test listing the last ones.
pub fn eventually(what: &str, mut problems: impl FnMut() -> Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = problems();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}:\n{}", left.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts that no host device and no OVS port of this port is left.
pub fn assert_unplugged(bridge: &str, port_id: &str) {
    eventually(&format!("port {port_id} unplugged"), || {
        host_leftovers(bridge, port_id)
    });
}

// ------------------------------------------------------------- containers

/// One container's attachment to one Docker network, per `docker inspect`.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Docker's endpoint id.
    pub endpoint: String,
    /// Docker's network id.
    pub network_id: String,
    /// IPv4 address.
    pub ip: Option<IpAddr>,
    /// IPv4 prefix length.
    pub prefix: u8,
    /// IPv4 gateway.
    pub gateway: Option<IpAddr>,
    /// IPv6 address.
    pub ipv6: Option<IpAddr>,
    /// IPv6 prefix length.
    pub ipv6_prefix: u8,
    /// IPv6 gateway.
    pub ipv6_gateway: Option<IpAddr>,
    /// MAC address.
    pub mac: String,
}

/// A container's attachment to a network, from `docker inspect`.
pub fn attachment(container: &str, network: &str) -> Attachment {
    let info = inspect(container);
    let net = &info["NetworkSettings"]["Networks"][network];
    assert!(
        net.is_object(),
        "container {container} is not on network {network}: {}",
        info["NetworkSettings"]["Networks"]
    );
    let s = |k: &str| net[k].as_str().unwrap_or_default().to_string();
    let ip = |k: &str| net[k].as_str().and_then(|v| v.parse().ok());
    Attachment {
        endpoint: s("EndpointID"),
        network_id: s("NetworkID"),
        ip: ip("IPAddress"),
        prefix: net["IPPrefixLen"].as_u64().unwrap_or(0) as u8,
        gateway: ip("Gateway"),
        ipv6: ip("GlobalIPv6Address"),
        ipv6_prefix: net["GlobalIPv6PrefixLen"].as_u64().unwrap_or(0) as u8,
        ipv6_gateway: ip("IPv6Gateway"),
        mac: s("MacAddress"),
    }
}

/// A throwaway container on `network` pings `target` once (`docker run
/// --rm … ping -c 1 -W 5`); must succeed.
pub fn ping_from_new_container(network: &str, target: IpAddr) {
    docker(&[
        "run",
        "--rm",
        "--network",
        network,
        "kbox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        &target.to_string(),
    ]);
}

/// `docker exec <c> <args>`; must succeed.
pub fn exec(container: &str, args: &[&str]) -> String {
    let mut all = vec!["exec", container];
    all.extend_from_slice(args);
    docker(&all)
}

/// What eth0 looks like inside a container.
#[derive(Debug)]
pub struct Eth0 {
    /// MAC address, lower case.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// `addr/prefix` of every global address.
    pub addresses: Vec<String>,
    /// `ip route` lines (IPv4).
    pub routes: Vec<String>,
    /// `ip -6 route` lines.
    pub routes6: Vec<String>,
}

/// The container's `eth0`, from `ip` inside it.
pub fn eth0(container: &str) -> Eth0 {
    let mac = exec(container, &["cat", "/sys/class/net/eth0/address"]);
    let mtu = exec(container, &["cat", "/sys/class/net/eth0/mtu"])
        .parse()
        .expect("mtu");
    let addr_out = exec(container, &["ip", "-o", "addr", "show", "dev", "eth0"]);
    let addresses = addr_out
        .lines()
        .filter(|l| !l.contains("scope link"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next().map(str::to_string)
        })
        .collect();
    let routes = exec(container, &["ip", "route"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let routes6 = exec(container, &["ip", "-6", "route"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    Eth0 {
        mac,
        mtu,
        addresses,
        routes,
        routes6,
    }
}

/// Pings `target` from inside `container` (a few tries: the first packet
/// may race the neighbour's flows).
pub fn ping(container: &str, target: IpAddr) {
    let target = target.to_string();
    let mut last = String::new();
    for _ in 0..5 {
        let out = run(
            "docker",
            &["exec", container, "ping", "-c", "1", "-W", "2", &target],
        );
        if out.status.success() {
            return;
        }
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    panic!("{container} cannot ping {target}: {last}");
}

/// Starts `ping -i 0.2 <target>` in the background inside `container`,
/// writing to `/tmp/<tag>.ping` there; [`stop_background_ping`] ends it.
pub fn start_background_ping(container: &str, target: IpAddr, tag: &str) {
    docker(&[
        "exec",
        "-d",
        container,
        "sh",
        "-c",
        &format!("exec ping -i 0.2 {target} >/tmp/{tag}.ping 2>&1"),
    ]);
}

/// Interrupts the background ping of [`start_background_ping`] (so it
/// prints its statistics); returns (transmitted, received) and the output.
pub fn stop_background_ping(container: &str, tag: &str) -> (u64, u64, String) {
    docker(&["exec", container, "killall", "-INT", "ping"]);
    let path = format!("/tmp/{tag}.ping");
    let text = wait_for(
        "the background ping's statistics",
        Duration::from_secs(10),
        || {
            let text = docker(&["exec", container, "cat", &path]);
            text.contains("packets received").then_some(text)
        },
    );
    let stats = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_string();
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = stats.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.starts_with(word))
            .and_then(|i| i.checked_sub(2))
            .and_then(|i| words.get(i))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {word} count in {stats:?}"))
    };
    (
        number_before("transmitted"),
        number_before("received"),
        text,
    )
}

// ------------------------------------------------------------- the plugin

/// One `kuryr libnetwork` process with its own driver name and config.
pub struct Kuryr {
    /// Driver name for `-d` and `--ipam-driver`.
    pub name: String,
    /// Its plugin socket (`/run/docker/plugins/<name>.sock`).
    pub socket: PathBuf,
    /// Its temp dir.
    pub dir: PathBuf,
    /// Its `kuryr.conf`.
    pub config: PathBuf,
    /// Its log (stderr, with `--debug`).
    pub log: PathBuf,
    child: Option<Child>,
    /// Extra environment of the plugin process ([`Kuryr::set_env`]).
    env: Vec<(String, String)>,
}

impl Kuryr {
    /// Writes `kuryr.conf` (the given text) into a temp dir and starts the
    /// plugin on its own socket; returns once it answers Plugin.Activate.
    pub fn start(config: &str) -> Kuryr {
        let mut k = Kuryr::prepare(config);
        k.spawn();
        k
    }

    /// Like [`Kuryr::start`] without starting the plugin: the name, socket
    /// and `kuryr.conf` are ready; [`Kuryr::launch`] starts it.
    pub fn prepare(config: &str) -> Kuryr {
        let name = format!("kt{}", hex(10));
        let dir = std::env::temp_dir().join(format!("kuryr-test-{name}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config_path = dir.join("kuryr.conf");
        std::fs::write(&config_path, config).expect("writing kuryr.conf");
        Kuryr {
            socket: PathBuf::from(format!("/run/docker/plugins/{name}.sock")),
            log: dir.join("kuryr.log"),
            config: config_path,
            dir,
            name,
            child: None,
            env: Vec::new(),
        }
    }

    /// Starts the plugin (prepared, or stopped); returns once it answers.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.spawn();
    }

    /// Sets an environment variable for the next start (e.g. `KURYR_NO_GC`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Replaces `kuryr.conf`; read at the next start.
    pub fn rewrite_config(&mut self, config: &str) {
        std::fs::write(&self.config, config).expect("writing kuryr.conf");
    }

    /// Stops the plugin gracefully ([`terminate`]: SIGTERM by PID, SIGKILL
    /// after 5 s), as an operator's service manager would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(kuryr_bin())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--config-file")
            .arg(&self.config)
            .arg("--debug")
            .arg("libnetwork")
            .arg("--socket")
            .arg(&self.socket)
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                "info,kuryr=debug,kuryr_libnetwork=debug,kuryr_core=debug,netplumb=debug,openstack=debug",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("starting kuryr libnetwork");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "kuryr libnetwork exited at start ({status}):\n{}",
                        self.log_text()
                    );
                }
            }
            if let Ok((200, _)) = self.try_post("/Plugin.Activate", b"") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kuryr libnetwork did not answer on {}:\n{}",
                self.socket.display(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9` (by PID) and start again on the same socket and config.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the plugin (SIGKILL, by PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The Neutron calls in the log (`METHOD path` of each reply), from
    /// byte `from` of the log on.
    pub fn neutron_calls_since(&self, from: usize) -> Vec<String> {
        let text = self.log_text();
        text.get(from..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("openstack::client: reply"))
            .filter_map(|l| {
                let method = l.split("reply method=").nth(1)?.split_whitespace().next()?;
                let path = l.split("path=\"").nth(1)?.split('"').next()?;
                Some(format!("{method} {path}"))
            })
            .collect()
    }

    /// The log's length in lines (a mark for `neutron_calls_since`).
    pub fn log_len(&self) -> usize {
        std::fs::metadata(&self.log)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    }

    /// POSTs a raw body to the plugin socket; returns status and body.
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        self.try_post(path, body)
            .unwrap_or_else(|e| panic!("POST {path} to {}: {e}", self.socket.display()))
    }

    /// POSTs JSON; returns status and parsed body.
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post(path, body.to_string().as_bytes());
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} answered non-JSON {text:?}: {e}"));
        (status, value)
    }

    fn try_post(&self, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
        http_post(&self.socket, path, body)
    }
}

impl Drop for Kuryr {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "---- last lines of {} ({}) ----",
                self.log.display(),
                self.name
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A minimal HTTP/1.1 POST over a unix socket, as dockerd sends them (no
/// Content-Type). Handles `Content-Length` and chunked replies.
pub fn http_post(socket: &Path, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    post_on(stream, path, body)
}

/// The same POST over TCP, to a plugin served on `kuryr_uri` (upstream's
/// way, registered with Docker by a spec file).
pub fn http_post_tcp(
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    post_on(stream, path, body)
}

fn post_on(
    mut stream: impl Read + Write,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

// ------------------------------------------------------------- the fixture

/// Neutron objects a test made itself (deleted at the end, reverse order).
#[derive(Debug, Clone)]
enum Made {
    Neutron(Resource, String),
}

/// A test's plugin plus everything to clean up when the test ends.
pub struct Fixture {
    /// The stack.
    pub stack: Stack,
    /// This test's plugin.
    pub kuryr: Kuryr,
    containers: RefCell<Vec<String>>,
    networks: RefCell<Vec<String>>,
    docker_net_ids: RefCell<Vec<String>>,
    endpoints: RefCell<Vec<String>>,
    cidrs: RefCell<Vec<String>>,
    made: RefCell<Vec<Made>>,
}

impl Fixture {
    /// The fixture with the default `kuryr.conf` (nothing but what the
    /// test needs; credentials come from the environment).
    pub fn new(test: &str) -> Option<Fixture> {
        Fixture::with_config(test, "[DEFAULT]\n")
    }

    /// The fixture with this `kuryr.conf`.
    pub fn with_config(test: &str, config: &str) -> Option<Fixture> {
        let stack = stack(test)?;
        let kuryr = Kuryr::start(config);
        eprintln!("{test}: driver {}", kuryr.name);
        Some(Fixture::around(stack, kuryr))
    }

    /// The fixture with its plugin prepared but not started: the test
    /// starts it with `f.kuryr.launch()` (after another driver served
    /// first, say). Cleanup works either way.
    pub fn with_plugin_stopped(test: &str, config: &str) -> Option<Fixture> {
        let stack = stack(test)?;
        let kuryr = Kuryr::prepare(config);
        eprintln!("{test}: driver {} (not started yet)", kuryr.name);
        Some(Fixture::around(stack, kuryr))
    }

    fn around(stack: Stack, kuryr: Kuryr) -> Fixture {
        Fixture {
            stack,
            kuryr,
            containers: RefCell::default(),
            networks: RefCell::default(),
            docker_net_ids: RefCell::default(),
            endpoints: RefCell::default(),
            cidrs: RefCell::default(),
            made: RefCell::default(),
        }
    }

    /// The Docker driver name this test's plugin serves.
    pub fn driver(&self) -> &str {
        &self.kuryr.name
    }

    /// A name for a container or network unique to this test (≥ 2 chars).
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.kuryr.name)
    }

    /// Remembers a cidr the test uses, to sweep `kuryrPool-<cidr>` and
    /// `kuryr-subnet-<cidr>` leftovers when it ends.
    pub fn uses_cidr(&self, cidr: &str) {
        self.cidrs.borrow_mut().push(cidr.to_string());
    }

    /// `docker network create -d <driver> --ipam-driver <driver> <args> <name>`;
    /// returns the Docker network id.
    pub fn create_network(&self, name: &str, args: &[&str]) -> String {
        let out = self.try_create_network(name, args);
        assert!(
            out.status.success(),
            "docker network create {name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.docker_net_ids.borrow_mut().push(id.clone());
        id
    }

    /// Same, expected to fail: returns Docker's error message.
    pub fn create_network_fails(&self, name: &str, args: &[&str]) -> String {
        let out = self.try_create_network(name, args);
        assert!(
            !out.status.success(),
            "docker network create {name} {args:?} should have failed; it made {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    }

    fn try_create_network(&self, name: &str, args: &[&str]) -> Output {
        let driver = self.driver().to_string();
        self.try_create_network_with(&driver, name, args)
    }

    /// [`Fixture::create_network`] through another driver name (e.g. one
    /// registered by a spec file); the network is removed at the end too.
    pub fn create_network_with(&self, driver: &str, name: &str, args: &[&str]) -> String {
        let out = self.try_create_network_with(driver, name, args);
        assert!(
            out.status.success(),
            "docker network create -d {driver} {name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.docker_net_ids.borrow_mut().push(id.clone());
        id
    }

    fn try_create_network_with(&self, driver: &str, name: &str, args: &[&str]) -> Output {
        self.networks.borrow_mut().push(name.to_string());
        let mut all = vec!["network", "create", "-d", driver, "--ipam-driver", driver];
        all.extend_from_slice(args);
        all.push(name);
        run("docker", &all)
    }

    /// `docker run -d --network <net> --name <name> <extra> kbox sleep 1000`.
    pub fn run_detached(&self, name: &str, network: &str, extra: &[&str]) -> Attachment {
        let out = self.try_run_detached(name, network, extra);
        assert!(
            out.status.success(),
            "docker run {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let att = attachment(name, network);
        self.endpoints.borrow_mut().push(att.endpoint.clone());
        att
    }

    /// `docker run -d` of `kbox sleep 1000` on `network`; the output, success or not.
    pub fn try_run_detached(&self, name: &str, network: &str, extra: &[&str]) -> Output {
        self.try_run_detached_with("docker", name, network, extra)
    }

    /// Like [`Fixture::try_run_detached`] with another docker client (the
    /// engine's own 20.10 CLI speaks API 1.41, which `--mac-address` needs).
    pub fn try_run_detached_with(
        &self,
        client: &str,
        name: &str,
        network: &str,
        extra: &[&str],
    ) -> Output {
        self.containers.borrow_mut().push(name.to_string());
        let mut all = vec!["run", "-d", "--network", network, "--name", name];
        all.extend_from_slice(extra);
        all.extend_from_slice(&["kbox", "sleep", "1000"]);
        run(client, &all)
    }

    /// `docker rm -f`.
    pub fn remove_container(&self, name: &str) {
        docker(&["rm", "-f", name]);
        self.containers.borrow_mut().retain(|c| c != name);
    }

    /// `docker network disconnect <network> <container>`.
    pub fn disconnect(&self, network: &str, container: &str) {
        docker(&["network", "disconnect", network, container]);
    }

    /// `docker network rm`.
    pub fn remove_network(&self, name: &str) {
        docker(&["network", "rm", name]);
        self.networks.borrow_mut().retain(|n| n != name);
    }

    /// Records a Neutron object the test made itself.
    pub fn made(&self, res: Resource, id: &str) {
        self.made
            .borrow_mut()
            .push(Made::Neutron(res, id.to_string()));
    }

    /// Asserts that Neutron holds nothing Kuryr made for this Docker
    /// network, these endpoints and cidrs: no port, subnet, Kuryr
    /// subnetpool or network; and no veth or OVS port of the given ports.
    pub fn assert_clean(&self, docker_net: &str, cidrs: &[&str], port_ids: &[&str]) {
        eventually("nothing left behind", || {
            self.leftovers(docker_net, cidrs, port_ids)
        });
    }

    /// Asserts that Neutron holds nothing Kuryr made for this Docker
    /// network and these cidrs (network, Kuryr subnetpool and subnets),
    /// whatever other containers of the test still run.
    pub fn assert_network_clean(&self, docker_net: &str, cidrs: &[&str]) {
        eventually("nothing left of the network", || {
            self.network_leftovers(docker_net, cidrs)
        });
    }

    fn leftovers(&self, docker_net: &str, cidrs: &[&str], port_ids: &[&str]) -> Vec<String> {
        let s = &self.stack;
        let mut left = self.network_leftovers(docker_net, cidrs);
        for port in port_ids {
            if s.port(port).is_some() {
                left.push(format!("Neutron port {port}"));
            }
            left.extend(host_leftovers(&s.bridge, port));
        }
        for ep in self.endpoints.borrow().iter() {
            for p in s.ports_of_endpoint(ep) {
                left.push(format!("port {} of endpoint {ep}", p.id));
            }
            if !ovs_interfaces_with("vm-uuid", ep).is_empty() {
                left.push(format!("OVS interface of endpoint {ep}"));
            }
        }
        left
    }

    fn network_leftovers(&self, docker_net: &str, cidrs: &[&str]) -> Vec<String> {
        let s = &self.stack;
        let mut left = Vec::new();
        for n in s.networks_of_docker(docker_net) {
            left.push(format!(
                "network {} ({}) tagged for {docker_net}",
                n.id, n.name
            ));
        }
        for cidr in cidrs {
            for p in s.kuryr_pools(cidr) {
                left.push(format!("subnetpool {} kuryrPool-{cidr}", p.id));
            }
            for sn in s.subnets_with_cidr(cidr) {
                if sn.name == format!("kuryr-subnet-{cidr}") {
                    left.push(format!("subnet {} {}", sn.id, sn.name));
                }
            }
        }
        left
    }

    /// Waits until Neutron no longer has this port (and its devices are gone).
    pub fn assert_port_gone(&self, port_id: &str) {
        eventually(&format!("port {port_id} deleted"), || {
            let mut left = host_leftovers(&self.stack.bridge, port_id);
            if self.stack.port(port_id).is_some() {
                left.push(format!("Neutron port {port_id}"));
            }
            left
        });
    }

    /// Best effort removal of everything the test made.
    fn sweep(&self) {
        for c in self.containers.borrow().iter() {
            let _ = run_with_timeout("docker", &["rm", "-f", c], Duration::from_secs(60));
        }
        for n in self.networks.borrow().iter().rev() {
            let _ = run_with_timeout("docker", &["network", "rm", n], Duration::from_secs(60));
        }
    }

    fn sweep_neutron(&self) {
        let s = &self.stack;
        let n = &s.neutron;
        let quiet = |what: String, r: Result<(), openstack::Error>| {
            if let Err(e) = r {
                if !e.is_not_found() {
                    eprintln!("cleanup: {what}: {e}");
                }
            }
        };
        for ep in self.endpoints.borrow().iter() {
            if let Ok(ports) = s.block_on(n.list_ports(&Query::new().device_id(ep))) {
                for p in ports {
                    cleanup_devices(&p.id);
                    quiet(format!("port {}", p.id), s.block_on(n.delete_port(&p.id)));
                }
            }
        }
        for id in self.docker_net_ids.borrow().iter() {
            let Ok(nets) = s.block_on(n.list_networks(&Query::new().tags(id_tags(id)))) else {
                continue;
            };
            for net in nets {
                let made_by_test = self
                    .made
                    .borrow()
                    .iter()
                    .any(|Made::Neutron(_, made)| *made == net.id);
                if made_by_test {
                    continue;
                }
                if let Ok(ports) = s.block_on(n.list_ports(&Query::new().network_id(&net.id))) {
                    for p in ports {
                        cleanup_devices(&p.id);
                        quiet(format!("port {}", p.id), s.block_on(n.delete_port(&p.id)));
                    }
                }
                quiet(
                    format!("network {}", net.id),
                    s.block_on(n.delete_network(&net.id)),
                );
            }
        }
        for cidr in self.cidrs.borrow().iter() {
            if let Ok(subnets) =
                s.block_on(n.list_subnets(&Query::new().name(format!("kuryr-subnet-{cidr}"))))
            {
                for sn in subnets {
                    if let Ok(ports) =
                        s.block_on(n.list_ports(&Query::new().fixed_ip_subnet(&sn.id)))
                    {
                        for p in ports {
                            cleanup_devices(&p.id);
                            quiet(format!("port {}", p.id), s.block_on(n.delete_port(&p.id)));
                        }
                    }
                    quiet(
                        format!("subnet {}", sn.id),
                        s.block_on(n.delete_subnet(&sn.id)),
                    );
                }
            }
            if let Ok(pools) =
                s.block_on(n.list_subnetpools(&Query::new().name(format!("kuryrPool-{cidr}"))))
            {
                for p in pools {
                    quiet(
                        format!("subnetpool {}", p.id),
                        s.block_on(n.delete_subnetpool(&p.id)),
                    );
                }
            }
        }
        let made: Vec<Made> = self.made.borrow().iter().rev().cloned().collect();
        for Made::Neutron(res, id) in made {
            if res == Resource::Networks {
                if let Ok(ports) = s.block_on(n.list_ports(&Query::new().network_id(&id))) {
                    for p in ports {
                        cleanup_devices(&p.id);
                        quiet(format!("port {}", p.id), s.block_on(n.delete_port(&p.id)));
                    }
                }
            }
            quiet(format!("{res} {id}"), s.block_on(n.delete(res, &id)));
        }
    }
}

/// Removes a port's veth and OVS port, if any are left.
pub fn cleanup_devices(port_id: &str) {
    let (host, _) = veth_names(port_id);
    let _ = run_with_timeout(
        "ovs-vsctl",
        &["--timeout=10", "--if-exists", "del-port", &host],
        Duration::from_secs(20),
    );
    if link_exists(&host) {
        let _ = run_with_timeout("ip", &["link", "del", &host], Duration::from_secs(20));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Docker objects go first, while the plugin still answers.
        self.sweep();
        self.kuryr.kill();
        self.sweep_neutron();
    }
}

// ------------------------------------------------------------- gc, status, crash

impl Fixture {
    /// Registers a container the test runs itself (e.g. from another
    /// thread), so the fixture removes it at the end.
    pub fn track_container(&self, name: &str) {
        self.containers.borrow_mut().push(name.to_string());
    }
}

/// Stops a process the test started: SIGTERM by PID (so it removes its
/// socket), up to 5 s to exit, then SIGKILL.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
