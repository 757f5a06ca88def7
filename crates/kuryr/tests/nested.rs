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
    SecurityGroupRuleCreate, SubnetCreate, TrunkCreate,
};
use serde_json::{json, Value};

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
        let port = stack
            .block_on(stack.neutron.create_port(&PortCreate {
                name: Some(format!("knt-vm-{suffix}")),
                device_owner: Some("compute:nova".into()),
                // A trunk parent must be unbound while its trunk is made.
                binding_host_id: (!trunk).then(|| stack.host.clone()),
                ..PortCreate::new(network_id)
            }))
            .expect("creating the VM port");
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
            vm.trunk_id = Some(t.id);
            stack
                .block_on(stack.neutron.update_port(
                    &vm.port.id,
                    &PortUpdate {
                        binding_host_id: Some(stack.host.clone()),
                        ..PortUpdate::default()
                    },
                ))
                .expect("binding the trunk parent");
        }
        let mac = vm.port.mac_address.clone();
        ok(
            "ip",
            &[
                "link", "add", &vm.tap, "type", "veth", "peer", "name", &vm.nic,
            ],
        );
        ok(
            "ip",
            &["link", "set", &vm.nic, "address", &mac, "mtu", "1442"],
        );
        ok("ip", &["link", "set", &vm.tap, "mtu", "1442", "up"]);
        ok("ip", &["link", "set", &vm.nic, "up"]);
        plug_ovs(&vm.tap, &vm.port.id, &mac);
        wait_status(stack, &vm.port.id, "ACTIVE");
        vm
    }

    fn pairs(&self) -> Vec<AddressPair> {
        self.stack
            .port(&self.port.id)
            .expect("the VM port")
            .allowed_address_pairs
    }

    fn has_pair(&self, ip: &str, mac: &str) -> bool {
        self.pairs().iter().any(|p| {
            p.ip_address == ip
                && p.mac_address
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
    }

    fn sub_ports(&self) -> Vec<openstack::neutron::SubPort> {
        let trunk = self.trunk_id.as_deref().expect("a trunk");
        self.stack
            .block_on(self.stack.neutron.get_subports(trunk))
            .expect("reading the subports")
    }
}

impl Drop for SimVm<'_> {
    fn drop(&mut self) {
        let _ = run("ovs-vsctl", &["--if-exists", "del-port", &self.tap]);
        let _ = run("ip", &["link", "del", &self.tap]);
        let s = self.stack;
        if let Some(trunk) = &self.trunk_id {
            if let Ok(subs) = s.block_on(s.neutron.get_subports(trunk)) {
                let ids: Vec<String> = subs.into_iter().map(|p| p.port_id).collect();
                if !ids.is_empty() {
                    let _ = s.block_on(s.neutron.remove_subports(trunk, &ids));
                }
            }
            let _ = s.block_on(s.neutron.delete_trunk(trunk));
        }
        let _ = s.block_on(s.neutron.delete_port(&self.port.id));
    }
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
    wait_for(
        &format!("port {port_id} {status}"),
        Duration::from_secs(30),
        || {
            let port = stack.port(port_id)?;
            (port.status == status).then_some(())
        },
    );
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
            .block_on(
                stack
                    .neutron
                    .create_security_group_rule(&SecurityGroupRuleCreate {
                        security_group_id: sg.id.clone(),
                        direction: "ingress".into(),
                        ethertype: Some("IPv4".into()),
                        ..SecurityGroupRuleCreate::default()
                    }),
            )
            .expect("creating the rule");
        let port = stack
            .block_on(stack.neutron.create_port(&PortCreate {
                name: Some(format!("knt-ext-{suffix}")),
                device_owner: Some("compute:nova".into()),
                binding_host_id: Some(stack.host.clone()),
                security_groups: Some(vec![sg.id.clone()]),
                ..PortCreate::new(network_id)
            }))
            .expect("creating the outside port");
        let ip = port.fixed_ips[0].ip_address;
        let out = Outside {
            stack,
            ip,
            netns: format!("knt-ext-{suffix}"),
            tap: format!("kxt{suffix}"),
            port,
            sg: sg.id,
        };
        let peer = format!("kxp{suffix}");
        ok("ip", &["netns", "add", &out.netns]);
        ok(
            "ip",
            &[
                "link", "add", &out.tap, "type", "veth", "peer", "name", &peer,
            ],
        );
        ok("ip", &["link", "set", &out.tap, "mtu", "1442", "up"]);
        ok("ip", &["link", "set", &peer, "netns", &out.netns]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &out.netns, "ip"];
            all.extend_from_slice(args);
            ok("ip", &all);
        };
        inside(&[
            "link",
            "set",
            &peer,
            "address",
            &out.port.mac_address,
            "mtu",
            "1442",
            "up",
        ]);
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
        let r = Rogue {
            netns: format!("knt-rogue-{}", hex(6)),
        };
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
        for args in [
            vec!["link", "set", &dev, "mtu", "1442", "up"],
            vec!["addr", "add", cidr, "dev", &dev],
        ] {
            let mut all = vec!["netns", "exec", &r.netns, "ip"];
            all.extend(args);
            ok("ip", &all);
        }
        r
    }

    fn ping(&self, target: IpAddr, tries: usize) -> bool {
        let t = target.to_string();
        (0..tries).any(|_| {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.netns,
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "2",
                    &t,
                ],
            )
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
        let prefix = fresh_v4();
        stack
            .block_on(stack.neutron.create_subnet(&SubnetCreate {
                gateway_ip: Some(Some(format!("{prefix}.1").parse().expect("ip"))),
                ..SubnetCreate::new(net.id.clone(), format!("{prefix}.0/24"))
            }))
            .expect("creating the subnet");
        Net {
            stack,
            id: net.id,
            prefix,
        }
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

// ------------------------------------------------------------- Docker

/// Two containers in the "VM" (macvlan on its NIC, through real Docker
/// and `kuryr libnetwork`) reach each other and a port outside the VM
/// through OVN; their addresses are the VM port's allowed address pairs
/// while they run and not after. A macvlan whose address is not a pair is
/// dropped by OVN's port security until its pair is added.
#[test]
fn docker_macvlan_in_a_vm() {
    let test = "docker_macvlan_in_a_vm";
    if std::env::var("KURYR_STACK_AUTH").is_err() {
        eprintln!("{test}: skipped: no stack (run via scripts/test)");
        return;
    }
    // The NIC name must be known before the plugin starts.
    let nic_suffix = hex(6);
    let nic_name = format!("kvn{nic_suffix}");
    let config =
        format!("[binding]\ndriver = kuryr.lib.binding.drivers.macvlan\nlink_iface = {nic_name}\n");
    let Some(f) = Fixture::with_config(test, &config) else {
        return;
    };
    let (prefix, cidr) = f.fresh_cidr();
    let (net, docker_net) = f.network_named("net", &["--subnet", &cidr]);
    let neutron_net = f.stack.network_of_docker(&docker_net);
    let mut vm = SimVm::new(&f.stack, &neutron_net.id, false);
    // Rename the simulated NIC to the configured name.
    ok("ip", &["link", "set", &vm.nic, "down"]);
    ok("ip", &["link", "set", &vm.nic, "name", &nic_name]);
    ok("ip", &["link", "set", &nic_name, "up"]);
    vm.nic = nic_name.clone();
    let ext = Outside::new(&f.stack, &neutron_net.id, 24);

    // ML2/OVN accepts only VRRP MACs as foreign MACs in the VM port's
    // pairs: the macvlan containers take MACs from that range. The docker
    // 28 CLI refuses --mac-address against a 1.41 engine; the engine's
    // own 20.10 CLI sends it.
    let run_with_mac = |name: &str, mac: &str| {
        let out = f.try_run_detached_with("/usr/bin/docker", name, &net, &["--mac-address", mac]);
        assert!(
            out.status.success(),
            "docker run {name}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            f.kuryr.log_text()
        );
        attachment(name, &net)
    };
    let c1_name = f.name("c1");
    let c1 = run_with_mac(&c1_name, "00:00:5e:00:01:0a");
    let before = f.kuryr.log_len();
    let started = Instant::now();
    let c2_name = f.name("c2");
    let c2 = run_with_mac(&c2_name, "00:00:5e:00:01:0b");
    eprintln!(
        "nested attach (docker run -d, second container): {:?}; Neutron calls: {:?}",
        started.elapsed(),
        f.kuryr.neutron_calls_since(before)
    );
    let (ip1, ip2) = (c1.ip.expect("c1 ip"), c2.ip.expect("c2 ip"));

    // Neutron: the pairs are on the VM port; the container ports are not
    // bound to a host; no veth or OVS port on this host.
    assert!(vm.has_pair(&ip1.to_string(), &c1.mac), "{:?}", vm.pairs());
    assert!(vm.has_pair(&ip2.to_string(), &c2.mac), "{:?}", vm.pairs());
    let p1 = f.stack.port_of_endpoint(&c1.endpoint);
    assert_eq!(p1.binding_host_id, "", "a nested port stays unbound");
    assert_eq!(p1.device_owner, "compute:kuryr");
    assert!(p1.mac_address.eq_ignore_ascii_case(&c1.mac));
    let (tap, _) = veth_names(&p1.id);
    assert!(!link_exists(&tap), "no veth in nested mode");
    assert_eq!(eth0(&c1_name).mac, c1.mac.to_lowercase());

    // Through OVN: container to container, to the outside port and back.
    ping(&c1_name, ip2);
    for (name, att) in [(&c1_name, &c1), (&c2_name, &c2)] {
        let out = run(
            "docker",
            &[
                "exec",
                name,
                "ping",
                "-c",
                "2",
                "-W",
                "2",
                &ext.ip.to_string(),
            ],
        );
        if out.status.success() {
            continue;
        }
        // The container's port is an OVN virtual port with the same MAC as
        // the VM port's pair: northd makes two equal L2 lookup flows for
        // that MAC, and virtual ports get no output flows (OVN 23.03).
        let lookups = ok("ovn-sbctl", &["lflow-list"])
            .lines()
            .filter(|l| {
                l.contains("ls_in_l2_lkup") && l.contains(&format!("eth.dst == {}", att.mac))
            })
            .count();
        assert!(lookups >= 2, "{name} cannot reach the outside port");
        eprintln!(
            "{name}: outside port not reached: OVN has {lookups} L2 lookup flows for {} \
             (the VM port's pair and the container's virtual port); see docs/nested.md",
            att.mac
        );
    }

    // A Neutron MAC (fa:16:3e:…): this Neutron refuses it as a pair; the
    // container does not start, the error says why, nothing is left.
    let c3_name = f.name("c3");
    let out = f.try_run_detached(&c3_name, &net, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.success() {
        eprintln!("{test}: this Neutron accepts any MAC in the pairs");
        f.remove_container(&c3_name);
    } else {
        assert!(stderr.contains("VRRP"), "{stderr}");
        assert_eq!(vm.pairs().len(), 2, "{:?}", vm.pairs());
    }

    // Not in the pairs: dropped by the VM port's port security.
    let rogue_ip = format!("{prefix}.250");
    let rogue_mac = "00:00:5e:00:01:5a";
    let rogue = Rogue::new(&nic_name, rogue_mac, &format!("{rogue_ip}/24"));
    assert!(
        !rogue.ping(ext.ip, 2),
        "an address that is not an allowed address pair got through"
    );
    let client = VmPortClient::new(
        f.stack.neutron.clone(),
        f.stack.block_on(Netlink::host()).expect("netlink"),
        &nic_name,
    );
    let rogue_pair = AddressPair {
        ip_address: rogue_ip.clone(),
        mac_address: Some(rogue_mac.into()),
    };
    f.stack
        .block_on(client.update_pairs("rogue", std::slice::from_ref(&rogue_pair), &[]))
        .expect("adding the pair");
    assert!(
        rogue.ping(ext.ip, 5),
        "with its pair, the same address passes"
    );
    f.stack
        .block_on(client.update_pairs("rogue", &[], &[rogue_pair]))
        .expect("removing the pair");
    assert!(!rogue.ping(ext.ip, 2), "its pair is gone: dropped again");
    drop(rogue);

    // Detach: the pairs go, the other container's stay.
    let before = f.kuryr.log_len();
    let started = Instant::now();
    f.remove_container(&c1_name);
    eprintln!(
        "nested detach (docker rm -f): {:?}; Neutron calls: {:?}",
        started.elapsed(),
        f.kuryr.neutron_calls_since(before)
    );
    eventually("c1's pair removed", || {
        if vm.has_pair(&ip1.to_string(), &c1.mac) {
            vec![format!("pairs {:?}", vm.pairs())]
        } else {
            Vec::new()
        }
    });
    assert!(vm.has_pair(&ip2.to_string(), &c2.mac));
    f.remove_container(&c2_name);
    eventually("no pairs left", || {
        let pairs = vm.pairs();
        if pairs.is_empty() {
            Vec::new()
        } else {
            vec![format!("pairs {pairs:?}")]
        }
    });
    assert!(!link_exists(&kuryr_core::naming::container_veth_name(
        &p1.id
    )));
}

// ------------------------------------------------------------- Neutron side

/// 10 attachments at once (Neutron's default max_allowed_address_pair),
/// each from its own client (as separate processes would be), add their
/// pairs to one VM port: none is lost (If-Match + retry on 412); an 11th
/// gets a clear error; removing them all at once leaves none.
#[test]
fn concurrent_pair_updates_lose_nothing() {
    let Some(stack) = stack("concurrent_pair_updates_lose_nothing") else {
        return;
    };
    if !needs_root("concurrent_pair_updates_lose_nothing") {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, false);
    let pairs: Vec<AddressPair> = (0..10)
        .map(|i| AddressPair {
            ip_address: format!("{}.{}", net.prefix, 100 + i),
            // VRRP MACs: ML2/OVN accepts no other foreign MAC in pairs.
            mac_address: Some(format!("00:00:5e:00:01:{:02x}", i + 1)),
        })
        .collect();
    let run_all = |add: bool| {
        let started = Instant::now();
        stack.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for pair in pairs.clone() {
                let client = VmPortClient::new(
                    stack.neutron.clone(),
                    Netlink::host().await.expect("netlink"),
                    vm.nic.clone(),
                );
                tasks.spawn(async move {
                    let (a, r) = if add {
                        (vec![pair], vec![])
                    } else {
                        (vec![], vec![pair])
                    };
                    client.update_pairs("test", &a, &r).await
                });
            }
            while let Some(res) = tasks.join_next().await {
                res.expect("task").expect("pair update");
            }
        });
        eprintln!(
            "10 concurrent pair updates (add={add}): {:?}",
            started.elapsed()
        );
    };
    run_all(true);
    let got = vm.pairs();
    for pair in &pairs {
        assert!(
            vm.has_pair(&pair.ip_address, pair.mac_address.as_deref().expect("mac")),
            "lost {pair:?}; VM port has {got:?}"
        );
    }
    assert_eq!(got.len(), 10);
    let client = VmPortClient::new(
        stack.neutron.clone(),
        stack.block_on(Netlink::host()).expect("netlink"),
        vm.nic.clone(),
    );
    let eleventh = AddressPair {
        ip_address: format!("{}.99", net.prefix),
        mac_address: Some("00:00:5e:00:01:63".into()),
    };
    let err = stack
        .block_on(client.update_pairs("test", &[eleventh], &[]))
        .expect_err("the VM port is full");
    assert!(
        err.to_string().contains("max_allowed_address_pair"),
        "{err}"
    );
    run_all(false);
    assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
}

