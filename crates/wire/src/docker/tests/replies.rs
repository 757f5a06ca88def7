//! Replies carry only what is set; MAC addresses in every accepted form.

use super::*;

// ---------- replies: only what is set ----------

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn replies_carry_only_the_fields_set() {
    assert_eq!(to_json(&EmptyResponse {}), "{}");
    assert_eq!(
        to_json(&ActivateResponse::kuryr()),
        r#"{"Implements":["NetworkDriver","IpamDriver"]}"#
    );
    assert_eq!(to_json(&ErrorResponse { err: "boom".into() }), r#"{"Err":"boom"}"#);
    assert_eq!(to_json(&NetworkCapabilities::default()), r#"{"Scope":"local"}"#);
    assert_eq!(
        to_json(&NetworkCapabilities {
            scope: Scope::Global,
            connectivity_scope: Some(Scope::Local)
        }),
        r#"{"Scope":"global","ConnectivityScope":"local"}"#
    );
    assert_eq!(
        to_json(&IpamCapabilities { requires_mac_address: true, requires_request_replay: false }),
        r#"{"RequiresMACAddress":true,"RequiresRequestReplay":false}"#
    );
    assert_eq!(
        to_json(&AddressSpaces {
            local_default_address_space: "no_address_space".into(),
            global_default_address_space: "no_address_space".into()
        }),
        r#"{"LocalDefaultAddressSpace":"no_address_space","GlobalDefaultAddressSpace":"no_address_space"}"#
    );
    assert_eq!(to_json(&CreateEndpointResponse::default()), "{}");
    assert_eq!(
        to_json(&CreateEndpointResponse {
            interface: Some(EndpointInterface {
                mac_address: Some(mac("02:73:72:50:08:76")),
                ..Default::default()
            })
        }),
        r#"{"Interface":{"MacAddress":"02:73:72:50:08:76"}}"#
    );
    assert_eq!(to_json(&AllocateNetworkResponse::default()), "{}");
    assert_eq!(to_json(&EndpointOperInfoResponse::default()), r#"{"Value":{}}"#);
    assert_eq!(
        to_json(&RequestPoolResponse {
            pool_id: "3b1c".into(),
            pool: net("10.10.1.0/24"),
            data: Default::default()
        }),
        r#"{"PoolID":"3b1c","Pool":"10.10.1.0/24"}"#
    );
    assert_eq!(
        to_json(&RequestAddressResponse { address: net("10.10.1.5/24"), data: Default::default() }),
        r#"{"Address":"10.10.1.5/24"}"#
    );
}

#[test]
fn join_reply_shapes() {
    assert_eq!(to_json(&JoinResponse::default()), "{}");
    let full = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: "t_c1a2b3c4d5e6f7".into(),
            dst_prefix: "eth".into(),
        }),
        gateway: Some(ip("10.10.1.1")),
        gateway_ipv6: Some(ip("fd00::1")),
        static_routes: vec![
            StaticRoute {
                destination: net("192.0.2.0/24"),
                route_type: RouteType::NextHop,
                next_hop: Some(ip("10.10.1.254")),
            },
            StaticRoute {
                destination: net("198.51.100.0/24"),
                route_type: RouteType::Connected,
                next_hop: None,
            },
        ],
        disable_gateway_service: true,
    };
    assert_eq!(
        to_json(&full),
        concat!(
            r#"{"InterfaceName":{"SrcName":"t_c1a2b3c4d5e6f7","DstPrefix":"eth"},"#,
            r#""Gateway":"10.10.1.1","GatewayIPv6":"fd00::1","StaticRoutes":["#,
            r#"{"Destination":"192.0.2.0/24","RouteType":0,"NextHop":"10.10.1.254"},"#,
            r#"{"Destination":"198.51.100.0/24","RouteType":1}],"DisableGatewayService":true}"#
        )
    );
    let back: JoinResponse = serde_json::from_str(&to_json(&full)).unwrap();
    assert_eq!(back, full);
    let err =
        serde_json::from_str::<StaticRoute>(r#"{"Destination":"192.0.2.0/24","RouteType":2}"#)
            .unwrap_err()
            .to_string();
    assert!(err.contains("0 (next hop) or 1 (connected)"), "{err}");
}

// ---------- MAC addresses ----------

#[test]
fn mac_address_forms() {
    let m = mac("02:42:0F:C7:0D:28");
    assert_eq!(m.to_string(), "02:42:0f:c7:0d:28");
    assert_eq!(m.as_bytes(), &[0x02, 0x42, 0x0f, 0xc7, 0x0d, 0x28]);
    assert_eq!(mac("02-42-0f-c7-0d-28"), m);
    assert_eq!(m.to_base64(), "AkIPxw0o");
    assert_eq!(MacAddress::from_base64_or_text("AkIPxw0o"), Ok(m.clone()));
    assert_eq!(MacAddress::from_base64_or_text("02:42:0f:c7:0d:28"), Ok(m.clone()));
    assert_eq!(MacAddress::from_bytes(&[0; 8]).unwrap().to_string(), "00:00:00:00:00:00:00:00");
    assert_eq!(MacAddress::from_bytes(&[0; 7]), Err(MacAddressError::BadLength(7)));
    assert_eq!("02:42:0f".parse::<MacAddress>(), Err(MacAddressError::BadLength(3)));
    assert_eq!("0242.0fc7.0d28".parse::<MacAddress>(), Err(MacAddressError::BadSyntax));
    assert_eq!("2:42:f:c7:d:28".parse::<MacAddress>(), Err(MacAddressError::BadSyntax));
    assert_eq!(MacAddress::from_base64_or_text("***"), Err(MacAddressError::BadEncoding));
}

#[test]
fn bodies_that_are_not_objects_are_refused_for_every_call() {
    // serde alone would read an array as the struct's fields in order.
    let arrays: [&[u8]; 2] =
        [b"[]", b" [\"01895533501ecd92f270b168b6e64e20f9be172e124dabd894f0adedf6da04da\"]"];
    for call in PluginCall::ALL {
        for body in arrays {
            let err = Request::parse(call, body).expect_err(call.path());
            assert_eq!(err.to_string(), "invalid type: array, expected a JSON object", "{call}");
        }
        for body in [&b"42"[..], b"\"x\"", b"true"] {
            let err = Request::parse(call, body).expect_err(call.path());
            assert!(err.to_string().starts_with("invalid type: "), "{call}: {err}");
        }
    }
}
