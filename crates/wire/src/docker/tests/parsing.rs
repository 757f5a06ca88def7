//! Generous parsing of Docker-shaped bodies: what Docker and other
//! clients send, beyond the captures.

use super::*;

// ---------- generous parsing of Docker-shaped bodies ----------

#[test]
fn create_network_with_driver_options_ipv6_and_aux_addresses() {
    let body = json!({
        "NetworkID": NET,
        "Options": {
            "com.docker.network.enable_ipv6": true,
            "com.docker.network.generic": {"neutron.net.uuid": "4f6b4c5e", "mtu": "1400"},
            "com.docker.network.enable_ipv4": true
        },
        "IPv4Data": [{"AddressSpace": "no_address_space", "Gateway": "10.10.0.1/24",
                      "Pool": "10.10.0.0/24", "AuxAddresses": {"router": "10.10.0.2/24"}}],
        "IPv6Data": [{"AddressSpace": "no_address_space", "Gateway": "fd00::1/64", "Pool": "fd00::/64"}]
    })
    .to_string();
    let Request::CreateNetwork(req) = parse_ok(PluginCall::CreateNetwork, &body) else { panic!() };
    assert!(req.options.enable_ipv6());
    assert_eq!(req.options.generic_option("neutron.net.uuid"), Some("4f6b4c5e"));
    assert_eq!(req.options.generic_option("mtu"), Some("1400"));
    assert_eq!(req.options.generic_option("absent"), None);
    assert_eq!(req.options.other.get("com.docker.network.enable_ipv4"), Some(&Value::Bool(true)));
    assert_eq!(req.ipv4_data[0].aux_addresses.get("router"), Some(&net("10.10.0.2/24")));
    assert_eq!(req.ipv6_data[0].gateway, Some(net("fd00::1/64")));
}

