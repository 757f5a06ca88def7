//! A bound port goes ACTIVE once its device is plugged into the bridge;
//! what only one auth mode shows: noauth's project from the body,
//! Keystone's catalog, bad tokens and a member's limits.

use super::*;

// --------------------------------------------------- binding and ACTIVE

/// A veth whose host end is on the integration bridge with the port's
/// iface-id; registered for cleanup before each step so nothing leaks.
fn plug(c: &Cleanup, bridge: &str, tag: &str, port: &Port) -> Result<(), String> {
    let (ns, host, peer) = (format!("ostest-{tag}"), format!("ot{tag}"), format!("ot{tag}p"));
    c.add(Item::Netns(ns.clone()));
    sh("ip", &["netns", "add", &ns])?;
    c.add(Item::Link(host.clone()));
    sh("ip", &["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
    sh("ip", &["link", "set", &peer, "netns", &ns])?;
    sh("ip", &["-n", &ns, "link", "set", &peer, "address", &port.mac_address])?;
    sh("ip", &["-n", &ns, "link", "set", &peer, "up"])?;
    sh("ip", &["link", "set", &host, "up"])?;
    c.add(Item::OvsPort(bridge.to_owned(), host.clone()));
    sh(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "--",
            "--may-exist",
            "add-port",
            bridge,
            &host,
            "--",
            "set",
            "Interface",
            &host,
            &format!("external_ids:iface-id={}", port.id),
            &format!("external_ids:attached-mac={}", port.mac_address),
            "external_ids:iface-status=active",
            &format!("external_ids:vm-uuid={}", port.device_id),
        ],
    )
}

async fn wait_for_status(n: &Neutron, port_id: &str, want: &str) -> Port {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let port = n.get_port(port_id).await.unwrap();
        if port.status == want || Instant::now() > deadline {
            return port;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn bound_port_goes_active_when_plugged() {
    let (s, c, tag) = setup_or_skip!("bound_port_goes_active_when_plugged");
    let (net, subnet) = network_with_subnet(&s, &c, &tag, "10.9.0.0/24").await;
    let port = port_on(
        &s,
        &c,
        PortCreate {
            binding_host_id: Some(s.host.clone()),
            fixed_ips: Some(vec![FixedIpRequest::subnet(&subnet.id)]),
            ..kuryr_port(&net, &tag)
        },
    )
    .await;
    assert_eq!(port.binding_host_id, s.host);
    assert_eq!(port.binding_vif_type, "ovs", "ML2/OVN bound the port");
    assert_eq!(port.binding_vif_details["bridge_name"], s.bridge.as_str());
    assert_eq!(port.status, "DOWN");
    assert_eq!(
        s.neutron
            .list_ports(&Query::new().binding_host_id(&s.host).device_id(format!("dev-{tag}")))
            .await
            .unwrap()
            .len(),
        1
    );

    plug(&c, &s.bridge, &tag, &port).unwrap();
    let active = wait_for_status(&s.neutron, &port.id, "ACTIVE").await;
    assert_eq!(active.status, "ACTIVE", "the plugged port becomes ACTIVE");

    // Unplugging takes it down again.
    sh("ovs-vsctl", &["--timeout=10", "--if-exists", "del-port", &s.bridge, &format!("ot{tag}")])
        .unwrap();
    let down = wait_for_status(&s.neutron, &port.id, "DOWN").await;
    assert_eq!(down.status, "DOWN");
}

// ---------------------------------------------------------- mode-specific

#[tokio::test]
async fn noauth_takes_the_project_from_the_body() {
    let s = stack_or_skip!("noauth_takes_the_project_from_the_body");
    if !only_in("noauth_takes_the_project_from_the_body", &s, Mode::NoAuth) {
        return;
    }
    assert_eq!(s.opts.effective_auth_type(), AuthType::NoAuth);
    let c = Cleanup::new(&s);
    let tag = suffix();
    c.add(Item::ProjectSecurityGroups(format!("proj{tag}")));
    let body =
        NetworkCreate { project_id: Some(format!("proj{tag}").into()), ..named_network(&tag) };
    let net = create_network(&s, &c, body).await;
    assert_eq!(net.project_id, Some(format!("proj{tag}").into()));
    assert_eq!(s.neutron.calls().auth, 0, "no Keystone in noauth mode");
}

#[tokio::test]
async fn keystone_password_auth_uses_the_catalog() {
    let s = stack_or_skip!("keystone_password_auth_uses_the_catalog");
    if !only_in("keystone_password_auth_uses_the_catalog", &s, Mode::Keystone) {
        return;
    }
    let opts = AuthOptions { endpoint: None, ..s.opts.clone() };
    let client = Client::new(opts).unwrap();
    let endpoint = client.endpoint().await.unwrap();
    assert!(endpoint.as_str().contains(":9696"), "{endpoint}");
    let neutron = Neutron::from_client(client);
    neutron.list_networks(&Query::new().limit(1)).await.unwrap();
    neutron.list_networks(&Query::new().limit(1)).await.unwrap();
    assert_eq!(neutron.calls().auth, 1, "the token is cached");
}

#[tokio::test]
async fn keystone_bad_token_is_unauthorized() {
    let s = stack_or_skip!("keystone_bad_token_is_unauthorized");
    if !only_in("keystone_bad_token_is_unauthorized", &s, Mode::Keystone) {
        return;
    }
    let endpoint = s.neutron.client().endpoint().await.unwrap();
    let bogus = Neutron::new(AuthOptions {
        auth_type: Some(AuthType::Token),
        token: Some("not-a-real-token".into()),
        endpoint: Some(endpoint.to_string()),
        ..Default::default()
    })
    .unwrap();
    let err = bogus.list_networks(&Query::new()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");

    let wrong_password =
        Neutron::new(AuthOptions { password: Some("definitely-wrong".into()), ..s.opts.clone() })
            .unwrap();
    let err = wrong_password.list_networks(&Query::new()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(err.api().unwrap().path, "/v3/auth/tokens");
    assert!(!err.to_string().contains("definitely-wrong"));
}

#[tokio::test]
async fn keystone_member_cannot_bind_ports() {
    let s = stack_or_skip!("keystone_member_cannot_bind_ports");
    if !only_in("keystone_member_cannot_bind_ports", &s, Mode::Keystone) {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set in keystone mode"));
    let member_opts = AuthOptions {
        username: Some(env("KURYR_STACK_DEMO_USER")),
        password: Some(env("KURYR_STACK_DEMO_PASSWORD").into()),
        project_name: Some(env("KURYR_STACK_DEMO_PROJECT")),
        user_id: None,
        project_id: None,
        ..s.opts.clone()
    };
    let member = Neutron::new(member_opts.clone()).unwrap();
    let member_stack = Stack {
        mode: s.mode,
        opts: member_opts,
        neutron: member.clone(),
        host: s.host.clone(),
        bridge: s.bridge.clone(),
    };
    let c = Cleanup::new(&member_stack);
    let tag = suffix();
    let (net, _) = network_with_subnet(&member_stack, &c, &tag, "10.10.0.0/24").await;
    let err = member
        .create_port(&PortCreate {
            binding_host_id: Some(s.host.clone()),
            ..PortCreate::new(&net.id)
        })
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    let port = port_on(&member_stack, &c, PortCreate::new(&net.id)).await;
    assert_eq!(port.binding_host_id, "", "members do not see binding:* fields");
}
