//! Leader election through a `coordination.k8s.io/v1` Lease, as controller-runtime does it: the
//! holder renews every few seconds; another replica takes over only after the lease expired.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);

pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// Whether `holder` may take a lease last renewed at `renewed` lasting `duration_s`, at `now`.
pub fn may_acquire(spec: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return true;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    match &spec.renew_time {
        Some(MicroTime(t)) => now.as_second() > t.as_second() + duration,
        None => true,
    }
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElector { api: Api::namespaced(client, namespace), name: name.to_owned(), identity: identity.to_owned() }
    }

    /// Blocks until this process holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "successfully acquired lease");
                    return;
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(lease = %self.name, error = %err, "acquiring lease"),
            }
            tokio::time::sleep(RENEW_INTERVAL).await;
        }
    }

    /// Renews until a renewal fails for longer than the lease lasts; then returns (the caller
    /// exits, so two leaders never act at once).
    pub async fn hold(&self) {
        let mut last_ok = std::time::Instant::now();
        loop {
            tokio::time::sleep(RENEW_INTERVAL).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = std::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "lease taken by another replica");
                    return;
                }
                Err(err) => {
                    tracing::warn!(lease = %self.name, error = %err, "renewing lease");
                    if last_ok.elapsed() > LEASE_DURATION {
                        tracing::error!(lease = %self.name, "leader election lost");
                        return;
                    }
                }
            }
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let spec = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            renew_time: Some(MicroTime(now)),
            acquire_time: acquire.or(Some(MicroTime(now))),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                    spec: Some(spec(0, None)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Some(mut lease) => {
                let current = lease.spec.clone().unwrap_or_default();
                if !may_acquire(&current, &self.identity, now) {
                    return Ok(false);
                }
                let ours = current.holder_identity.as_deref() == Some(self.identity.as_str());
                let transitions = current.lease_transitions.unwrap_or(0) + i32::from(!ours);
                lease.spec = Some(spec(transitions, if ours { current.acquire_time } else { None }));
                // The resourceVersion in `lease` makes this a compare-and-swap: a concurrent
                // taker gets 409 and stays a follower.
                match self.api.replace(&self.name, &PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_held_lease_is_taken_only_after_it_expires() {
        let renewed = Timestamp::from_second(1_000).unwrap();
        let spec = LeaseSpec {
            holder_identity: Some("other".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed)),
            ..Default::default()
        };
        assert!(!may_acquire(&spec, "me", Timestamp::from_second(1_010).unwrap()));
        assert!(may_acquire(&spec, "me", Timestamp::from_second(1_016).unwrap()));
        assert!(may_acquire(&spec, "other", Timestamp::from_second(1_001).unwrap()));
        assert!(may_acquire(&LeaseSpec::default(), "me", renewed));
    }
}