/// 20 container ports become subports of the VM's trunk at once, each
/// from its own client: every VLAN id is unique (409 DuplicateSubPort
/// retried on a fresh read of the trunk), subports go ACTIVE with their
/// bound parent, and removing them leaves the trunk empty.
#[test]
fn concurrent_subports_get_unique_vlans() {
    let Some(stack) = stack("concurrent_subports_get_unique_vlans") else {
        return;
    };
    if !needs_root("concurrent_subports_get_unique_vlans") {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, true);
    let ports = net.ports(20);
    let started = Instant::now();
    let vlans: Vec<(String, u16)> = stack.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for port in &ports {
            let client = VmPortClient::new(
                stack.neutron.clone(),
                Netlink::host().await.expect("netlink"),
                vm.nic.clone(),
            );
            let id = port.id.clone();
            tasks.spawn(async move {
                let vlan = client.add_subport(&id).await.expect("subport added");
                (id, vlan)
            });
        }
        let mut out = Vec::new();
        while let Some(res) = tasks.join_next().await {
            out.push(res.expect("task"));
        }
        out
    });
    eprintln!("20 concurrent subport adds: {:?}", started.elapsed());
    let mut ids: Vec<u16> = vlans.iter().map(|(_, v)| *v).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "VLAN ids collide: {vlans:?}");
    let subs = vm.sub_ports();
    assert_eq!(subs.len(), 20, "{subs:?}");
    for (port_id, vlan) in &vlans {
        let sub = subs
            .iter()
            .find(|s| &s.port_id == port_id)
            .expect("subport");
        assert_eq!(sub.segmentation_id, Some(u32::from(*vlan)));
    }
    // A retried add keeps the id it has.
    let client = VmPortClient::new(
        stack.neutron.clone(),
        stack.block_on(Netlink::host()).expect("netlink"),
        vm.nic.clone(),
    );
    let (first, first_vlan) = &vlans[0];
    assert_eq!(
        stack.block_on(client.add_subport(first)).expect("again"),
        *first_vlan
    );
    // The parent is bound: Neutron/OVN set its subports ACTIVE.
    let started = Instant::now();
    wait_status(&stack, first, "ACTIVE");
    eprintln!("subport ACTIVE after {:?}", started.elapsed());

    stack.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (port_id, _) in vlans.clone() {
            let client = VmPortClient::new(
                stack.neutron.clone(),
                Netlink::host().await.expect("netlink"),
                vm.nic.clone(),
            );
            tasks.spawn(async move { client.remove_subport(&port_id).await });
        }
        while let Some(res) = tasks.join_next().await {
            res.expect("task").expect("subport removed");
        }
    });
    assert!(vm.sub_ports().is_empty(), "{:?}", vm.sub_ports());
    // Removing again is fine.
    stack
        .block_on(client.remove_subport(first))
        .expect("idempotent");
}

