//! Neutron's side through a mock: errors mapped to typed errors, which
//! calls are retried (idempotent ones on 5xx and timeouts, any on a
//! refused connection), and reply shapes (paged lists, fields and filters,
//! string prefixlens, unwrapped subport replies, bulk create, tags, raw
//! calls).

use super::*;

/// The error of a port create that must fail.
async fn failed_port_create(neutron: &Neutron) -> Error {
    neutron.create_port(&PortCreate::new("n")).await.unwrap_err()
}

// ---------------------------------------------------------- error mapping

#[tokio::test]
async fn neutron_errors_are_mapped() {
    let allocated = neutron_error(
        409,
        "IpAddressAlreadyAllocated",
        "IP address 10.0.0.5 already allocated in subnet s1",
    )
    .insert_header("x-openstack-request-id", "req-abc");
    let missing = neutron_error(404, "PortNotFound", "Port missing could not be found.");
    let server = serve([
        on("POST", "/v2.0/ports").respond_with(allocated),
        on("GET", "/v2.0/ports/missing").respond_with(missing),
    ])
    .await;
    let neutron = noauth(&server);
    let err = failed_port_create(&neutron).await;
    assert!(err.is_conflict());
    assert_eq!(err.neutron_type(), Some("IpAddressAlreadyAllocated"));
    assert_eq!(err.request_id(), Some("req-abc"));
    let api = err.api().unwrap();
    assert_eq!((api.method.as_str(), api.path.as_str()), ("POST", "/v2.0/ports"));

    let err = neutron.get_port("missing").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.neutron_type(), Some("PortNotFound"));
    assert_eq!(neutron.calls().get, 1, "a 404 is not retried");
}

#[tokio::test]
async fn bad_json_in_a_success_reply_is_a_decode_error() {
    let server = serve([on("GET", "/v2.0/ports/p")
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))])
    .await;
    let err = noauth(&server).get_port("p").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
}

// ----------------------------------------------------------------- retries

#[tokio::test]
async fn idempotent_requests_are_retried_on_5xx() {
    // Each call first meets `failures` server errors, then the success.
    let flaky = |verb, url_path, failures, error, success| {
        [
            on(verb, url_path)
                .respond_with(ResponseTemplate::new(error))
                .up_to_n_times(failures)
                .with_priority(1),
            on(verb, url_path).respond_with(success).with_priority(2),
        ]
    };
    let [a, b] = flaky("GET", "/v2.0/networks", 2, 503, networks_reply());
    let [c, d] = flaky("DELETE", "/v2.0/ports/p", 1, 502, ResponseTemplate::new(204));
    let server = serve([a, b, c, d]).await;
    let neutron = noauth(&server);
    assert_eq!(neutron.list_networks(&Query::new()).await.unwrap().len(), 1);
    neutron.delete_port("p").await.unwrap();
    let calls = neutron.calls();
    assert_eq!((calls.get, calls.delete), (3, 2));
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = serve([on("PUT", "/v2.0/ports/p")
        .respond_with(neutron_error(500, "DBError", "database is locked"))
        .expect(3)])
    .await;
    let err = noauth(&server).update_port("p", &PortUpdate::default()).await.unwrap_err();
    assert!(err.is_server_error());
    assert_eq!(err.neutron_type(), Some("DBError"));
}

#[tokio::test]
async fn post_is_not_retried_on_5xx() {
    let server =
        serve([on("POST", "/v2.0/ports").respond_with(ResponseTemplate::new(503)).expect(1)]).await;
    let neutron = noauth(&server);
    let err = failed_port_create(&neutron).await;
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(neutron.calls().post, 1);
}

#[tokio::test]
async fn post_is_not_retried_on_timeout_but_get_is() {
    let slow = json_reply(200, json!({"port": {"id": "p"}})).set_delay(Duration::from_secs(2));
    let server = serve([
        on("POST", "/v2.0/ports").respond_with(slow.clone()),
        on("GET", "/v2.0/ports/p").respond_with(slow),
    ])
    .await;
    let opts = AuthOptions {
        timeout: Some(Duration::from_millis(150)),
        ..AuthOptions::noauth(server.uri())
    };
    let neutron = fast_neutron(opts);
    let err = failed_port_create(&neutron).await;
    assert!(err.is_timeout(), "{err}");
    assert_eq!(count(&server, "/v2.0/ports").await, 1, "a POST that may have landed is not resent");
    let err = neutron.get_port("p").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(count(&server, "/v2.0/ports/p").await, 3);
}

