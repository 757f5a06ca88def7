//! Crash consistency: containers are created and deleted through real
//! Docker (`docker run -d` / `docker rm -f`) and through the CNI path (the
//! real `kuryr-cni` binary against `kuryr daemon`) while both Kuryr
//! processes are `kill -9`ed (by PID) at random points, then restarted.
//!
//! After every restart: every live container and CNI netns pings a peer,
//! and Docker and the CNI runtime can delete what they asked to delete
//! (a failed call is retried, as a runtime does). At the end everything is
//! deleted, the leftovers on the test's Neutron network are counted (Kuryr
//! ports, `tap` veths and OVS ports of every port seen during the run),
//! `kuryr gc --min-age 0` runs, and the counts must be 0. The figures are
//! printed (`crash: ...`) for docs/reliability.md.
//!
//! `KURYR_CRASH_KILLS` (default 50) sets the number of kills,
//! `KURYR_CRASH_SEED` the random seed (printed).
//!
//! `eval "$(scripts/stack env)"; cargo build -p kuryr-cni;
//!  cargo test -p kuryr --test crash -- --nocapture`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kuryr_testkit::cni_util::{cni_invoke, CniCall, Daemon};
use kuryr_testkit::*;
use openstack::neutron::Query;
use serde_json::{json, Value};

const DEVICE_OWNER: &str = "compute:kuryr";
/// Kill points fall uniformly in this window after the operations start
/// (a `docker run` or a CNI ADD takes about a second here).
const KILL_WINDOW_MS: u64 = 1500;
/// Live containers (and CNI attachments) kept at most, so a round stays short.
const MAX_LIVE: usize = 3;

/// xorshift64*: enough randomness for kill points, reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One `kuryr-cni` call; `Ok(stdout)` on success.
fn cni(
    socket: &Path,
    command: &str,
    cid: &str,
    netns: &str,
    conf: &Value,
) -> Result<String, String> {
    let call = CniCall {
        command,
        container_id: Some(cid),
        netns: Some(netns),
        ifname: Some("eth0"),
        env: &[("KURYR_CNI_TIMEOUT_ADD", "60"), ("KURYR_CNI_TIMEOUT_DEL", "60")],
        ..CniCall::default()
    };
    let out = cni_invoke(socket, &call, conf);
    if out.success {
        Ok(out.stdout)
    } else {
        Err(format!("{} {}", out.stdout, out.stderr))
    }
}

/// A CNI "pod": a netns with one attachment.
struct Pod {
    cid: String,
    netns: String,
    ip: Option<IpAddr>,
}

impl Pod {
    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }
}

/// Pings with patience: addresses are reused quickly under churn, and OVN
/// answers ARP itself, so the peer may hold a stale neighbour entry for the
/// address until its own probe (about 5 s) refreshes it.
const PING_TRIES: usize = 20;

fn ping_from_netns(netns: &str, target: IpAddr) -> bool {
    let target = target.to_string();
    let args = ["netns", "exec", netns, "ping", "-c", "1", "-W", "1", &target];
    (0..PING_TRIES).any(|_| run("ip", &args).status.success())
}

fn ping_from_container(container: &str, target: IpAddr) -> bool {
    let target = target.to_string();
    let args = ["exec", container, "ping", "-c", "1", "-W", "1", &target];
    (0..PING_TRIES).any(|_| run("docker", &args).status.success())
}

