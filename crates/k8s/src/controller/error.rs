//! Why a reconcile failed, and how the failure is told: every error has a
//! short kind (the Event's `action`, the metric's error label) and a
//! message naming the cause (the Event's note). The reconcilers requeue a
//! failed object with backoff ([`backoff`]); nothing here decides to give
//! up, so an object recovers by itself once the cause is gone.
//! docs/kubernetes.md § Events.

use std::time::Duration;

use crate::vif::VifError;
use crate::MissingField;

/// A reconcile's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Neutron call failed.
    #[error("Neutron: {action}: {source}")]
    Neutron {
        /// What was being done (`creating the port of pod shop/web-0`).
        action: String,
        /// Neutron's answer.
        #[source]
        source: openstack::Error,
    },
    /// A Neutron call got no answer (timeout, reset): it may have been
    /// done; the next try looks before it acts again.
    #[error("Neutron: {action}: no answer: {message}")]
    Unanswered {
        /// What was being done.
        action: String,
        /// Why there was no answer.
        message: String,
    },
    /// An object the configuration (or an annotation) names is not in
    /// Neutron.
    #[error("{what} {id} ({option}) does not exist in Neutron")]
    Missing {
        /// `subnetpool`, `router`, `subnet`.
        what: &'static str,
        /// The id as configured.
        id: String,
        /// Where it is named (`[namespace_subnet] pod_subnet_pool`).
        option: &'static str,
    },
    /// The apiserver refused or failed a call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object without a field the apiserver always sets.
    #[error(transparent)]
    Field(#[from] MissingField),
    /// The port cannot be told to the node yet (not bound) or at all.
    #[error(transparent)]
    Vif(#[from] VifError),
    /// The namespace's KuryrNetwork has no network yet.
    #[error("the KuryrNetwork of namespace {namespace} is not populated yet{}", why_suffix(.why))]
    NetworkNotReady {
        /// The namespace.
        namespace: String,
        /// The last failure of the KuryrNetwork, when one is known.
        why: Option<String>,
    },
    /// A namespace's network still has pods' ports (they are going with
    /// their pods): its finalizer stays until they are gone.
    #[error("{count} pod port(s) still on the network of namespace {namespace}")]
    PortsRemain {
        /// The namespace.
        namespace: String,
        /// How many.
        count: usize,
    },
    /// Removing or adding a finalizer failed, or the work it guards did.
    #[error("{}", finalizer_message(.0))]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
}

/// The work's own error as is (not kube-rs' "failed to apply object: "
/// before it); a finalizer's own failure as kube-rs tells it.
fn finalizer_message(e: &kube::runtime::finalizer::Error<Error>) -> String {
    match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e.to_string(),
        other => other.to_string(),
    }
}

fn why_suffix(why: &Option<String>) -> String {
    why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
}

impl Error {
    /// A Neutron failure while doing `action`.
    pub fn neutron(action: impl Into<String>, source: openstack::Error) -> Error {
        Error::Neutron { action: action.into(), source }
    }

    /// The short kind of the cause, PascalCase: the Event's `action` (so a
    /// new cause makes a new Event rather than a repeat of the old one)
    /// and the metric's error label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Neutron { source, .. } => neutron_kind(source),
            Error::Unanswered { .. } => "NeutronUnreachable",
            Error::Missing { .. } => "NotFound",
            Error::Kube(_) => "KubernetesApi",
            Error::Field(_) => "BadObject",
            Error::Vif(VifError::NotBound { .. }) => "PortNotBound",
            Error::Vif(_) => "BadPort",
            Error::NetworkNotReady { .. } => "NetworkNotReady",
            Error::PortsRemain { .. } => "PortsRemain",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.kind(),
                _ => "KubernetesApi",
            },
        }
    }

    /// Whether the failure is only waiting on another object (told in an
    /// Event only once it lasts, see [`tells_after`]).
    pub fn is_waiting(&self) -> bool {
        matches!(self.kind(), "NetworkNotReady" | "PortNotBound" | "PortsRemain")
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        Error::Finalizer(Box::new(e))
    }
}

/// The kind of a Neutron failure, from its status and Neutron's error
/// type (never from its message).
fn neutron_kind(e: &openstack::Error) -> &'static str {
    if e.is_connect() || e.is_timeout() || e.is_transport() || e.is_server_error() {
        return "NeutronUnreachable";
    }
    match e.neutron_type() {
        Some("OverQuota") => "OverQuota",
        Some("IpAddressGenerationFailure") | Some("SubnetAllocationError") => "SubnetFull",
        Some(t) if t.ends_with("NotFound") => "NotFound",
        _ if e.is_not_found() => "NotFound",
        _ => "NeutronError",
    }
}

/// How long to wait before retrying after `err`, the `failures`-th in a
/// row: a wait on another object is looked at again every second; a
/// failure backs off ([`backoff`]).
pub fn retry_after(err: &Error, failures: u32) -> Duration {
    if err.is_waiting() {
        Duration::from_secs(1)
    } else {
        backoff(failures)
    }
}

/// How long to wait before the `failures`-th retry (1-based): 0.5 s,
/// doubling, at most 30 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_millis(500 << exp).min(Duration::from_secs(30))
}

/// How many failures in a row of a waiting kind pass before an Event tells
/// it (about 15 s): a namespace's network is usually there in a second.
pub fn tells_after() -> u32 {
    5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(70), Duration::from_secs(30));
        assert_eq!(backoff(0), Duration::from_millis(500));
        let waiting = Error::PortsRemain { namespace: "shop".into(), count: 2 };
        assert_eq!(retry_after(&waiting, 9), Duration::from_secs(1));
        let field = Error::from(MissingField { object: "pod a/b".into(), field: "metadata.uid" });
        assert_eq!(retry_after(&field, 3), Duration::from_secs(2));
    }

    #[test]
    fn kinds_name_the_cause() {
        let missing = Error::Missing {
            what: "subnetpool",
            id: "sp1".into(),
            option: "[namespace_subnet] pod_subnet_pool",
        };
        assert_eq!(missing.kind(), "NotFound");
        assert_eq!(
            missing.to_string(),
            "subnetpool sp1 ([namespace_subnet] pod_subnet_pool) does not exist in Neutron"
        );
        let waiting = Error::NetworkNotReady { namespace: "shop".into(), why: None };
        assert!(waiting.is_waiting());
        assert!(!missing.is_waiting());
        let why = Error::NetworkNotReady { namespace: "shop".into(), why: Some("no pool".into()) };
        assert!(why.to_string().ends_with("not populated yet: no pool"), "{why}");
        let field = Error::from(MissingField { object: "pod a/b".into(), field: "metadata.uid" });
        assert_eq!(field.kind(), "BadObject");
        let wrapped = Error::from(kube::runtime::finalizer::Error::ApplyFailed(missing));
        assert_eq!(wrapped.kind(), "NotFound");
        assert!(wrapped.to_string().starts_with("subnetpool sp1 "), "{wrapped}");
    }
}
