//! Leader election (`[kubernetes] controller_ha = true`): replicas share a
//! `coordination.k8s.io/v1` Lease named `kuryr-controller`; the one holding
//! it reconciles, the others stand by. [`decide`] is the whole policy
//! (acquire, renew, or stand by), pure; [`Elector`] reads and writes the
//! Lease with optimistic concurrency (`resourceVersion`), so two replicas
//! racing for an expired Lease cannot both win. docs/kubernetes.md
//! § Leader election.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// The Lease's name.
pub const LEASE_NAME: &str = "kuryr-controller";

/// How long a Lease is good for without a renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// How long the holder keeps leading without a successful renewal:
/// shorter than [`LEASE_DURATION`], so it has stopped before a standby may
/// take the Lease.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// How often the holder renews it, and a standby looks at it.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// What a replica does with the Lease it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Nobody holds it, or its holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Another replica holds it until `expires`: wait.
    Standby {
        /// The holder.
        holder: String,
        /// When it expires unless renewed.
        expires: Timestamp,
    },
}

/// The decision of replica `me` at `now` on `lease` (`None`: there is no
/// Lease object).
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else { return Decision::Create };
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    let Some(holder) = holder else { return Decision::Acquire };
    if holder == me {
        return Decision::Renew;
    }
    let seconds = spec.lease_duration_seconds.unwrap_or(LEASE_DURATION.as_secs() as i32);
    let last = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0);
    match last {
        Some(last) => {
            let expires = last + SignedDuration::from_secs(i64::from(seconds.max(0)));
            if expires <= now {
                Decision::Acquire
            } else {
                Decision::Standby { holder: holder.to_string(), expires }
            }
        }
        // Held but never renewed: a broken writer; take it.
        None => Decision::Acquire,
    }
}

/// The spec to write for `decision` (not for a standby) by `me` at `now`.
pub fn spec_for(
    decision: &Decision,
    old: Option<&LeaseSpec>,
    me: &str,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
    let base = LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        renew_time: Some(MicroTime(now)),
        ..LeaseSpec::default()
    };
    match decision {
        Decision::Create => Some(LeaseSpec {
            acquire_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..base
        }),
        Decision::Acquire => Some(LeaseSpec {
            acquire_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions + 1),
            ..base
        }),
        Decision::Renew => Some(LeaseSpec {
            acquire_time: old.and_then(|s| s.acquire_time.clone()).or(Some(MicroTime(now))),
            lease_transitions: Some(transitions),
            ..base
        }),
        Decision::Standby { .. } => None,
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    me: String,
}

impl Elector {
    /// Replica `me` electing through the Lease in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, me: String) -> Elector {
        Elector { api: Api::namespaced(client, namespace), me }
    }

    /// One round: read the Lease, decide, write. `Ok(true)` while we hold
    /// it; a write that lost a race is `Ok(false)`.
    pub async fn round(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let lease = self.api.get_opt(LEASE_NAME).await?;
        let spec = lease.as_ref().and_then(|l| l.spec.as_ref());
        let decision = decide(spec, &self.me, now);
        let Some(new_spec) = spec_for(&decision, spec, &self.me, now) else {
            return Ok(false);
        };
        let written = match lease {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..ObjectMeta::default() },
                    spec: Some(new_spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            // The old resourceVersion rides along: a concurrent writer
            // makes this a 409, not a second leader.
            Some(mut lease) => {
                lease.spec = Some(new_spec);
                self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(_) => {
                if decision != Decision::Renew {
                    info!(identity = %self.me, "acquired the leader Lease");
                }
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lets the Lease go (on shutdown), so a standby takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(LEASE_NAME).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.me.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(err) = self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
            warn!(%err, "releasing the leader Lease");
        }
    }

    /// Runs rounds until `stop`, telling `leading` whether we hold the
    /// Lease. Leadership is lost when no renewal succeeds for
    /// [`RENEW_DEADLINE`], before another replica may take it.
    pub async fn run(self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut last_ok: Option<tokio::time::Instant> = None;
        loop {
            match self.round().await {
                Ok(true) => {
                    last_ok = Some(tokio::time::Instant::now());
                    leading.send_if_modified(|l| !std::mem::replace(l, true));
                }
                Ok(false) => {
                    last_ok = None;
                    leading.send_if_modified(|l| std::mem::replace(l, false));
                }
                Err(err) => {
                    warn!(%err, "leader election round failed");
                    if last_ok.is_some_and(|at| at.elapsed() >= RENEW_DEADLINE) {
                        last_ok = None;
                        leading.send_if_modified(|l| std::mem::replace(l, false));
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY_PERIOD) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        if *leading.borrow() {
            self.release().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("time")
    }

    fn held(by: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            acquire_time: Some(MicroTime(at(0))),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn who_leads() {
        assert_eq!(decide(None, "a", at(0)), Decision::Create);
        assert_eq!(decide(Some(&LeaseSpec::default()), "a", at(0)), Decision::Acquire);
        assert_eq!(decide(Some(&held("a", 0)), "a", at(100)), Decision::Renew);
        assert_eq!(
            decide(Some(&held("b", 0)), "a", at(14)),
            Decision::Standby { holder: "b".into(), expires: at(15) }
        );
        assert_eq!(decide(Some(&held("b", 0)), "a", at(15)), Decision::Acquire, "expired");
        let released = LeaseSpec { holder_identity: Some(String::new()), ..held("b", 0) };
        assert_eq!(decide(Some(&released), "a", at(1)), Decision::Acquire);
        let never = LeaseSpec { renew_time: None, acquire_time: None, ..held("b", 0) };
        assert_eq!(decide(Some(&never), "a", at(1)), Decision::Acquire);
    }

    #[test]
    fn a_holder_stops_before_its_lease_can_be_taken() {
        assert!(RENEW_DEADLINE + RETRY_PERIOD < LEASE_DURATION);
    }

    #[test]
    fn what_is_written() {
        let old = held("b", 0);
        let taken = spec_for(&Decision::Acquire, Some(&old), "a", at(20)).expect("spec");
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(20))));
        let mine = held("a", 5);
        let renewed = spec_for(&Decision::Renew, Some(&mine), "a", at(7)).expect("spec");
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(0))), "kept");
        assert_eq!(renewed.renew_time, Some(MicroTime(at(7))));
        assert_eq!(renewed.lease_transitions, Some(3));
        let created = spec_for(&Decision::Create, None, "a", at(1)).expect("spec");
        assert_eq!(created.lease_duration_seconds, Some(15));
        let standby = Decision::Standby { holder: "b".into(), expires: at(15) };
        assert!(spec_for(&standby, Some(&old), "a", at(1)).is_none());
    }
}
