//! Input validation shared by the netlink and OVSDB sides, plus [`MacAddr`].
//!
//! Everything that reaches the kernel or ovsdb-server is checked here first so
//! that bad input gives a typed error and changes nothing.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Kernel `IFNAMSIZ` minus the trailing NUL: the longest usable name.
pub const IFNAME_MAX_LEN: usize = 15;

/// Smallest MTU accepted (Ethernet minimum, `ETH_MIN_MTU`).
pub const MTU_MIN: u32 = 68;
/// Largest MTU accepted (veth/bridge maximum).
pub const MTU_MAX: u32 = 65535;

/// Longest external_ids key we send to OVSDB.
pub const OVS_KEY_MAX_LEN: usize = 255;
/// Longest string value we send to OVSDB.
pub const OVS_VALUE_MAX_LEN: usize = 1024;

/// Check a Linux interface (or OVS bridge/port) name.
///
/// Rules: 1 to 15 bytes (IFNAMSIZ), ASCII letters, digits and `-_.` only, not
/// `.` or `..`. The kernel itself allows more (anything but `/`, `:` and
/// whitespace), but names with other characters break tools (`ip`, OVS
/// `ovs-vsctl` parsing, `@` in `ip link` output), so we refuse them.
pub fn validate_ifname(name: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > IFNAME_MAX_LEN {
        return bad("longer than 15 bytes (IFNAMSIZ)");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return bad("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// Check an MTU value.
pub fn validate_mtu(mtu: u32) -> Result<()> {
    if !(MTU_MIN..=MTU_MAX).contains(&mtu) {
        return Err(Error::invalid("mtu", mtu, format!("must be between {MTU_MIN} and {MTU_MAX}")));
    }
    Ok(())
}

/// Check a key of an OVSDB `external_ids` (or `other_config`) map.
pub fn validate_ovs_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("ovs key", key, "empty"));
    }
    if key.len() > OVS_KEY_MAX_LEN {
        return Err(Error::invalid("ovs key", key, format!("longer than {OVS_KEY_MAX_LEN} bytes")));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'@'))
    {
        return Err(Error::invalid(
            "ovs key",
            key,
            "only ASCII letters, digits and '-_.:/@' are allowed",
        ));
    }
    Ok(())
}

/// Check a string value sent to OVSDB: bounded length, no control characters.
pub fn validate_ovs_value(what: &'static str, value: &str) -> Result<()> {
    if value.len() > OVS_VALUE_MAX_LEN {
        return Err(Error::invalid(what, value, format!("longer than {OVS_VALUE_MAX_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(what, value, "contains control characters"));
    }
    Ok(())
}

/// Check an 802.1Q VLAN id for a kernel VLAN subinterface (1..=4094).
pub fn validate_vlan_id(id: u16) -> Result<()> {
    if !(1..=4094).contains(&id) {
        return Err(Error::invalid("vlan id", id, "must be between 1 and 4094"));
    }
    Ok(())
}

/// Check an OVS port `tag` (0..=4095, as the vswitch schema allows).
pub fn validate_ovs_tag(tag: u16) -> Result<()> {
    if tag > 4095 {
        return Err(Error::invalid("ovs port tag", tag, "must be between 0 and 4095"));
    }
    Ok(())
}

/// A 48-bit Ethernet MAC address.
///
/// Parses `aa:bb:cc:dd:ee:ff` (either case, `-` also accepted as separator)
/// and displays lowercase with colons, which is what OVS and Neutron use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The raw octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True if the group (multicast) bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// True for 00:00:00:00:00:00.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Refuse addresses the kernel would refuse for a device (zero or
    /// multicast), with a typed error.
    pub fn validate_unicast(&self) -> Result<()> {
        if self.is_zero() || self.is_multicast() {
            return Err(Error::invalid("mac address", self, "must be a non-zero unicast address"));
        }
        Ok(())
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 6]>::try_from(bytes).ok().map(MacAddr)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3], o[4], o[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad =
            || Error::invalid("mac address", s, "expected six hex octets like aa:bb:cc:dd:ee:ff");
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (slot, part) in out.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        for ok in ["eth0", "tap1234abcd-12", "knp-br0a1b2c", "a", "veth_x.1", "123456789012345"] {
            validate_ifname(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a b",
            "a:b",
            "eth0@if3",
            "tab\t",
            "é",
            "a\0b",
        ] {
            let err = validate_ifname(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn mtu_rules() {
        validate_mtu(68).unwrap();
        validate_mtu(1500).unwrap();
        validate_mtu(65535).unwrap();
        assert!(validate_mtu(67).is_err());
        assert!(validate_mtu(0).is_err());
        assert!(validate_mtu(65536).is_err());
    }

    #[test]
    fn vlan_and_tag_rules() {
        validate_vlan_id(1).unwrap();
        validate_vlan_id(4094).unwrap();
        assert!(validate_vlan_id(0).is_err());
        assert!(validate_vlan_id(4095).is_err());
        validate_ovs_tag(0).unwrap();
        validate_ovs_tag(4095).unwrap();
        assert!(validate_ovs_tag(4096).is_err());
    }

    #[test]
    fn ovs_strings() {
        validate_ovs_key("iface-id").unwrap();
        validate_ovs_key("k8s.ovn.org/nad").unwrap();
        assert!(validate_ovs_key("").is_err());
        assert!(validate_ovs_key("a=b").is_err());
        assert!(validate_ovs_key("a b").is_err());
        assert!(validate_ovs_key(&"k".repeat(256)).is_err());
        validate_ovs_value("v", "3f2a…-uuid with spaces").unwrap();
        validate_ovs_value("v", "").unwrap();
        assert!(validate_ovs_value("v", "a\nb").is_err());
        assert!(validate_ovs_value("v", "a\u{0}b").is_err());
        assert!(validate_ovs_value("v", &"x".repeat(1025)).is_err());
    }

    #[test]
    fn mac_parse_display() {
        let m: MacAddr = "FA:16:3e:00:0A:ff".parse().unwrap();
        assert_eq!(m.to_string(), "fa:16:3e:00:0a:ff");
        assert_eq!("fa-16-3e-00-0a-ff".parse::<MacAddr>().unwrap(), m);
        m.validate_unicast().unwrap();
        for bad in [
            "",
            "fa:16:3e:00:0a",
            "fa:16:3e:00:0a:ff:00",
            "fa:16:3e:00:0a:f",
            "zz:16:3e:00:0a:ff",
            "fa:16:3e:00:0a:fff",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!("01:00:5e:00:00:01".parse::<MacAddr>().unwrap().validate_unicast().is_err());
        assert!("00:00:00:00:00:00".parse::<MacAddr>().unwrap().validate_unicast().is_err());
    }
}