fn nested_binder(stack: &Stack, mode: NestedMode, nic: &str) -> Binder {
    let netlink = stack.block_on(Netlink::host()).expect("netlink");
    Binder::new(
        netlink,
        Arc::new(FakeSwitch::with_bridge("br-int")),
        "br-int",
    )
    .with_nested(
        stack.neutron.clone(),
        NestedConfig {
            mode,
            link_iface: nic.to_string(),
        },
    )
}

fn plug_request(port: &Port) -> PlugRequest {
    PlugRequest {
        port_id: port.id.clone(),
        network_id: port.network_id.clone(),
        mac: port.mac_address.parse().expect("mac"),
        mtu: Some(1442),
        vif_type: port.binding_vif_type.clone(),
        owner_id: "knt-owner".into(),
        fixed_ips: port.fixed_ips.iter().map(|f| f.ip_address).collect(),
    }
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
            source: source @ netplumb::Error::Unsupported { .. },
            ..
        }) => {
            assert!(source.to_string().contains(feature), "{source}");
            eprintln!("{test}: link side skipped: {source}");
            false
        }
        Err(err) => panic!("{test}: {err}"),
    }
}

/// vlan driver: the subport is added with a free VLAN id, then the VLAN
/// subinterface is made in the container. This kernel lacks 8021q: the
/// link side is skipped with the kernel's message, and the subport is
/// taken back (nothing is left on the trunk).
#[test]
fn vlan_binding_or_clear_skip() {
    let test = "vlan_binding_or_clear_skip";
    let Some(stack) = stack(test) else {
        return;
    };
    if !needs_root(test) {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, true);
    let port = net.ports(1).remove(0);
    let binder = nested_binder(&stack, NestedMode::Vlan, &vm.nic);
    let ns = TempNetns::new();
    let plugged = stack.block_on(binder.plug_into_netns(&plug_request(&port), &ns.target(&port)));
    if link_or_skip(test, plugged.map(|_| ()), "vlan (8021q)") {
        let sub = vm.sub_ports();
        assert_eq!(sub.len(), 1);
        assert_eq!(sub[0].port_id, port.id);
        stack.block_on(binder.unplug(&port.id)).expect("unplug");
    }
    assert!(vm.sub_ports().is_empty(), "{:?}", vm.sub_ports());
}

