//! One node of the stack: the host a test binds ports to and the
//! per-host services it talks to there (OVSDB, the integration bridge,
//! dockerd), read from what `scripts/stack env` exports for that node.
//! The stack's nodes are [`crate::Stack::nodes`]; a test asks its node
//! rather than the global environment, so a second node is another
//! [`Node`] in that list, not another set of helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::{run_command, stdout_of_success};

/// Longest an `ip` or `ovs-vsctl` command on a node may take.
const HOST_TIMEOUT: Duration = Duration::from_secs(20);

/// One node of the stack under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its host name: its OVN chassis name, which is the `binding:host_id`
    /// of the ports Kuryr binds there (`KURYR_STACK_NODE_HOST`, else
    /// `KURYR_STACK_HOST`, else the hostname, as `scripts/stack` does).
    pub host: String,
    /// Its Geneve tunnel endpoint (`KURYR_STACK_TUNNEL_IP`, default
    /// 127.0.0.1).
    pub tunnel_ip: String,
    /// Its integration bridge (`KURYR_STACK_BRIDGE`, default `br-int`).
    pub bridge: String,
    /// Its OVSDB unix socket (`KURYR_STACK_OVSDB_SOCKET`, default
    /// `/var/run/openvswitch/db.sock`).
    pub ovsdb_socket: PathBuf,
    /// Its Docker endpoint (`DOCKER_HOST`, default
    /// `unix:///var/run/docker.sock`).
    pub docker_host: String,
    /// The network namespace its host-side commands run in
    /// (`KURYR_STACK_NODE_NETNS`); `None` for the host the tests run on.
    pub netns: Option<String>,
}

impl Node {
    /// The node the tests run on, from the environment `scripts/stack env`
    /// prints (defaults for what an older stack does not print).
    pub fn from_env() -> Node {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Node {
            host: var("KURYR_STACK_NODE_HOST")
                .or_else(|| var("KURYR_STACK_HOST"))
                .unwrap_or_else(hostname),
            tunnel_ip: var("KURYR_STACK_TUNNEL_IP").unwrap_or_else(|| "127.0.0.1".into()),
            bridge: var("KURYR_STACK_BRIDGE").unwrap_or_else(|| "br-int".into()),
            ovsdb_socket: var("KURYR_STACK_OVSDB_SOCKET")
                .map_or_else(|| PathBuf::from("/var/run/openvswitch/db.sock"), PathBuf::from),
            docker_host: var("DOCKER_HOST").unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
            netns: var("KURYR_STACK_NODE_NETNS"),
        }
    }

    /// The unix socket of its dockerd, when its endpoint is one (what
    /// `kuryr gc --docker-socket` and `status` take).
    pub fn docker_socket(&self) -> Option<&Path> {
        self.docker_host.strip_prefix("unix://").map(Path::new)
    }

