//! EC2's request-rate throttling: the documented token buckets, refilled on the world clock.
//!
//! Buckets and rates: https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
//! (summarised in shared/reference/peers.md §8.6). Refilling on world time keeps throttling
//! deterministic under a manual clock; under a scaled clock buckets refill that much faster.
//! Which bucket an action draws from is in the action table (`crate::ec2::actions`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::{ThrottleMode, ThrottlingConfig};
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    NonMutating,
    UnfilteredNonMutating,
    Mutating,
    RunInstances,
    StartInstances,
    TerminateInstances,
    CreateTags,
    DeleteTags,
    /// Resource buckets count instances, not calls.
    RunInstancesResource,
    StartInstancesResource,
    StopInstancesResource,
    TerminateInstancesResource,
}

impl Category {
    pub const ALL: [Category; 12] = [
        Category::NonMutating,
        Category::UnfilteredNonMutating,
        Category::Mutating,
        Category::RunInstances,
        Category::StartInstances,
        Category::TerminateInstances,
        Category::CreateTags,
        Category::DeleteTags,
        Category::RunInstancesResource,
        Category::StartInstancesResource,
        Category::StopInstancesResource,
        Category::TerminateInstancesResource,
    ];

    /// (bucket size, refill per second)
    fn documented(self) -> (f64, f64) {
        match self {
            Self::NonMutating => (100.0, 20.0),
            Self::UnfilteredNonMutating => (50.0, 10.0),
            Self::Mutating => (50.0, 5.0),
            Self::RunInstances | Self::StartInstances => (5.0, 2.0),
            Self::TerminateInstances => (100.0, 5.0),
            Self::CreateTags | Self::DeleteTags => (100.0, 10.0),
            Self::RunInstancesResource | Self::StartInstancesResource => (1000.0, 2.0),
            Self::StopInstancesResource | Self::TerminateInstancesResource => (1000.0, 20.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub size: f64,
    pub refill_per_sec: f64,
    pub tokens: f64,
    #[serde(skip)]
    last: Millis,
}

impl Bucket {
    fn refill(&mut self, now: Millis) {
        if now > self.last {
            self.tokens = (self.tokens + (now - self.last) as f64 / 1000.0 * self.refill_per_sec).min(self.size);
            self.last = now;
        }
    }
}

/// What a state file keeps of [`Throttle`]: each bucket's tokens and last refill.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ThrottleState {
    mode: ThrottleMode,
    scale: f64,
    buckets: BTreeMap<Category, (f64, Millis)>,
    refused: BTreeMap<Category, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throttle {
    pub mode: ThrottleMode,
    pub scale: f64,
    pub buckets: BTreeMap<Category, Bucket>,
    /// Requests refused so far, by category.
    pub refused: BTreeMap<Category, u64>,
}

impl Throttle {
    pub fn new(cfg: &ThrottlingConfig, now: Millis) -> Self {
        let mut t = Self { mode: cfg.mode, scale: cfg.scale, buckets: BTreeMap::new(), refused: BTreeMap::new() };
        t.reset(now);
        t
    }

    pub fn reset(&mut self, now: Millis) {
        self.buckets = Category::ALL
            .into_iter()
            .map(|c| {
                let (size, rate) = c.documented();
                let size = (size * self.scale).max(1.0);
                (c, Bucket { size, refill_per_sec: rate * self.scale, tokens: size, last: now })
            })
            .collect();
    }

    /// The buckets' fill and refusals, for a state file.
    pub fn snapshot(&self) -> ThrottleState {
        ThrottleState {
            mode: self.mode,
            scale: self.scale,
            buckets: self.buckets.iter().map(|(c, b)| (*c, (b.tokens, b.last))).collect(),
            refused: self.refused.clone(),
        }
    }

    /// Puts back what [`Throttle::snapshot`] kept.
    pub fn restore(&mut self, s: ThrottleState, now: Millis) {
        self.configure(s.mode, s.scale, now);
        for (c, (tokens, last)) in s.buckets {
            if let Some(b) = self.buckets.get_mut(&c) {
                b.tokens = tokens.min(b.size);
                b.last = last;
            }
        }
        self.refused = s.refused;
    }

    pub fn configure(&mut self, mode: ThrottleMode, scale: f64, now: Millis) {
        self.mode = mode;
        self.scale = scale;
        self.reset(now);
    }

    /// Takes `n` tokens from a bucket, or refuses without taking any.
    pub fn try_take(&mut self, cat: Category, n: f64, now: Millis) -> bool {
        if self.mode == ThrottleMode::Off {
            return true;
        }
        let Some(b) = self.buckets.get_mut(&cat) else {
            return true;
        };
        b.refill(now);
        if b.tokens >= n {
            b.tokens -= n;
            true
        } else {
            *self.refused.entry(cat).or_default() += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_then_refills_on_the_clock() {
        let mut t = Throttle::new(&ThrottlingConfig::default(), 0);
        let taken = (0..60).filter(|_| t.try_take(Category::Mutating, 1.0, 0)).count();
        assert_eq!(taken, 50);
        assert_eq!(t.refused.get(&Category::Mutating), Some(&10));
        assert!(!t.try_take(Category::Mutating, 1.0, 100));
        // 5 tokens a second.
        assert!(t.try_take(Category::Mutating, 1.0, 200));
        let after_1s = (0..10).filter(|_| t.try_take(Category::Mutating, 1.0, 1_200)).count();
        assert_eq!(after_1s, 5);
    }

    #[test]
    fn off_and_scale() {
        let mut off = Throttle::new(&ThrottlingConfig { mode: ThrottleMode::Off, scale: 1.0 }, 0);
        assert!((0..10_000).all(|_| off.try_take(Category::RunInstances, 1.0, 0)));
        let mut small = Throttle::new(&ThrottlingConfig { mode: ThrottleMode::Documented, scale: 0.1 }, 0);
        assert_eq!((0..100).filter(|_| small.try_take(Category::Mutating, 1.0, 0)).count(), 5);
    }
}