#[test]
fn create_network_accepts_nulls_and_missing_optional_fields() {
    for body in [
        format!(r#"{{"NetworkID":"{NET}","Options":null,"IPv4Data":null,"IPv6Data":null}}"#),
        format!(r#"{{"NetworkID":"{NET}"}}"#),
        format!(
            r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.generic":null}},"IPv4Data":[{{"AddressSpace":"x"}}]}}"#
        ),
    ] {
        let Request::CreateNetwork(req) = parse_ok(PluginCall::CreateNetwork, &body) else {
            panic!()
        };
        assert!(!req.options.enable_ipv6());
        assert!(req.options.generic().is_empty());
        assert!(req.ipv6_data.is_empty());
    }
}

#[test]
fn enable_ipv6_is_read_leniently() {
    for (v, want) in [("\"true\"", true), ("\"False\"", false), ("null", false)] {
        let body = format!(
            r#"{{"NetworkID":"{NET}","Options":{{"com.docker.network.enable_ipv6":{v}}}}}"#
        );
        let Request::CreateNetwork(req) = parse_ok(PluginCall::CreateNetwork, &body) else {
            panic!()
        };
        assert_eq!(req.options.enable_ipv6(), want, "{v}");
    }
}

#[test]
fn create_endpoint_with_ports_and_base64_mac() {
    // What dockerd sends for `docker run --mac-address 02:42:0f:c7:0d:28 -p 8080:80 --expose 53/udp`.
    let body = json!({
        "NetworkID": NET, "EndpointID": EP,
        "Interface": {"Address": "10.98.1.2/24", "AddressIPv6": "fd00::2/64", "MacAddress": "02:42:0f:c7:0d:28"},
        "Options": {
            "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}, {"Proto": 17, "Port": 53}],
            "com.docker.network.portmap": [{"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080}],
            "com.docker.network.endpoint.macaddress": "AkIPxw0o",
            "com.docker.network.endpoint.ifname": "eth7"
        }
    })
    .to_string() + "\n";
    let Request::CreateEndpoint(req) = parse_ok(PluginCall::CreateEndpoint, &body) else {
        panic!()
    };
    assert_eq!(req.interface.address_ipv6, Some(net("fd00::2/64")));
    assert_eq!(req.options.mac_address(), Some(&mac("02:42:0f:c7:0d:28")));
    assert_eq!(req.options.mac_address().unwrap().to_string(), "02:42:0f:c7:0d:28");
    assert_eq!(
        req.options.exposed_ports(),
        &[
            TransportPort { proto: Protocol::TCP, port: 80 },
            TransportPort { proto: Protocol::UDP, port: 53 }
        ]
    );
    let pb = &req.options.port_map()[0];
    assert_eq!(pb.proto.name(), Some("tcp"));
    assert_eq!((pb.ip, pb.port, pb.host_ip), (None, 80, None));
    assert_eq!((pb.host_port, pb.host_port_end), (8080, 8080));
    assert_eq!(req.options.other.get("com.docker.network.endpoint.ifname"), Some(&json!("eth7")));
    // Re-encoding keeps Docker's base64 form.
    let back = serde_json::to_value(&req).unwrap();
    assert_eq!(back["Options"]["com.docker.network.endpoint.macaddress"], "AkIPxw0o");
}

#[test]
fn create_endpoint_accepts_null_interface_and_options() {
    let body =
        format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Interface":null,"Options":null}}"#);
    let Request::CreateEndpoint(req) = parse_ok(PluginCall::CreateEndpoint, &body) else {
        panic!()
    };
    assert!(req.interface.is_empty());
    assert_eq!(req.options, EndpointOptions::default());
    let body = format!(
        r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","Options":{{"com.docker.network.endpoint.exposedports":null,"com.docker.network.portmap":null}}}}"#
    );
    let Request::CreateEndpoint(req) = parse_ok(PluginCall::CreateEndpoint, &body) else {
        panic!()
    };
    assert!(req.options.exposed_ports().is_empty());
}

#[test]
fn program_external_connectivity_ports_and_unknown_keys() {
    let body = json!({
        "NetworkID": NET, "EndpointID": EP,
        "Options": {
            "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 443}],
            "com.docker.network.portmap": [{"Proto": 17, "IP": "10.0.0.2", "Port": 53, "HostIP": "127.0.0.1", "HostPort": 5353, "HostPortEnd": 5360}],
            "com.docker.network.driver.private.no_proxy_6to4": true
        }
    })
    .to_string();
    let Request::ProgramExternalConnectivity(req) =
        parse_ok(PluginCall::ProgramExternalConnectivity, &body)
    else {
        panic!()
    };
    let pb = &req.options.port_map()[0];
    assert_eq!(pb.proto, Protocol::UDP);
    assert_eq!(pb.ip, Some(ip("10.0.0.2")));
    assert_eq!(pb.host_ip, Some(ip("127.0.0.1")));
    assert_eq!(pb.host_port_end, 5360);
    assert_eq!(
        req.options.other["com.docker.network.driver.private.no_proxy_6to4"],
        Value::Bool(true)
    );
}

#[test]
fn protocol_accepts_names_and_numbers() {
    let ports: Vec<TransportPort> =
        serde_json::from_str(r#"[{"Proto":"tcp","Port":1},{"Proto":"UDP","Port":2},{"Proto":132,"Port":3},{"Proto":99,"Port":4}]"#)
            .unwrap();
    assert_eq!(ports[0].proto, Protocol::TCP);
    assert_eq!(ports[1].proto, Protocol::UDP);
    assert_eq!(ports[2].proto.to_string(), "sctp");
    assert_eq!(ports[3].proto.to_string(), "99");
    assert_eq!(ports[3].proto.name(), None);
    assert_eq!(serde_json::to_string(&ports[0]).unwrap(), r#"{"Proto":6,"Port":1}"#);
}

#[test]
fn ipam_requests_with_nulls_and_addresses() {
    let Request::RequestPool(req) = parse_ok(
        PluginCall::RequestPool,
        r#"{"AddressSpace":"no_address_space","Pool":"10.10.0.0/16","SubPool":"10.10.1.0/24","Options":null,"V6":false}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.pool, Some(net("10.10.0.0/16")));
    assert_eq!(req.sub_pool, Some(net("10.10.1.0/24")));
    let Request::RequestPool(req) = parse_ok(
        PluginCall::RequestPool,
        r#"{"AddressSpace":"x","Pool":"fd00::/64","Options":{"custom":"1"},"V6":true}"#,
    ) else {
        panic!()
    };
    assert!(req.v6);
    assert_eq!(req.options["custom"], "1");

    let Request::RequestAddress(req) = parse_ok(
        PluginCall::RequestAddress,
        r#"{"PoolID":"p","Address":"10.10.1.7","Options":null}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.address, Some(ip("10.10.1.7")));
    assert!(!req.is_gateway_request());
    assert_eq!(req.options.mac_address(), None);

    let Request::RequestAddress(req) = parse_ok(
        PluginCall::RequestAddress,
        r#"{"PoolID":"p","Address":"fd00::1","Options":{"RequestAddressType":"com.docker.network.gateway","other":"x"}}"#,
    ) else {
        panic!()
    };
    assert!(req.is_gateway_request());
    assert_eq!(req.options.other["other"], "x");

    let Request::ReleaseAddress(req) =
        parse_ok(PluginCall::ReleaseAddress, r#"{"PoolID":"p","Address":"fd00::1"}"#)
    else {
        panic!()
    };
    assert_eq!(req.address, Some(ip("fd00::1")));
    let Request::ReleasePool(req) = parse_ok(PluginCall::ReleasePool, r#"{"PoolID":"p"}"#) else {
        panic!()
    };
    assert_eq!(req.pool_id, "p");
}

#[test]
fn swarm_only_calls_parse() {
    let Request::AllocateNetwork(req) = parse_ok(
        PluginCall::AllocateNetwork,
        &format!(
            r#"{{"NetworkID":"{NET}","Options":{{"a":"b"}},"IPv4Data":[{{"AddressSpace":"g","Pool":"10.0.0.0/24","Gateway":"10.0.0.1/24"}}],"IPv6Data":null}}"#
        ),
    ) else {
        panic!()
    };
    assert_eq!(req.options["a"], "b");
    assert!(matches!(
        parse_ok(PluginCall::FreeNetwork, &format!(r#"{{"NetworkID":"{NET}"}}"#)),
        Request::FreeNetwork(_)
    ));
    let Request::DiscoverNew(req) = parse_ok(
        PluginCall::DiscoverNew,
        r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.10","BindAddress":"0.0.0.0","Self":true}}"#,
    ) else {
        panic!()
    };
    assert_eq!(req.discovery_type, NODE_DISCOVERY);
    assert_eq!(req.discovery_data.address, "192.0.2.10");
    assert!(req.discovery_data.is_self);
    assert!(matches!(
        parse_ok(PluginCall::DiscoverDelete, r#"{"DiscoveryType":1,"DiscoveryData":null}"#),
        Request::DiscoverDelete(_)
    ));
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let body = format!(
        r#"{{"NetworkID":"{NET}","EndpointID":"{EP}","SandboxKey":"/x","Options":{{}},"Future":[1]}}"#
    );
    assert!(matches!(parse_ok(PluginCall::Join, &body), Request::Join(_)));
}
