//! Docker in a VM: the nested driver plugs macvlan containers behind the
//! VM's port.
//!
//! The Neutron side of nested mode under concurrency: allowed address
//! pairs and trunk subports updated by many callers at once.

use super::*;

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
    let f = fixture_or_skip!(test, &config);
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
        let out = run("docker", &["exec", name, "ping", "-c", "2", "-W", "2", &ext.ip.to_string()]);
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
    assert!(!rogue.ping(ext.ip, 2), "an address that is not an allowed address pair got through");
    let client = f.stack.block_on(vm_client(&f.stack, &nic_name));
    let rogue_pair =
        AddressPair { ip_address: rogue_ip.clone(), mac_address: Some(rogue_mac.into()) };
    f.stack
        .block_on(client.update_pairs("rogue", std::slice::from_ref(&rogue_pair), &[]))
        .expect("adding the pair");
    assert!(rogue.ping(ext.ip, 5), "with its pair, the same address passes");
    f.stack.block_on(client.update_pairs("rogue", &[], &[rogue_pair])).expect("removing the pair");
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
    assert!(!link_exists(&kuryr_core::naming::container_veth_name(&p1.id)));
}

// ------------------------------------------------------------- Neutron side

/// 10 attachments at once (Neutron's default max_allowed_address_pair),
/// each from its own client (as separate processes would be), add their
/// pairs to one VM port: none is lost (If-Match + retry on 412); an 11th
/// gets a clear error; removing them all at once leaves none.
#[test]
fn concurrent_pair_updates_lose_nothing() {
    with_vm("concurrent_pair_updates_lose_nothing", false, |stack, net, vm| {
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
                    let client = vm_client(stack, &vm.nic).await;
                    tasks.spawn(async move {
                        let (a, r) = if add { (vec![pair], vec![]) } else { (vec![], vec![pair]) };
                        client.update_pairs("test", &a, &r).await
                    });
                }
                while let Some(res) = tasks.join_next().await {
                    res.expect("task").expect("pair update");
                }
            });
            eprintln!("10 concurrent pair updates (add={add}): {:?}", started.elapsed());
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
        let client = stack.block_on(vm_client(stack, &vm.nic));
        let eleventh = AddressPair {
            ip_address: format!("{}.99", net.prefix),
            mac_address: Some("00:00:5e:00:01:63".into()),
        };
        let err = stack
            .block_on(client.update_pairs("test", &[eleventh], &[]))
            .expect_err("the VM port is full");
        assert!(err.to_string().contains("max_allowed_address_pair"), "{err}");
        run_all(false);
        assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
    });
}

/// 20 container ports become subports of the VM's trunk at once, each
/// from its own client: every VLAN id is unique (409 DuplicateSubPort
/// retried on a fresh read of the trunk), subports go ACTIVE with their
/// bound parent, and removing them leaves the trunk empty.
#[test]
fn concurrent_subports_get_unique_vlans() {
    with_vm("concurrent_subports_get_unique_vlans", true, |stack, net, vm| {
        let ports = net.ports(20);
        let started = Instant::now();
        let vlans: Vec<(String, u16)> = stack.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for port in &ports {
                let client = vm_client(stack, &vm.nic).await;
                let id = port.id.to_string();
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
            let sub = subs.iter().find(|s| &s.port_id == port_id).expect("subport");
            assert_eq!(sub.segmentation_id, Some(u32::from(*vlan)));
        }
        // A retried add keeps the id it has.
        let client = stack.block_on(vm_client(stack, &vm.nic));
        let (first, first_vlan) = &vlans[0];
        assert_eq!(stack.block_on(client.add_subport(first)).expect("again"), *first_vlan);
        // The parent is bound: Neutron/OVN set its subports ACTIVE.
        let started = Instant::now();
        wait_status(stack, first, "ACTIVE");
        eprintln!("subport ACTIVE after {:?}", started.elapsed());

        stack.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (port_id, _) in vlans.clone() {
                let client = vm_client(stack, &vm.nic).await;
                tasks.spawn(async move { client.remove_subport(&port_id).await });
            }
            while let Some(res) = tasks.join_next().await {
                res.expect("task").expect("subport removed");
            }
        });
        assert!(vm.sub_ports().is_empty(), "{:?}", vm.sub_ports());
        // Removing again is fine.
        stack.block_on(client.remove_subport(first)).expect("idempotent");
    });
}