/// ipvlan driver: the container's IP becomes a pair with the VM's MAC
/// (the container shares the NIC's MAC), then the ipvlan is made. This
/// kernel lacks ipvlan: the link side is skipped with the kernel's
/// message and the pair is taken back.
#[test]
fn ipvlan_binding_or_clear_skip() {
    let test = "ipvlan_binding_or_clear_skip";
    let Some(stack) = stack(test) else {
        return;
    };
    if !needs_root(test) {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, false);
    let port = net.ports(1).remove(0);
    let ip = port.fixed_ips[0].ip_address.to_string();
    // The Neutron side alone, as the ipvlan driver does it.
    let client = VmPortClient::new(
        stack.neutron.clone(),
        stack.block_on(Netlink::host()).expect("netlink"),
        vm.nic.clone(),
    );
    let pair = AddressPair {
        ip_address: ip.clone(),
        mac_address: Some(vm.port.mac_address.clone()),
    };
    stack
        .block_on(client.update_pairs(&port.id, std::slice::from_ref(&pair), &[]))
        .expect("pair");
    assert!(vm.has_pair(&ip, &vm.port.mac_address));
    stack
        .block_on(client.update_pairs(&port.id, &[], &[pair]))
        .expect("pair removed");
    assert!(vm.pairs().is_empty());

    let binder = nested_binder(&stack, NestedMode::Ipvlan, &vm.nic);
    let ns = TempNetns::new();
    let plugged = stack.block_on(binder.plug_into_netns(&plug_request(&port), &ns.target(&port)));
    if link_or_skip(test, plugged.map(|_| ()), "ipvlan") {
        assert!(vm.has_pair(&ip, &vm.port.mac_address));
        stack.block_on(binder.unplug(&port.id)).expect("unplug");
    }
    assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
}

