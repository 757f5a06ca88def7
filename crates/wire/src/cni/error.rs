//! The CNI error result: `{"cniVersion", "code", "msg", "details"}`.

use serde::{Deserialize, Serialize};

use super::version::CniVersion;

/// A CNI error code. Codes 0-99 are reserved by the spec; 100 and up are
/// plugin specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in the network configuration; the message names
    /// the key and value.
    UnsupportedField,
    /// 3: container unknown or does not exist; the runtime need not clean up.
    UnknownContainer,
    /// 4: invalid or missing environment variables; the message names them.
    InvalidEnvironment,
    /// 5: I/O failure, e.g. reading stdin.
    Io,
    /// 6: failed to decode content (JSON, versions).
    Decode,
    /// 7: invalid network configuration.
    InvalidNetworkConfig,
    /// 11: try again later; a transient condition.
    TryAgainLater,
    /// 50: the plugin is not available (cannot service `ADD`).
    PluginNotAvailable,
    /// 51: not available, and existing containers may have limited
    /// connectivity.
    LimitedConnectivity,
    /// Any other code: 0, reserved ones not listed here, or a plugin
    /// specific one (100+; libcni uses 999 for internal errors).
    Other(u32),
}

impl ErrorCode {
    /// libcni's code for an unexpected internal failure.
    pub const INTERNAL: ErrorCode = ErrorCode::Other(999);

    /// The numeric code on the wire.
    pub fn code(self) -> u32 {
        match self {
            Self::IncompatibleVersion => 1,
            Self::UnsupportedField => 2,
            Self::UnknownContainer => 3,
            Self::InvalidEnvironment => 4,
            Self::Io => 5,
            Self::Decode => 6,
            Self::InvalidNetworkConfig => 7,
            Self::TryAgainLater => 11,
            Self::PluginNotAvailable => 50,
            Self::LimitedConnectivity => 51,
            Self::Other(code) => code,
        }
    }

    /// The code for a wire number.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => Self::IncompatibleVersion,
            2 => Self::UnsupportedField,
            3 => Self::UnknownContainer,
            4 => Self::InvalidEnvironment,
            5 => Self::Io,
            6 => Self::Decode,
            7 => Self::InvalidNetworkConfig,
            11 => Self::TryAgainLater,
            50 => Self::PluginNotAvailable,
            51 => Self::LimitedConnectivity,
            other => Self::Other(other),
        }
    }

    /// HTTP status the daemon answers with for this code. Informational:
    /// the plugin reads the CNI error in the body whatever the status.
    pub fn http_status(self) -> u16 {
        match self {
            Self::IncompatibleVersion
            | Self::UnsupportedField
            | Self::InvalidEnvironment
            | Self::Decode
            | Self::InvalidNetworkConfig => 400,
            Self::UnknownContainer => 404,
            Self::TryAgainLater | Self::PluginNotAvailable | Self::LimitedConnectivity => 503,
            Self::Io | Self::Other(_) => 500,
        }
    }
}

/// A CNI error: a code, a short message and optional longer details.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!("; {details}") })]
pub struct CniError {
    /// The code.
    pub code: ErrorCode,
    /// Short message characterizing the error.
    pub msg: String,
    /// Longer description (may be empty).
    pub details: String,
}

/// Writes `pub fn name(msg) -> CniError` for each `name => Code` row, with
/// the row's doc comment.
macro_rules! with_code {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(msg: impl Into<String>) -> Self {
                Self::new(ErrorCode::$code, msg)
            }
        )*
    };
}

impl CniError {
    /// An error with any code and no details.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into(), details: String::new() }
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// 1: incompatible CNI version.
    pub fn incompatible_version(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(ErrorCode::IncompatibleVersion, msg).with_details(details)
    }

    /// 2: unsupported field; the message carries the key and its value, as
    /// the spec requires.
    pub fn unsupported_field(
        key: &str,
        value: &serde_json::Value,
        details: impl Into<String>,
    ) -> Self {
        Self::new(
            ErrorCode::UnsupportedField,
            format!("unsupported field in network configuration: {key} = {value}"),
        )
        .with_details(details)
    }

    // The codes that need nothing but a message get one constructor each.
    with_code! {
        /// 3: container unknown or does not exist.
        unknown_container => UnknownContainer,
        /// 4: invalid environment variables; `msg` must name them.
        invalid_env => InvalidEnvironment,
        /// 5: I/O failure.
        io => Io,
        /// 6: content could not be decoded.
        decode => Decode,
        /// 7: invalid network configuration.
        invalid_config => InvalidNetworkConfig,
        /// 11: try again later.
        try_again_later => TryAgainLater,
        /// 50: the plugin cannot service `ADD` requests.
        plugin_not_available => PluginNotAvailable,
        /// 51: not available, and existing containers may have limited
        /// connectivity.
        limited_connectivity => LimitedConnectivity,
        /// 999: an unexpected internal failure (libcni's `ErrInternal`).
        internal => INTERNAL,
    }

    /// The wire form, stamped with `version`.
    pub fn to_reply(&self, version: &str) -> ErrorReply {
        ErrorReply {
            cni_version: version.to_owned(),
            code: self.code.code(),
            msg: self.msg.clone(),
            details: self.details.clone(),
        }
    }

    /// The wire form for a known version.
    pub fn to_reply_for(&self, version: CniVersion) -> ErrorReply {
        self.to_reply(version.as_str())
    }
}

/// The error result as printed on stdout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    /// Protocol version in use.
    #[serde(default)]
    pub cni_version: String,
    /// Numeric error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer message; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl From<ErrorReply> for CniError {
    fn from(reply: ErrorReply) -> Self {
        Self { code: ErrorCode::from_code(reply.code), msg: reply.msg, details: reply.details }
    }
}
