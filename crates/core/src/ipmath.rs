//! Address arithmetic that translates Docker's requests into Neutron fields.
//!
//! This is not an IPAM: Neutron allocates every address. These functions only
//! reshape what Docker asked for (a `--ip-range`, an unspecified gateway)
//! into the subnet attributes Neutron takes.

use std::net::IpAddr;

use ipnet::IpNet;

/// Address arithmetic refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpMathError {
    /// The range is not inside the subnet.
    #[error("--ip-range {range} is not inside --subnet {subnet}")]
    RangeOutsideSubnet {
        /// `--ip-range`.
        range: IpNet,
        /// `--subnet`.
        subnet: IpNet,
    },
    /// The range holds no usable address.
    #[error("--ip-range {range} leaves no usable address in {subnet}")]
    EmptyRange {
        /// `--ip-range`.
        range: IpNet,
        /// `--subnet`.
        subnet: IpNet,
    },
    /// The gateway is not inside the subnet.
    #[error("gateway {gateway} is not inside subnet {subnet}")]
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
}

/// An inclusive address range, as Neutron's `allocation_pools` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

/// Neutron's default gateway for a subnet: its first address after the
/// network address.
pub fn default_gateway(subnet: IpNet) -> Option<IpAddr> {
    step(subnet.network(), 1).filter(|ip| subnet.contains(ip))
}

/// The allocation pools that make Neutron hand out addresses only from
/// `range`, within `subnet`, never the gateway, nor the IPv4 network and
/// broadcast addresses (Neutron refuses pools holding those).
pub fn allocation_pools_for_range(
    subnet: IpNet,
    range: IpNet,
    gateway: Option<IpAddr>,
) -> Result<Vec<AddressRange>, IpMathError> {
    let subnet = subnet.trunc();
    let range = range.trunc();
    if !subnet.contains(&range) {
        return Err(IpMathError::RangeOutsideSubnet { range, subnet });
    }
    let empty = || IpMathError::EmptyRange { range, subnet };
    let mut start = range.network();
    let mut end = range.broadcast();
    if start == subnet.network() {
        start = step(start, 1).ok_or_else(empty)?;
    }
    if subnet.addr().is_ipv4() && end == subnet.broadcast() {
        end = step(end, -1).ok_or_else(empty)?;
    }
    if start > end {
        return Err(empty());
    }
    let whole = AddressRange { start, end };
    let Some(gw) = gateway.filter(|gw| *gw >= start && *gw <= end) else {
        return Ok(vec![whole]);
    };
    let mut pools = Vec::with_capacity(2);
    if gw > start {
        if let Some(before) = step(gw, -1) {
            pools.push(AddressRange { start, end: before });
        }
    }
    if gw < end {
        if let Some(after) = step(gw, 1) {
            pools.push(AddressRange { start: after, end });
        }
    }
    if pools.is_empty() {
        return Err(empty());
    }
    Ok(pools)
}

/// Checks that a requested gateway lies in the subnet.
pub fn check_gateway(subnet: IpNet, gateway: IpAddr) -> Result<(), IpMathError> {
    if subnet.contains(&gateway) {
        Ok(())
    } else {
        Err(IpMathError::GatewayOutsideSubnet { gateway, subnet })
    }
}

/// `addr + delta`, or None on overflow or a change of family.
fn step(addr: IpAddr, delta: i8) -> Option<IpAddr> {
    let n = match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let n = n.checked_add_signed(i128::from(delta))?;
    match addr {
        IpAddr::V4(_) => u32::try_from(n).ok().map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(_) => Some(IpAddr::V6(n.into())),
    }
}

/// One protocol's exposed ports merged into contiguous ranges, as security
/// group rules take them.
pub fn merge_port_ranges(mut ports: Vec<u16>) -> Vec<(u16, u16)> {
    ports.sort_unstable();
    ports.dedup();
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for port in ports {
        match ranges.last_mut() {
            Some((_, max)) if max.checked_add(1) == Some(port) => *max = port,
            _ => ranges.push((port, port)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }
    fn r(a: &str, b: &str) -> AddressRange {
        AddressRange { start: ip(a), end: ip(b) }
    }

    #[test]
    fn default_gateway_is_first_address() {
        assert_eq!(default_gateway(net("10.10.1.0/24")), Some(ip("10.10.1.1")));
        assert_eq!(default_gateway(net("fd10:10::/64")), Some(ip("fd10:10::1")));
    }

    /// `--ip-range` within a subnet: the allocation pools keep the
    /// gateway out, split around it, and keep IPv6's last address.
    #[test]
    fn allocation_pools_of_a_range() {
        // (subnet, --ip-range, gateway, the pools wanted)
        type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: [Case; 4] = [
            // The upper half: the gateway is outside already.
            ("10.10.1.0/24", "10.10.1.128/25", "10.10.1.1", &[("10.10.1.128", "10.10.1.254")]),
            // The range holds the gateway: split around it.
            ("10.10.1.0/24", "10.10.1.0/25", "10.10.1.1", &[("10.10.1.2", "10.10.1.127")]),
            (
                "10.10.1.0/24",
                "10.10.1.0/25",
                "10.10.1.50",
                &[("10.10.1.1", "10.10.1.49"), ("10.10.1.51", "10.10.1.127")],
            ),
            ("fd00::/64", "fd00::/120", "fd00::1", &[("fd00::2", "fd00::ff")]),
        ];
        for (subnet, range, gateway, want) in cases {
            let pools = allocation_pools_for_range(net(subnet), net(range), Some(ip(gateway)))
                .expect("valid");
            let want: Vec<AddressRange> = want.iter().map(|(a, b)| r(a, b)).collect();
            assert_eq!(pools, want, "{range} in {subnet}, gateway {gateway}");
        }
    }

    #[test]
    fn range_outside_or_empty_is_refused() {
        assert!(matches!(
            allocation_pools_for_range(net("10.10.1.0/24"), net("10.10.2.0/25"), None),
            Err(IpMathError::RangeOutsideSubnet { .. })
        ));
        assert!(matches!(
            allocation_pools_for_range(net("10.10.1.0/24"), net("10.10.1.255/32"), None),
            Err(IpMathError::EmptyRange { .. })
        ));
        assert!(matches!(
            allocation_pools_for_range(
                net("10.10.1.0/24"),
                net("10.10.1.1/32"),
                Some(ip("10.10.1.1"))
            ),
            Err(IpMathError::EmptyRange { .. })
        ));
    }

    #[test]
    fn gateway_check() {
        assert!(check_gateway(net("10.0.0.0/24"), ip("10.0.0.1")).is_ok());
        assert!(check_gateway(net("10.0.0.0/24"), ip("10.0.1.1")).is_err());
    }

    #[test]
    fn port_ranges_merge() {
        assert_eq!(
            merge_port_ranges(vec![80, 8080, 81, 82, 443, 80, 65535]),
            vec![(80, 82), (443, 443), (8080, 8080), (65535, 65535)]
        );
        assert!(merge_port_ranges(vec![]).is_empty());
    }
}
