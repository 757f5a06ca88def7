//! Properties of the address arithmetic that turns Docker's `--ip-range`
//! and gateway requests into Neutron subnet fields.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use kuryr_core::ipmath::{allocation_pools_for_range, default_gateway, merge_port_ranges};
use proptest::prelude::*;

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn as_u32(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => unreachable!("v4 only here"),
    }
}

/// A subnet of /16 to /30, a range inside it, and maybe a gateway in it.
fn subnet_range_gateway() -> impl Strategy<Value = (IpNet, IpNet, Option<IpAddr>)> {
    (16u8..=30, any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
        |(len, base, sub, gw, has_gw)| {
            let subnet = Ipv4Net::new(Ipv4Addr::from(base), len).expect("prefix").trunc();
            let range_len = len + (sub % (33 - u32::from(len))) as u8;
            let size = 1u64 << (32 - u32::from(len));
            let offset = u64::from(sub) % size;
            let range_addr = u32::from(subnet.network()) + offset as u32;
            let range = Ipv4Net::new(Ipv4Addr::from(range_addr), range_len.min(32))
                .expect("prefix")
                .trunc();
            let gateway =
                has_gw.then(|| v4(u32::from(subnet.network()) + (u64::from(gw) % size) as u32));
            (IpNet::V4(subnet), IpNet::V4(range), gateway)
        },
    )
}

proptest! {
    #[test]
    fn pools_stay_in_range_and_skip_reserved((subnet, range, gateway) in subnet_range_gateway()) {
        let Ok(pools) = allocation_pools_for_range(subnet, range, gateway) else {
            // Refused only when nothing usable is left.
            let usable = (as_u32(range.network())..=as_u32(range.broadcast()))
                .filter(|n| *n != as_u32(subnet.network()) && *n != as_u32(subnet.broadcast()))
                .filter(|n| gateway.map(as_u32) != Some(*n))
                .count();
            prop_assert_eq!(usable, 0);
            return Ok(());
        };
        let mut seen = BTreeSet::new();
        let mut last_end: Option<u32> = None;
        for pool in &pools {
            let (start, end) = (as_u32(pool.start), as_u32(pool.end));
            prop_assert!(start <= end);
            if let Some(prev) = last_end {
                prop_assert!(start > prev, "pools ordered and disjoint");
            }
            last_end = Some(end);
            for n in start..=end {
                prop_assert!(range.contains(&v4(n)));
                prop_assert!(n != as_u32(subnet.network()));
                prop_assert!(n != as_u32(subnet.broadcast()));
                prop_assert!(gateway.map(as_u32) != Some(n));
                seen.insert(n);
            }
        }
        // Every usable address of the range is handed to Neutron.
        for n in as_u32(range.network())..=as_u32(range.broadcast()) {
            let reserved = n == as_u32(subnet.network())
                || n == as_u32(subnet.broadcast())
                || gateway.map(as_u32) == Some(n);
            prop_assert_eq!(seen.contains(&n), !reserved);
        }
    }

    #[test]
    fn default_gateway_is_inside((len, base) in (8u8..=30, any::<u32>())) {
        let subnet = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base), len).expect("prefix").trunc());
        let gw = default_gateway(subnet).expect("room for a gateway");
        prop_assert!(subnet.contains(&gw));
        prop_assert_eq!(as_u32(gw), as_u32(subnet.network()) + 1);
    }

    #[test]
    fn port_ranges_cover_exactly_the_ports(ports in proptest::collection::vec(any::<u16>(), 0..64)) {
        let ranges = merge_port_ranges(ports.clone());
        let wanted: BTreeSet<u16> = ports.into_iter().collect();
        let mut covered = BTreeSet::new();
        for window in ranges.windows(2) {
            // Sorted, and neither overlapping nor touching (else they would merge).
            prop_assert!(u32::from(window[0].1) + 1 < u32::from(window[1].0));
        }
        for (min, max) in ranges {
            prop_assert!(min <= max);
            covered.extend(min..=max);
        }
        prop_assert_eq!(covered, wanted);
    }
}
