//! Docker in a VM: the nested driver plugs macvlan containers behind the
//! VM's port.

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
