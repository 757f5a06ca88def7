//! What can be wrong with the options.

use std::path::PathBuf;

use super::AuthType;

/// Configuration problems, each naming the option concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required options are missing for the chosen auth type.
    #[error("{} {} required for auth_type {auth_type}", missing.join(" and "), if missing.len() == 1 { "is" } else { "are" })]
    Missing {
        /// The auth type being validated.
        auth_type: AuthType,
        /// Missing options; an entry may read `username or user_id`.
        missing: Vec<String>,
    },
    /// `auth_type` names no plugin this crate supports.
    #[error("unknown auth_type {0:?} (expected password, v3applicationcredential, token or none)")]
    UnknownAuthType(String),
    /// An option has a value that cannot be parsed.
    #[error("invalid value {value:?} for {option}: expected {expected}")]
    InvalidValue {
        /// Option name.
        option: &'static str,
        /// The offending value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// No `clouds.yaml` was found in any searched location.
    #[error("no clouds.yaml found (searched: {})", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    CloudsYamlNotFound {
        /// The locations searched, in order.
        searched: Vec<PathBuf>,
    },
    /// `clouds.yaml` has no entry with this name.
    #[error("cloud {cloud:?} not found in {}", path.display())]
    CloudNotFound {
        /// The cloud name asked for.
        cloud: String,
        /// The file searched.
        path: PathBuf,
    },
    /// A file could not be read or parsed.
    #[error("cannot use {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The TLS settings could not be applied.
    #[error("TLS configuration: {0}")]
    Tls(String),
}