/// A VM port that `link_iface` does not lead to gives a clear error and
/// changes nothing.
#[test]
fn nested_without_a_vm_port_is_a_clear_error() {
    let test = "nested_without_a_vm_port_is_a_clear_error";
    let Some(stack) = stack(test) else {
        return;
    };
    if !needs_root(test) {
        return;
    }
    let net = Net::new(&stack);
    let port = net.ports(1).remove(0);
    let (a, b) = (format!("knx{}", hex(6)), format!("kny{}", hex(6)));
    ok(
        "ip",
        &["link", "add", &a, "type", "veth", "peer", "name", &b],
    );
    let binder = nested_binder(&stack, NestedMode::Macvlan, &b);
    let err = stack
        .block_on(binder.plug(&plug_request(&port)))
        .expect_err("no VM port");
    let _ = run("ip", &["link", "del", &a]);
    assert!(
        matches!(err, BindError::Nested { .. })
            && err.to_string().contains("no Neutron port has MAC"),
        "{err}"
    );
    assert!(!link_exists(&kuryr_core::naming::container_veth_name(
        &port.id
    )));
}

// ------------------------------------------------------------- CNI

/// The CNI path: `kuryr daemon` with the macvlan driver. On the bound VM
/// port ML2/OVN refuses the pod's MAC as a pair: a clear error, nothing
/// left. On an unbound VM port (any MAC accepted, as under ML2/OVS) ADD
/// plugs a macvlan with the port's MAC, addresses and the pair; DEL
/// removes pair, link and port.
#[test]
fn cni_macvlan_in_a_vm() {
    let test = "cni_macvlan_in_a_vm";
    let Some(stack) = stack(test) else {
        return;
    };
    if !needs_root(test) {
        return;
    }
    let net = Net::new(&stack);
    let vm = SimVm::new(&stack, &net.id, false);
    let dir = std::env::temp_dir().join(format!("kuryr-nested-{}", hex(6)));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("kuryr.conf");
    std::fs::write(
        &config,
        format!("[binding]\ndriver = macvlan\nlink_iface = {}\n", vm.nic),
    )
    .expect("config");
    let socket = dir.join("cni.sock");
    let log = std::fs::File::create(dir.join("daemon.log")).expect("log");
    let mut daemon = Command::new(kuryr_bin())
        .arg("--config-file")
        .arg(&config)
        .args(["--debug", "daemon", "--socket"])
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kuryr daemon");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the daemon's socket", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&socket)
                .ok()
                .map(|_| ())
        });
        let ns = TempNetns::new();
        let cid = format!("knt{}", hex(48));
        let conf = json!({
            "cniVersion": "1.1.0",
            "name": format!("knt{}", hex(6)),
            "type": "kuryr-cni",
            "neutron": {"network": net.id},
        });
        // ML2/OVN on a bound VM port refuses the pod's Neutron MAC as a
        // pair: a clear error (CNI code 101), and nothing is left.
        let (success, refused) = cni_call(&socket, "ADD", &cid, &ns.path(), &conf);
        if success {
            eprintln!("{test}: this Neutron accepts any MAC in the pairs");
            cni_call(&socket, "DEL", &cid, &ns.path(), &conf);
        } else {
            assert_eq!(refused["code"], 101, "{refused}");
            let msg = refused["msg"].as_str().unwrap_or_default();
            assert!(
                msg.contains("VRRP") && msg.contains("InvalidVirtualMACAddress"),
                "{msg}"
            );
            assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
            assert!(
                stack.ports(Query::new().device_id(&cid)).is_empty(),
                "port left behind"
            );
            let links = ok("ip", &["netns", "exec", &ns.0, "ip", "-o", "link"]);
            assert!(!links.contains("eth0"), "{links}");
        }

        // Unbound, the VM port takes any MAC (as under ML2/OVS): the whole
        // nested path, minus OVN's forwarding (nothing binds the VM port).
        stack
            .block_on(stack.neutron.update_port(
                &vm.port.id,
                &PortUpdate {
                    binding_host_id: Some(String::new()),
                    ..PortUpdate::default()
                },
            ))
            .expect("unbinding the VM port");
        let started = Instant::now();
        let (success, added) = cni_call(&socket, "ADD", &cid, &ns.path(), &conf);
        assert!(success, "ADD: {added}");
        eprintln!("nested CNI ADD: {:?}", started.elapsed());
        let ip: IpAddr = added["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no IP in {added}"));
        let interfaces = added["interfaces"].as_array().expect("interfaces");
        assert_eq!(interfaces.len(), 1, "no host end in nested mode: {added}");
        assert_eq!(added["ips"][0]["interface"], 0);
        let mac = interfaces[0]["mac"].as_str().expect("mac").to_string();
        assert!(vm.has_pair(&ip.to_string(), &mac), "{:?}", vm.pairs());
        let link = ok(
            "ip",
            &["netns", "exec", &ns.0, "ip", "-d", "addr", "show", "eth0"],
        );
        assert!(
            link.contains("macvlan") && link.contains("mode bridge"),
            "{link}"
        );
        assert!(
            link.contains(&format!("{ip}/")) && link.contains(&mac),
            "{link}"
        );
        let port = stack
            .ports(Query::new().device_id(&cid))
            .pop()
            .expect("the port");
        assert_eq!(port.binding_host_id, "", "a nested port stays unbound");
        let started = Instant::now();
        let (success, out) = cni_call(&socket, "DEL", &cid, &ns.path(), &conf);
        assert!(success, "DEL: {out}");
        eprintln!("nested CNI DEL: {:?}", started.elapsed());
        assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
        assert!(stack.port(&port.id).is_none(), "port left behind");
        let links = ok("ip", &["netns", "exec", &ns.0, "ip", "-o", "link"]);
        assert!(!links.contains("eth0"), "{links}");
    }));
    let _ = daemon.kill();
    let _ = daemon.wait();
    if let Err(panic) = result {
        let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
        eprintln!("---- daemon log ----\n{log}");
        let _ = std::fs::remove_dir_all(&dir);
        std::panic::resume_unwind(panic);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `kuryr-cni`; returns whether it succeeded and its JSON output.
fn cni_call(
    socket: &std::path::Path,
    command: &str,
    cid: &str,
    netns: &str,
    conf: &Value,
) -> (bool, Value) {
    let out = kuryr_testkit::cni_util::cni(socket, command, cid, netns, conf);
    let value = if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {}", out.stdout))
    };
    (out.success, value)
}

