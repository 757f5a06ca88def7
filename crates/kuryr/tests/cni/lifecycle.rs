//! One attachment's life: ADD, CHECK and DEL through `kuryr-cni`, pings
//! through OVN, a second attachment, DEL after the netns or the daemon
//! is gone.

use super::*;

// ------------------------------------------------------------- tests

#[test]
fn add_check_del_lifecycle() {
    let mut f = cni_fixture!("add_check_del_lifecycle");
    let (netns, cid) = f.new_container("a");
    let conf = f.conf("1.1.0");
    let result = f.add(&cid, &netns, "eth0", &conf);

    let port = f.port_of(&cid);
    assert_eq!(port.device_owner, DEVICE_OWNER);
    assert_eq!(port.device_id, cid);
    assert_eq!(port.binding_host_id, f.stack.local().host);
    assert_eq!(port.network_id, f.net_id);
    f.wait_active(&port.id);
    assert_eq!(port.name, format!("kuryr-cni-{}-eth0", &cid[..12]));
    for tag in [
        DEVICE_OWNER.to_string(),
        format!("kuryr.cni.cid.lh:{}", &cid[..cid.len().div_ceil(2)]),
        format!("kuryr.cni.cid.uh:{}", &cid[cid.len().div_ceil(2)..]),
        "kuryr.cni.ifname:eth0".to_string(),
        format!("kuryr.cni.net:kct{}", f.suffix),
    ] {
        assert!(port.tags.contains(&tag), "tag {tag} missing: {:?}", port.tags);
    }
    let ip = port.fixed_ips[0].ip_address.to_string();
    let mtu = f.stack.network(&f.net_id).expect("network").mtu.expect("mtu");

    // The interface as the container sees it.
    let link = link_json(&netns, "eth0");
    assert_eq!(link["ifname"], "eth0");
    assert_eq!(link["address"], port.mac_address.as_str());
    assert_eq!(link["mtu"], mtu);
    assert!(link["flags"].as_array().expect("flags").contains(&json!("UP")));
    let addrs: Vec<String> = link["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect();
    assert_eq!(addrs, vec![format!("{ip}/24")]);
    let routes = in_netns(&netns, &["route", "show"]);
    assert!(routes.contains(&format!("default via {}.1 dev eth0", f.prefix)), "{routes}");
    assert!(
        routes.contains(&format!("192.168.250.0/24 via {}.254 dev eth0", f.prefix)),
        "{routes}"
    );

    // The result.
    assert_eq!(result["cniVersion"], "1.1.0");
    let (host, _) = veth_names(&port.id);
    assert_eq!(result["interfaces"][0]["name"], host.as_str());
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["interfaces"][1]["mac"], port.mac_address.as_str());
    assert_eq!(result["interfaces"][1]["sandbox"], netns.as_str());
    assert_eq!(result["interfaces"][1]["mtu"], mtu);
    assert_eq!(result["ips"][0]["address"], format!("{ip}/24"));
    assert_eq!(result["ips"][0]["gateway"], format!("{}.1", f.prefix));
    assert_eq!(result["ips"][0]["interface"], 1);
    assert!(result["ips"][0].get("version").is_none());
    assert_eq!(result["dns"]["nameservers"], json!(["10.0.0.53"]));
    assert_eq!(each_of(&result, "routes", "dst"), ["0.0.0.0/0", "192.168.250.0/24"]);

    // Host side.
    assert!(link_exists(&host));
    assert_eq!(ovs_interfaces_with("iface-id", &port.id), vec![host.clone()]);
    assert_eq!(ovs_external_id(&host, "vm-uuid").as_deref(), Some(cid.as_str()));
    assert_eq!(ovs_external_id(&host, "kuryr-cni-ifname").as_deref(), Some("eth0"));
    assert_eq!(ovs_external_id(&host, "kuryr-cni-net"), Some(format!("kct{}", f.suffix)));

    // CHECK passes with the result as prevResult.
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result.clone();
    let check = CniCall::attachment("CHECK", &cid, &netns, "eth0");
    f.call(&check, &check_conf).expect_ok("CHECK");

    // CHECK names what drifted: a route removed inside the netns.
    in_netns(&netns, &["route", "del", "192.168.250.0/24"]);
    let drifted = f.call(&check, &check_conf);
    assert_eq!(drifted.code(), 103, "{}", drifted.stdout);
    assert!(drifted.stdout.contains("192.168.250.0/24"), "{}", drifted.stdout);

    // CHECK of an unknown attachment.
    let other = CniCall { container_id: Some("nosuchcontainer"), ..check.clone() };
    assert_eq!(f.call(&other, &check_conf).code(), 3);

    f.del(&cid, Some(&netns), "eth0", &conf);
    f.assert_gone(&cid, &port.id);
    assert!(!in_netns(&netns, &["link", "show"]).contains("eth0"));
    // Idempotent.
    f.del(&cid, Some(&netns), "eth0", &conf);
    f.del(&cid, None, "eth0", &conf);
}

