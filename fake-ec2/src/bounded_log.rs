//! An in-memory log bounded by bytes: the request log and the event log keep their newest
//! entries up to a budget, so a long run's memory stays flat whatever its traffic. A count bound
//! would not: one entry of the event log is a few hundred bytes, one with an FIS note a few KiB.
//! The file sinks beside them (`--request-log`, `--event-log`) keep everything.

use std::collections::VecDeque;

/// What each in-memory log keeps by default (`serve --log-budget-mib`).
pub const DEFAULT_BUDGET_BYTES: usize = 8 << 20;

/// Entries with their estimated sizes, oldest first, within a byte budget.
#[derive(Debug)]
pub struct BoundedLog<T> {
    entries: VecDeque<(T, usize)>,
    bytes: usize,
    budget: usize,
    dropped: u64,
}

impl<T> Default for BoundedLog<T> {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET_BYTES)
    }
}

impl<T> BoundedLog<T> {
    pub fn with_budget(budget: usize) -> Self {
        Self { entries: VecDeque::new(), bytes: 0, budget, dropped: 0 }
    }

    /// Changes the budget, dropping the oldest entries that no longer fit.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.trim();
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Appends `entry`, counted as `bytes`, and drops the oldest entries past the budget. The
    /// newest entry is always kept, even alone over the budget.
    pub fn push(&mut self, entry: T, bytes: usize) {
        self.entries.push_back((entry, bytes));
        self.bytes += bytes;
        self.trim();
    }

    fn trim(&mut self) {
        while self.bytes > self.budget && self.entries.len() > 1 {
            if let Some((_, b)) = self.entries.pop_front() {
                self.bytes -= b;
                self.dropped += 1;
            }
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.entries.iter().map(|(e, _)| e)
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries were dropped to stay within the budget, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The estimated bytes of the entries kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entries from index `skip` on (0 is the oldest kept).
    pub fn skip(&self, skip: usize) -> impl Iterator<Item = &T> {
        self.entries.range(skip.min(self.entries.len())..).map(|(e, _)| e)
    }

    /// How many leading entries satisfy `pred` (entries are in order for it).
    pub fn partition_point(&self, pred: impl Fn(&T) -> bool) -> usize {
        self.entries.partition_point(|(e, _)| pred(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_entries_within_the_budget() {
        let mut log = BoundedLog::with_budget(10);
        for i in 0..5 {
            log.push(i, 4);
        }
        assert_eq!(log.iter().copied().collect::<Vec<_>>(), vec![3, 4], "two entries of 4 fit in 10");
        assert_eq!((log.bytes(), log.dropped()), (8, 3));
        log.set_budget(4);
        assert_eq!(log.iter().copied().collect::<Vec<_>>(), vec![4]);
        log.push(5, 100);
        assert_eq!(log.iter().copied().collect::<Vec<_>>(), vec![5], "an entry over the budget alone is kept");
        assert_eq!(log.skip(1).count(), 0);
        assert_eq!(log.partition_point(|e| *e < 5), 0);
    }
}