// ------------------------------------------------------------- Linux bridge

/// `binding:vif_type=bridge` (bare metal with the linuxbridge agent): the
/// host end joins `brq<network id[:11]>`, made if missing; two such
/// containers talk through the bridge; unplug removes the veths.
#[test]
fn linux_bridge_binding_on_the_kernel() {
    let test = "linux_bridge_binding_on_the_kernel";
    if !needs_root(test) {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let network_id = format!("{}-0000-4000-8000-000000000000", hex(8));
    let bridge = kuryr_core::naming::linux_bridge_name(&network_id);
    assert_eq!(bridge, format!("brq{}", &network_id[..11]));
    let netlink = rt.block_on(Netlink::host()).expect("netlink");
    let binder = Binder::new(
        netlink,
        Arc::new(FakeSwitch::with_bridge("br-int")),
        "br-int",
    );
    let (ns1, ns2) = (TempNetns::new(), TempNetns::new());
    let mk = |n: u8| Port {
        id: format!("{}-aaaa-4000-8000-00000000000{n}", hex(8)),
        network_id: network_id.clone(),
        mac_address: format!("fa:16:3e:00:b0:0{n}"),
        fixed_ips: vec![openstack::neutron::FixedIp {
            subnet_id: "s".into(),
            ip_address: format!("10.251.7.{n}").parse().expect("ip"),
        }],
        binding_vif_type: "bridge".into(),
        ..Port::default()
    };
    let (p1, p2) = (mk(1), mk(2));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (port, ns) in [(&p1, &ns1), (&p2, &ns2)] {
            let plugged = rt
                .block_on(binder.plug_into_netns(&plug_request(port), &ns.target(port)))
                .expect("plugged");
            let host = &plugged.plugged.host_ifname;
            let master = std::fs::read_link(format!("/sys/class/net/{host}/master"))
                .expect("the host end has a master");
            assert!(master.ends_with(&bridge), "{master:?}");
        }
        let target = p2.fixed_ips[0].ip_address.to_string();
        let pinged = (0..3).any(|_| {
            run(
                "ip",
                &[
                    "netns", "exec", &ns1.0, "ping", "-c", "1", "-W", "2", &target,
                ],
            )
            .status
            .success()
        });
        assert!(pinged, "no traffic through {bridge}");
        for port in [&p1, &p2] {
            rt.block_on(binder.unplug(&port.id)).expect("unplug");
            let (host, peer) = veth_names(&port.id);
            assert!(!link_exists(&host) && !link_exists(&peer));
        }
        let ports = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(ports, 0, "{bridge} still has ports");
    }));
    let _ = run("ip", &["link", "del", &bridge]);
    for port in [&p1, &p2] {
        let (host, _) = veth_names(&port.id);
        let _ = run("ip", &["link", "del", &host]);
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
