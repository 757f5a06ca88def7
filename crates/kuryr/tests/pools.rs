//! Functional tests of port pools (`[vif_pool]`) with the Docker driver,
//! through the real Docker engine, Neutron ML2/OVN and OVS of
//! `scripts/stack`: what a user or operator would check in `openstack port
//! list`, `ovs-vsctl` and inside the containers.
//!
//! `eval "$(scripts/stack env)"; cargo test -p kuryr --test pools`.
//! Without `KURYR_STACK_AUTH` every test prints a skip notice and passes.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use kuryr_testkit::*;
use openstack::neutron::{Port, Query};

const WAIT: Duration = Duration::from_secs(60);
const POOL_CONFIG: &str =
    "[DEFAULT]\n[vif_pool]\nports_pool_min = 2\nports_pool_max = 4\nports_pool_batch = 2\n";

/// The pool ports Neutron has for a network on this host (tag `kuryr.pool`).
fn pool_ports(f: &Fixture, network_id: &str) -> Vec<Port> {
    f.stack.ports(
        Query::new()
            .network_id(network_id)
            .binding_host_id(&f.stack.local().host)
            .tags(["kuryr.pool"]),
    )
}

/// Waits until at least `n` pool ports are ready as a user sees them:
/// ACTIVE, named and owned as pool ports, their veth on br-int with
/// `kuryr-pool=<network>` and no `vm-uuid`.
fn ready_pool(f: &Fixture, network_id: &str, n: usize) -> Vec<Port> {
    wait_for(&format!("{n} ready pool ports"), WAIT, || {
        let ready: Vec<Port> = pool_ports(f, network_id)
            .into_iter()
            .filter(|p| is_ready_pool_port(f, p, network_id))
            .collect();
        (ready.len() >= n).then_some(ready)
    })
}

/// [`ready_pool`], once the plugin has counted the pool filled too.
fn warm_pool(f: &Fixture, network_id: &str, n: usize) -> Vec<Port> {
    let warm = ready_pool(f, network_id, n);
    wait_for("the plugin's pool filled", WAIT, || {
        f.kuryr.log_text().contains("port pool refilled").then_some(())
    });
    warm
}

fn is_ready_pool_port(f: &Fixture, p: &Port, network_id: &str) -> bool {
    let (tap, container_end) = veth_names(&p.id);
    p.status == "ACTIVE"
        && p.name == "kuryr-pool-port"
        && p.device_id.is_empty()
        && p.device_owner == "compute:kuryr"
        && p.binding_host_id == f.stack.local().host
        && p.tags.iter().any(|t| t == "compute:kuryr")
        && link_exists(&container_end)
        && f.stack.local().ovs_ports().contains(&tap)
        && ovs_external_id(&tap, "kuryr-pool").as_deref() == Some(network_id)
        && ovs_external_id(&tap, "vm-uuid").is_none()
}

fn ips(ports: &[Port]) -> BTreeSet<IpAddr> {
    ports.iter().flat_map(|p| p.fixed_ips.iter().map(|f| f.ip_address)).collect()
}

/// The claimed port of a container: named and owned after its endpoint,
/// no longer tagged as a pool port, its address inside the container.
fn claimed(f: &Fixture, container: &str, att: &Attachment) -> Port {
    let port = wait_for("the claimed port's owner in Neutron", WAIT, || {
        let ports = f.stack.ports_of_endpoint(&att.endpoint);
        (ports.len() == 1 && ports[0].status == "ACTIVE").then(|| ports[0].clone())
    });
    assert_eq!(port.name, format!("{}-port", att.endpoint));
    assert!(
        !port.tags.iter().any(|t| t == "kuryr.pool"),
        "a claimed port is not a pool port: {:?}",
        port.tags
    );
    assert!(has_all_tags(&port.tags, &id_tags(&att.endpoint)));
    let (tap, _) = veth_names(&port.id);
    assert_eq!(ovs_external_id(&tap, "vm-uuid").as_deref(), Some(att.endpoint.as_str()));
    assert_eq!(ovs_external_id(&tap, "kuryr-pool"), None);
    let inside = eth0(container);
    let ip = att.ip.expect("an IPv4 address");
    assert!(
        inside.addresses.contains(&format!("{ip}/{}", att.prefix)),
        "{ip} on eth0 in {container}: {inside:?}"
    );
    assert!(inside.mac.eq_ignore_ascii_case(&port.mac_address));
    port
}