#[tokio::test]
async fn connection_refused_is_retried_even_for_post() {
    // Bind then drop a listener to get a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let neutron = fast_neutron(AuthOptions::noauth(format!("http://{addr}")));
    let err = failed_port_create(&neutron).await;
    assert!(err.is_connect(), "{err}");
    assert_eq!(neutron.calls().post, 3, "never sent, so safe to resend");
    let err = neutron.get_port("p").await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(neutron.calls().get, 3);
}

// ------------------------------------------------------- Neutron shapes

#[tokio::test]
async fn lists_follow_next_links() {
    let server = MockServer::start().await;
    let uri = server.uri();
    let last_page = json!({
        "ports": [{"id": "p3"}],
        "ports_links": [{"rel": "previous", "href": format!("{uri}/v2.0/ports?limit=2&marker=p3&page_reverse=True")}]
    });
    let first_page = json!({
        "ports": [{"id": "p1"}, {"id": "p2"}],
        "ports_links": [{"rel": "next", "href": format!("{uri}/v2.0/ports?limit=2&tags=a%2Cb&marker=p2")}]
    });
    mount_all(
        &server,
        [
            on("GET", "/v2.0/ports")
                .and(query_param("marker", "p2"))
                .respond_with(json_reply(200, last_page))
                .with_priority(1),
            on("GET", "/v2.0/ports")
                .and(query_param("limit", "2"))
                .and(query_param("tags", "a,b"))
                .respond_with(json_reply(200, first_page))
                .with_priority(2),
        ],
    )
    .await;
    let neutron = noauth(&server);
    let ports = neutron.list_ports(&Query::new().tags(["a", "b"]).limit(2)).await.unwrap();
    let ids: Vec<_> = ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2", "p3"]);
    assert_eq!(neutron.calls().get, 2);
    let second = &requests(&server).await[1];
    assert_eq!(second.url.query(), Some("limit=2&tags=a%2Cb&marker=p2"));
}

#[tokio::test]
async fn fields_and_filters_reach_the_server() {
    let server =
        serve([on("GET", "/v2.0/ports")
            .respond_with(json_reply(200, json!({"ports": [{"id": "p1"}]})))])
        .await;
    let neutron = noauth(&server);
    let q = Query::new()
        .fields(["id", "fixed_ips"])
        .fixed_ip_address("10.0.0.5".parse().unwrap())
        .binding_host_id("vm")
        .not_tags(["x"]);
    let ports = neutron.list_ports(&q).await.unwrap();
    assert!(ports[0].fixed_ips.is_empty());
    assert_eq!(
        requests(&server).await[0].url.query(),
        Some("fields=id&fields=fixed_ips&fixed_ips=ip_address%3D10.0.0.5&binding%3Ahost_id=vm&not-tags=x")
    );
}

#[tokio::test]
async fn subnetpool_prefixlens_may_be_strings() {
    let pools = json!({"subnetpools": [
        {"id": "a", "name": "kuryr", "prefixes": ["10.10.0.0/16"], "default_prefixlen": "24",
         "min_prefixlen": "8", "max_prefixlen": "32", "ip_version": 4, "default_quota": null},
        {"id": "b", "name": "n", "prefixes": ["fd10::/48"], "default_prefixlen": 64,
         "min_prefixlen": 64, "max_prefixlen": 128, "ip_version": 6}
    ]});
    let server = serve([on("GET", "/v2.0/subnetpools").respond_with(json_reply(200, pools))]).await;
    let pools = noauth(&server).list_subnetpools(&Query::new()).await.unwrap();
    assert_eq!(pools[0].default_prefixlen, Some(24));
    assert_eq!(pools[1].max_prefixlen, Some(128));
}

