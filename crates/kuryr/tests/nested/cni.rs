//! CNI in a VM: the daemon plugs macvlan attachments behind the VM's
//! port.

use super::*;

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
