//! What an endpoint carries: exposed ports as security group rules, and
//! EndpointOperInfo reporting the port's status.

use super::*;

// ------------------------------------------------------------- exposed ports

/// `--expose`: a security group `<port>-exposed_ports` with ingress rules
/// on the container's port, gone when the container stops.
#[test]
fn exposed_ports_become_security_group_rules() {
    let f = fixture_or_skip!("exposed_ports_become_security_group_rules");
    let s = &f.stack;
    let (cidr, net, docker_net) = f.fresh_network();
    let network = s.network_of_docker(&docker_net);
    let c = f.name("c1");
    let a = f.run_detached(
        &c,
        &net,
        &["--expose", "80", "--expose", "81/udp", "--expose", "82"],
    );
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
    let (cidr, net, docker_net) = f.fresh_network();
    let network = f.stack.network_of_docker(&docker_net);
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
    s.block_on(s.neutron.update_port(
        &port.id,
        &PortUpdate {
            admin_state_up: Some(false),
            ..PortUpdate::default()
        },
    ))
    .expect("admin down");
    wait_for("Neutron to report the port DOWN", WAIT, || {
        (s.port(&port.id)?.status == "DOWN").then_some(())
    });
    wait_for("EndpointOperInfo to report DOWN", WAIT, || {
        let (status, body) = oper_info(&f);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");
        (body["Value"]["status"] == "DOWN").then_some(())
    });
    s.block_on(s.neutron.update_port(
        &port.id,
        &PortUpdate {
            admin_state_up: Some(true),
            ..PortUpdate::default()
        },
    ))
    .expect("admin up");
    wait_for("Neutron to report the port ACTIVE", WAIT, || {
        (s.port(&port.id)?.status == "ACTIVE").then_some(())
    });

    // After a restart the plugin knows nothing but what Neutron has.
    f.kuryr.crash_and_restart();
    let (status, body) = oper_info(&f);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Value"]["status"], "ACTIVE", "{body}");
    assert_eq!(body["Value"]["port_id"], port.id.as_str(), "{body}");

    // An endpoint Kuryr does not know: 404 in Docker's error shape.
    let unknown = json!({"NetworkID": docker_net, "EndpointID": hex(64)});
    let (status, body) = f
        .kuryr
        .post_json("/NetworkDriver.EndpointOperInfo", &unknown);
    assert_eq!(status, 404, "{body}");
    assert!(
        body["Err"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    f.remove_container(&c);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[&port.id]);
}
