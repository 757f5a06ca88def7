//! The nested binders on the kernel: VLAN and ipvlan links or a clear
//! skip, a clear error without a VM port, and Linux bridge binding.
//!
//! CNI in a VM: the daemon plugs macvlan attachments behind the VM's
//! port.

use super::*;

/// vlan driver: the subport is added with a free VLAN id, then the VLAN
/// subinterface is made in the container. This kernel lacks 8021q: the
/// link side is skipped with the kernel's message, and the subport is
/// taken back (nothing is left on the trunk).
#[test]
fn vlan_binding_or_clear_skip() {
    let test = "vlan_binding_or_clear_skip";
    with_vm(test, true, |stack, net, vm| {
        let port = net.ports(1).remove(0);
        let (binder, _ns, linked) =
            plug_nested(test, stack, (NestedMode::Vlan, &vm.nic), &port, "vlan (8021q)");
        if linked {
            let sub = vm.sub_ports();
            assert_eq!(sub.len(), 1);
            assert_eq!(sub[0].port_id, port.id);
            stack.block_on(binder.unplug(&port.id)).expect("unplug");
        }
        assert!(vm.sub_ports().is_empty(), "{:?}", vm.sub_ports());
    });
}

/// ipvlan driver: the container's IP becomes a pair with the VM's MAC
/// (the container shares the NIC's MAC), then the ipvlan is made. This
/// kernel lacks ipvlan: the link side is skipped with the kernel's
/// message and the pair is taken back.
#[test]
fn ipvlan_binding_or_clear_skip() {
    let test = "ipvlan_binding_or_clear_skip";
    with_vm(test, false, |stack, net, vm| {
        let port = net.ports(1).remove(0);
        let ip = port.fixed_ips[0].ip_address.to_string();
        // The Neutron side alone, as the ipvlan driver does it.
        let client = stack.block_on(vm_client(stack, &vm.nic));
        let pair =
            AddressPair { ip_address: ip.clone(), mac_address: Some(vm.port.mac_address.clone()) };
        stack
            .block_on(client.update_pairs(&port.id, std::slice::from_ref(&pair), &[]))
            .expect("pair");
        assert!(vm.has_pair(&ip, &vm.port.mac_address));
        stack.block_on(client.update_pairs(&port.id, &[], &[pair])).expect("pair removed");
        assert!(vm.pairs().is_empty());

        let (binder, _ns, linked) =
            plug_nested(test, stack, (NestedMode::Ipvlan, &vm.nic), &port, "ipvlan");
        if linked {
            assert!(vm.has_pair(&ip, &vm.port.mac_address));
            stack.block_on(binder.unplug(&port.id)).expect("unplug");
        }
        assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
    });
}

/// A VM port that `link_iface` does not lead to gives a clear error and
/// changes nothing.
#[test]
fn nested_without_a_vm_port_is_a_clear_error() {
    let test = "nested_without_a_vm_port_is_a_clear_error";
    let Some(stack) = root_stack(test) else {
        return;
    };
    let net = Net::new(&stack);
    let port = net.ports(1).remove(0);
    let (a, b) = (format!("knx{}", hex(6)), format!("kny{}", hex(6)));
    ok("ip", &["link", "add", &a, "type", "veth", "peer", "name", &b]);
    let binder = nested_binder(&stack, NestedMode::Macvlan, &b);
    let err = stack.block_on(binder.plug(&plug_request(&port))).expect_err("no VM port");
    let _ = run("ip", &["link", "del", &a]);
    assert!(
        matches!(err, BindError::Nested { .. })
            && err.to_string().contains("no Neutron port has MAC"),
        "{err}"
    );
    assert!(!link_exists(&kuryr_core::naming::container_veth_name(&port.id)));
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
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let network_id = format!("{}-0000-4000-8000-000000000000", hex(8));
    let bridge = kuryr_core::naming::linux_bridge_name(&network_id);
    assert_eq!(bridge, format!("brq{}", &network_id[..11]));
    let netlink = rt.block_on(Netlink::host()).expect("netlink");
    let binder = Binder::new(netlink, Arc::new(FakeSwitch::with_bridge("br-int")), "br-int");
    let (ns1, ns2) = (TempNetns::new(), TempNetns::new());
    let mk = |n: u8| Port {
        id: format!("{}-aaaa-4000-8000-00000000000{n}", hex(8)).into(),
        network_id: network_id.clone().into(),
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
            run("ip", &["netns", "exec", &ns1.0, "ping", "-c", "1", "-W", "2", &target])
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

// ------------------------------------------------------------- CNI

/// The CNI path: `kuryr daemon` with the macvlan driver. On the bound VM
/// port ML2/OVN refuses the pod's MAC as a pair: a clear error, nothing
/// left. On an unbound VM port (any MAC accepted, as under ML2/OVS) ADD
/// plugs a macvlan with the port's MAC, addresses and the pair; DEL
/// removes pair, link and port.
#[test]
fn cni_macvlan_in_a_vm() {
    let test = "cni_macvlan_in_a_vm";
    with_vm(test, false, |stack, net, vm| {
        let dir = std::env::temp_dir().join(format!("kuryr-nested-{}", hex(6)));
        std::fs::create_dir_all(&dir).expect("dir");
        let config = dir.join("kuryr.conf");
        std::fs::write(&config, format!("[binding]\ndriver = macvlan\nlink_iface = {}\n", vm.nic))
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
                std::os::unix::net::UnixStream::connect(&socket).ok().map(|_| ())
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
                assert!(msg.contains("VRRP") && msg.contains("InvalidVirtualMACAddress"), "{msg}");
                assert!(vm.pairs().is_empty(), "{:?}", vm.pairs());
                assert!(stack.ports(Query::new().device_id(&cid)).is_empty(), "port left behind");
                let links = ok("ip", &["netns", "exec", &ns.0, "ip", "-o", "link"]);
                assert!(!links.contains("eth0"), "{links}");
            }

            // Unbound, the VM port takes any MAC (as under ML2/OVS): the whole
            // nested path, minus OVN's forwarding (nothing binds the VM port).
            stack
                .block_on(stack.neutron.update_port(
                    &vm.port.id,
                    &PortUpdate { binding_host_id: Some(String::new()), ..PortUpdate::default() },
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
            let link = ok("ip", &["netns", "exec", &ns.0, "ip", "-d", "addr", "show", "eth0"]);
            assert!(link.contains("macvlan") && link.contains("mode bridge"), "{link}");
            assert!(link.contains(&format!("{ip}/")) && link.contains(&mac), "{link}");
            let port = stack.ports(Query::new().device_id(&cid)).pop().expect("the port");
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
    });
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