#[tokio::test]
async fn trunk_subport_calls_take_unwrapped_replies() {
    let subport = json!({"port_id": "sp1", "segmentation_type": "vlan", "segmentation_id": 100});
    let trunk = json!({"id": "t1", "port_id": "parent", "status": "DOWN", "sub_ports": [subport]});
    let listed = json!({"sub_ports": [
        {"port_id": "sp1", "segmentation_type": "vlan", "segmentation_id": 100, "mac_address": "fa:16:3e:00:00:01"}]});
    let server = serve([
        on("PUT", "/v2.0/trunks/t1/add_subports")
            .and(body_json(json!({"sub_ports": [subport]})))
            .respond_with(json_reply(200, trunk)),
        on("PUT", "/v2.0/trunks/t1/remove_subports")
            .and(body_json(json!({"sub_ports": [{"port_id": "sp1"}]})))
            .respond_with(json_reply(200, json!({"trunk": {"id": "t1", "sub_ports": []}}))),
        on("GET", "/v2.0/trunks/t1/get_subports").respond_with(json_reply(200, listed)),
    ])
    .await;
    let neutron = noauth(&server);
    let t = neutron.add_subports("t1", &[SubPort::vlan("sp1", 100)]).await.unwrap();
    assert_eq!(t.sub_ports[0].segmentation_id, Some(100));
    let subs = neutron.get_subports("t1").await.unwrap();
    assert_eq!(subs[0].mac_address.as_deref(), Some("fa:16:3e:00:00:01"));
    let t = neutron.remove_subports("t1", &["sp1"]).await.unwrap();
    assert_eq!(t.id, "t1", "a wrapped reply is accepted too");
    assert!(t.sub_ports.is_empty());
}

#[tokio::test]
async fn bulk_create_and_if_match() {
    let sent =
        json!({"ports": [{"network_id": "n", "name": "a"}, {"network_id": "n", "name": "b"}]});
    let created = json!({"ports": [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]});
    let stale = neutron_error(
        412,
        "RevisionNumberConstraintFailed",
        "Constrained to 4, but current revision is 5",
    );
    let server = serve([
        on("POST", "/v2.0/ports")
            .and(body_json(sent))
            .respond_with(json_reply(201, created))
            .expect(1),
        on("PUT", "/v2.0/ports/1")
            .and(header("if-match", "revision_number=4"))
            .respond_with(stale)
            .expect(1),
    ])
    .await;
    let neutron = noauth(&server);
    let bodies: Vec<PortCreate> = ["a", "b"]
        .iter()
        .map(|n| PortCreate { name: Some(n.to_string()), ..PortCreate::new("n") })
        .collect();
    let ports = neutron.create_ports(&bodies).await.unwrap();
    assert_eq!(ports.len(), 2);
    assert!(neutron.create_ports(&[]).await.unwrap().is_empty());
    let err = neutron.update_port_if_revision("1", &PortUpdate::default(), 4).await.unwrap_err();
    assert!(err.is_precondition_failed());
    assert_eq!(err.neutron_type(), Some("RevisionNumberConstraintFailed"));
    assert_eq!(neutron.calls().post, 1, "an empty bulk sends nothing");
}

#[tokio::test]
async fn tag_calls() {
    let server = serve([
        on("PUT", "/v2.0/networks/n1/tags/a%20b%2Fc")
            .respond_with(ResponseTemplate::new(201).set_body_string("null"))
            .expect(1),
        on("PUT", "/v2.0/ports/p1/tags")
            .and(body_json(json!({"tags": ["x", "y"]})))
            .respond_with(json_reply(200, json!({"tags": ["x", "y"]})))
            .expect(1),
        on("DELETE", "/v2.0/security-groups/sg/tags/x")
            .respond_with(ResponseTemplate::new(204))
            .expect(1),
    ])
    .await;
    let neutron = noauth(&server);
    neutron.add_tag(Resource::Networks, "n1", "a b/c").await.unwrap();
    assert_eq!(neutron.replace_tags(Resource::Ports, "p1", &["x", "y"]).await.unwrap(), ["x", "y"]);
    neutron.remove_tag(Resource::SecurityGroups, "sg", "x").await.unwrap();
}

#[tokio::test]
async fn list_with_security_group_key() {
    let groups = json!({"security_groups": [
        {"id": "sg", "name": "default", "security_group_rules": [
            {"id": "r", "direction": "egress", "ethertype": "IPv4", "protocol": null,
             "port_range_min": null, "remote_ip_prefix": null}]}]});
    let server =
        serve([on("GET", "/v2.0/security-groups").respond_with(json_reply(200, groups))]).await;
    let groups = noauth(&server).list_security_groups(&Query::new()).await.unwrap();
    assert_eq!(groups[0].security_group_rules[0].direction, "egress");
}

#[tokio::test]
async fn raw_requests_for_uncovered_calls() {
    let server =
        serve([on("GET", "/v2.0/routers").respond_with(json_reply(200, json!({"routers": []})))])
            .await;
    let neutron = noauth(&server);
    let v: Value = neutron
        .client()
        .send_json(&openstack::ApiRequest::new(openstack::Method::GET, "/v2.0/routers"))
        .await
        .unwrap();
    assert_eq!(v, json!({"routers": []}));
}
