//! Nested binding (containers in a Nova VM) against the real stack, and
//! the Linux bridge binding against the real kernel.
//!
//! The VM is simulated on this machine: a veth whose host end is on
//! br-int with the VM port's `iface-id` (so OVN binds the VM port and
//! enforces its port security) and whose other end, carrying the VM port's
//! MAC, is the VM's NIC (`[binding] link_iface`) for Kuryr.
//!
//! This kernel has no 8021q and no ipvlan: the VLAN and ipvlan tests check
//! the Neutron side for real and skip the link side with a message.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kuryr_core::binding::{
    BindError, Binder, NestedConfig, NestedMode, NetnsTarget, PlugRequest, VmPortClient,
};
use kuryr_testkit::*;
use netplumb::ovs::fake::FakeSwitch;
use netplumb::{Netlink, Netns};
use openstack::neutron::{
    AddressPair, NetworkCreate, Port, PortCreate, PortUpdate, Query, SecurityGroupCreate,
    SecurityGroupRuleCreate, TrunkCreate,
};
use serde_json::{json, Value};

mod binding;
mod docker;

// ------------------------------------------------------------- the "VM"

/// A Neutron port plugged into br-int through a veth whose other end
/// (`nic`, with the port's MAC) is the VM's NIC.
struct SimVm<'a> {
    stack: &'a Stack,
    port: Port,
    trunk_id: Option<String>,
    tap: String,
    nic: String,
}

impl<'a> SimVm<'a> {
    fn new(stack: &'a Stack, network_id: &str, trunk: bool) -> SimVm<'a> {
        let suffix = hex(6);
        // A trunk parent must be unbound while its trunk is made.
        let port = nova_port(
            stack,
            PortCreate {
                name: Some(format!("knt-vm-{suffix}")),
                binding_host_id: (!trunk).then(|| stack.local().host.clone()),
                ..PortCreate::new(network_id)
            },
        );
        let mut vm = SimVm {
            stack,
            port,
            trunk_id: None,
            tap: format!("kvt{suffix}"),
            nic: format!("kvn{suffix}"),
        };
        if trunk {
            let t = stack
                .block_on(stack.neutron.create_trunk(&TrunkCreate {
                    port_id: vm.port.id.clone(),
                    name: Some(format!("knt-trunk-{suffix}")),
                    ..TrunkCreate::default()
                }))
                .expect("creating the trunk");
            vm.trunk_id = Some(t.id.into_string());
            stack
                .block_on(stack.neutron.update_port(
                    &vm.port.id,
                    &PortUpdate {
                        binding_host_id: Some(stack.local().host.clone()),
                        ..PortUpdate::default()
                    },
                ))
                .expect("binding the trunk parent");
        }
        let mac = vm.port.mac_address.clone();
        ok("ip", &["link", "add", &vm.tap, "type", "veth", "peer", "name", &vm.nic]);
        ok("ip", &["link", "set", &vm.nic, "address", &mac, "mtu", "1442"]);
        ok("ip", &["link", "set", &vm.tap, "mtu", "1442", "up"]);
        ok("ip", &["link", "set", &vm.nic, "up"]);
        plug_ovs(&vm.tap, &vm.port.id, &mac);
        wait_status(stack, &vm.port.id, "ACTIVE");
        vm
    }

    fn pairs(&self) -> Vec<AddressPair> {
        self.stack.port(&self.port.id).expect("the VM port").allowed_address_pairs
    }

    fn has_pair(&self, ip: &str, mac: &str) -> bool {
        self.pairs().iter().any(|p| {
            p.ip_address == ip
                && p.mac_address.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
    }

    fn sub_ports(&self) -> Vec<openstack::neutron::SubPort> {
        let trunk = self.trunk_id.as_deref().expect("a trunk");
        self.stack.block_on(self.stack.neutron.get_subports(trunk)).expect("reading the subports")
    }
}

impl Drop for SimVm<'_> {
    fn drop(&mut self) {
        let _ = run("ovs-vsctl", &["--if-exists", "del-port", &self.tap]);
        let _ = run("ip", &["link", "del", &self.tap]);
        let s = self.stack;
        if let Some(trunk) = &self.trunk_id {
            if let Ok(subs) = s.block_on(s.neutron.get_subports(trunk)) {
                let ids: Vec<String> = subs.into_iter().map(|p| p.port_id.into_string()).collect();
                if !ids.is_empty() {
                    let _ = s.block_on(s.neutron.remove_subports(trunk, &ids));
                }
            }
            let _ = s.block_on(s.neutron.delete_trunk(trunk));
        }
        let _ = s.block_on(s.neutron.delete_port(&self.port.id));
    }
}

/// A port as Nova makes one for an instance (`compute:nova`).
fn nova_port(stack: &Stack, port: PortCreate) -> Port {
    let name = port.name.clone().unwrap_or_default();
    stack
        .block_on(
            stack
                .neutron
                .create_port(&PortCreate { device_owner: Some("compute:nova".into()), ..port }),
        )
        .unwrap_or_else(|e| panic!("creating port {name}: {e}"))
}

fn plug_ovs(dev: &str, port_id: &str, mac: &str) {
    ok(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "add-port",
            "br-int",
            dev,
            "--",
            "set",
            "Interface",
            dev,
            &format!("external_ids:iface-id={port_id}"),
            &format!("external_ids:attached-mac={mac}"),
            "external_ids:iface-status=active",
        ],
    );
}

fn wait_status(stack: &Stack, port_id: &str, status: &str) {
    wait_for(&format!("port {port_id} {status}"), Duration::from_secs(30), || {
        let port = stack.port(port_id)?;
        (port.status == status).then_some(())
    });
}

/// A Neutron port outside the VM: bound here, in its own netns.
struct Outside<'a> {
    stack: &'a Stack,
    port: Port,
    ip: IpAddr,
    netns: String,
    tap: String,
    sg: String,
}

