//! The crate's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout `netplumb`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while plumbing host networking.
///
/// Variants are grouped by area: input validation, kernel links (rtnetlink),
/// network namespaces, and OVSDB. Callers that need to branch should match on
/// the variant (e.g. [`Error::LinkExists`], [`Error::Unsupported`]) rather than
/// on the message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An interface (or bridge) name failed validation; nothing was sent.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A value (MAC, MTU, VLAN id, OVS column value...) failed validation;
    /// nothing was sent.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidValue {
        /// What kind of value it was.
        what: &'static str,
        /// The rejected value, as text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The kernel refused to create a link because the name is taken (EEXIST).
    #[error("link {name:?} already exists")]
    LinkExists {
        /// The name that is taken.
        name: String,
    },

    /// No link with that name (or index) exists in the namespace.
    #[error("link {name:?} not found")]
    LinkNotFound {
        /// The name (or `#index`) that was looked up.
        name: String,
    },

    /// A link exists under the wanted name but is of another kind
    /// (e.g. `ensure_bridge` found a veth).
    #[error("link {name:?} is a {actual}, expected a {expected}")]
    WrongLinkKind {
        /// Link name.
        name: String,
        /// Kind that was expected.
        expected: &'static str,
        /// Kind that was found (`"unknown"` when the kernel reports none).
        actual: String,
    },

    /// The address is already configured on the link (EEXIST).
    #[error("address {addr} already exists on link {link:?}")]
    AddressExists {
        /// Link name.
        link: String,
        /// The address, with prefix.
        addr: String,
    },

    /// An identical route already exists (EEXIST).
    #[error("route {route} already exists")]
    RouteExists {
        /// Human readable route.
        route: String,
    },

    /// The running kernel lacks a feature (no 8021q, no ipvlan...). Detected
    /// from EOPNOTSUPP ("Unknown device type") when creating the link.
    #[error("kernel lacks {feature} support ({detail})")]
    Unsupported {
        /// The missing feature, e.g. `"vlan (8021q)"` or `"ipvlan"`.
        feature: &'static str,
        /// The underlying kernel answer.
        detail: String,
    },

    /// Any other rtnetlink failure.
    #[error("netlink {op} failed: {source}")]
    Netlink {
        /// What was attempted, e.g. `"set mtu of eth0"`.
        op: String,
        /// The rtnetlink error (carries the kernel errno).
        #[source]
        source: rtnetlink::Error,
    },

    /// The netns path does not exist.
    #[error("network namespace {path} does not exist")]
    NetnsNotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// The netns path exists but cannot be used (not a netns, permission,
    /// setns failure, stale bind mount...).
    #[error("network namespace {path}: {reason}")]
    Netns {
        /// The path involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// Cannot connect to the OVSDB unix socket.
    #[error("cannot connect to ovsdb at {path}: {source}")]
    OvsdbConnect {
        /// Socket path.
        path: PathBuf,
        /// Connect error.
        #[source]
        source: io::Error,
    },

    /// The OVSDB connection broke (EOF, I/O error); the next call reconnects.
    #[error("ovsdb connection lost: {reason}")]
    OvsdbDisconnected {
        /// Why.
        reason: String,
    },

    /// ovsdb-server sent something that does not follow RFC 7047 (or the
    /// vswitch schema is not what we expect).
    #[error("ovsdb protocol error: {0}")]
    OvsdbProtocol(String),

    /// ovsdb-server answered a JSON-RPC call with an error.
    #[error("ovsdb {method} failed: {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OvsdbRpc {
        /// The JSON-RPC method.
        method: String,
        /// The `error` member.
        error: String,
        /// The `details` member, if any.
        details: Option<String>,
    },

    /// A transaction was rejected (constraint violation, failed `wait`...).
    #[error("ovsdb transaction ({what}) failed: {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OvsdbTransaction {
        /// Which high level operation.
        what: String,
        /// The `error` member of the failing operation.
        error: String,
        /// The `details` member, if any.
        details: Option<String>,
    },

    /// The named OVS bridge does not exist.
    #[error("ovs bridge {name:?} not found")]
    BridgeNotFound {
        /// Bridge name.
        name: String,
    },

    /// No OVS Interface row with that name.
    #[error("ovs interface {name:?} not found")]
    InterfaceNotFound {
        /// Interface name.
        name: String,
    },

    /// The OVS port exists but on another bridge than the one asked for.
    #[error("ovs port {port:?} is on bridge {actual:?}, not on {expected:?}")]
    PortOnOtherBridge {
        /// Port name.
        port: String,
        /// Bridge that was asked for.
        expected: String,
        /// Bridge that holds the port.
        actual: String,
    },

    /// A wait did not complete in time.
    #[error("timed out after {timeout:?} waiting for {what}{}", last.as_deref().map(|l| format!(" (last seen: {l})")).unwrap_or_default())]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout that expired.
        timeout: Duration,
        /// Last observed state, for diagnosis.
        last: Option<String>,
    },

    /// A local I/O or thread failure not covered above.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The kernel errno behind a netlink failure, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { source, .. } => netlink_errno(source),
            _ => None,
        }
    }

    /// True for "not found" style errors (link, OVS bridge/interface, netns).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::LinkNotFound { .. }
                | Error::BridgeNotFound { .. }
                | Error::InterfaceNotFound { .. }
                | Error::NetnsNotFound { .. }
        )
    }

    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink { op: op.into(), source }
    }

    pub(crate) fn invalid(
        what: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidValue { what, value: value.to_string(), reason: reason.into() }
    }
}

/// The positive errno carried by an rtnetlink error, if any.
pub(crate) fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => {
            let code = msg.raw_code();
            (code != 0).then_some(code.abs())
        }
        _ => None,
    }
}
