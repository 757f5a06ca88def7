//! Lenient deserializers for Neutron's real-world JSON.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// `null` becomes the type's default (missing fields are handled by
/// `#[serde(default)]` on the struct).
pub(crate) fn nd<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An unsigned integer sent as a number, a numeric string (subnetpool
/// prefix lengths come back as `"24"`), or `null`.
pub(crate) fn opt_u32<'de, D>(d: D) -> Result<Option<u32>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Option<u32>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an unsigned integer, a numeric string or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            u32::try_from(v).map(Some).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u32::try_from(v).map(Some).map_err(E::custom)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(Some(v as u32))
            } else {
                Err(E::custom(format!("{v} is not an unsigned integer")))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() || v.eq_ignore_ascii_case("none") {
                return Ok(None);
            }
            v.parse().map(Some).map_err(E::custom)
        }
    }

    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct T {
        #[serde(deserialize_with = "opt_u32")]
        n: Option<u32>,
        #[serde(deserialize_with = "nd")]
        s: String,
        #[serde(deserialize_with = "nd")]
        v: Vec<String>,
    }

    #[test]
    fn lenient_numbers_and_nulls() {
        let t: T = serde_json::from_str(r#"{"n":"24","s":null,"v":null}"#).unwrap();
        assert_eq!(t.n, Some(24));
        assert_eq!(t.s, "");
        assert!(t.v.is_empty());
        let t: T = serde_json::from_str(r#"{"n":24}"#).unwrap();
        assert_eq!(t.n, Some(24));
        let t: T = serde_json::from_str(r#"{"n":null}"#).unwrap();
        assert_eq!(t.n, None);
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.n, None);
        assert!(serde_json::from_str::<T>(r#"{"n":"x"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n":-1}"#).is_err());
    }
}
