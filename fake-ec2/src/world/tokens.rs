//! Client tokens the world remembers for idempotent retries (`RunInstances`, `CreateFleet`),
//! bounded as EC2 bounds them, so a long run's memory stays flat.
//!
//! - Age: EC2's "Ensuring idempotency" page (EC2 API Reference, `Run_Instance_Idempotency.html`)
//!   says a client token "is valid for at least 24 hours" (for `RunInstances`, after the instance
//!   terminates). We keep a token for [`TOKEN_TTL_MS`], 24 hours of world time after the request
//!   that first used it: a retry inside that window gets the first answer again; after it, the
//!   token starts a new request, as EC2 may once the validity is over.
//! - Count: EC2 publishes no count bound. We keep the [`TOKEN_CAP`] most recently used tokens of
//!   each kind; an older one is forgotten early, as if it had expired. Retries come within
//!   seconds, so only a client reusing a token after thousands of newer ones can see the difference.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// How long (world time) a client token is remembered after its first use.
pub const TOKEN_TTL_MS: Millis = 24 * 3600 * 1000;

/// How many tokens of one kind are remembered at most.
pub const TOKEN_CAP: usize = 10_000;

/// What the requests with each remembered token answered, by token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientTokens<T> {
    by_token: BTreeMap<String, (Millis, T)>,
    /// Tokens by first use, oldest first (world time never goes back).
    by_age: VecDeque<(Millis, String)>,
}

impl<T> Default for ClientTokens<T> {
    fn default() -> Self {
        Self { by_token: BTreeMap::new(), by_age: VecDeque::new() }
    }
}

impl<T> ClientTokens<T> {
    /// What the request that used `token` answered, if `token` is still remembered at `now`.
    pub fn get(&self, token: &str, now: Millis) -> Option<&T> {
        self.by_token.get(token).filter(|(at, _)| now - at < TOKEN_TTL_MS).map(|(_, v)| v)
    }

    /// Remembers `value` as what `token` answered at `now`, forgetting what is past the bounds.
    pub fn insert(&mut self, token: String, value: T, now: Millis) {
        self.forget_expired(now);
        if self.by_token.insert(token.clone(), (now, value)).is_some() {
            // Only a token past its age, not yet dropped, is used again: keep one entry per token.
            self.by_age.retain(|(_, t)| *t != token);
        }
        self.by_age.push_back((now, token));
        while self.by_age.len() > TOKEN_CAP {
            self.pop_oldest();
        }
    }

    /// Forgets every token past its age at `now`.
    pub fn forget_expired(&mut self, now: Millis) {
        while self.by_age.front().is_some_and(|(at, _)| now - at >= TOKEN_TTL_MS) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, token)) = self.by_age.pop_front() {
            self.by_token.remove(&token);
        }
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_answers_the_same_inside_its_day_and_is_new_after() {
        let mut t = ClientTokens::default();
        t.insert("a".into(), 1, 1_000);
        assert_eq!(t.get("a", 1_000), Some(&1));
        assert_eq!(t.get("a", 1_000 + TOKEN_TTL_MS - 1), Some(&1));
        assert_eq!(t.get("a", 1_000 + TOKEN_TTL_MS), None);
        assert_eq!(t.get("b", 1_000), None);
        // Used again after its day: a new answer, remembered for a new day.
        t.insert("a".into(), 2, 1_000 + TOKEN_TTL_MS);
        assert_eq!(t.get("a", 1_000 + 2 * TOKEN_TTL_MS - 1), Some(&2));
        assert_eq!((t.len(), t.by_age.len()), (1, 1));
    }

    #[test]
    fn expired_tokens_are_dropped_when_a_new_one_comes() {
        let mut t = ClientTokens::default();
        for i in 0..100 {
            t.insert(format!("t{i}"), i, i * 1_000);
        }
        assert_eq!(t.len(), 100);
        // 50 s after the 50th token's day began, the first 51 are past theirs.
        t.insert("late".into(), 0, 50_000 + TOKEN_TTL_MS);
        assert_eq!(t.len(), 100 - 51 + 1);
        assert_eq!(t.get("t50", 50_000 + TOKEN_TTL_MS), None);
        assert_eq!(t.get("t51", 50_000 + TOKEN_TTL_MS), Some(&51));
    }

    #[test]
    fn the_count_bound_forgets_the_oldest_first() {
        let mut t = ClientTokens::default();
        for i in 0..TOKEN_CAP + 5 {
            t.insert(format!("t{i}"), i, 0);
        }
        assert_eq!(t.len(), TOKEN_CAP);
        assert_eq!(t.by_age.len(), TOKEN_CAP);
        assert_eq!(t.get("t4", 0), None);
        assert_eq!(t.get("t5", 0), Some(&5));
        assert_eq!(t.get(&format!("t{}", TOKEN_CAP + 4), 0), Some(&(TOKEN_CAP + 4)));
    }
}