fn has_all_tags(tags: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| tags.contains(w))
}

/// The whole life of a pool with Docker: filled at `network create`, served
/// to two containers that ping each other, given back on `docker rm`,
/// found again after the plugin is killed and started again, and gone
/// with `network rm` (no port, veth or OVS port left).
#[test]
fn docker_pool_lifecycle() {
    let mut f = fixture_or_skip!("docker_pool_lifecycle", POOL_CONFIG);
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let mut seen: BTreeSet<String> = BTreeSet::new();

    // Warm at create: ready before any container asks (as Neutron and
    // OVS show it, and as the plugin counts it).
    let warm = warm_pool(&f, &network.id, 2);
    seen.extend(warm.iter().map(|p| p.id.to_string()));
    let warm_ips = ips(&warm);

    let ca = f.name("ca");
    let a = f.run_detached(&ca, &net, &[]);
    assert!(
        warm_ips.contains(&a.ip.expect("v4")),
        "the first container got a pool port's address: {:?} not in {warm_ips:?}",
        a.ip
    );
    let port_a = claimed(&f, &ca, &a);
    let cb = f.name("cb");
    let b = f.run_detached(&cb, &net, &[]);
    let port_b = claimed(&f, &cb, &b);
    seen.extend([port_a.id.to_string(), port_b.id.to_string()]);
    ping(&ca, b.ip.expect("v4"));
    ping(&cb, a.ip.expect("v4"));

    // Released: back to the pool, the same port, ready again.
    f.remove_container(&ca);
    wait_for("container a's port back in the pool", WAIT, || {
        let port = f.stack.port(&port_a.id)?;
        is_ready_pool_port(&f, &port, &network.id).then_some(())
    });

    // Killed and started again: the same ports are found and served.
    let before: BTreeSet<String> =
        ready_pool(&f, &network.id, 2).into_iter().map(|p| p.id.into_string()).collect();
    seen.extend(before.iter().cloned());
    f.kuryr.crash_and_restart();
    let cc = f.name("cc");
    let c = f.run_detached(&cc, &net, &[]);
    let port_c = claimed(&f, &cc, &c);
    assert!(
        before.contains(port_c.id.as_str()),
        "after a restart a re-adopted pool port is served: {} not in {before:?}",
        port_c.id
    );
    ping(&cc, b.ip.expect("v4"));
    seen.extend(pool_ports(&f, &network.id).into_iter().map(|p| p.id.into_string()));

    f.remove_container(&cb);
    f.remove_container(&cc);
    f.remove_network(&net);
    let ids: Vec<&str> = seen.iter().map(String::as_str).collect();
    f.assert_clean(&docker_net, &[&cidr], &ids);
    eventually("no OVS interface marked for the pool", || {
        ovs_interfaces_with("kuryr-pool", &network.id)
            .into_iter()
            .map(|i| format!("OVS interface {i} still marked kuryr-pool"))
            .collect()
    });
}

