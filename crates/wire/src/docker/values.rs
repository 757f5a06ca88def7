//! Small value types that appear in several calls: MAC addresses, IP
//! protocol numbers, route types and driver scopes.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::de::{Error as _, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de::WireText;

/// A link-layer address, as Go's `net.HardwareAddr`: 6 bytes (EUI-48),
/// 8 bytes (EUI-64) or 20 bytes (IP over InfiniBand).
///
/// Its text form is lower-case hex with colons (`02:42:0f:c7:0d:28`), which
/// is what Docker sends in `Interface.MacAddress` and in IPAM options. In the
/// endpoint option map Docker sends the raw bytes base64-encoded instead; see
/// [`EndpointOptions::mac_address`](super::EndpointOptions::mac_address).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct MacAddress(Vec<u8>);

/// Why a MAC address could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MacAddressError {
    /// The address has a length Go's `net.ParseMAC` would not accept.
    #[error("a MAC address has 6, 8 or 20 bytes, not {0}")]
    BadLength(usize),
    /// The text is not hex octets separated by `:` or `-`.
    #[error("expected hex octets separated by ':' such as 02:42:0f:c7:0d:28")]
    BadSyntax,
    /// The text is neither a MAC string nor valid base64.
    #[error("not a MAC address string nor base64 of its bytes")]
    BadEncoding,
}

impl MacAddress {
    /// Builds an address from its raw bytes (6, 8 or 20 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MacAddressError> {
        match bytes.len() {
            6 | 8 | 20 => Ok(Self(bytes.to_vec())),
            n => Err(MacAddressError::BadLength(n)),
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses Docker's endpoint-option form: base64 of the raw bytes (what Go
    /// produces for a `[]byte`). A plain `aa:bb:..` string is accepted too.
    pub fn from_base64_or_text(s: &str) -> Result<Self, MacAddressError> {
        if s.contains([':', '-']) {
            return s.parse();
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| MacAddressError::BadEncoding)?;
        Self::from_bytes(&bytes)
    }

    /// The base64 form Docker uses in endpoint option maps.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl FromStr for MacAddress {
    type Err = MacAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let bytes = s
            .split(sep)
            .map(|octet| {
                if octet.len() == 2 {
                    u8::from_str_radix(octet, 16).map_err(|_| MacAddressError::BadSyntax)
                } else {
                    Err(MacAddressError::BadSyntax)
                }
            })
            .collect::<Result<Vec<u8>, _>>()?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl WireText for MacAddress {
    const EXPECTED: &'static str = "a MAC address such as 02:42:0f:c7:0d:28";
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de::text::deserialize(d)
    }
}

/// An IP protocol number, as libnetwork's `types.Protocol` (a `uint8`).
///
/// Docker sends it as a number (`6` for TCP). Names (`"tcp"`) are accepted
/// on input as well.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP (1).
    pub const ICMP: Self = Self(1);
    /// TCP (6).
    pub const TCP: Self = Self(6);
    /// UDP (17).
    pub const UDP: Self = Self(17);
    /// SCTP (132).
    pub const SCTP: Self = Self(132);

    /// The lower-case name Docker and Neutron use, if it is a known protocol.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::ICMP => Some("icmp"),
            Self::TCP => Some("tcp"),
            Self::UDP => Some("udp"),
            Self::SCTP => Some("sctp"),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "icmp" => Some(Self::ICMP),
            "tcp" => Some(Self::TCP),
            "udp" => Some(Self::UDP),
            "sctp" => Some(Self::SCTP),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProtocolVisitor;

        impl Visitor<'_> for ProtocolVisitor {
            type Value = Protocol;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an IP protocol number (0-255) or name (tcp, udp, sctp, icmp)")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Protocol, E> {
                u8::try_from(v)
                    .map(Protocol)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Protocol, E> {
                u8::try_from(v)
                    .map(Protocol)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Protocol, E> {
                Protocol::from_name(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
        }

        d.deserialize_any(ProtocolVisitor)
    }
}

/// The kind of a static route returned by Join (libnetwork's `RouteType`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum RouteType {
    /// Via `NextHop` (0).
    #[default]
    NextHop,
    /// Directly connected through the container interface, no next hop (1).
    Connected,
}

impl Serialize for RouteType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            Self::NextHop => 0,
            Self::Connected => 1,
        })
    }
}

impl<'de> Deserialize<'de> for RouteType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            0 => Ok(Self::NextHop),
            1 => Ok(Self::Connected),
            v => Err(D::Error::invalid_value(
                Unexpected::Unsigned(v),
                &"0 (next hop) or 1 (connected)",
            )),
        }
    }
}

/// A network driver's data or connectivity scope.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Networks are known to this host only.
    #[default]
    Local,
    /// Networks are cluster-wide (swarm).
    Global,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Global => "global",
        })
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Self::Local),
            "global" => Ok(Self::Global),
            other => Err(format!("unknown scope {other:?}")),
        }
    }
}

impl WireText for Scope {
    const EXPECTED: &'static str = "\"local\" or \"global\"";
}