impl<'a> Outside<'a> {
    fn new(stack: &'a Stack, network_id: &str, prefix_len: u8) -> Outside<'a> {
        let suffix = hex(6);
        // Ingress open to any IPv4 source: the default group admits only
        // its members' own addresses, and a pair-only address is none of
        // them. What drops here is then port security alone.
        let sg = stack
            .block_on(stack.neutron.create_security_group(&SecurityGroupCreate {
                name: format!("knt-open-{suffix}"),
                ..SecurityGroupCreate::default()
            }))
            .expect("creating the security group");
        stack
            .block_on(stack.neutron.create_security_group_rule(&SecurityGroupRuleCreate {
                security_group_id: sg.id.clone(),
                direction: "ingress".into(),
                ethertype: Some("IPv4".into()),
                ..SecurityGroupRuleCreate::default()
            }))
            .expect("creating the rule");
        let port = nova_port(
            stack,
            PortCreate {
                name: Some(format!("knt-ext-{suffix}")),
                binding_host_id: Some(stack.local().host.clone()),
                security_groups: Some(vec![sg.id.clone()]),
                ..PortCreate::new(network_id)
            },
        );
        let ip = port.fixed_ips[0].ip_address;
        let out = Outside {
            stack,
            ip,
            netns: format!("knt-ext-{suffix}"),
            tap: format!("kxt{suffix}"),
            port,
            sg: sg.id.into_string(),
        };
        let peer = format!("kxp{suffix}");
        ok("ip", &["netns", "add", &out.netns]);
        ok("ip", &["link", "add", &out.tap, "type", "veth", "peer", "name", &peer]);
        ok("ip", &["link", "set", &out.tap, "mtu", "1442", "up"]);
        ok("ip", &["link", "set", &peer, "netns", &out.netns]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &out.netns, "ip"];
            all.extend_from_slice(args);
            ok("ip", &all);
        };
        inside(&["link", "set", &peer, "address", &out.port.mac_address, "mtu", "1442", "up"]);
        inside(&["addr", "add", &format!("{ip}/{prefix_len}"), "dev", &peer]);
        plug_ovs(&out.tap, &out.port.id, &out.port.mac_address);
        wait_status(stack, &out.port.id, "ACTIVE");
        out
    }
}

impl Drop for Outside<'_> {
    fn drop(&mut self) {
        let _ = run("ovs-vsctl", &["--if-exists", "del-port", &self.tap]);
        let _ = run("ip", &["link", "del", &self.tap]);
        let _ = run("ip", &["netns", "del", &self.netns]);
        let s = self.stack;
        let _ = s.block_on(s.neutron.delete_port(&self.port.id));
        let _ = s.block_on(s.neutron.delete_security_group(&self.sg));
    }
}

/// A netns with a macvlan on the VM's NIC that Neutron knows nothing of.
struct Rogue {
    netns: String,
}

impl Rogue {
    fn new(nic: &str, mac: &str, cidr: &str) -> Rogue {
        let r = Rogue { netns: format!("knt-rogue-{}", hex(6)) };
        let dev = format!("krg{}", hex(6));
        ok("ip", &["netns", "add", &r.netns]);
        ok(
            "ip",
            &[
                "link", "add", &dev, "link", nic, "address", mac, "type", "macvlan", "mode",
                "bridge",
            ],
        );
        ok("ip", &["link", "set", &dev, "netns", &r.netns]);
        for args in
            [vec!["link", "set", &dev, "mtu", "1442", "up"], vec!["addr", "add", cidr, "dev", &dev]]
        {
            let mut all = vec!["netns", "exec", &r.netns, "ip"];
            all.extend(args);
            ok("ip", &all);
        }
        r
    }

    fn ping(&self, target: IpAddr, tries: usize) -> bool {
        let t = target.to_string();
        (0..tries).any(|_| {
            run("ip", &["netns", "exec", &self.netns, "ping", "-c", "1", "-W", "2", &t])
                .status
                .success()
        })
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.netns]);
    }
}

/// The stack, for a test that needs root as well; `None` (after saying
/// why) when the test must skip.
fn root_stack(test: &str) -> Option<Stack> {
    let stack = stack(test)?;
    needs_root(test).then_some(stack)
}

