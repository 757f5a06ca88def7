//! CNI specification types, versions 0.3.0 to 1.1.0, written to match the
//! spec text and libcni's encoding.
//!
//! - [`CniEnv`]: the `CNI_*` environment and the per-command rules.
//! - [`NetConf`], [`NetConfList`]: network configurations (with Kuryr's
//!   [`NeutronConfig`] section).
//! - [`AddResult`]: the `ADD` result and `prevResult`, converted between
//!   versions by [`AddResult::to_version`].
//! - [`VersionResult`], [`GcAttachment`].
//! - [`CniError`] / [`ErrorReply`]: the error result and its codes.
//! - [`proto`]: Kuryr's plugin <-> daemon protocol on top of them.

/// `Display`, `Serialize` and `Deserialize` for a type that is spelled on
/// the wire as its `as_str()` and read back with `FromStr`; `$message`
/// turns the `FromStr` error into serde's message.
macro_rules! spelled_as_str {
    ($ty:ty, $message:expr) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(|e| serde::de::Error::custom($message(e)))
            }
        }
    };
}

mod config;
mod env;
mod error;
mod result;
mod version;

pub mod proto;

#[cfg(test)]
mod tests;

pub use config::{
    GcAttachment, Ipam, NetConf, NetConfList, NeutronConfig, PluginConf, ATTACHMENTS_KEY,
    VALID_ATTACHMENTS_KEY,
};
pub use env::{
    validate_container_id, validate_ifname, validate_netns, validate_network_name, CniArgs,
    CniCommand, CniEnv, ENV_ARGS, ENV_COMMAND, ENV_CONTAINERID, ENV_IFNAME, ENV_NETNS, ENV_PATH,
    MAX_IFNAME_LEN,
};
pub use error::{CniError, ErrorCode, ErrorReply};
pub use result::{AddResult, Dns, Interface, IpConfig, Route};
pub use version::{CniVersion, UnsupportedVersion, VersionResult};

/// Decodes `value` as `T`; error 6 naming the failing field's path.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    what: &str,
) -> Result<T, CniError> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            CniError::decode(format!("cannot decode {what}: {inner}"))
        } else {
            CniError::decode(format!("cannot decode {what}: {path}: {inner}"))
        }
    })
}