    /// A command on this node: in its netns when it has one, talking to
    /// its dockerd.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, program]);
                cmd
            }
            None => Command::new(program),
        };
        cmd.env("DOCKER_HOST", &self.docker_host);
        cmd
    }

    /// Runs a command on this node ([`Node::command`]) with a deadline.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        run_command(cmd, &format!("{program} {args:?} on {}", self.host), HOST_TIMEOUT)
    }

    /// `ovs-vsctl --db=unix:<its socket> --timeout=10 <args>`.
    pub fn ovs_vsctl(&self, args: &[&str]) -> Output {
        let db = format!("--db=unix:{}", self.ovsdb_socket.display());
        let all: Vec<&str> =
            [db.as_str(), "--timeout=10"].into_iter().chain(args.iter().copied()).collect();
        self.run("ovs-vsctl", &all)
    }

    /// `ovs-vsctl <args>`, which must succeed: its trimmed stdout.
    fn ovs_vsctl_ok(&self, args: &[&str]) -> String {
        let what = format!("ovs-vsctl {} on {}", args.join(" "), self.host);
        stdout_of_success(&what, &self.ovs_vsctl(args))
    }

    /// Whether a network device of this name exists on this node.
    pub fn link_exists(&self, name: &str) -> bool {
        self.run("ip", &["link", "show", "dev", name]).status.success()
    }

    /// Its OVS interfaces whose `external_ids:<key>` is `value`.
    pub fn ovs_interfaces_with(&self, key: &str, value: &str) -> Vec<String> {
        let filter = format!("external_ids:{key}={value}");
        self.ovs_vsctl_ok(&["--bare", "--columns=name", "find", "Interface", &filter])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// The ports of one of its OVS bridges.
    pub fn ovs_ports_of(&self, bridge: &str) -> Vec<String> {
        self.ovs_vsctl_ok(&["list-ports", bridge]).lines().map(str::to_string).collect()
    }

    /// The ports of its integration bridge.
    pub fn ovs_ports(&self) -> Vec<String> {
        self.ovs_ports_of(&self.bridge)
    }

    /// One `external_ids` value of one of its OVS interfaces.
    pub fn ovs_external_id(&self, iface: &str, key: &str) -> Option<String> {
        let column = format!("external_ids:{key}");
        let out = self.ovs_vsctl(&["get", "Interface", iface, &column]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().trim_matches('"').to_string())
    }

    /// What is left on this node of a port plugged into `bridge`: its veth
    /// ends, an OVS interface with its iface-id, its OVS port.
    pub fn leftovers_on(&self, bridge: &str, port_id: &str) -> Vec<String> {
        let (host, container) = veth_names(port_id);
        let mut left = Vec::new();
        for name in [&host, &container] {
            if self.link_exists(name) {
                left.push(format!("veth {name} left on {}", self.host));
            }
        }
        if !self.ovs_interfaces_with("iface-id", port_id).is_empty() {
            left.push(format!("an OVS interface with iface-id={port_id} is left"));
        }
        if self.ovs_ports_of(bridge).contains(&host) {
            left.push(format!("OVS port {host} left on {bridge}"));
        }
        left
    }

    /// What is left on this node of a port ([`Node::leftovers_on`] its
    /// integration bridge).
    pub fn leftovers(&self, port_id: &str) -> Vec<String> {
        self.leftovers_on(&self.bridge, port_id)
    }

    /// Asserts (eventually) that no device and no OVS port of this port is
    /// left on this node.
    pub fn assert_unplugged(&self, port_id: &str) {
        crate::eventually(&format!("port {port_id} unplugged"), || self.leftovers(port_id));
    }

    /// Removes a port's veth and OVS port from this node, if any are left.
    pub fn cleanup_devices(&self, port_id: &str) {
        let (host, _) = veth_names(port_id);
        let _ = self.ovs_vsctl(&["--if-exists", "del-port", &host]);
        if self.link_exists(&host) {
            let _ = self.run("ip", &["link", "del", &host]);
        }
    }
}

/// Host end (`tap<port id[:11]>`) and container end (`t_c<port id[:11]>`).
pub fn veth_names(port_id: &str) -> (String, String) {
    (format!("tap{}", &port_id[..11]), format!("t_c{}", &port_id[..11]))
}

/// The kernel's host name, as `scripts/stack` takes `$(hostname)`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|e| panic!("reading the host name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        Node {
            host: "n1".into(),
            tunnel_ip: "127.0.0.1".into(),
            bridge: "br-int".into(),
            ovsdb_socket: "/var/run/openvswitch/db.sock".into(),
            docker_host: "unix:///var/run/docker.sock".into(),
            netns: None,
        }
    }

    #[test]
    fn docker_socket_is_the_unix_endpoint() {
        assert_eq!(node().docker_socket(), Some(Path::new("/var/run/docker.sock")));
        let tcp = Node { docker_host: "tcp://10.0.0.2:2375".into(), ..node() };
        assert_eq!(tcp.docker_socket(), None);
    }

    #[test]
    fn a_node_in_a_netns_runs_its_commands_there() {
        let ns = Node {
            netns: Some("node2".into()),
            docker_host: "unix:///run/node2/docker.sock".into(),
            ..node()
        };
        let cmd = ns.command("ovs-vsctl");
        assert_eq!(cmd.get_program(), "ip");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["netns", "exec", "node2", "ovs-vsctl"]);
        let docker = cmd.get_envs().find(|(k, _)| *k == "DOCKER_HOST").and_then(|(_, v)| v);
        assert_eq!(docker, Some("unix:///run/node2/docker.sock".as_ref()));
        assert_eq!(node().command("ip").get_program(), "ip");
        assert_eq!(node().command("ip").get_args().count(), 0);
    }

    #[test]
    fn veth_names_take_eleven_characters_of_the_port_id() {
        let (host, container) = veth_names("0123456789abcdef");
        assert_eq!(host, "tap0123456789a");
        assert_eq!(container, "t_c0123456789a");
    }
}