/// Runs `body` as root against the stack, with a fresh network and a
/// simulated VM on it (its port a trunk parent when `trunk`); skips (after
/// saying why) without a stack or root.
fn with_vm(test: &str, trunk: bool, body: impl FnOnce(&Stack, &Net<'_>, &SimVm<'_>)) {
    let Some(stack) = root_stack(test) else {
        return;
    };
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, trunk);
    body(&stack, &net, &vm);
}

/// A client of the VM port behind `nic` with its own netlink handle, as a
/// separate process would have.
async fn vm_client(stack: &Stack, nic: &str) -> VmPortClient {
    let netlink = Netlink::host().await.expect("netlink");
    VmPortClient::new(stack.neutron.clone(), netlink, nic)
}

/// Plugs `port` into a fresh netns through the nested binder `mode` on
/// `nic`: the binder and the netns (kept for the unplug), and whether the
/// link side ran ([`link_or_skip`]: this kernel may lack `feature`).
fn plug_nested(
    test: &str,
    stack: &Stack,
    (mode, nic): (NestedMode, &str),
    port: &Port,
    feature: &str,
) -> (Binder, TempNetns, bool) {
    let binder = nested_binder(stack, mode, nic);
    let ns = TempNetns::new();
    let plugged = stack.block_on(binder.plug_into_netns(&plug_request(port), &ns.target(port)));
    let linked = link_or_skip(test, plugged.map(|_| ()), feature);
    (binder, ns, linked)
}

fn needs_root(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        eprintln!("{test}: skipped: needs root");
    }
    root
}

/// A network with a /24 subnet made directly in Neutron (for the tests
/// that drive the binder without Docker); deleted on drop.
struct Net<'a> {
    stack: &'a Stack,
    id: String,
    prefix: String,
}

impl<'a> Net<'a> {
    fn new(stack: &'a Stack) -> Net<'a> {
        let net = stack
            .block_on(stack.neutron.create_network(&NetworkCreate {
                name: Some(format!("knt-net-{}", hex(6))),
                ..NetworkCreate::default()
            }))
            .expect("creating the network");
        let prefix = stack.add_fresh_subnet(&net.id);
        Net { stack, id: net.id.into_string(), prefix }
    }

    /// Container-like ports: unbound, `compute:kuryr`.
    fn ports(&self, n: usize) -> Vec<Port> {
        let bodies: Vec<PortCreate> = (0..n)
            .map(|i| PortCreate {
                name: Some(format!("knt-c{i}")),
                device_owner: Some("compute:kuryr".into()),
                ..PortCreate::new(self.id.clone())
            })
            .collect();
        self.stack
            .block_on(self.stack.neutron.create_ports(&bodies))
            .expect("creating container ports")
    }
}

impl Drop for Net<'_> {
    fn drop(&mut self) {
        let s = self.stack;
        if let Ok(ports) = s.block_on(s.neutron.list_ports(&Query::new().network_id(&self.id))) {
            for p in ports {
                let _ = s.block_on(s.neutron.delete_port(&p.id));
            }
        }
        let _ = s.block_on(s.neutron.delete_network(&self.id));
    }
}

fn nested_binder(stack: &Stack, mode: NestedMode, nic: &str) -> Binder {
    let netlink = stack.block_on(Netlink::host()).expect("netlink");
    Binder::new(netlink, Arc::new(FakeSwitch::with_bridge("br-int")), "br-int")
        .with_nested(stack.neutron.clone(), NestedConfig { mode, link_iface: nic.to_string() })
}

fn plug_request(port: &Port) -> PlugRequest {
    PlugRequest::of_port(port, "knt-owner", Some(1442)).expect("a port Neutron made")
}

struct TempNetns(String);

impl TempNetns {
    fn new() -> TempNetns {
        let name = format!("knt-ns-{}", hex(6));
        ok("ip", &["netns", "add", &name]);
        TempNetns(name)
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }

    fn target(&self, port: &Port) -> NetnsTarget {
        NetnsTarget {
            netns: Netns::from_path(self.path()).expect("netns"),
            ifname: "eth0".into(),
            addresses: port
                .fixed_ips
                .iter()
                .map(|f| format!("{}/24", f.ip_address).parse().expect("cidr"))
                .collect(),
            routes: Vec::new(),
            external_ids: Default::default(),
        }
    }
}

impl Drop for TempNetns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// The kernel-side outcome of a nested plug: the link, or the kernel's
/// missing feature (then the test says it skips that part).
fn link_or_skip(test: &str, result: Result<(), BindError>, feature: &str) -> bool {
    match result {
        Ok(()) => true,
        Err(BindError::Plumbing {
            source: source @ netplumb::Error::Unsupported { .. }, ..
        }) => {
            assert!(source.to_string().contains(feature), "{source}");
            eprintln!("{test}: link side skipped: {source}");
            false
        }
        Err(err) => panic!("{test}: {err}"),
    }
}
