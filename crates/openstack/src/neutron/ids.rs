//! Typed ids of Neutron objects, and the string-valued enums Neutron sends
//! (`binding:vif_type`, port `status`).
//!
//! An id is a string on the wire (`#[serde(transparent)]`) and anywhere a
//! `&str` is wanted (`Deref<Target = str>`, `AsRef<str>`, `Borrow<str>`, so
//! a `HashMap<PortId, _>` can be looked up with a `&str`). The types keep a
//! port id from being passed where a network id is expected; they do not
//! check the format (Neutron ids are UUIDs, but fakes and tests use others).

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines each id newtype with its conversions and comparisons.
macro_rules! ids {
    ($( $(#[$meta:meta])* $name:ident; )*) => { $(
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as Neutron spells it.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Infallible;

            fn from_str(s: &str) -> Result<Self, Infallible> {
                Ok($name(s.to_owned()))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                $name(id.clone())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    )* };
}

ids! {
    /// The id of a port.
    PortId;
    /// The id of a network.
    NetworkId;
    /// The id of a subnet.
    SubnetId;
    /// The id of a subnetpool.
    SubnetPoolId;
    /// The id of an address scope.
    AddressScopeId;
    /// The id of a security group.
    SecurityGroupId;
    /// The id of a security group rule.
    SecurityGroupRuleId;
    /// The id of a trunk.
    TrunkId;
    /// The id of a floating IP.
    FloatingIpId;
    /// The id of a router.
    RouterId;
    /// The id of a Keystone project (a resource's owner).
    ProjectId;
}

/// Defines a string-valued enum: the listed spellings, and `Other` for any
/// other string (kept as sent, so every value round-trips).
macro_rules! string_enum {
    (
        $(#[$meta:meta])* $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// Any other value, as Neutron sent it (`""` when it sent none).
            Other(String),
        }

        impl $name {
            /// Neutron's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(s) => s,
                }
            }
        }

        impl Default for $name {
            /// `Other("")`: the value of a reply that does not carry it.
            fn default() -> Self {
                $name::Other(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $wire => $name::$variant, )*
                    _ => $name::Other(s),
                }
            }
        }

        impl FromStr for $name {
            type Err = Infallible;

            fn from_str(s: &str) -> Result<Self, Infallible> {
                Ok($name::from(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($name::from)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }
    };
}

string_enum! {
    /// A port's `binding:vif_type`: how the bound mechanism driver expects
    /// the port to be plugged.
    ///
    /// A reply without the attribute (it is admin-only by default policy)
    /// gives `Other("")`.
    VifType {
        /// `ovs`: an Open vSwitch port on the integration bridge.
        Ovs = "ovs",
        /// `bridge`: a Linux bridge port (linuxbridge agent).
        Bridge = "bridge",
        /// `unbound`: no mechanism driver has bound the port.
        Unbound = "unbound",
        /// `binding_failed`: binding to the requested host failed.
        BindingFailed = "binding_failed",
    }
}

impl VifType {
    /// Whether a mechanism driver has bound the port: anything but unset,
    /// `unbound` or `binding_failed`.
    pub fn is_bound(&self) -> bool {
        match self {
            VifType::Unbound | VifType::BindingFailed => false,
            VifType::Other(s) => !s.is_empty(),
            VifType::Ovs | VifType::Bridge => true,
        }
    }
}

string_enum! {
    /// A port's `status` (read-only, set by Neutron).
    ///
    /// A reply without the attribute (a `fields=` selection) gives
    /// `Other("")`.
    PortStatus {
        /// `ACTIVE`: bound and wired up.
        Active = "ACTIVE",
        /// `DOWN`: not (yet) wired up, or administratively down.
        Down = "DOWN",
        /// `BUILD`: being wired up.
        Build = "BUILD",
        /// `ERROR`.
        Error = "ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ids_are_strings_on_the_wire_and_in_maps() {
        let id: PortId = serde_json::from_str(r#""p1""#).unwrap();
        assert_eq!(id, "p1");
        assert_eq!("p1", id);
        assert_eq!(id, String::from("p1"));
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""p1""#);
        assert_eq!(id.to_string(), "p1");
        assert_eq!(id.len(), 2, "derefs to str");
        let mut m: HashMap<PortId, u32> = HashMap::new();
        m.insert(id.clone(), 1);
        assert_eq!(m.get("p1"), Some(&1));
        assert_eq!(id.into_string(), "p1");
    }

    /// Each `(wire, value)` parses to `value`, compares equal to `wire`,
    /// and serializes and displays as `wire`.
    fn round_trips<T>(cases: &[(&str, T)])
    where
        T: fmt::Debug + fmt::Display + PartialEq + for<'a> PartialEq<&'a str>,
        T: Serialize + serde::de::DeserializeOwned,
    {
        for (wire, value) in cases {
            let parsed: T = serde_json::from_value(serde_json::json!(wire)).unwrap();
            assert_eq!(&parsed, value);
            assert_eq!(parsed, *wire);
            assert_eq!(serde_json::to_value(&parsed).unwrap(), *wire);
            assert_eq!(parsed.to_string(), *wire);
        }
    }

    #[test]
    fn vif_types_round_trip() {
        round_trips(&[
            ("ovs", VifType::Ovs),
            ("bridge", VifType::Bridge),
            ("unbound", VifType::Unbound),
            ("binding_failed", VifType::BindingFailed),
            ("vhostuser", VifType::Other("vhostuser".into())),
            ("", VifType::Other(String::new())),
        ]);
        assert!(VifType::Ovs.is_bound());
        assert!(VifType::from("vhostuser").is_bound());
        assert!(!VifType::default().is_bound());
        assert!(!VifType::BindingFailed.is_bound());
    }

    #[test]
    fn port_statuses_round_trip() {
        round_trips(&[
            ("ACTIVE", PortStatus::Active),
            ("DOWN", PortStatus::Down),
            ("BUILD", PortStatus::Build),
            ("ERROR", PortStatus::Error),
            ("active", PortStatus::Other("active".into())),
        ]);
        assert_eq!(PortStatus::default().as_str(), "");
    }
}
