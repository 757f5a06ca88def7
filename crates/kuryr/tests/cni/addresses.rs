//! Addresses and networks: dual stack addresses and routes, and a
//! recreated network looked up again.

use super::*;

#[test]
fn dual_stack_addresses_and_routes() {
    let mut f = cni_fixture!("dual_stack_addresses_and_routes");
    let v6 = fresh_v6();
    let s = &f.stack;
    s.block_on(s.neutron.create_subnet(&SubnetCreate {
        name: Some(format!("{}-v6", f.net_name)),
        ip_version: 6,
        gateway_ip: Some(Some(format!("{v6}::1").parse().expect("ip"))),
        dns_nameservers: Some(vec!["fd00::53".into()]),
        ..SubnetCreate::new(f.net_id.clone(), format!("{v6}::/64"))
    }))
    .expect("creating the v6 subnet");
    let (netns, cid) = f.new_container("d");
    let conf = f.conf("1.1.0");
    let result = f.add(&cid, &netns, "eth0", &conf);
    let port = f.port_of(&cid);
    let v6_ip = port
        .fixed_ips
        .iter()
        .find(|ip| ip.ip_address.is_ipv6())
        .expect("a v6 address")
        .ip_address;
    let addrs: Vec<&str> = result["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .collect();
    assert!(addrs.contains(&format!("{v6_ip}/64").as_str()), "{addrs:?}");
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(
        result["dns"]["nameservers"],
        json!(["10.0.0.53", "fd00::53"])
    );
    let routes6 = in_netns(&netns, &["-6", "route", "show"]);
    assert!(
        routes6.contains(&format!("default via {v6}::1 dev eth0")),
        "{routes6}"
    );
    let addr6 = in_netns(&netns, &["-6", "addr", "show", "dev", "eth0"]);
    assert!(addr6.contains(&format!("{v6_ip}/64")), "{addr6}");
    assert!(!addr6.contains("tentative dadfailed"), "{addr6}");

    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result;
    let check = CniCall::attachment("CHECK", &cid, &netns, "eth0");
    f.wait_active(&port.id);
    f.call(&check, &check_conf).expect_ok("CHECK");
    f.del(&cid, Some(&netns), "eth0", &conf);
    f.assert_gone(&cid, &port.id);
}

#[test]
fn recreated_network_is_looked_up_again() {
    let mut f = cni_fixture!("recreated_network_is_looked_up_again");
    let netns = f.new_netns("r");
    let conf = f.conf("1.1.0");
    let first = f.container_id("r1");
    f.add(&first, &netns, "eth0", &conf);
    f.del(&first, Some(&netns), "eth0", &conf);
    // Same name, new network: the daemon's cached id is stale.
    f.stack
        .block_on(f.stack.neutron.delete_network(&f.net_id))
        .expect("deleting the network");
    let name = f.net_name.clone();
    let (new_id, _) = f.make_network(&name);
    let second = f.container_id("r2");
    let add = CniCall::attachment("ADD", &second, &netns, "eth0");
    let out = f.call(&add, &conf);
    assert_eq!(out.code(), 11, "{}", out.stdout);
    assert!(f.ports_of(&second).is_empty());
    f.add(&second, &netns, "eth0", &conf);
    assert_eq!(f.port_of(&second).network_id, new_id);
    f.del(&second, Some(&netns), "eth0", &conf);
}
