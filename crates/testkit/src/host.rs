//! The host side of a port on the node the tests run on: its veth pair,
//! its OVS interface and external ids, and what is left of them after an
//! unplug. These keep the kit's older signatures and delegate to
//! [`Node::from_env`] (the stack's one node today); a test holding its
//! [`crate::Stack`] asks `stack.local()` instead.

use std::time::{Duration, Instant};

use crate::Node;

/// Whether a network device of this name exists on the local node.
pub fn link_exists(name: &str) -> bool {
    Node::from_env().link_exists(name)
}

/// OVS interfaces whose `external_ids:<key>` is `value`.
pub fn ovs_interfaces_with(key: &str, value: &str) -> Vec<String> {
    Node::from_env().ovs_interfaces_with(key, value)
}

/// The ports of an OVS bridge.
pub fn ovs_ports(bridge: &str) -> Vec<String> {
    Node::from_env().ovs_ports_of(bridge)
}

/// One `external_ids` value of an OVS interface.
pub fn ovs_external_id(iface: &str, key: &str) -> Option<String> {
    Node::from_env().ovs_external_id(iface, key)
}

/// What is left on the host of a port: its veth ends, an OVS interface
/// with its iface-id, its OVS port.
pub fn host_leftovers(bridge: &str, port_id: &str) -> Vec<String> {
    Node::from_env().leftovers_on(bridge, port_id)
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
    let node = Node::from_env();
    eventually(&format!("port {port_id} unplugged"), || node.leftovers_on(bridge, port_id));
}

/// Removes a port's veth and OVS port, if any are left.
pub fn cleanup_devices(port_id: &str) {
    Node::from_env().cleanup_devices(port_id);
}
