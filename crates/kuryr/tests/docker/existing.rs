//! Adopting what a user made in Neutron: a network by name or uuid, a
//! subnet, a port picked by its IP.
//!
//! What an endpoint carries: exposed ports as security group rules, and
//! EndpointOperInfo reporting the port's status.

use super::*;

// ------------------------------------------------------------- existing objects

/// How a test names the pre-created Neutron objects to Docker.
#[derive(Clone, Copy, PartialEq)]
enum Adopt {
    /// `--subnet <cidr> -o neutron.net.name=<name>`
    ByName,
    /// `--subnet <cidr> -o neutron.net.uuid=<id>`
    ByUuid,
    /// `--subnet <cidr> --ipam-opt neutron.subnet.uuid=<id> -o neutron.net.uuid=<id>`,
    /// no `--gateway`: the subnet's own gateway (not the first address).
    SubnetToo,
}

fn existing_network(test: &str, how: Adopt) {
    let f = fixture_or_skip!(test);
    let s = &f.stack;
    let (p, cidr) = f.fresh_cidr();
    let gw = if how == Adopt::SubnetToo { ip(&format!("{p}.254")) } else { ip(&format!("{p}.1")) };
    let name = format!("{}-ext", f.driver());
    let pre = s.create_network_named(name.clone());
    f.made(Resource::Networks, &pre.id);
    s.block_on(s.neutron.replace_tags(Resource::Networks, &pre.id, &["team:blue"]))
        .expect("tagging");
    let subnet_name = format!("{name}-subnet");
    let pre_subnet = s.create_subnet_named(&pre.id, Some(subnet_name.clone()), &cidr, Some(gw));
    s.block_on(s.neutron.replace_tags(Resource::Subnets, &pre_subnet.id, &["team:blue"]))
        .expect("tagging");

    let net_option = match how {
        Adopt::ByName => format!("neutron.net.name={name}"),
        Adopt::ByUuid | Adopt::SubnetToo => format!("neutron.net.uuid={}", pre.id),
    };
    let subnet_option = format!("neutron.subnet.uuid={}", pre_subnet.id);
    let mut args = vec!["--subnet", &cidr, "-o", &net_option];
    if how == Adopt::SubnetToo {
        args.extend_from_slice(&["--ipam-opt", &subnet_option]);
    }
    let (net, docker_net) = f.network_named("net", &args);
    let adopted = s.network_of_docker(&docker_net);
    assert_eq!(adopted.id, pre.id, "the existing network is adopted");
    assert_eq!(adopted.name, name, "its name is unchanged");
    let mut wanted = id_tags(&docker_net);
    wanted.push(format!("kuryr.net.existing:{}", &docker_net[..12]));
    wanted.push("team:blue".into());
    assert!(has_all_tags(&adopted.tags, &wanted), "{:?} lacks {wanted:?}", adopted.tags);
    // No second subnet.
    let subnet = s.only_subnet_of(&pre.id);
    assert_eq!(subnet.id, pre_subnet.id);
    assert_eq!(subnet.name, subnet_name, "the subnet keeps its name");
    assert_eq!(subnet.gateway_ip, Some(gw));

    if how == Adopt::ByName {
        // The cidr is taken by the adopted network: a second Docker network
        // with it (and no pools) is refused, not given the same pool.
        let other = f.name("other");
        let err = f.create_network_fails(&other, &["--subnet", &cidr]);
        assert!(
            err.contains(&format!("{cidr} is already used by Neutron network {}", pre.id)),
            "{err}"
        );
        assert_eq!(s.kuryr_pools(&cidr).len(), 1);
        assert_eq!(s.subnets_with_cidr(&cidr).len(), 1);
    }

    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &pre.id);
    assert_eq!(port.fixed_ips[0].subnet_id, pre_subnet.id);
    assert_eq!(a.gateway, Some(gw), "the container's gateway is the subnet's");
    ping_from_new_container(&net, a.ip.expect("v4"));
    f.remove_container(&c);
    f.remove_network(&net);

    let after = s.network(&pre.id).expect("the existing network survives");
    assert_eq!(after.name, name);
    assert_eq!(after.tags, vec!["team:blue".to_string()], "only our tags go");
    let subnet_after = s.subnet(&pre_subnet.id).expect("the existing subnet survives");
    assert_eq!(subnet_after.cidr, cidr);
    assert_eq!(subnet_after.name, subnet_name);
    assert_eq!(subnet_after.gateway_ip, Some(gw));
    assert_eq!(
        subnet_after.tags,
        vec!["team:blue".to_string()],
        "only our tags go from the subnet"
    );
    assert!(s.kuryr_pools(&cidr).is_empty(), "no kuryrPool left");
    f.assert_port_gone(&port.id);
    assert!(s.non_neutron_ports(&pre.id).is_empty(), "no port left on the existing network");
}

