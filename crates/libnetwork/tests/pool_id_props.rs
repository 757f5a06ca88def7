//! Properties of the pool ids Kuryr hands Docker (`PoolId`): every id Kuryr
//! makes parses back to itself, and any text Docker could send parses
//! without panicking, either to a 400 or to an id that prints and parses
//! to the same id.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kuryr_libnetwork::neutron::PoolId;
use proptest::prelude::*;

/// A Neutron id: a UUID as Neutron writes it.
fn neutron_id() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| {
        let h = format!("{n:032x}");
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    })
}

fn cidr() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), len).expect("len <= 32").trunc())
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(a, len)| {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).expect("len <= 128").trunc())
        }),
    ]
}

fn pool_id() -> impl Strategy<Value = PoolId> {
    prop_oneof![
        neutron_id().prop_map(|pool| PoolId::Dedicated { pool }),
        (neutron_id(), cidr()).prop_map(|(pool, cidr)| PoolId::Carved { pool, cidr }),
        neutron_id().prop_map(|subnet| PoolId::Existing { subnet }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn kuryr_pool_ids_round_trip(id in pool_id()) {
        let text = id.to_string();
        prop_assert_eq!(PoolId::parse(&text).expect("Kuryr's own id"), id);
    }

    #[test]
    fn any_text_parses_or_is_a_bad_request(text in "\\PC{0,80}") {
        match PoolId::parse(&text) {
            Ok(id) => {
                let again = PoolId::parse(&id.to_string()).expect("a printed id parses");
                prop_assert_eq!(again, id);
            }
            Err(e) => prop_assert_eq!(e.http_status(), 400),
        }
    }

    #[test]
    fn near_misses_parse_or_are_bad_requests(
        pool in "[0-9a-fA-F-]{0,70}",
        sep in prop_oneof![Just("/"), Just("subnet:"), Just("")],
        tail in "[0-9a-f:./]{0,45}",
    ) {
        let text = if sep == "subnet:" { format!("subnet:{pool}{tail}") } else { format!("{pool}{sep}{tail}") };
        match PoolId::parse(&text) {
            Ok(id) => prop_assert_eq!(PoolId::parse(&id.to_string()).expect("reparse"), id),
            Err(e) => prop_assert_eq!(e.http_status(), 400),
        }
    }
}
