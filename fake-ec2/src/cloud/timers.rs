//! The one time-ordered schedule every service's timers share: due time first, then the order in
//! which they were set, so services never race each other at the same instant.

use std::collections::BTreeMap;

use crate::clock::Millis;
use crate::world::instances::Timer as Ec2Timer;

/// Something a service asked to happen at a time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Timer {
    /// An EC2 lifecycle or market timer, applied by the world.
    Ec2(Ec2Timer),
    /// The next step of an FIS experiment (by id).
    Experiment(String),
}

#[derive(Debug, Default)]
pub struct Timers {
    entries: BTreeMap<(Millis, u64), Timer>,
    seq: u64,
}

impl Timers {
    pub fn schedule(&mut self, at: Millis, t: Timer) {
        self.seq += 1;
        self.entries.insert((at, self.seq), t);
    }

    /// Earliest pending timer.
    pub fn next_at(&self) -> Option<Millis> {
        self.entries.keys().next().map(|(at, _)| *at)
    }

    /// Takes the earliest timer due by `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<(Millis, Timer)> {
        let entry = self.entries.first_entry()?;
        let (at, _) = *entry.key();
        (at <= now).then(|| (at, entry.remove()))
    }

    /// Every pending timer `(due, order set, timer)` and the next order number, for a state file.
    pub fn snapshot(&self) -> (Vec<(Millis, u64, Timer)>, u64) {
        (self.entries.iter().map(|((at, n), t)| (*at, *n, t.clone())).collect(), self.seq)
    }

    pub fn restore(entries: Vec<(Millis, u64, Timer)>, seq: u64) -> Self {
        Self { entries: entries.into_iter().map(|(at, n, t)| ((at, n), t)).collect(), seq }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_by_time_then_by_the_order_set() {
        let mut t = Timers::default();
        t.schedule(20, Timer::Experiment("b".into()));
        t.schedule(10, Timer::Experiment("a".into()));
        t.schedule(20, Timer::Ec2(Ec2Timer::MarketTick));
        assert_eq!(t.next_at(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(20), Some((10, Timer::Experiment("a".into()))));
        assert_eq!(t.pop_due(20), Some((20, Timer::Experiment("b".into()))));
        assert_eq!(t.pop_due(20), Some((20, Timer::Ec2(Ec2Timer::MarketTick))));
        assert!(t.is_empty());
    }
}
