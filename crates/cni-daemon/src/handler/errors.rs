//! How failures of the daemon's handlers (Neutron-backed, and Kubernetes
//! mode's in kuryr-k8s) become CNI errors (docs/cni.md § Errors).

use crate::{CniError, ErrorCode};
use kuryr_core::binding::BindError;
use kuryr_core::lifecycle::LifecycleError;

/// 100: Neutron refused a request (4xx other than a bad configuration).
pub const NEUTRON_REFUSED: ErrorCode = ErrorCode::Other(100);
/// 101: host plumbing (veth, netns, OVS) failed.
pub const PLUMBING_FAILED: ErrorCode = ErrorCode::Other(101);
/// 102: the port did not become ACTIVE in time.
pub const NOT_ACTIVE: ErrorCode = ErrorCode::Other(102);
/// 103: CHECK found the attachment differs from Neutron.
pub const CHECK_MISMATCH: ErrorCode = ErrorCode::Other(103);

/// A Neutron failure while doing `what`: transient trouble (no answer,
/// timeout, 5xx, 409) is 11 so the runtime retries; anything else 100.
pub fn neutron(what: &str, err: &openstack::Error) -> CniError {
    let msg = format!("{what}: {err}");
    if is_transient(err) {
        CniError::try_again_later(msg)
    } else {
        CniError::new(NEUTRON_REFUSED, msg)
    }
}

/// Whether Neutron's error is worth a retry (no answer, timeout, 5xx, 409).
pub fn is_transient(err: &openstack::Error) -> bool {
    err.is_connect()
        || err.is_timeout()
        || err.is_transport()
        || err.is_server_error()
        || err.is_conflict()
}

/// A binding failure: 102 when not ACTIVE in time, 101 for the host's
/// plumbing, 11 or 100 for Neutron.
pub fn bind(err: &BindError) -> CniError {
    match err {
        BindError::NotActive { .. } => CniError::new(NOT_ACTIVE, err.to_string()),
        BindError::Neutron { source, .. } => neutron("binding the port", source),
        BindError::UnsupportedVifType { .. }
        | BindError::Plumbing { .. }
        | BindError::Nested { .. } => CniError::new(PLUMBING_FAILED, err.to_string()),
        BindError::BadMac { .. } => CniError::internal(err.to_string()),
    }
}

/// A lifecycle failure, as [`bind`] and [`neutron`] classify them.
pub fn lifecycle(err: &LifecycleError) -> CniError {
    match err {
        LifecycleError::Neutron { what, source } => neutron(what, source),
        LifecycleError::Host { .. } | LifecycleError::Pool(_) => {
            CniError::new(PLUMBING_FAILED, err.to_string())
        }
        LifecycleError::Bind(err) => bind(err),
    }
}

/// 101: the host's plumbing failed while doing `what`.
pub fn plumbing(what: &str, err: &netplumb::Error) -> CniError {
    CniError::new(PLUMBING_FAILED, format!("{what}: {err}"))
}

/// 103: CHECK found the attachment differs.
pub fn mismatch(msg: impl Into<String>) -> CniError {
    CniError::new(CHECK_MISMATCH, msg)
}
