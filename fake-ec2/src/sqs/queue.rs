//! One standard queue as a pure state machine over world time: messages, delays, visibility
//! timeouts, receipt handles, retention and the counters `GetQueueAttributes` reports.
//!
//! Receipt handles: every receive of a message issues a new handle and makes the older ones stale.
//! Following the `DeleteMessage` reference ("you must provide the most recently received
//! ReceiptHandle for the message (otherwise, the request succeeds, but the message will not be
//! deleted)"), a stale handle is accepted by `DeleteMessage` and deletes nothing, and a handle of a
//! message that is already gone is accepted too (deletes are idempotent).
//! `ChangeMessageVisibility` needs the latest handle: a stale one gets `ReceiptHandleIsInvalid`,
//! the latest one of a message that is visible again gets `MessageNotInflight`, and one whose
//! message is gone gets SQS's `InvalidParameterValue` ("Message does not exist or is not
//! available for visibility timeout change"). A handle this queue never issued (wrong format,
//! another queue, a deleted-and-recreated queue) is `ReceiptHandleIsInvalid` everywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::error::{SqsError, SqsResult};
use super::message::{AttributeValue, MessageAttributes, md5_hex, md5_of_attributes};
use crate::clock::Millis;

/// The longest a message can stay in flight after a receive (12 hours).
pub const MAX_VISIBILITY_SECONDS: i64 = 43_200;

const HANDLE_PREFIX: &str = "AQEB";

/// A queue's `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

/// The queue attributes that change behaviour (the rest are kept as given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub visibility_timeout: i64,
    pub maximum_message_size: usize,
    pub message_retention_period: i64,
    pub delay_seconds: i64,
    pub receive_message_wait_time_seconds: i64,
    pub redrive_policy: Option<RedrivePolicy>,
    /// Stored attributes without behaviour here: `Policy`, `RedriveAllowPolicy`, KMS, SSE,
    /// and `RedrivePolicy` as the caller wrote it.
    pub stored: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            visibility_timeout: 30,
            maximum_message_size: 1_048_576,
            message_retention_period: 345_600,
            delay_seconds: 0,
            receive_message_wait_time_seconds: 0,
            redrive_policy: None,
            stored: BTreeMap::from([("SqsManagedSseEnabled".to_owned(), "true".to_owned())]),
        }
    }
}

/// What a sender gives for one message.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub body: String,
    pub attributes: MessageAttributes,
    /// `MessageSystemAttributes` (only `AWSTraceHeader` exists).
    pub system_attributes: MessageAttributes,
    /// Per-message delay; None means the queue's `DelaySeconds`.
    pub delay_seconds: Option<i64>,
    pub sender_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub seq: u64,
    pub id: String,
    pub body: String,
    pub md5_of_body: String,
    pub attributes: MessageAttributes,
    pub md5_of_attributes: Option<String>,
    pub system_attributes: MessageAttributes,
    pub md5_of_system_attributes: Option<String>,
    pub sender_id: String,
    pub sent_at: Millis,
    /// Delayed (never received) or in flight (received) until then.
    pub visible_at: Millis,
    pub receive_count: u32,
    pub first_received_at: Option<Millis>,
    pub last_received_at: Option<Millis>,
    /// The latest receipt handle and how many handles were issued.
    pub receipt_handle: Option<String>,
    pub handle_generation: u32,
    /// Set when a redrive moved the message here from a source queue.
    pub dead_letter_source_arn: Option<String>,
}

impl Message {
    pub fn is_visible(&self, now: Millis) -> bool {
        self.visible_at <= now
    }
}

/// A message that was just sent: what `SendMessage` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub md5_of_system_attributes: Option<String>,
}

/// Approximate counters: visible, in flight, delayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub visible: usize,
    pub not_visible: usize,
    pub delayed: usize,
}

#[derive(Debug)]
pub struct Queue {
    /// Unique per queue instance, so a recreated queue refuses the old queue's handles.
    pub uid: u64,
    pub name: String,
    pub arn: String,
    pub created_at: Millis,
    pub last_modified_at: Millis,
    pub settings: Settings,
    pub tags: BTreeMap<String, String>,
    messages: BTreeMap<u64, Message>,
    next_seq: u64,
    last_purge_at: Option<Millis>,
    /// No message expires before this time (a lower bound: checking is skipped until then).
    expiry_check_at: Millis,
    /// Woken whenever a message may have become receivable (send, visibility set to 0, purge,
    /// deletion of the queue), for long polls waiting without the world lock.
    pub notify: Arc<Notify>,
}

/// What a state file keeps of a [`Queue`]: all of it but the long polls' wake-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueState {
    uid: u64,
    name: String,
    arn: String,
    created_at: Millis,
    last_modified_at: Millis,
    settings: Settings,
    tags: BTreeMap<String, String>,
    messages: Vec<Message>,
    next_seq: u64,
    last_purge_at: Option<Millis>,
}