/// `-o neutron.net.name=`: adopted, and survives `network rm`.
#[test]
fn existing_network_by_name() {
    existing_network("existing_network_by_name", Adopt::ByName);
}

/// `-o neutron.net.uuid=`: adopted, and survives `network rm`.
#[test]
fn existing_network_by_uuid() {
    existing_network("existing_network_by_uuid", Adopt::ByUuid);
}

/// `--ipam-opt neutron.subnet.uuid= -o neutron.net.uuid=` without
/// `--gateway`: the subnet's own gateway, and both survive `network rm`.
#[test]
fn existing_network_and_subnet_by_uuid() {
    existing_network("existing_network_and_subnet_by_uuid", Adopt::SubnetToo);
}

/// `--ip` of an address an existing port holds: that port is adopted, and
/// reset (not deleted) when the container goes.
#[test]
fn existing_port_picked_by_ip() {
    let f = fixture_or_skip!("existing_port_picked_by_ip");
    let s = &f.stack;
    let (p, cidr) = f.fresh_cidr();
    let (net, docker_net) =
        f.network_named("net", &["--subnet", &cidr, "--gateway", &format!("{p}.1")]);
    let network = s.network_of_docker(&docker_net);
    let subnet = s.subnets(Query::new().network_id(&network.id)).remove(0);
    let wanted_ip = ip(&format!("{p}.50"));
    let port_name = format!("{}-pre", f.driver());
    let pre = s
        .block_on(s.neutron.create_port(&PortCreate {
            name: Some(port_name.clone()),
            fixed_ips: Some(vec![openstack::neutron::FixedIpRequest::address(
                wanted_ip,
                Some(subnet.id.clone()),
            )]),
            tags: Some(vec!["team:blue".into()]),
            ..PortCreate::new(network.id.clone())
        }))
        .expect("pre-creating the port");
    f.made(Resource::Ports, &pre.id);

    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &["--ip", &wanted_ip.to_string()]);
    assert_eq!(a.ip, Some(wanted_ip));
    let port = check_port(&f, &a, &network.id);
    assert_eq!(port.id, pre.id, "the existing port is used");
    assert_eq!(port.mac_address, pre.mac_address, "its MAC is kept");
    assert!(port.tags.contains(&"kuryr.port.existing".to_string()));
    assert!(port.tags.contains(&"team:blue".to_string()));
    assert_eq!(port.name, port_name, "an adopted port keeps its name");
    check_plugged(&f, &port, &a.endpoint);
    ping_from_new_container(&net, wanted_ip);

    f.remove_container(&c);
    let after = wait_for("the adopted port reset", WAIT, || {
        let port = s.port(&pre.id).expect("the existing port is not deleted");
        port.device_id.is_empty().then_some(port)
    });
    assert_eq!(after.device_id, "", "reset");
    assert_eq!(after.device_owner, "", "reset");
    assert_eq!(after.binding_host_id, "", "reset");
    assert_eq!(after.name, port_name);
    assert_eq!(after.tags, vec!["team:blue".to_string()], "our tags removed");
    assert_eq!(after.fixed_ips[0].ip_address, wanted_ip);
    s.local().assert_unplugged(&pre.id);

    // The user's port holds the network; it is theirs to delete.
    s.block_on(s.neutron.delete_port(&pre.id)).expect("deleting the port");
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&pre.id]);
}

// ------------------------------------------------------------- exposed ports

