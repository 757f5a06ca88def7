//! Concurrency: 50 containers started at once on one Kuryr network
//! (Docker), and 50 CNI ADDs at once into 50 netns (`kuryr daemon` and the
//! real `kuryr-cni`). Each must succeed with its own address; Neutron must
//! hold exactly 50 ACTIVE ports; after deletion nothing is left (ports,
//! veths, OVS ports). Wall times are printed (`concurrency ...`), never
//! asserted.
//!
//! Run: `eval "$(scripts/stack env)"; cargo build -p kuryr-cni;
//! cargo test -p kuryr --test concurrency -- --nocapture`.

use kuryr_testkit::cni_util;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use cni_util::{cni, CniWorld};
use kuryr_testkit::*;
use openstack::neutron::{Port, Query};

const N: usize = 50;

/// The first IPv4 address of eth0 in `ip -4 -o addr` output.
fn first_v4(text: &str) -> Option<Ipv4Addr> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "inet")?;
        words.next()?.split('/').next()?.parse().ok()
    })
}

fn kuryr_ports(stack: &Stack, network_id: &str) -> Vec<Port> {
    stack
        .ports(Query::new().network_id(network_id))
        .into_iter()
        .filter(|p| !p.device_owner.starts_with("network:"))
        .collect()
}

fn leftovers(stack: &Stack, network_id: &str, port_ids: &[String]) -> Vec<String> {
    let mut left: Vec<String> = kuryr_ports(stack, network_id)
        .into_iter()
        .map(|p| format!("Neutron port {}", p.id))
        .collect();
    for id in port_ids {
        left.extend(stack.local().leftovers(id));
    }
    left
}

/// Runs `f(i)` for i in 0..n on n threads at once; returns the results
/// in order and the wall time.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> (Vec<T>, Duration) {
    let started = Instant::now();
    let out = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        handles.into_iter().map(|h| h.join().expect("worker thread")).collect()
    });
    (out, started.elapsed())
}

/// Docker containers removed on drop (also when the test fails).
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = run_with_timeout("docker", &["rm", "-f", c], Duration::from_secs(60));
        }
    }
}

