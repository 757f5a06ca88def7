//! Neutron and Keystone faults: a fault-injecting proxy on loopback
//! (`common/fault_proxy.rs`) sits between `kuryr libnetwork` and the real
//! Neutron and injects 500s, connection resets, stalls, 409s and 401s.
//! For each fault the test checks what a user would: `docker run` either
//! fails with a clear message or succeeds through a bounded retry; no port,
//! veth or OVS port is left behind (asked of the real Neutron, not through
//! the proxy); and the plugin serves the next `docker run`. The same for
//! CNI ADD and DEL through `kuryr daemon` and the real `kuryr-cni`
//! (error result code and msg), and for a Keystone token that expires
//! (Keystone stack only).
//!
//! Run: `eval "$(scripts/stack env)"; cargo test -p kuryr --test faults`.
//! Kuryr runs with `[neutron] timeout = 15`, so a stall costs 15 s per
//! attempt (5 and 10 s proved too short for a plain POST to Neutron on a
//! loaded 2-core host). Times are printed (`fault ...`), never asserted.

use kuryr_testkit::cni_util;
use kuryr_testkit::fault_proxy;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use kuryr_testkit::*;
use openstack::neutron::Query;

mod cni;
mod docker;
mod keystone;

/// Seconds per Neutron request in the tests' kuryr.conf.
const TIMEOUT_S: u64 = 15;

/// The real Neutron's address, from `scripts/stack env`.
fn neutron_addr() -> SocketAddr {
    let url = std::env::var("OS_ENDPOINT")
        .or_else(|_| std::env::var("OS_NEUTRON_ENDPOINT"))
        .unwrap_or_else(|_| "http://127.0.0.1:9696".into());
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    host.parse()
        .unwrap_or_else(|e| panic!("Neutron endpoint {url}: {e}"))
}

/// A fixture whose plugin reaches Neutron through a fresh proxy.
fn proxied(test: &str) -> Option<(FaultProxy, Fixture)> {
    if std::env::var("KURYR_STACK_AUTH").as_deref() != Ok("noauth") {
        eprintln!("{test}: skipped: needs the noauth stack (scripts/stack env)");
        return None;
    }
    let proxy = FaultProxy::start(neutron_addr());
    let config = format!(
        "[DEFAULT]\n[neutron]\nauth_type = none\nendpoint = {}\ntimeout = {TIMEOUT_S}\n",
        proxy.url()
    );
    let f = Fixture::with_config(test, &config)?;
    Some((proxy, f))
}

/// Kuryr's ports on a Neutron network (DHCP/metadata ports excluded).
fn kuryr_ports(f: &Fixture, network_id: &str) -> Vec<String> {
    f.stack
        .ports(Query::new().network_id(network_id))
        .into_iter()
        .filter(|p| !p.device_owner.starts_with("network:"))
        .map(|p| p.id)
        .collect()
}

/// Waits for the container's port (found by its MAC: its device_id is
/// recorded after Docker's reply, and not at all when that fails) to be
/// ACTIVE in Neutron.
fn wait_active(f: &Fixture, network_id: &str, att: &Attachment) {
    wait_for(
        &format!("the port of endpoint {} ACTIVE", att.endpoint),
        Duration::from_secs(30),
        || {
            let ports: Vec<_> = f
                .stack
                .ports(Query::new().network_id(network_id))
                .into_iter()
                .filter(|p| p.mac_address.eq_ignore_ascii_case(&att.mac))
                .collect();
            (ports.len() == 1 && ports[0].status == "ACTIVE").then_some(())
        },
    );
}

/// Port ids that went through the proxy (`/v2.0/ports/<id>...`).
fn port_ids_seen(proxy: &FaultProxy) -> BTreeSet<String> {
    proxy
        .log()
        .iter()
        .filter_map(|l| {
            let path = l.split_whitespace().nth(1)?;
            let id = path.strip_prefix("/v2.0/ports/")?.split('/').next()?;
            (id.len() == 36).then(|| id.to_string())
        })
        .collect()
}

/// One fault: the rules to install, then what `docker run` must do.
struct Case {
    name: &'static str,
    rules: Vec<(&'static str, &'static str, Fault, Option<u32>)>,
    /// `None`: the run succeeds; `Some(words)`: it fails and Docker's
    /// message contains every word.
    error: Option<&'static [&'static str]>,
    /// Requests each rule must have caught (empty: not checked).
    hits: Vec<u32>,
    /// A line Kuryr's log must contain afterwards.
    log: Option<&'static str>,
    /// A known leak (a bug reported, in code this test does not own):
    /// the ports left are checked to carry Kuryr's owner (so `kuryr gc`
    /// can find them), reported, and deleted.
    known_leak: bool,
}