/// `--expose`: a security group `<port>-exposed_ports` with ingress rules
/// on the container's port, gone when the container stops.
#[test]
fn exposed_ports_become_security_group_rules() {
    let f = fixture_or_skip!("exposed_ports_become_security_group_rules");
    let s = &f.stack;
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &["--expose", "80", "--expose", "81/udp", "--expose", "82"]);
    let port = check_port(&f, &a, &network.id);
    let sg_name = format!("{}-exposed_ports", port.id);
    let groups = s
        .block_on(s.neutron.list_security_groups(&Query::new().name(&sg_name)))
        .expect("listing SGs");
    assert_eq!(groups.len(), 1, "one SG {sg_name}");
    let sg = &groups[0];
    assert!(
        port.security_groups.contains(&sg.id),
        "SG attached to the port: {:?}",
        port.security_groups
    );
    let mut rules: Vec<(String, String, Option<u32>, Option<u32>)> = sg
        .security_group_rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .map(|r| {
            (
                r.protocol.clone().unwrap_or_default(),
                r.ethertype.clone(),
                r.port_range_min,
                r.port_range_max,
            )
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            ("tcp".into(), "IPv4".into(), Some(80), Some(80)),
            ("tcp".into(), "IPv4".into(), Some(82), Some(82)),
            ("udp".into(), "IPv4".into(), Some(81), Some(81)),
        ]
    );
    docker(&["stop", "-t", "0", &c]);
    eventually("the exposed-ports SG removed after stop", || {
        s.block_on(s.neutron.list_security_groups(&Query::new().name(&sg_name)))
            .expect("listing SGs")
            .into_iter()
            .map(|g| format!("SG {} {}", g.id, g.name))
            .collect()
    });
    assert!(s.block_on(s.neutron.get_security_group(&sg.id)).is_err());
    f.assert_port_gone(&port.id);
    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port.id]);
}

// ------------------------------------------------------------- EndpointOperInfo

/// EndpointOperInfo, posted straight to the socket, reports the port's
/// status (from the running plugin, after a restart, and when Neutron's
/// status changes).
#[test]
fn endpoint_oper_info_reports_port_status() {
    let mut f = fixture_or_skip!("endpoint_oper_info_reports_port_status");
    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let c = f.name("c1");
    let a = f.run_detached(&c, &net, &[]);
    let port = check_port(&f, &a, &network.id);
    let call = json!({"NetworkID": docker_net, "EndpointID": a.endpoint});
    let oper_info = |f: &Fixture| f.kuryr.post_json("/NetworkDriver.EndpointOperInfo", &call);

    let (status, body) = oper_info(&f);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Value"]["status"], "ACTIVE", "{body}");
    assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");

    // Neutron's status, not a guess: an admin-down port is reported DOWN.
    let s = &f.stack;
    // Sets the port's admin state; waits until Neutron reports `status`.
    let set_admin_state = |up: bool, status: &str| {
        s.block_on(s.neutron.update_port(
            &port.id,
            &PortUpdate { admin_state_up: Some(up), ..PortUpdate::default() },
        ))
        .unwrap_or_else(|err| panic!("admin_state_up = {up}: {err}"));
        wait_for(&format!("Neutron to report the port {status}"), WAIT, || {
            (s.port(&port.id)?.status == status).then_some(())
        });
    };
    set_admin_state(false, "DOWN");
    wait_for("EndpointOperInfo to report DOWN", WAIT, || {
        let (status, body) = oper_info(&f);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");
        (body["Value"]["status"] == "DOWN").then_some(())
    });
    set_admin_state(true, "ACTIVE");

    // After a restart the plugin knows nothing but what Neutron has.
    f.kuryr.crash_and_restart();
    let (status, body) = oper_info(&f);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Value"]["status"], "ACTIVE", "{body}");
    assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");

    // An endpoint Kuryr does not know: 404 in Docker's error shape.
    let unknown = json!({"NetworkID": docker_net, "EndpointID": hex(64)});
    let (status, body) = f.kuryr.post_json("/NetworkDriver.EndpointOperInfo", &unknown);
    assert_eq!(status, 404, "{body}");
    assert!(body["Err"].as_str().is_some_and(|e| !e.is_empty()), "{body}");

    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port.id]);
}