#[test]
fn fifty_parallel_docker_runs() {
    let f = fixture_or_skip!("fifty_parallel_docker_runs");
    let s = &f.stack;
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let names: Vec<String> = (0..N).map(|i| f.name(&format!("p{i}"))).collect();
    let guard = Containers(names.clone());

    let (outs, wall) = parallel(N, |i| {
        run(
            "docker",
            &["run", "-d", "--network", &net, "--name", &names[i], "kbox", "sleep", "1000"],
        )
    });
    let failures: Vec<String> = outs
        .iter()
        .zip(&names)
        .filter(|(o, _)| !o.status.success())
        .map(|(o, n)| format!("{n}: {}", String::from_utf8_lossy(&o.stderr).trim()))
        .collect();
    eprintln!(
        "concurrency docker: {N} parallel `docker run -d` in {:.1} s, {} failures",
        wall.as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "failed runs:\n{}", failures.join("\n"));

    // Each container's own view of its address; all distinct.
    let (addrs, _) = parallel(N, |i| {
        let text = exec(&names[i], &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        first_v4(&text).unwrap_or_else(|| panic!("{}: no IPv4 on eth0: {text}", names[i]))
    });
    let unique: BTreeSet<Ipv4Addr> = addrs.iter().copied().collect();
    eprintln!("concurrency docker: {} distinct addresses of {N}", unique.len());
    assert_eq!(unique.len(), N, "duplicate addresses: {addrs:?}");

    let ports = kuryr_ports(s, &network.id);
    let active = ports.iter().filter(|p| p.status == "ACTIVE").count();
    eprintln!(
        "concurrency docker: {} Kuryr ports, {active} ACTIVE right after the runs",
        ports.len()
    );
    assert_eq!(ports.len(), N, "Kuryr ports on the network");
    // `docker run` returns once OVN installed the port's flows; Neutron's
    // status follows shortly.
    let ports = wait_for("50 ACTIVE ports", Duration::from_secs(60), || {
        let ports = kuryr_ports(s, &network.id);
        (ports.len() == N && ports.iter().all(|p| p.status == "ACTIVE")).then_some(ports)
    });
    eprintln!("concurrency docker: all {N} ports ACTIVE");
    let port_ips: BTreeSet<Ipv4Addr> = ports
        .iter()
        .flat_map(|p| p.fixed_ips.iter())
        .filter_map(|f| match f.ip_address {
            std::net::IpAddr::V4(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(port_ips, unique, "Neutron's addresses are the containers'");
    let port_ids: Vec<String> = ports.iter().map(|p| p.id.to_string()).collect();

    let (outs, wall) = parallel(N, |i| run("docker", &["rm", "-f", &names[i]]));
    let rm_failures = outs.iter().filter(|o| !o.status.success()).count();
    eprintln!(
        "concurrency docker: {N} parallel `docker rm -f` in {:.1} s, {rm_failures} failures",
        wall.as_secs_f64()
    );
    assert_eq!(rm_failures, 0);
    drop(guard);
    f.remove_network(&net);
    eventually("nothing left after 50 removals", || leftovers(s, &network.id, &port_ids));
    f.assert_clean(&docker_net, &[&cidr], &[]);
    eprintln!("concurrency docker: 0 ports, 0 veths, 0 OVS ports left");
}

// ------------------------------------------------------------- CNI

#[test]
fn fifty_parallel_cni_adds() {
    let Some(stack) = stack("fifty_parallel_cni_adds") else {
        return;
    };
    let mut w = CniWorld::new(&stack, &[]);
    let paths: Vec<String> = (0..N).map(|i| w.netns(&i.to_string())).collect();
    let cids: Vec<String> = (0..N).map(|i| w.container_id(&format!("{i:02}"))).collect();
    let conf = w.conf();
    let socket = w.socket.clone();

    let (outs, wall) = parallel(N, |i| cni(&socket, "ADD", &cids[i], &paths[i], &conf));
    let failures: Vec<String> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.success)
        .map(|(i, o)| format!("{}: {} {}", paths[i], o.stdout, o.stderr))
        .collect();
    eprintln!(
        "concurrency cni: {N} parallel ADDs in {:.1} s, {} failures",
        wall.as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "failed ADDs:\n{}", failures.join("\n"));

    let addrs: Vec<Ipv4Addr> = paths
        .iter()
        .map(|path| {
            let ns = path.rsplit('/').next().expect("netns name");
            let text =
                ok("ip", &["netns", "exec", ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
            first_v4(&text).unwrap_or_else(|| panic!("{ns}: no IPv4 on eth0: {text}"))
        })
        .collect();
    let unique: BTreeSet<Ipv4Addr> = addrs.iter().copied().collect();
    eprintln!("concurrency cni: {} distinct addresses of {N}", unique.len());
    assert_eq!(unique.len(), N, "duplicate addresses: {addrs:?}");
    // ADD returns on ovn-installed; Neutron's status follows shortly.
    let ports = wait_for("50 ACTIVE ports", Duration::from_secs(60), || {
        let ports = w.kuryr_ports();
        (ports.len() == N && ports.iter().all(|p| p.status == "ACTIVE")).then_some(ports)
    });
    eprintln!("concurrency cni: {} Kuryr ports, all ACTIVE", ports.len());
    let port_ids: Vec<String> = ports.iter().map(|p| p.id.to_string()).collect();

    let (outs, wall) = parallel(N, |i| cni(&socket, "DEL", &cids[i], &paths[i], &conf));
    let del_failures: Vec<String> =
        outs.iter().filter(|o| !o.success).map(|o| format!("{} {}", o.stdout, o.stderr)).collect();
    eprintln!(
        "concurrency cni: {N} parallel DELs in {:.1} s, {} failures",
        wall.as_secs_f64(),
        del_failures.len()
    );
    assert!(del_failures.is_empty(), "failed DELs: {del_failures:?}");
    eventually("nothing left after 50 DELs", || leftovers(&stack, &w.network_id, &port_ids));
    eprintln!("concurrency cni: 0 ports, 0 veths, 0 OVS ports left");
}