/// Per-network sizes (`-o kuryr.ports_pool_min=…`) turn a pool on for one
/// network of a plugin whose `[vif_pool]` leaves pools off; an unknown
/// `kuryr.ports_pool_*` option is refused and leaves nothing behind.
#[test]
fn per_network_pool_options() {
    let f = fixture_or_skip!("per_network_pool_options");
    let (_, cidr) = f.fresh_cidr();
    let bad = f.name("bad");
    let err = f.create_network_fails(&bad, &["--subnet", &cidr, "-o", "kuryr.ports_pool_size=3"]);
    assert!(err.contains("kuryr.ports_pool_size"), "{err}");

    let (net, docker_net) = f.network_named(
        "net",
        &["--subnet", &cidr, "-o", "kuryr.ports_pool_min=1", "-o", "kuryr.ports_pool_batch=1"],
    );
    let network = f.stack.network_of_docker(&docker_net);
    let warm = warm_pool(&f, &network.id, 1);
    let ca = f.name("ca");
    let a = f.run_detached(&ca, &net, &[]);
    assert!(ips(&warm).contains(&a.ip.expect("v4")));
    let port_a = claimed(&f, &ca, &a);
    let mut seen: Vec<String> = vec![port_a.id.to_string()];
    seen.extend(warm.into_iter().map(|p| p.id.into_string()));
    f.remove_container(&ca);
    seen.extend(pool_ports(&f, &network.id).into_iter().map(|p| p.id.into_string()));
    f.remove_network(&net);
    let ids: Vec<&str> = seen.iter().map(String::as_str).collect();
    f.assert_clean(&docker_net, &[&cidr], &ids);
}

// ------------------------------------------------------------- CNI