fn docker_out(args: &[&str]) -> String {
    let out = run("docker", args);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn container_ip(name: &str, network: &str) -> Option<IpAddr> {
    let info = inspect(name);
    info["NetworkSettings"]["Networks"][network]["IPAddress"].as_str().and_then(|s| s.parse().ok())
}

fn running(name: &str) -> bool {
    let out = run("docker", &["inspect", "-f", "{{.State.Running}}", name]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
}

/// Every netns the test made, deleted at the end (also on a panic).
#[derive(Default)]
struct Netnses(std::cell::RefCell<Vec<String>>);

impl Drop for Netnses {
    fn drop(&mut self) {
        for name in self.0.borrow().iter() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

#[derive(Default, Debug)]
struct Figures {
    kills: usize,
    docker_created: usize,
    docker_run_failed: usize,
    docker_deleted: usize,
    docker_rm_retried: usize,
    cni_added: usize,
    cni_add_failed: usize,
    cni_deleted: usize,
    cni_del_retried: usize,
    pings: usize,
    /// Pings that passed only once the anchor forgot a stale neighbour.
    stale_neighbours: usize,
}

#[test]
fn kill9_during_docker_and_cni_churn_leaks_nothing() {
    let mut f = fixture_or_skip!("kill9_during_docker_and_cni_churn_leaks_nothing");
    let kills: usize =
        std::env::var("KURYR_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let seed: u64 = std::env::var("KURYR_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| u64::from_str_radix(&hex(15), 16).expect("hex") | 1);
    eprintln!("crash: seed {seed} (KURYR_CRASH_SEED), kills {kills}");
    let mut rng = Rng(seed);
    let started = Instant::now();

    let (_, net, _, network) = f.fresh_neutron_network();
    let dir = f.kuryr.dir.clone();
    let mut daemon = Daemon::start(&dir, &["--host", &f.stack.local().host], &[]);
    let conf = json!({
        "cniVersion": "1.1.0",
        "name": format!("crash{}", f.driver()),
        "type": "kuryr-cni",
        "neutron": {"network": network.id},
    });

    // The anchor every container pings; created before any kill.
    let anchor = f.name("anchor");
    f.run_detached(&anchor, &net, &[]);
    let anchor_ip = container_ip(&anchor, &net).expect("anchor IP");

    let netnses = Netnses::default();
    let mut figures = Figures::default();
    let mut containers: Vec<String> = Vec::new();
    let mut pods: Vec<Pod> = Vec::new();
    let mut seen_ports: BTreeSet<String> = BTreeSet::new();
    let mut serial = 0;

    for round in 0..kills {
        // This round's operations: grow while below MAX_LIVE, else shrink.
        serial += 1;
        let docker_add = containers.len() < MAX_LIVE && rng.below(3) != 0;
        let cni_add = pods.len() < MAX_LIVE && rng.below(3) != 0;
        let new_container = f.name(&format!("c{serial}"));
        let gone_container = (!docker_add && !containers.is_empty())
            .then(|| containers.remove(rng.below(containers.len() as u64) as usize));
        let new_pod = cni_add.then(|| {
            let name = format!("{}-p{serial}", f.driver());
            ok("ip", &["netns", "add", &name]);
            netnses.0.borrow_mut().push(name.clone());
            Pod { cid: format!("{}{serial:04}{}", f.driver(), hex(32)), netns: name, ip: None }
        });
        let gone_pod = (!cni_add && !pods.is_empty())
            .then(|| pods.remove(rng.below(pods.len() as u64) as usize));

        let delay = Duration::from_millis(rng.below(KILL_WINDOW_MS));
        let round_start = Instant::now();
        let socket = daemon.socket.clone();
        let cni_conf = conf.clone();
        let cni_op = match (&new_pod, &gone_pod) {
            (Some(p), _) => Some(("ADD", p.cid.clone(), p.path())),
            (None, Some(p)) => Some(("DEL", p.cid.clone(), p.path())),
            _ => None,
        };
        let cni_thread = std::thread::spawn(move || {
            cni_op.map(|(cmd, cid, netns)| cni(&socket, cmd, &cid, &netns, &cni_conf))
        });
        if docker_add {
            f.track_container(&new_container);
        }
        let docker_args: Option<Vec<String>> = if docker_add {
            Some(
                ["run", "-d", "--network", &net, "--name", &new_container, "kbox", "sleep", "1000"]
                    .map(String::from)
                    .to_vec(),
            )
        } else {
            gone_container.as_ref().map(|c| ["rm", "-f", c.as_str()].map(String::from).to_vec())
        };
        let docker_thread = std::thread::spawn(move || {
            docker_args.map(|args| {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run_with_timeout("docker", &args, Duration::from_secs(120)).status.success()
            })
        });
        // kill -9 both (by PID), then restart them at once, as a
        // supervisor would, while the calls are in flight.
        std::thread::sleep(delay);
        f.kuryr.crash_and_restart();
        daemon.restart();
        let docker_result = docker_thread.join().expect("docker thread");
        let cni_result = cni_thread.join().expect("CNI thread");
        figures.kills += 1;
        eprintln!(
            "crash: round {round}: kill at {delay:?}; docker {} -> {docker_result:?}; cni {:?}; round took {:?}",
            if docker_add { "run" } else { "rm" },
            cni_result.as_ref().map(|r| r.as_ref().map(|_| "ok").map_err(|e| e.chars().take(160).collect::<String>())),
            round_start.elapsed(),
        );

        // Settle what the kill interrupted, as the runtimes would.
        match (docker_add, docker_result) {
            (true, Some(true)) => {
                figures.docker_created += 1;
                containers.push(new_container.clone());
            }
            (true, _) => {
                figures.docker_run_failed += 1;
                docker(&["rm", "-f", &new_container]);
            }
            (false, Some(success)) => {
                let name = gone_container.expect("a container was removed");
                if !success {
                    figures.docker_rm_retried += 1;
                    docker(&["rm", "-f", &name]);
                }
                figures.docker_deleted += 1;
            }
            (false, None) => {}
        }
        if let Some(mut pod) = new_pod {
            match cni_result {
                Some(Ok(out)) => {
                    let result: Value = serde_json::from_str(&out).expect("ADD result");
                    pod.ip = result["ips"][0]["address"]
                        .as_str()
                        .and_then(|a| a.split('/').next())
                        .and_then(|a| a.parse().ok());
                    figures.cni_added += 1;
                    pods.push(pod);
                }
                _ => {
                    figures.cni_add_failed += 1;
                    del_until_done(&daemon.socket, &pod, &conf, &mut figures);
                }
            }
        } else if let Some(pod) = gone_pod {
            if !matches!(cni_result, Some(Ok(_))) {
                figures.cni_del_retried += 1;
                del_until_done(&daemon.socket, &pod, &conf, &mut figures);
            } else {
                let _ = run("ip", &["netns", "del", &pod.netns]);
            }
            figures.cni_deleted += 1;
        }

        // Every live container and pod still has connectivity.
        for c in &containers {
            assert!(running(c), "round {round}: container {c} is not running");
            if !ping_from_container(c, anchor_ip) {
                // Neutron hands a freed address out again at once; the
                // anchor may still map it to the previous holder's MAC (a
                // REACHABLE entry lives up to 45 s and OVN answers the new
                // container's ARP for the anchor itself). Say so, forget
                // the entry, and only then judge.
                let neigh = docker_out(&["exec", &anchor, "ip", "neigh", "show"]);
                let mine = docker_out(&["exec", c, "ip", "-o", "link", "show", "eth0"]);
                let _ = run("docker", &["exec", &anchor, "ip", "neigh", "flush", "dev", "eth0"]);
                assert!(
                    ping_from_container(c, anchor_ip),
                    "round {round}: container {c} cannot ping the anchor {anchor_ip}\n\
                     anchor neighbours: {neigh}\ncontainer link: {mine}"
                );
                eprintln!(
                    "crash: round {round}: {c} reached the anchor only after it forgot a stale \
                     neighbour entry: {neigh} / {mine}"
                );
                figures.stale_neighbours += 1;
            }
            figures.pings += 1;
        }
        for p in &pods {
            if !ping_from_netns(&p.netns, anchor_ip) {
                // As for containers above: the anchor may hold the reused
                // address's previous MAC.
                let neigh = docker_out(&["exec", &anchor, "ip", "neigh", "show"]);
                let _ = run("docker", &["exec", &anchor, "ip", "neigh", "flush", "dev", "eth0"]);
                if !ping_from_netns(&p.netns, anchor_ip) {
                    panic!(
                        "round {round}: pod {} cannot ping the anchor {anchor_ip}\n\
                         anchor neighbours: {neigh}\n{}",
                        p.cid,
                        pod_diagnostics(&f, p, &daemon)
                    );
                }
                eprintln!(
                    "crash: round {round}: pod {} reached the anchor only after it forgot a \
                     stale neighbour entry: {neigh}",
                    p.cid
                );
                figures.stale_neighbours += 1;
            }
            figures.pings += 1;
        }
        note_ports(&f, &network.id, &mut seen_ports);
    }
    let churn = started.elapsed();

    // Delete everything, as the runtimes would.
    for c in containers.drain(..) {
        docker(&["rm", "-f", &c]);
        figures.docker_deleted += 1;
    }
    docker(&["rm", "-f", &anchor]);
    for p in pods.drain(..) {
        del_until_done(&daemon.socket, &p, &conf, &mut figures);
        figures.cni_deleted += 1;
    }
    note_ports(&f, &network.id, &mut seen_ports);
    // Ports made and deleted within one round are only in the logs.
    let logs = f.kuryr.log_text() + &std::fs::read_to_string(&daemon.log).unwrap_or_default();
    seen_ports.extend(port_ids_in(&logs));
    let before_gc = leftovers(&f, &network.id, &seen_ports);
    eprintln!("crash: leftovers after restart recovery alone: {before_gc:?}");

    let out = Command::new(kuryr_bin())
        .arg("--config-file")
        .arg(&f.kuryr.config)
        .args(["--host", &f.stack.local().host, "gc", "--min-age", "0"])
        .args(["--network", &network.id])
        .arg("--plugin-socket")
        .arg(&f.kuryr.socket)
        .output()
        .expect("kuryr gc");
    let gc_out = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("crash: kuryr gc --min-age 0:\n{gc_out}");
    assert!(out.status.success(), "kuryr gc failed: {gc_out}");
    let after_gc = leftovers(&f, &network.id, &seen_ports);
    let gc_removed =
        gc_out.lines().filter(|l| !l.starts_with("keep port") && !l.starts_with("gc")).count();
    eprintln!(
        "crash: kills {} in {:.0}s; docker created {} (run failed {}), deleted {} (rm retried {}); \
         cni added {} (add failed {}), deleted {} (del retried {}); pings {} (after a stale \
         neighbour {}); ports seen {}; \
         leftovers before gc {:?}; gc removed {}; after gc {:?}",
        figures.kills,
        churn.as_secs_f64(),
        figures.docker_created,
        figures.docker_run_failed,
        figures.docker_deleted,
        figures.docker_rm_retried,
        figures.cni_added,
        figures.cni_add_failed,
        figures.cni_deleted,
        figures.cni_del_retried,
        figures.pings,
        figures.stale_neighbours,
        seen_ports.len(),
        before_gc,
        gc_removed,
        after_gc,
    );
    assert_eq!(after_gc, Leftovers::default(), "leaks after gc");
}

/// What a failed ping leaves to look at: the pod's interfaces, its ports
/// in Neutron, their OVS interfaces, and the daemon's log about it.
fn pod_diagnostics(f: &Fixture, pod: &Pod, daemon: &Daemon) -> String {
    let mut out = String::new();
    let addr = run("ip", &["netns", "exec", &pod.netns, "ip", "addr"]);
    out.push_str(&format!("netns {}:\n{}\n", pod.netns, String::from_utf8_lossy(&addr.stdout)));
    for port in f.stack.ports(Query::new().device_id(&pod.cid)) {
        let (host, _) = veth_names(&port.id);
        out.push_str(&format!(
            "port {} status {} ips {:?} mac {} veth {} exists {} ovs {:?}\n",
            port.id,
            port.status,
            port.fixed_ips,
            port.mac_address,
            host,
            link_exists(&host),
            ovs_interfaces_with("iface-id", &port.id)
        ));
    }
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    let short: String = pod.cid.chars().take(24).collect();
    for line in log.lines().filter(|l| l.contains(&short) || l.contains("gc at start")) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// DEL until it succeeds (the daemon was just restarted; it may still be
/// finishing), then remove the netns.
fn del_until_done(socket: &Path, pod: &Pod, conf: &Value, figures: &mut Figures) {
    let mut last = String::new();
    for _ in 0..5 {
        match cni(socket, "DEL", &pod.cid, &pod.path(), conf) {
            Ok(_) => {
                let _ = run("ip", &["netns", "del", &pod.netns]);
                return;
            }
            Err(e) => {
                figures.cni_del_retried += 1;
                last = e;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    panic!("CNI DEL of {} keeps failing: {last}", pod.cid);
}

/// Every `port_id=<uuid>` in a log.
fn port_ids_in(log: &str) -> BTreeSet<String> {
    log.split("port_id=")
        .skip(1)
        .filter_map(|rest| {
            let id: String = rest.trim_start_matches('"').chars().take(36).collect();
            let uuid_shaped =
                id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            uuid_shaped.then_some(id)
        })
        .collect()
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Leftovers {
    ports: usize,
    veths: usize,
    ovs_ports: usize,
}

/// Adds the ids of Kuryr's ports now on `network` to `seen`.
fn note_ports(f: &Fixture, network: &str, seen: &mut BTreeSet<String>) {
    let query = Query::new().network_id(network).device_owner(DEVICE_OWNER);
    for port in f.stack.ports(query) {
        seen.insert(port.id.into_string());
    }
}

fn leftovers(f: &Fixture, network: &str, seen: &BTreeSet<String>) -> Leftovers {
    let ports = f.stack.ports(Query::new().network_id(network).device_owner(DEVICE_OWNER)).len();
    let bridge_ports = f.stack.local().ovs_ports();
    let mut out = Leftovers { ports, ..Leftovers::default() };
    for id in seen {
        let (host, _) = veth_names(id);
        if link_exists(&host) {
            out.veths += 1;
        }
        if bridge_ports.contains(&host) || !ovs_interfaces_with("iface-id", id).is_empty() {
            out.ovs_ports += 1;
        }
    }
    out
}
