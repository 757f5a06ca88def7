//! The extensions Kuryr uses: trunks with subports, security groups and
//! rules, floating IPs, and the port quota.

use super::*;

// ---------------------------------------------------------------- trunks

#[tokio::test]
async fn trunks_with_subports() {
    let (s, c, tag) = setup_or_skip!("trunks_with_subports");
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.6.0.0/24").await;
    let parent = port_on(&s, &c, PortCreate::new(&net.id)).await;
    let sub1 = port_on(&s, &c, PortCreate::new(&net.id)).await;
    let sub2 = port_on(&s, &c, PortCreate::new(&net.id)).await;

    let trunk = s
        .neutron
        .create_trunk(&TrunkCreate {
            port_id: parent.id.clone(),
            name: Some(format!("ostest-{tag}")),
            sub_ports: Some(vec![SubPort::vlan(&sub1.id, 101)]),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::Trunks, &trunk.id);
    assert_eq!(trunk.port_id, parent.id);
    assert_eq!(trunk.sub_ports.len(), 1);
    assert_eq!(trunk.sub_ports[0].segmentation_id, Some(101));

    let added = s.neutron.add_subports(&trunk.id, &[SubPort::vlan(&sub2.id, 102)]).await.unwrap();
    assert_eq!(added.id, trunk.id);
    let vlans: BTreeSet<_> = added.sub_ports.iter().filter_map(|p| p.segmentation_id).collect();
    assert_eq!(vlans, BTreeSet::from([101, 102]));

    let subs = s.neutron.get_subports(&trunk.id).await.unwrap();
    assert_eq!(subs.len(), 2);
    let sub2_vlan = subs.iter().find(|p| p.port_id == sub2.id).unwrap();
    assert_eq!(sub2_vlan.segmentation_id, Some(102));

    let details = s
        .neutron
        .get_port(&parent.id)
        .await
        .unwrap()
        .trunk_details
        .expect("trunk_details on the parent");
    assert_eq!(details.trunk_id, trunk.id);
    assert_eq!(details.sub_ports.len(), 2);
    let sub2_mac = &details.sub_ports.iter().find(|p| p.port_id == sub2.id).unwrap().mac_address;
    assert_eq!(sub2_mac.as_deref(), Some(sub2.mac_address.as_str()));
    assert_eq!(s.neutron.get_port(&sub1.id).await.unwrap().device_owner, "trunk:subport");

    let by_parent = Query::new().port_id(&parent.id);
    let listed = s.neutron.list_trunks(&by_parent).await.unwrap();
    assert_eq!(listed.len(), 1);

    // A VLAN id already used on the trunk is refused.
    let err = s.neutron.add_subports(&trunk.id, &[SubPort::vlan(&sub2.id, 101)]).await.unwrap_err();
    assert!(err.is_conflict() || err.is_bad_request(), "{err}");

    let removed = s.neutron.remove_subports(&trunk.id, &[&sub1.id]).await.unwrap();
    assert_eq!(removed.sub_ports.len(), 1);
    assert_eq!(removed.sub_ports[0].port_id, sub2.id);

    let rename = TrunkUpdate { name: Some(format!("ostest-{tag}-b")), ..Default::default() };
    let renamed = s.neutron.update_trunk(&trunk.id, &rename).await.unwrap();
    assert_eq!(renamed.name, format!("ostest-{tag}-b"));
    assert_eq!(s.neutron.get_trunk(&trunk.id).await.unwrap().name, renamed.name);

    s.neutron.remove_subports(&trunk.id, &[&sub2.id]).await.unwrap();
    s.neutron.delete_trunk(&trunk.id).await.unwrap();
    let err = s.neutron.get_trunk(&trunk.id).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("TrunkNotFound"));
}

// ------------------------------------------------------- security groups

