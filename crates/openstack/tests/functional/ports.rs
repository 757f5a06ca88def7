//! Ports: CRUD, filters and revisions, fixed IP conflicts, atomic bulk
//! create, tags and tag filters, paged lists.

use super::*;

// ----------------------------------------------------------------- ports

#[tokio::test]
async fn port_crud_filters_and_revisions() {
    let (s, c, tag) = setup_or_skip!("port_crud_filters_and_revisions");
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.1.0.0/24").await;
    let device_id = format!("dev-{tag}");
    let port = port_on(
        &s,
        &c,
        PortCreate {
            mac_address: Some("fa:16:3e:12:34:56".into()),
            fixed_ips: Some(vec![FixedIpRequest::address(
                ip("10.1.0.50"),
                Some(subnet.id.clone()),
            )]),
            tags: Some(vec![format!("t-{tag}")]),
            ..kuryr_port(&net, &tag)
        },
    )
    .await;
    assert_eq!(port.network_id, net.id);
    assert_eq!(port.mac_address, "fa:16:3e:12:34:56");
    assert_eq!(port.fixed_ips.len(), 1);
    assert_eq!(port.fixed_ips[0].ip_address, ip("10.1.0.50"));
    assert_eq!(port.fixed_ips[0].subnet_id, subnet.id);
    assert_eq!(port.tags, [format!("t-{tag}")]);
    assert_eq!(port.status, "DOWN");
    assert_eq!(port.binding_vif_type, "unbound");
    assert_eq!(port.port_security_enabled, Some(true));
    assert_eq!(port.security_groups.len(), 1, "the default group");
    let other = port_on(
        &s,
        &c,
        PortCreate {
            fixed_ips: Some(vec![FixedIpRequest::subnet(&subnet.id)]),
            ..PortCreate::new(&net.id)
        },
    )
    .await;

    let one = |q: Query| {
        let n = s.neutron.clone();
        async move { ids(&ours(n.list_ports(&q).await.unwrap())) }
    };
    let just_port = BTreeSet::from([port.id.clone()]);
    let both = BTreeSet::from([port.id.clone(), other.id.clone()]);
    assert_eq!(
        one(Query::new().fixed_ip_address(ip("10.1.0.50"))).await.intersection(&both).count(),
        1
    );
    let on_net = || Query::new().network_id(&net.id);
    let filters = [
        (on_net().fixed_ip_address(ip("10.1.0.50")), &just_port),
        (Query::new().fixed_ip_subnet(&subnet.id), &both),
        (on_net().mac_address("fa:16:3e:12:34:56"), &just_port),
        (Query::new().device_id(&device_id), &just_port),
        (on_net().device_owner("compute:kuryr"), &just_port),
        (Query::new().name(format!("ostest-{tag}")), &just_port),
        (on_net(), &both),
    ];
    for (q, want) in filters {
        assert_eq!(&one(q.clone()).await, want, "{q:?}");
    }

    // fields= selection returns partial objects.
    let partial = s
        .neutron
        .list_ports(&Query::new().device_id(&device_id).fields(["id", "fixed_ips"]))
        .await
        .unwrap();
    assert_eq!(partial[0].id, port.id);
    assert_eq!(partial[0].fixed_ips, port.fixed_ips);
    assert_eq!(partial[0].mac_address, "", "not selected");
    let shown: Port = s
        .neutron
        .show(Resource::Ports, &port.id, &Query::new().fields(["id", "revision_number"]))
        .await
        .unwrap();
    assert_eq!(shown.revision_number, port.revision_number);
    assert!(shown.name.is_empty());

    // Updates, then If-Match on the revision.
    let updated = s
        .neutron
        .update_port(
            &port.id,
            &PortUpdate {
                name: Some(format!("ostest-{tag}-b")),
                allowed_address_pairs: Some(vec![AddressPair {
                    ip_address: "10.1.0.200".into(),
                    mac_address: None,
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, format!("ostest-{tag}-b"));
    assert_eq!(updated.allowed_address_pairs[0].ip_address, "10.1.0.200");
    assert_eq!(updated.allowed_address_pairs[0].mac_address.as_deref(), Some("fa:16:3e:12:34:56"));
    let rev = updated.revision_number.unwrap();
    assert!(rev > port.revision_number.unwrap());
    let pairs = |ip: &str| PortUpdate {
        allowed_address_pairs: Some(vec![AddressPair { ip_address: ip.into(), mac_address: None }]),
        ..Default::default()
    };
    let ok = s.neutron.update_port_if_revision(&port.id, &pairs("10.1.0.201"), rev).await.unwrap();
    assert_eq!(ok.allowed_address_pairs[0].ip_address, "10.1.0.201");
    let err =
        s.neutron.update_port_if_revision(&port.id, &pairs("10.1.0.202"), rev).await.unwrap_err();
    assert!(err.is_precondition_failed(), "{err}");
    assert_eq!(
        s.neutron.get_port(&port.id).await.unwrap().allowed_address_pairs[0].ip_address,
        "10.1.0.201",
        "a stale revision changes nothing"
    );

    s.neutron.delete_port(&port.id).await.unwrap();
    let err = s.neutron.get_port(&port.id).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("PortNotFound"));
    let err = s.neutron.delete_port(&port.id).await.unwrap_err();
    assert!(err.is_not_found());
}

#[tokio::test]
async fn duplicate_fixed_ip_is_a_conflict() {
    let (s, c, tag) = setup_or_skip!("duplicate_fixed_ip_is_a_conflict");
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.2.0.0/24").await;
    let body = PortCreate {
        fixed_ips: Some(vec![FixedIpRequest::address(ip("10.2.0.9"), Some(subnet.id.clone()))]),
        ..PortCreate::new(&net.id)
    };
    port_on(&s, &c, body.clone()).await;
    let err = s.neutron.create_port(&body).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.neutron_type(), Some("IpAddressAlreadyAllocated"));
    let api = err.api().unwrap();
    assert!(api.message.contains("10.2.0.9"), "{}", api.message);
    assert_eq!((api.method.as_str(), api.path.as_str()), ("POST", "/v2.0/ports"));
    assert!(api.request_id.is_some());
    assert_eq!(
        ours(s.neutron.list_ports(&Query::new().network_id(&net.id)).await.unwrap()).len(),
        1
    );
}

#[tokio::test]
async fn bulk_port_create_is_atomic() {
    let (s, c, tag) = setup_or_skip!("bulk_port_create_is_atomic");
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.3.0.0/24").await;
    let with_ip = |addr: &str, name: &str| PortCreate {
        name: Some(format!("ostest-{tag}-{name}")),
        fixed_ips: Some(vec![FixedIpRequest::address(ip(addr), Some(subnet.id.clone()))]),
        tags: Some(vec![format!("bulk-{tag}")]),
        ..PortCreate::new(&net.id)
    };
    let created = s
        .neutron
        .create_ports(&[with_ip("10.3.0.10", "a"), with_ip("10.3.0.11", "b")])
        .await
        .unwrap();
    for p in &created {
        c.neutron(Resource::Ports, &p.id);
    }
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|p| p.tags == [format!("bulk-{tag}")]));
    assert_eq!(created[1].fixed_ips[0].ip_address, ip("10.3.0.11"));

    // One conflicting port (10.3.0.10 is taken): nothing is created.
    let err = s
        .neutron
        .create_ports(&[with_ip("10.3.0.12", "c"), with_ip("10.3.0.10", "d")])
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.neutron_type(), Some("IpAddressAlreadyAllocated"));
    let left = ours(s.neutron.list_ports(&Query::new().network_id(&net.id)).await.unwrap());
    for p in &left {
        c.neutron(Resource::Ports, &p.id);
    }
    assert_eq!(ids(&left), ids(&created), "the failed bulk left nothing behind");
    assert!(s
        .neutron
        .list_ports(&Query::new().fixed_ip_address(ip("10.3.0.12")).network_id(&net.id))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn tags_and_tag_filters() {
    let (s, c, tag) = setup_or_skip!("tags_and_tag_filters");
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.4.0.0/24").await;
    let (a, b, k) = (format!("a-{tag}"), format!("b-{tag}"), format!("k-{tag}"));
    let p1 = port_on(&s, &c, PortCreate::new(&net.id)).await;
    let p2 = port_on(&s, &c, PortCreate::new(&net.id)).await;

    // `b` goes on twice: adding a tag a port has is no error.
    for (port, t) in [(&p1, &a), (&p1, &b), (&p1, &b), (&p2, &a)] {
        s.neutron.add_tag(Resource::Ports, &port.id, t).await.unwrap();
    }
    let mut t1 = s.neutron.get_tags(Resource::Ports, &p1.id).await.unwrap();
    t1.sort();
    assert_eq!(t1, [a.clone(), b.clone()]);

    let scope = || Query::new().network_id(&net.id);
    let q = |q: Query| {
        let n = s.neutron.clone();
        async move { ids(&ours(n.list_ports(&q).await.unwrap())) }
    };
    let only1 = BTreeSet::from([p1.id.clone()]);
    let only2 = BTreeSet::from([p2.id.clone()]);
    let both = BTreeSet::from([p1.id.clone(), p2.id.clone()]);
    assert_eq!(q(scope().tags([&a, &b])).await, only1);
    assert_eq!(q(scope().tags([&a])).await, both);
    assert_eq!(q(scope().tags_any([&b, &k])).await, only1);
    assert_eq!(q(scope().not_tags([&a, &b])).await, only2);
    assert_eq!(q(scope().not_tags_any([&b])).await, only2);
    assert_eq!(q(scope().not_tags_any([&a])).await, BTreeSet::new());

    let replaced = s.neutron.replace_tags(Resource::Ports, &p1.id, &[&k]).await.unwrap();
    assert_eq!(replaced, [k.as_str()]);
    assert_eq!(q(scope().tags([&k])).await, only1);
    s.neutron.remove_tag(Resource::Ports, &p1.id, &k).await.unwrap();
    let err = s.neutron.remove_tag(Resource::Ports, &p1.id, &k).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(s.neutron.get_tags(Resource::Ports, &p1.id).await.unwrap().is_empty());

    // Other resources: networks.
    s.neutron.replace_tags(Resource::Networks, &net.id, &[&a, &b]).await.unwrap();
    let tagged_both = Query::new().tags([&a, &b]);
    let nets = s.neutron.list_networks(&tagged_both).await.unwrap();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].id, net.id);
    s.neutron.remove_all_tags(Resource::Networks, &net.id).await.unwrap();
    assert!(s.neutron.get_network(&net.id).await.unwrap().tags.is_empty());
}

#[tokio::test]
async fn lists_follow_pages() {
    let (s, c, tag) = setup_or_skip!("lists_follow_pages");
    let (net, _) = network_with_subnet(&s, &c, &tag, "10.5.0.0/24").await;
    let bodies: Vec<PortCreate> = (0..5)
        .map(|_| PortCreate { tags: Some(vec![format!("page-{tag}")]), ..PortCreate::new(&net.id) })
        .collect();
    let created = s.neutron.create_ports(&bodies).await.unwrap();
    for p in &created {
        c.neutron(Resource::Ports, &p.id);
    }
    let before = s.neutron.calls();
    let listed =
        s.neutron.list_ports(&Query::new().tags([format!("page-{tag}")]).limit(2)).await.unwrap();
    let gets = s.neutron.calls().since(&before).get;
    assert_eq!(ids(&listed), ids(&created));
    assert_eq!(listed.len(), 5, "no duplicates across pages");
    assert!(gets >= 3, "5 items in pages of 2 need at least 3 GETs, saw {gets}");
}