impl From<QueueState> for Queue {
    fn from(s: QueueState) -> Self {
        let mut q = Queue::new(s.uid, &s.name, s.arn, s.settings, s.created_at);
        q.last_modified_at = s.last_modified_at;
        q.tags = s.tags;
        q.messages = s.messages.into_iter().map(|m| (m.seq, m)).collect();
        q.next_seq = s.next_seq;
        q.last_purge_at = s.last_purge_at;
        // Re-derived at the next look: no message expires before its retention runs out.
        q.expiry_check_at = Millis::MIN;
        q
    }
}

struct HandleRef {
    uid: u64,
    seq: u64,
    generation: u32,
}

fn parse_handle(h: &str) -> Option<HandleRef> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.strip_prefix(HANDLE_PREFIX)?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split(':');
    let uid = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let generation = parts.next()?.parse().ok()?;
    let _nonce = parts.next()?;
    parts.next().is_none().then_some(HandleRef { uid, seq, generation })
}

/// A message id: a random (seeded) UUID, as SQS's are.
pub fn message_id(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

impl Queue {
    pub fn new(uid: u64, name: &str, arn: String, settings: Settings, now: Millis) -> Self {
        Self {
            uid,
            name: name.to_owned(),
            arn,
            created_at: now,
            last_modified_at: now,
            settings,
            tags: BTreeMap::new(),
            messages: BTreeMap::new(),
            next_seq: 0,
            last_purge_at: None,
            expiry_check_at: Millis::MAX,
            notify: Arc::new(Notify::new()),
        }
    }

    /// Its messages (with their receipt and visibility state) and settings, for a state file.
    pub fn snapshot(&self) -> QueueState {
        QueueState {
            uid: self.uid,
            name: self.name.clone(),
            arn: self.arn.clone(),
            created_at: self.created_at,
            last_modified_at: self.last_modified_at,
            settings: self.settings.clone(),
            tags: self.tags.clone(),
            messages: self.messages.values().cloned().collect(),
            next_seq: self.next_seq,
            last_purge_at: self.last_purge_at,
        }
    }

    fn retention_ms(&self) -> Millis {
        self.settings.message_retention_period.saturating_mul(1000)
    }

    /// Drops the messages older than the retention period (cheap until one can be due).
    pub fn expire(&mut self, now: Millis) {
        if now < self.expiry_check_at {
            return;
        }
        let keep_ms = self.retention_ms();
        self.messages.retain(|_, m| m.sent_at.saturating_add(keep_ms) > now);
        self.expiry_check_at =
            self.messages.values().map(|m| m.sent_at.saturating_add(keep_ms)).min().unwrap_or(Millis::MAX);
    }

    /// Re-derives when the next message expires (after the retention period changed).
    pub fn retention_changed(&mut self) {
        self.expiry_check_at = Millis::MIN;
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    pub fn counts(&self, now: Millis) -> Counts {
        let mut c = Counts::default();
        for m in self.messages.values() {
            if m.is_visible(now) {
                c.visible += 1;
            } else if m.receive_count == 0 {
                c.delayed += 1;
            } else {
                c.not_visible += 1;
            }
        }
        c
    }

    /// The next time a message becomes visible by itself (end of a delay or visibility timeout).
    pub fn next_visible_at(&self, now: Millis) -> Option<Millis> {
        self.messages.values().filter(|m| !m.is_visible(now)).map(|m| m.visible_at).min()
    }

    pub fn has_visible(&self, now: Millis) -> bool {
        self.messages.values().any(|m| m.is_visible(now))
    }

    /// Enqueues a checked message; returns its id and digests.
    pub fn send(&mut self, msg: NewMessage, now: Millis, rng: &mut ChaCha8Rng) -> Sent {
        let delay = msg.delay_seconds.unwrap_or(self.settings.delay_seconds).max(0);
        let m = Message {
            seq: 0,
            id: message_id(rng),
            md5_of_body: md5_hex(msg.body.as_bytes()),
            body: msg.body,
            md5_of_attributes: md5_of_attributes(&msg.attributes),
            attributes: msg.attributes,
            md5_of_system_attributes: md5_of_attributes(&msg.system_attributes),
            system_attributes: msg.system_attributes,
            sender_id: msg.sender_id,
            sent_at: now,
            visible_at: now + delay * 1000,
            receive_count: 0,
            first_received_at: None,
            last_received_at: None,
            receipt_handle: None,
            handle_generation: 0,
            dead_letter_source_arn: None,
        };
        let sent = Sent {
            message_id: m.id.clone(),
            md5_of_body: m.md5_of_body.clone(),
            md5_of_attributes: m.md5_of_attributes.clone(),
            md5_of_system_attributes: m.md5_of_system_attributes.clone(),
        };
        self.push(m);
        if delay == 0 {
            self.notify.notify_waiters();
        }
        sent
    }

    fn push(&mut self, mut m: Message) {
        self.expiry_check_at = self.expiry_check_at.min(m.sent_at.saturating_add(self.retention_ms()));
        self.next_seq += 1;
        m.seq = self.next_seq;
        self.messages.insert(m.seq, m);
    }

    /// Takes out the visible messages that were already received `max_receive_count` times: a
    /// redrive moves them to the dead-letter queue instead of delivering them again.
    pub fn take_exhausted(&mut self, now: Millis, max_receive_count: u32) -> Vec<Message> {
        let seqs: Vec<u64> = self
            .messages
            .values()
            .filter(|m| m.is_visible(now) && m.receive_count >= max_receive_count)
            .map(|m| m.seq)
            .collect();
        seqs.into_iter().filter_map(|s| self.messages.remove(&s)).collect()
    }

    /// Accepts messages a redrive moved here: same id, body, attributes and sent time (retention
    /// counts from the original enqueue), receive count reset.
    pub fn accept_dead_letters(&mut self, moved: Vec<Message>, source_arn: &str, now: Millis) {
        if moved.is_empty() {
            return;
        }
        for mut m in moved {
            m.visible_at = now;
            m.receive_count = 0;
            m.first_received_at = None;
            m.last_received_at = None;
            m.receipt_handle = None;
            m.handle_generation = 0;
            m.dead_letter_source_arn = Some(source_arn.to_owned());
            self.push(m);
        }
        self.notify.notify_waiters();
    }

    /// Receives up to `max` visible messages, oldest first, hiding each for `visibility` seconds
    /// and giving it a fresh receipt handle. Returns copies as they are after the receive.
    pub fn receive(&mut self, now: Millis, max: usize, visibility: i64, rng: &mut ChaCha8Rng) -> Vec<Message> {
        let mut out = Vec::new();
        let uid = self.uid;
        for m in self.messages.values_mut() {
            if out.len() >= max {
                break;
            }
            if !m.is_visible(now) {
                continue;
            }
            m.receive_count += 1;
            m.handle_generation += 1;
            m.first_received_at.get_or_insert(now);
            m.last_received_at = Some(now);
            m.visible_at = now + visibility.max(0) * 1000;
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce);
            let raw = format!("{uid}:{}:{}:{}", m.seq, m.handle_generation, hex::encode(nonce));
            let handle =
                format!("{HANDLE_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_bytes()));
            m.receipt_handle = Some(handle);
            out.push(m.clone());
        }
        out
    }

    fn check_handle(&self, handle: &str) -> SqsResult<HandleRef> {
        match parse_handle(handle) {
            Some(h) if h.uid == self.uid && h.seq <= self.next_seq => Ok(h),
            _ => Err(SqsError::receipt_handle_invalid(handle)),
        }
    }

    /// `DeleteMessage`: deletes with the latest handle; accepts stale handles and handles of
    /// messages already gone without deleting anything.
    pub fn delete(&mut self, handle: &str) -> SqsResult<()> {
        let h = self.check_handle(handle)?;
        match self.messages.get(&h.seq) {
            None => Ok(()),
            Some(m) if m.receipt_handle.as_deref() == Some(handle) => {
                self.messages.remove(&h.seq);
                Ok(())
            }
            Some(m) if h.generation < m.handle_generation => Ok(()),
            Some(_) => Err(SqsError::receipt_handle_invalid(handle)),
        }
    }

    /// `ChangeMessageVisibility`: the message becomes visible `timeout` seconds from now, within
    /// 12 hours of its latest receive.
    pub fn change_visibility(&mut self, handle: &str, timeout: i64, now: Millis) -> SqsResult<()> {
        if !(0..=MAX_VISIBILITY_SECONDS).contains(&timeout) {
            return Err(SqsError::invalid_value(
                "VisibilityTimeout",
                timeout,
                "Must be between 0 and 43200, if provided.",
            ));
        }
        let h = self.check_handle(handle)?;
        let Some(m) = self.messages.get_mut(&h.seq) else {
            return Err(SqsError::invalid_value(
                "ReceiptHandle",
                handle,
                "Message does not exist or is not available for visibility timeout change.",
            ));
        };
        if m.receipt_handle.as_deref() != Some(handle) {
            return Err(SqsError::receipt_handle_invalid(handle));
        }
        if m.is_visible(now) {
            return Err(SqsError::message_not_inflight());
        }
        let received = m.last_received_at.unwrap_or(now);
        if now + timeout * 1000 > received + MAX_VISIBILITY_SECONDS * 1000 {
            return Err(SqsError::invalid_value(
                "VisibilityTimeout",
                timeout,
                "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
            ));
        }
        m.visible_at = now + timeout * 1000;
        if timeout == 0 {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    /// `PurgeQueue`: deletes every message; one purge per 60 seconds.
    pub fn purge(&mut self, now: Millis) -> SqsResult<()> {
        if self.last_purge_at.is_some_and(|t| now < t + 60_000) {
            return Err(SqsError::purge_in_progress(&self.arn));
        }
        self.last_purge_at = Some(now);
        self.messages.clear();
        self.notify.notify_waiters();
        Ok(())
    }

    /// The value of one system attribute of a message, as `ReceiveMessage` reports it.
    pub fn system_attribute(m: &Message, name: &str) -> Option<String> {
        match name {
            "SenderId" => Some(m.sender_id.clone()),
            "SentTimestamp" => Some(m.sent_at.to_string()),
            "ApproximateReceiveCount" => Some(m.receive_count.to_string()),
            "ApproximateFirstReceiveTimestamp" => m.first_received_at.map(|t| t.to_string()),
            "AWSTraceHeader" => m.system_attributes.get("AWSTraceHeader").and_then(|v| v.string_value.clone()),
            "DeadLetterQueueSourceArn" => m.dead_letter_source_arn.clone(),
            _ => None,
        }
    }
}

/// An `AWSTraceHeader` system attribute, for callers of the Rust API.
pub fn trace_header(v: &str) -> MessageAttributes {
    MessageAttributes::from([("AWSTraceHeader".to_owned(), AttributeValue::string(v))])
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn queue() -> (Queue, ChaCha8Rng) {
        let q = Queue::new(1, "q", "arn:aws:sqs:us-west-2:123456789012:q".into(), Settings::default(), 0);
        (q, ChaCha8Rng::seed_from_u64(1))
    }

    fn msg(body: &str) -> NewMessage {
        NewMessage { body: body.into(), sender_id: "123456789012".into(), ..NewMessage::default() }
    }

    #[test]
    fn visibility_and_handles() {
        let (mut q, mut rng) = queue();
        q.send(msg("a"), 0, &mut rng);
        let first = q.receive(0, 10, 30, &mut rng);
        assert_eq!(first.len(), 1);
        assert_eq!(q.counts(0), Counts { visible: 0, not_visible: 1, delayed: 0 });
        assert!(q.receive(29_999, 10, 30, &mut rng).is_empty());
        let second = q.receive(30_000, 10, 30, &mut rng);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].receive_count, 2);
        let (old, new) = (first[0].receipt_handle.clone().unwrap_or_default(), second[0].receipt_handle.clone());
        let new = new.unwrap_or_default();
        assert_ne!(old, new);
        // A stale handle: visibility change refused, delete accepted but without effect.
        assert_eq!(q.change_visibility(&old, 5, 30_000).map_err(|e| e.code), Err("ReceiptHandleIsInvalid"));
        assert!(q.delete(&old).is_ok());
        assert_eq!(q.len(), 1);
        assert!(q.change_visibility(&new, 0, 30_000).is_ok());
        assert_eq!(
            q.change_visibility(&new, 10, 30_000).map_err(|e| e.code),
            Err(SqsError::message_not_inflight().code)
        );
        assert!(q.delete(&new).is_ok());
        assert!(q.is_empty());
        assert!(q.delete(&new).is_ok(), "deleting twice is fine");
        assert_eq!(q.delete("garbage").map_err(|e| e.code), Err("ReceiptHandleIsInvalid"));
    }

    #[test]
    fn delays_retention_and_purge() {
        let (mut q, mut rng) = queue();
        q.send(NewMessage { delay_seconds: Some(10), ..msg("late") }, 0, &mut rng);
        assert_eq!(q.counts(0).delayed, 1);
        assert!(q.receive(9_999, 10, 30, &mut rng).is_empty());
        assert_eq!(q.next_visible_at(0), Some(10_000));
        assert_eq!(q.receive(10_000, 10, 30, &mut rng).len(), 1);
        q.settings.message_retention_period = 60;
        q.retention_changed();
        q.expire(59_999);
        assert_eq!(q.len(), 1);
        q.expire(60_000);
        assert!(q.is_empty());
        q.send(msg("x"), 61_000, &mut rng);
        assert!(q.purge(61_000).is_ok());
        assert!(q.is_empty());
        assert_eq!(q.purge(62_000).map_err(|e| e.status), Err(403));
        assert!(q.purge(121_000).is_ok());
    }

    #[test]
    fn twelve_hour_limit() {
        let (mut q, mut rng) = queue();
        q.send(msg("a"), 0, &mut rng);
        let h = q.receive(0, 1, 30, &mut rng)[0].receipt_handle.clone().unwrap_or_default();
        assert!(q.change_visibility(&h, 43_200, 0).is_ok());
        assert!(q.change_visibility(&h, 43_200, 1_000).is_err());
    }
}
