//! The interruption queue's messages as the autoscaler met them: every message fake-ec2's rules
//! sent (from the event log's deliveries) and whether the autoscaler received it. A message counts
//! as received once it was seen in flight (received, not yet deleted) or it left its queue before
//! its retention ran out (only a receive lets a client delete it).

use std::collections::BTreeMap;

use serde::Serialize;

/// Messages sent and received, by kind (`interruption warning`, `state change`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MessageCounts {
    pub by_kind: BTreeMap<String, KindCount>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct KindCount {
    pub sent: usize,
    pub received: usize,
}

impl MessageCounts {
    pub fn sent(&self) -> usize {
        self.by_kind.values().map(|c| c.sent).sum()
    }

    pub fn received(&self) -> usize {
        self.by_kind.values().map(|c| c.received).sum()
    }
}

/// One sent message being followed.
#[derive(Clone, Debug)]
struct Followed {
    kind: String,
    queue: String,
    sent_ms: i64,
    received: bool,
}

/// What a queue holds now: message id -> received at least once.
pub type QueueNow = BTreeMap<String, bool>;

/// Follows every message sent to the queues until it is received or expires.
#[derive(Clone, Debug, Default)]
pub struct MessageTracker {
    messages: BTreeMap<String, Followed>,
}

impl MessageTracker {
    pub fn sent(&mut self, kind: &str, queue: &str, message_id: &str, sent_ms: i64) {
        self.messages.entry(message_id.to_owned()).or_insert_with(|| Followed {
            kind: kind.to_owned(),
            queue: queue.to_owned(),
            sent_ms,
            received: false,
        });
    }

    /// The queues the followed messages went to.
    pub fn queues(&self) -> Vec<String> {
        let mut q: Vec<String> = self.messages.values().map(|m| m.queue.clone()).collect();
        q.sort();
        q.dedup();
        q
    }

    /// A look at `queue` at world time `now_ms`; `retention_ms` is how long it keeps a message.
    pub fn observe(&mut self, queue: &str, now: &QueueNow, now_ms: i64, retention_ms: i64) {
        for (id, m) in self.messages.iter_mut().filter(|(_, m)| !m.received && m.queue == queue) {
            m.received = match now.get(id) {
                Some(received) => *received,
                None => now_ms < m.sent_ms.saturating_add(retention_ms),
            };
        }
    }

    pub fn counts(&self) -> MessageCounts {
        let mut c = MessageCounts::default();
        for m in self.messages.values() {
            let k = c.by_kind.entry(m.kind.clone()).or_default();
            k.sent += 1;
            k.received += usize::from(m.received);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_received_when_seen_in_flight_or_gone_before_it_expires() {
        let mut t = MessageTracker::default();
        t.sent("interruption warning", "q", "m1", 0);
        t.sent("state change", "q", "m2", 0);
        t.sent("state change", "q", "m3", 0);
        t.sent("state change", "other", "m4", 0);
        let mut now = QueueNow::new();
        now.insert("m1".into(), true);
        now.insert("m2".into(), false);
        t.observe("q", &now, 1_000, 300_000);
        // m3 left the queue within retention: deleted after a receive.
        let c = t.counts();
        assert_eq!(c.by_kind["interruption warning"], KindCount { sent: 1, received: 1 });
        assert_eq!(c.by_kind["state change"], KindCount { sent: 3, received: 1 });
        // m2 expires unread: never received.
        t.observe("q", &QueueNow::new(), 400_000, 300_000);
        assert_eq!(t.counts().by_kind["state change"].received, 1);
        assert_eq!((t.counts().sent(), t.counts().received()), (4, 2));
        assert_eq!(t.queues(), ["other", "q"]);
    }
}
