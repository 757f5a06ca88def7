//! Serde helpers for the conventions of Go's `encoding/json`, which is what
//! Docker uses on its side of the wire.
//!
//! Go never omits a struct field, but encodes a nil map or slice as `null`
//! and an unset string (or `net.IP`) as `""`. These helpers turn both into
//! Rust's "absent" (`Default` or `None`) while keeping real values typed.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::{Error as _, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

/// A value carried as a string on the wire and parsed into a Rust type.
pub(crate) trait WireText: FromStr + Display {
    /// Says what a valid value looks like, for error messages.
    const EXPECTED: &'static str;
}

impl WireText for ipnet::IpNet {
    const EXPECTED: &'static str = "an address with prefix length such as 10.0.0.2/24";
}

impl WireText for std::net::IpAddr {
    const EXPECTED: &'static str = "an IP address such as 10.0.0.2";
}

fn parse_text<T, E>(s: &str) -> Result<T, E>
where
    T: WireText,
    T::Err: Display,
    E: serde::de::Error,
{
    s.parse()
        .map_err(|e| E::custom(format_args!("invalid value {s:?} ({e}), expected {}", T::EXPECTED)))
}

/// `null` becomes `T::default()`: Go sends a nil map or slice as `null`.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `null` read as `T::default()` (see [`null_as_default`]), written as is:
/// `with = "nullable"` for maps and lists Go may send as `null`.
pub(crate) mod nullable {
    use super::*;

    pub(crate) use super::null_as_default as deserialize;

    pub(crate) fn serialize<S: Serializer, T: serde::Serialize>(
        value: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }
}

/// `skip_serializing_if = "is_none"`: an unset optional field is left out.
pub(crate) fn is_none<T>(value: &Option<T>) -> bool {
    value.is_none()
}

/// `skip_serializing_if = "is_empty"`: an empty map is left out.
pub(crate) fn is_empty<K, V>(map: &std::collections::BTreeMap<K, V>) -> bool {
    map.is_empty()
}

/// An identifier Docker always sends; an empty one is a malformed request.
pub(crate) fn non_empty_string<'de, D>(d: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(D::Error::custom("must not be empty"));
    }
    Ok(s)
}

/// A required string-encoded value such as `"10.0.0.0/24"`.
pub(crate) mod text {
    use super::*;

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: WireText,
        T::Err: Display,
    {
        let s = String::deserialize(d)?;
        parse_text(&s)
    }

    pub(crate) fn serialize<S, T>(value: &T, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Display,
    {
        s.collect_str(value)
    }
}

/// An optional string-encoded value: `""`, `null` or a missing field mean
/// "not set" (Go's zero value).
pub(crate) mod opt_text {
    use super::*;

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: WireText,
        T::Err: Display,
    {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => parse_text(&s).map(Some),
        }
    }

    pub(crate) fn serialize<S, T>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Display,
    {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }
}

/// A boolean option that may arrive as a JSON bool or as the strings
/// `"true"`/`"false"` (option maps are `map[string]interface{}` in Go and
/// other clients than dockerd fill them too).
pub(crate) mod lenient_bool {
    use super::*;

    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = Option<bool>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean or \"true\"/\"false\"")
        }

        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    pub(crate) fn deserialize<'de, D>(d: D) -> Result<Option<bool>, D::Error>
    where
        D: Deserializer<'de>,
    {
        d.deserialize_any(BoolVisitor)
    }

    pub(crate) fn serialize<S>(value: &Option<bool>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        match value {
            Some(v) => s.serialize_bool(*v),
            None => s.serialize_none(),
        }
    }
}