#[tokio::test]
async fn security_groups_and_rules() {
    let (s, c, tag) = setup_or_skip!("security_groups_and_rules");
    let sg = s
        .neutron
        .create_security_group(&SecurityGroupCreate {
            name: format!("ostest-{tag}"),
            description: Some("functional test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::SecurityGroups, &sg.id);
    assert_eq!(sg.name, format!("ostest-{tag}"));
    assert!(
        sg.security_group_rules.iter().any(|r| r.direction == "egress"),
        "new groups get default egress rules"
    );

    let rule = s
        .neutron
        .create_security_group_rule(&SecurityGroupRuleCreate {
            security_group_id: sg.id.clone(),
            direction: "ingress".into(),
            ethertype: Some("IPv4".into()),
            protocol: Some("tcp".into()),
            port_range_min: Some(22),
            port_range_max: Some(22),
            remote_ip_prefix: Some("10.0.0.0/8".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::SecurityGroupRules, &rule.id);
    assert_eq!(rule.port_range_min, Some(22));
    assert_eq!(rule.protocol.as_deref(), Some("tcp"));

    let rules = s
        .neutron
        .list_security_group_rules(
            &Query::new().security_group_id(&sg.id).param("direction", "ingress"),
        )
        .await
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id, rule.id);
    let by_name = Query::new().name(format!("ostest-{tag}"));
    let groups = s.neutron.list_security_groups(&by_name).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        s.neutron.get_security_group(&sg.id).await.unwrap().security_group_rules.len(),
        sg.security_group_rules.len() + 1
    );

    // A port can use it.
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.8.0.0/24").await;
    let port = port_on(
        &s,
        &c,
        PortCreate { security_groups: Some(vec![sg.id.clone()]), ..PortCreate::new(&net.id) },
    )
    .await;
    assert_eq!(port.security_groups, [sg.id.as_str()]);
    let err = s.neutron.delete_security_group(&sg.id).await.unwrap_err();
    assert!(err.is_conflict(), "in use: {err}");
    s.neutron.delete_port(&port.id).await.unwrap();

    s.neutron.delete_security_group_rule(&rule.id).await.unwrap();
    s.neutron.delete_security_group(&sg.id).await.unwrap();
    assert!(is_gone(s.neutron.get_security_group(&sg.id).await));
}

// ---------------------------------------------------------- floating IPs

#[tokio::test]
async fn floating_ips() {
    let (s, c, tag) = setup_or_skip!("floating_ips");
    let body = NetworkCreate {
        name: Some(format!("ostest-ext-{tag}")),
        router_external: Some(true),
        ..Default::default()
    };
    let ext = create_network(&s, &c, body).await;
    assert!(ext.router_external);
    create_subnet(&s, &c, SubnetCreate::new(&ext.id, "172.31.250.0/24")).await;

    let fip = s
        .neutron
        .create_floating_ip(&FloatingIpCreate {
            floating_network_id: ext.id.clone(),
            floating_ip_address: Some(ip("172.31.250.77")),
            description: Some("first".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.neutron(Resource::FloatingIps, &fip.id);
    assert_eq!(fip.floating_ip_address, Some(ip("172.31.250.77")));
    assert_eq!(fip.port_id, None);

    let on_ext = Query::new().param("floating_network_id", &ext.id);
    let listed = s.neutron.list_floating_ips(&on_ext).await.unwrap();
    assert_eq!(listed.len(), 1);
    let updated = s
        .neutron
        .update_floating_ip(
            &fip.id,
            &FloatingIpUpdate {
                description: Some("second".into()),
                port_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description, "second");
    assert_eq!(s.neutron.get_floating_ip(&fip.id).await.unwrap().description, "second");
    s.neutron.delete_floating_ip(&fip.id).await.unwrap();
    assert!(is_gone(s.neutron.get_floating_ip(&fip.id).await));
}

// ---------------------------------------------------------------- quotas

#[tokio::test]
async fn port_quota_is_enforced() {
    let (s, c, tag) = setup_or_skip!("port_quota_is_enforced");
    let project = format!("ostest{tag}");
    let defaults = s.neutron.get_quota(&project).await.unwrap();
    assert!(defaults.port.is_some());
    c.add(Item::ProjectSecurityGroups(project.clone()));
    c.add(Item::Quota(project.clone()));
    let q = s
        .neutron
        .update_quota(&project, &Quota { port: Some(1), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(q.port, Some(1));
    assert_eq!(q.network, defaults.network, "only the set quota changes");
    assert_eq!(s.neutron.get_quota(&project).await.unwrap().port, Some(1));

    // The quota bites: the project's second port is refused.
    let body = NetworkCreate { shared: Some(true), ..named_network(&tag) };
    let net = create_network(&s, &c, body).await;
    let body = PortCreate { project_id: Some(project.clone().into()), ..PortCreate::new(&net.id) };
    let first = port_on(&s, &c, body.clone()).await;
    assert_eq!(first.project_id.as_deref(), Some(project.as_str()));
    let err = s.neutron.create_port(&body).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.neutron_type(), Some("OverQuota"));

    s.neutron.reset_quota(&project).await.unwrap();
    assert_eq!(s.neutron.get_quota(&project).await.unwrap().port, defaults.port);
}
