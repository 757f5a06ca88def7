//! Authentication options (keystoneauth style) and Keystone v3 token handling.
//!
//! [`AuthOptions`] can be built in code, from the `OS_*` environment variables
//! the `openstack` CLI reads ([`AuthOptions::from_env`]), or from
//! `clouds.yaml` ([`AuthOptions::from_clouds_yaml`]). Sources combine with
//! [`AuthOptions::merge`]; [`AuthOptions::validate`] names what is missing.

mod clouds;
mod env;
mod error;
pub(crate) mod keystone;
mod kinds;
mod options;

pub use clouds::{clouds_yaml_candidates, secure_yaml_candidates};
pub(crate) use env::{parse_bool, parse_seconds};
pub use error::ConfigError;
pub use kinds::{AuthType, Interface};
pub use options::AuthOptions;