/// `kuryr daemon` with `[vif_pool]`, killed (by PID) when dropped.
struct CniDaemon {
    child: Option<std::process::Child>,
    socket: std::path::PathBuf,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl CniDaemon {
    fn start(dir: &std::path::Path) -> CniDaemon {
        let config = dir.join("kuryr.conf");
        std::fs::write(&config, POOL_CONFIG).expect("writing kuryr.conf");
        let mut d = CniDaemon {
            child: None,
            socket: dir.join("cni.sock"),
            config,
            log: dir.join("daemon.log"),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = append_log(&self.log);
        let child = std::process::Command::new(kuryr_bin())
            .args(["--debug", "--config-file"])
            .arg(&self.config)
            .args(["daemon", "--no-gc", "--socket"])
            .arg(&self.socket)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kuryr daemon");
        self.child = Some(child);
        let socket = self.socket.clone();
        wait_for("the daemon's socket", Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(&socket).ok().map(|_| ())
        });
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for CniDaemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs the `kuryr-cni` plugin; returns its parsed result (ADD) or `Null`.
fn cni(
    socket: &std::path::Path,
    command: &str,
    cid: &str,
    netns: &str,
    conf: &serde_json::Value,
) -> serde_json::Value {
    let out = kuryr_testkit::cni_util::cni(socket, command, cid, netns, conf);
    assert!(out.success, "kuryr-cni {command} failed: {} {}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn result_ip(result: &serde_json::Value) -> IpAddr {
    let addr = result["ips"][0]["address"].as_str().expect("an address");
    addr.split('/').next().expect("ip").parse().expect("ip")
}

/// The CNI daemon's pool: filled on first use, a later ADD takes a ready
/// port (its address inside the netns, pingable, its owner recorded), DEL
/// leaves nothing of the attachment, and after `kill -9` the pool found
/// again serves the next ADD.
#[test]
fn cni_pool_add_del_and_restart() {
    let Some(stack) = stack("cni_pool_add_del_and_restart") else {
        return;
    };
    let (sfx, dir) = fresh_dir("kuryr-pool-test");
    let name = format!("kpt-{sfx}");
    let net = stack.create_network_named(name.clone());
    stack.add_fresh_subnet(&net.id);
    let cleanup = CniCleanup {
        stack: &stack,
        network_id: net.id.to_string(),
        netns: ["a", "b", "c"].map(|t| format!("kpt-{sfx}-{t}")).to_vec(),
    };
    for ns in &cleanup.netns {
        ok("ip", &["netns", "add", ns]);
    }
    let path = |t: &str| format!("/var/run/netns/kpt-{sfx}-{t}");
    let conf = serde_json::json!({
        "cniVersion": "1.1.0", "name": format!("kpt{sfx}"), "type": "kuryr-cni",
        "neutron": {"network": name}
    });
    let mut daemon = CniDaemon::start(&dir);
    let (cid_a, cid_b, cid_c) = (hex(64), hex(64), hex(64));

    // The first ADD makes the pool (no port ready yet: served as without).
    let a = cni(&daemon.socket, "ADD", &cid_a, &path("a"), &conf);
    let f_ready = |n| {
        wait_for(&format!("{n} ready CNI pool ports"), WAIT, || {
            let ready: Vec<Port> = stack
                .ports(Query::new().network_id(&net.id).tags(["kuryr.pool"]))
                .into_iter()
                .filter(|p| {
                    let (tap, end) = veth_names(&p.id);
                    p.status == "ACTIVE"
                        && p.name == "kuryr-pool-port"
                        && p.device_id.is_empty()
                        && link_exists(&end)
                        && ovs_external_id(&tap, "kuryr-pool").as_deref() == Some(net.id.as_str())
                })
                .collect();
            (ready.len() >= n).then_some(ready)
        })
    };
    let warm = f_ready(2);
    wait_for("the daemon's pool filled", WAIT, || {
        std::fs::read_to_string(&daemon.log)
            .unwrap_or_default()
            .contains("port pool refilled")
            .then_some(())
    });
    let b = cni(&daemon.socket, "ADD", &cid_b, &path("b"), &conf);
    let ip_b = result_ip(&b);
    assert!(ips(&warm).contains(&ip_b), "{ip_b} from the pool {:?}", ips(&warm));
    let inside =
        ok("ip", &["netns", "exec", &cleanup.netns[1], "ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(inside.contains(&format!("{ip_b}/24")), "{inside}");
    ok(
        "ip",
        &[
            "netns",
            "exec",
            &cleanup.netns[1],
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            &result_ip(&a).to_string(),
        ],
    );
    let port_b = wait_for("the pool port's owner in Neutron", WAIT, || {
        let ports = stack.ports(Query::new().device_id(&cid_b));
        (ports.len() == 1).then(|| ports[0].clone())
    });
    assert_eq!(port_b.name, format!("kuryr-cni-{}-eth0", &cid_b[..12]));
    assert!(!port_b.tags.iter().any(|t| t == "kuryr.pool"), "{:?}", port_b.tags);
    let (tap_b, _) = veth_names(&port_b.id);
    assert_eq!(ovs_external_id(&tap_b, "vm-uuid").as_deref(), Some(cid_b.as_str()));

    cni(&daemon.socket, "DEL", &cid_b, &path("b"), &conf);
    assert!(stack.port(&port_b.id).is_none(), "DEL deletes the port");
    stack.local().assert_unplugged(&port_b.id);

    // kill -9 and start again: the ready ports are found and served.
    // A refill may be pre-plugging more ports as the kill lands: every pool
    // port that exists then may be re-adopted, not only the ready ones.
    f_ready(2);
    daemon.kill();
    let before: BTreeSet<String> = stack
        .ports(Query::new().network_id(&net.id).tags(["kuryr.pool"]))
        .into_iter()
        .map(|p| p.id.into_string())
        .collect();
    daemon.spawn();
    let c = cni(&daemon.socket, "ADD", &cid_c, &path("c"), &conf);
    let port_c = wait_for("C's port", WAIT, || {
        let ports = stack.ports(Query::new().device_id(&cid_c));
        (ports.len() == 1).then(|| ports[0].clone())
    });
    assert!(before.contains(port_c.id.as_str()), "{} re-adopted from {before:?}", port_c.id);
    assert_eq!(result_ip(&c), port_c.fixed_ips[0].ip_address);
    cni(&daemon.socket, "DEL", &cid_c, &path("c"), &conf);
    cni(&daemon.socket, "DEL", &cid_a, &path("a"), &conf);
    daemon.kill();
    drop(cleanup);
}

/// Removes what the CNI pool test made: the pool ports (with their veths
/// and OVS ports), the network, the netns.
struct CniCleanup<'a> {
    stack: &'a Stack,
    network_id: String,
    netns: Vec<String>,
}

impl Drop for CniCleanup<'_> {
    fn drop(&mut self) {
        let s = self.stack;
        s.remove_network_and_ports(&self.network_id);
        for ns in &self.netns {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}
