//! Which pod events go out, by Karpenter's recorder rules (`pkg/events/recorder.go` and
//! `pkg/controllers/provisioning/scheduling/events.go`): a pod's `Nominated` event is sent once per
//! 2 minutes and all pods' together at most 5 a second (burst 10); its `FailedScheduling` once per
//! 5 minutes. A scale-up of 10,000 pods thus writes a handful of events instead of 10,000, and the
//! API server's time goes to the pods.
//!
//! Pure logic: the caller passes the time (the controllers' clock).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a pod's `Nominated` event suppresses the next one (Karpenter's default dedupe timeout).
const NOMINATED_DEDUPE: Duration = Duration::from_secs(120);
/// How long a pod's `FailedScheduling` event suppresses the next one.
const FAILED_SCHEDULING_DEDUPE: Duration = Duration::from_secs(300);
/// Karpenter's `PodNominationRateLimiter`: 5 events a second, burst 10, across all pods.
const NOMINATION_RATE_PER_S: f64 = 5.0;
const NOMINATION_BURST: f64 = 10.0;
/// Expired keys are dropped at most this often (go-cache's cleanup interval in Karpenter).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A token bucket (client-go's `NewTokenBucketRateLimiter` with `TryAccept`): full at first.
#[derive(Debug)]
struct TokenBucket {
    per_s: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    fn new(per_s: f64, burst: f64) -> Self {
        Self { per_s, burst, tokens: burst, last: None }
    }

    /// Takes a token if one is there.
    fn try_accept(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_s;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The recorder's memory: when each (reason, pod uid) may be sent again, and the nomination bucket.
#[derive(Debug)]
pub struct EventGate {
    /// Keyed look-ups only, never iterated into an output.
    until: HashMap<String, Instant>,
    nominations: TokenBucket,
    last_sweep: Option<Instant>,
}

impl Default for EventGate {
    fn default() -> Self {
        Self {
            until: HashMap::new(),
            nominations: TokenBucket::new(NOMINATION_RATE_PER_S, NOMINATION_BURST),
            last_sweep: None,
        }
    }
}

impl EventGate {
    /// Whether the pod `uid`'s `Nominated` event is sent now.
    pub fn admit_nominated(&mut self, uid: &str, now: Instant) -> bool {
        // As Karpenter: the dedupe entry is taken before the rate limiter is asked, so a pod whose
        // event the limiter drops gets none until the entry expires.
        self.first_within("nominated", uid, NOMINATED_DEDUPE, now) && self.nominations.try_accept(now)
    }

    /// Whether the pod `uid`'s `FailedScheduling` event is sent now.
    pub fn admit_failed_scheduling(&mut self, uid: &str, now: Instant) -> bool {
        self.first_within("failedscheduling", uid, FAILED_SCHEDULING_DEDUPE, now)
    }

    fn first_within(&mut self, reason: &str, uid: &str, timeout: Duration, now: Instant) -> bool {
        self.sweep(now);
        let key = format!("{reason}-{uid}");
        if self.until.get(&key).is_some_and(|&until| now < until) {
            return false;
        }
        self.until.insert(key, now + timeout);
        true
    }

    fn sweep(&mut self, now: Instant) {
        if self.last_sweep.is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY) {
            return;
        }
        self.last_sweep = Some(now);
        self.until.retain(|_, until| now < *until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominations_pass_a_burst_of_ten_then_five_a_second() {
        let mut gate = EventGate::default();
        let t0 = Instant::now();
        let sent = (0..1_000).filter(|i| gate.admit_nominated(&format!("pod-{i}"), t0)).count();
        assert_eq!(sent, 10, "the burst");
        let later = t0 + Duration::from_secs(1);
        let sent = (1_000..2_000).filter(|i| gate.admit_nominated(&format!("pod-{i}"), later)).count();
        assert_eq!(sent, 5, "one second refills five tokens");
    }

    #[test]
    fn a_pod_is_nominated_once_per_two_minutes_even_when_the_bucket_is_full() {
        let mut gate = EventGate::default();
        let t0 = Instant::now();
        assert!(gate.admit_nominated("a", t0));
        assert!(!gate.admit_nominated("a", t0 + Duration::from_secs(119)));
        assert!(gate.admit_nominated("a", t0 + Duration::from_secs(120)));
    }

    #[test]
    fn a_pod_the_limiter_dropped_waits_for_its_dedupe_entry_as_in_karpenter() {
        let mut gate = EventGate::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(gate.admit_nominated(&format!("p{i}"), t0));
        }
        assert!(!gate.admit_nominated("late", t0), "no token left");
        assert!(!gate.admit_nominated("late", t0 + Duration::from_secs(5)), "deduped although tokens are back");
    }

    #[test]
    fn failed_scheduling_is_deduped_for_five_minutes_and_not_rate_limited() {
        let mut gate = EventGate::default();
        let t0 = Instant::now();
        assert_eq!((0..100).filter(|i| gate.admit_failed_scheduling(&format!("p{i}"), t0)).count(), 100);
        assert!(!gate.admit_failed_scheduling("p1", t0 + Duration::from_secs(299)));
        assert!(gate.admit_failed_scheduling("p1", t0 + Duration::from_secs(300)));
        assert!(gate.admit_nominated("p1", t0), "reasons are deduped apart");
    }

    #[test]
    fn expired_entries_are_swept() {
        let mut gate = EventGate::default();
        let t0 = Instant::now();
        for i in 0..100 {
            gate.admit_failed_scheduling(&format!("p{i}"), t0);
        }
        assert_eq!(gate.until.len(), 100);
        gate.admit_failed_scheduling("other", t0 + FAILED_SCHEDULING_DEDUPE);
        assert_eq!(gate.until.len(), 1, "only the new key remains");
    }
}