#[test]
fn two_containers_ping_through_ovn_in_older_versions() {
    let mut f = cni_fixture!("two_containers_ping_through_ovn_in_older_versions");
    let (ns1, c1) = f.new_container("p");
    let (ns2, c2) = f.new_container("q");
    let r1 = f.add(&c1, &ns1, "eth0", &f.conf("0.4.0"));
    let r2 = f.add(&c2, &ns2, "eth0", &f.conf("0.3.1"));
    for r in [&r1, &r2] {
        assert_eq!(r["ips"][0]["version"], "4", "{r}");
        assert!(r["interfaces"][1].get("mtu").is_none(), "{r}");
    }
    assert_eq!(r1["cniVersion"], "0.4.0");
    assert_eq!(r2["cniVersion"], "0.3.1");
    let ip2 = f.port_of(&c2).fixed_ips[0].ip_address.to_string();
    let ns1_name = ns1.trim_start_matches("/var/run/netns/").to_string();
    let ping = |count: &str| {
        run("ip", &["netns", "exec", &ns1_name, "ping", "-c", count, "-i", "0.2", "-W", "1", &ip2])
            .status
            .success()
    };
    // ovn-installed means the flows are in; allow a moment for ARP.
    wait_for("a ping through OVN", Duration::from_secs(15), || ping("1").then_some(()));
    assert!(ping("3"), "pings after the first one failed");
    let p1 = f.port_of(&c1).id;
    let p2 = f.port_of(&c2).id;
    f.del(&c1, Some(&ns1), "eth0", &f.conf("0.4.0"));
    f.del(&c2, Some(&ns2), "eth0", &f.conf("0.3.1"));
    f.assert_gone(&c1, &p1);
    f.assert_gone(&c2, &p2);
}

#[test]
fn second_attachment_by_namespace_mapping() {
    let mut f = cni_fixture!("second_attachment_by_namespace_mapping");
    let other_name = format!("kct-{}-b", f.suffix);
    let (other_id, other_prefix) = f.make_network(&other_name);
    let (netns, cid) = f.new_container("m");
    f.add(&cid, &netns, "eth0", &f.conf("1.0.0"));
    let mut mapped = f.conf("1.0.0");
    mapped["neutron"]["namespace_networks"] = json!({"team-b": other_name});
    let call = CniCall {
        command: "ADD",
        container_id: Some(&cid),
        netns: Some(&netns),
        ifname: Some("eth1"),
        args: Some("IgnoreUnknown=1;K8S_POD_NAMESPACE=team-b;K8S_POD_NAME=web-0"),
        ..CniCall::default()
    };
    let result = f.call(&call, &mapped).expect_ok("ADD eth1").json();
    assert_eq!(result["interfaces"][1]["name"], "eth1");
    let ports = f.ports_of(&cid);
    assert_eq!(ports.len(), 2, "{ports:?}");
    let eth1 = ports
        .iter()
        .find(|p| p.tags.contains(&"kuryr.cni.ifname:eth1".to_string()))
        .expect("eth1 port");
    assert_eq!(eth1.network_id, other_id);
    let addr = in_netns(&netns, &["-4", "-o", "addr", "show", "dev", "eth1"]);
    assert!(addr.contains(&format!("{other_prefix}.")), "{addr}");
    // DEL of eth1 leaves eth0 alone.
    let eth1_id = eth1.id.clone();
    f.del(&cid, Some(&netns), "eth1", &mapped);
    assert!(f.stack.port(&eth1_id).is_none());
    assert_eq!(f.ports_of(&cid).len(), 1);
    assert!(in_netns(&netns, &["link", "show"]).contains("eth0"));
    f.del(&cid, Some(&netns), "eth0", &f.conf("1.0.0"));
    assert!(f.ports_of(&cid).is_empty());
}

#[test]
fn del_after_netns_is_gone() {
    let mut f = cni_fixture!("del_after_netns_is_gone");
    let a = f.attach("g", "1.1.0");
    let name = f.netns.pop().expect("netns");
    ok("ip", &["netns", "del", &name]);
    f.del(&a.cid, None, "eth0", &a.conf);
    f.assert_gone(&a.cid, &a.port.id);
    // The runtime may still pass the old path.
    f.del(&a.cid, Some(&a.netns), "eth0", &a.conf);
}

#[test]
fn del_after_daemon_kill9_and_restart() {
    let mut f = cni_fixture!("del_after_daemon_kill9_and_restart");
    let a = f.attach("k", "1.1.0");
    f.daemon().kill9();
    // While it is down: try again later, promptly.
    let del = CniCall::attachment("DEL", &a.cid, &a.netns, "eth0");
    assert_eq!(f.call(&del, &a.conf).code(), 11);
    f.daemon().restart();
    f.del(&a.cid, Some(&a.netns), "eth0", &a.conf);
    f.assert_gone(&a.cid, &a.port.id);
}
