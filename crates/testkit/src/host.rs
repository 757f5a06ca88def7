//! The host side of a port: its veth pair, its OVS interface and
//! external ids, and what is left of them after an unplug.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ok, run, run_with_timeout};

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
