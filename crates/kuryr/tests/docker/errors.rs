//! Bad input: network options and raw requests on the socket get
//! Docker's error shape and leave nothing behind.

use super::*;

// ------------------------------------------------------------- bad input

/// Asserts Docker's `{"Err": "..."}` shape: one non-empty string field.
fn assert_err_shape(status: u16, body: &str, want_status: u16) -> String {
    assert_eq!(status, want_status, "status of {body}");
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    let obj = value.as_object().expect("an object");
    assert_eq!(obj.len(), 1, "only Err: {body}");
    let err = obj["Err"].as_str().expect("Err is a string").to_string();
    assert!(!err.is_empty());
    err
}

/// Unknown `-o neutron.*` option and a nonexistent `neutron.net.name`: a
/// clear message from `docker network create`, and nothing left behind.
#[test]
fn bad_network_options_give_clear_errors_and_leave_nothing() {
    let f = fixture_or_skip!("bad_network_options_give_clear_errors_and_leave_nothing");
    let s = &f.stack;
    let (_, cidr) = f.fresh_cidr();

    let n1 = f.name("n1");
    let err = f.create_network_fails(&n1, &["--subnet", &cidr, "-o", "neutron.foo=bar"]);
    eprintln!("unknown option: {err}");
    assert!(err.contains("neutron.foo"), "names the option: {err}");
    let missing = format!("{}-nonexistent", f.driver());
    let n2 = f.name("n2");
    let err = f.create_network_fails(
        &n2,
        &[
            "--subnet",
            &cidr,
            "-o",
            &format!("neutron.net.name={missing}"),
        ],
    );
    eprintln!("nonexistent network: {err}");
    assert!(
        err.contains(&missing) && err.contains("no Neutron network"),
        "names the network: {err}"
    );
    for n in [&n1, &n2] {
        assert!(
            run("docker", &["network", "inspect", n]).status.code() != Some(0),
            "Docker network {n} must not exist"
        );
    }
    assert!(s.kuryr_pools(&cidr).is_empty(), "no subnetpool left");
    assert!(s.subnets_with_cidr(&cidr).is_empty(), "no subnet left");
    // Nothing half-made for a Docker network that never was.
    let calls = f.kuryr.neutron_calls_since(0);
    assert!(
        !calls.iter().any(|c| c == "POST /v2.0/networks"),
        "no network created: {calls:#?}"
    );

    // A user's subnet named without its network: refused, and neither the
    // subnet nor its network is renamed, tagged or deleted.
    let cidr2 = format!("{}.0/24", fresh_v4());
    f.uses_cidr(&cidr2);
    let user_net = s
        .block_on(s.neutron.create_network(&NetworkCreate {
            name: Some(format!("{}-user", f.driver())),
            ..NetworkCreate::default()
        }))
        .expect("creating the user's network");
    f.made(Resource::Networks, &user_net.id);
    let user_subnet = s
        .block_on(s.neutron.create_subnet(&SubnetCreate {
            name: Some(format!("{}-user-subnet", f.driver())),
            ..SubnetCreate::new(user_net.id.clone(), cidr2.clone())
        }))
        .expect("creating the user's subnet");
    let n3 = f.name("n3");
    let err = f.create_network_fails(
        &n3,
        &[
            "--subnet",
            &cidr2,
            "--ipam-opt",
            &format!("neutron.subnet.uuid={}", user_subnet.id),
        ],
    );
    eprintln!("subnet without its network: {err}");
    assert!(
        err.contains(&format!("-o neutron.net.uuid={}", user_net.id)),
        "says how: {err}"
    );
    let net_after = s.network(&user_net.id).expect("the user's network stays");
    assert_eq!(net_after.name, user_net.name);
    assert!(net_after.tags.is_empty(), "untagged: {:?}", net_after.tags);
    let subnet_after = s.subnet(&user_subnet.id).expect("the user's subnet stays");
    assert_eq!(subnet_after.name, user_subnet.name);
    assert!(
        subnet_after.tags.is_empty(),
        "untagged: {:?}",
        subnet_after.tags
    );
    let made: Vec<String> = f
        .kuryr
        .neutron_calls_since(0)
        .into_iter()
        .filter(|c| c.starts_with("POST /v2.0/networks") || c.starts_with("DELETE /v2.0/networks/"))
        .collect();
    assert!(
        made.len().is_multiple_of(2),
        "every network made is deleted again: {made:#?}"
    );
    assert!(run("docker", &["network", "inspect", &n3]).status.code() != Some(0));
}

/// Malformed JSON, wrong field types, foreign pool ids and unknown calls,
/// sent straight to the socket: the right status, `{"Err": ...}`, and no
/// Neutron object made.
#[test]
fn bad_requests_on_the_socket_get_docker_errors() {
    let f = fixture_or_skip!("bad_requests_on_the_socket_get_docker_errors");
    let k = &f.kuryr;
    let net_id = hex(64);
    let before = k.log_len();

    let (status, body) = k.post("/NetworkDriver.CreateNetwork", b"{\"NetworkID\": ");
    let err = assert_err_shape(status, &body, 400);
    eprintln!("malformed JSON: {err}");

    let wrong = json!({"NetworkID": 12, "Options": {}, "IPv4Data": [], "IPv6Data": []});
    let (status, body) = k.post("/NetworkDriver.CreateNetwork", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("NetworkID"), "names the field: {err}");

    let wrong = json!({"NetworkID": net_id, "Options": {}, "IPv4Data": "10.0.0.0/24"});
    let (status, body) = k.post("/NetworkDriver.CreateNetwork", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("IPv4Data"), "names the field: {err}");

    let wrong = json!({"AddressSpace": "no_address_space", "Pool": "not-a-cidr", "Options": {}, "V6": false});
    let (status, body) = k.post("/IpamDriver.RequestPool", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("Pool"), "names the field: {err}");

    let wrong = json!({"PoolID": "somebody-elses-pool", "Address": "", "Options": {}});
    let (status, body) = k.post("/IpamDriver.RequestAddress", wrong.to_string().as_bytes());
    let err = assert_err_shape(status, &body, 400);
    assert!(err.contains("somebody-elses-pool"), "{err}");

    let (status, body) = k.post("/NetworkDriver.CreateNetwork", b"");
    assert_err_shape(status, &body, 400);

    let (status, body) = k.post("/NetworkDriver.NoSuchCall", b"{}");
    assert_err_shape(status, &body, 404);

    // Neutron was not asked to make anything.
    let calls = k.neutron_calls_since(before);
    assert!(
        calls.iter().all(|c| c.starts_with("GET ")),
        "bad input made Neutron calls: {calls:#?}"
    );
    assert!(f.stack.networks_of_docker(&net_id).is_empty());
}
