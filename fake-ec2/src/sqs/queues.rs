//! All queues of the account: names, URLs and ARNs, queue attributes, and the operations that
//! span queues (dead-letter redrive). Pure: time and randomness come from the caller.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::{SqsError, SqsResult};
use super::message::{self, MessageAttributes};
use super::queue::{MAX_VISIBILITY_SECONDS, Message, NewMessage, Queue, QueueState, RedrivePolicy, Sent, Settings};
use crate::clock::Millis;

/// How long a deleted queue's name stays unusable.
const DELETED_RECENTLY_MS: Millis = 60_000;

/// A queue the world file creates at start: `{name, attributes}` with attributes as
/// `CreateQueue` takes them (`MessageRetentionPeriod: "300"`, `RedrivePolicy: '{...}'`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A YAML scalar taken as the string SQS wants (`300` and `"300"` both work).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Bool(bool),
    Str(String),
}

impl Scalar {
    pub fn as_attribute(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Str(s) => s.clone(),
        }
    }
}

/// The queue attributes `GetQueueAttributes` knows.
pub const QUEUE_ATTRIBUTES: &[&str] = &[
    "All",
    "Policy",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "ApproximateNumberOfMessagesDelayed",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "SqsManagedSseEnabled",
];

/// What a state file keeps of [`Queues`]: every queue with its messages, and the names deleted
/// too recently to reuse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuesState {
    queues: Vec<QueueState>,
    deleted_at: BTreeMap<String, Millis>,
    next_uid: u64,
}

/// Every queue of the account, by name.
#[derive(Debug, Default)]
pub struct Queues {
    pub region: String,
    pub account_id: String,
    queues: BTreeMap<String, Queue>,
    deleted_at: BTreeMap<String, Millis>,
    next_uid: u64,
}

fn valid_queue_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 80 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn int_attr(name: &str, v: &str, range: std::ops::RangeInclusive<i64>) -> SqsResult<i64> {
    v.trim().parse::<i64>().ok().filter(|n| range.contains(n)).ok_or_else(|| SqsError::invalid_attribute_value(name))
}

impl Queues {
    pub fn new(region: &str, account_id: &str) -> Self {
        Self { region: region.to_owned(), account_id: account_id.to_owned(), ..Self::default() }
    }

    /// The queues a world file declares, created at world start `now`.
    pub fn from_config(region: &str, account_id: &str, queues: &[QueueConfig], now: Millis) -> Result<Self, String> {
        let mut out = Self::new(region, account_id);
        for q in queues {
            let attrs: BTreeMap<String, String> =
                q.attributes.iter().map(|(k, v)| (k.clone(), v.as_attribute())).collect();
            out.create(&q.name, &attrs, &q.tags, now).map_err(|e| format!("queue {}: {}", q.name, e.message))?;
        }
        Ok(out)
    }

    pub fn snapshot(&self) -> QueuesState {
        QueuesState {
            queues: self.queues.values().map(Queue::snapshot).collect(),
            deleted_at: self.deleted_at.clone(),
            next_uid: self.next_uid,
        }
    }

    /// Puts back what [`Queues::snapshot`] kept (region and account stay this world's).
    pub fn restore(&mut self, s: QueuesState) {
        self.queues = s.queues.into_iter().map(Queue::from).map(|q| (q.name.clone(), q)).collect();
        self.deleted_at = s.deleted_at;
        self.next_uid = s.next_uid;
    }

    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account_id)
    }

    /// `http://<host>/<account>/<name>`: the URL a client calls back on the same endpoint.
    pub fn url(&self, host: &str, name: &str) -> String {
        format!("http://{host}/{}/{name}", self.account_id)
    }

    /// Which queue a `QueueUrl` (any host, path `/<account>/<name>`), or a bare queue name, means.
    pub fn resolve(&self, url_or_name: &str) -> SqsResult<&str> {
        let name = if url_or_name.contains('/') {
            let path = url_or_name.split_once("://").map_or(url_or_name, |(_, rest)| rest);
            let path = path.split(['?', '#']).next().unwrap_or_default();
            let mut segs = path.trim_end_matches('/').rsplit('/');
            let name = segs.next().unwrap_or_default();
            let account = segs.next().unwrap_or_default();
            if account != self.account_id {
                return Err(SqsError::queue_does_not_exist());
            }
            name
        } else {
            url_or_name
        };
        self.queues.get_key_value(name).map(|(k, _)| k.as_str()).ok_or_else(SqsError::queue_does_not_exist)
    }

    pub fn get(&self, url_or_name: &str) -> SqsResult<&Queue> {
        let name = self.resolve(url_or_name)?.to_owned();
        self.queues.get(&name).ok_or_else(SqsError::queue_does_not_exist)
    }

    pub fn get_mut(&mut self, url_or_name: &str) -> SqsResult<&mut Queue> {
        let name = self.resolve(url_or_name)?.to_owned();
        self.queues.get_mut(&name).ok_or_else(SqsError::queue_does_not_exist)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    pub fn by_arn(&self, arn: &str) -> Option<&Queue> {
        self.queues.values().find(|q| q.arn == arn)
    }

    /// Applies retention to every queue.
    pub fn expire(&mut self, now: Millis) {
        for q in self.queues.values_mut() {
            q.expire(now);
        }
        self.deleted_at.retain(|_, t| now < *t + DELETED_RECENTLY_MS);
    }

    /// Checks and applies queue attributes onto `s` (CreateQueue and SetQueueAttributes).
    fn apply_attributes(&self, s: &mut Settings, attrs: &BTreeMap<String, String>, creating: bool) -> SqsResult<()> {
        for (k, v) in attrs {
            match k.as_str() {
                "VisibilityTimeout" => s.visibility_timeout = int_attr(k, v, 0..=MAX_VISIBILITY_SECONDS)?,
                "MaximumMessageSize" => s.maximum_message_size = int_attr(k, v, 1024..=1_048_576)? as usize,
                "MessageRetentionPeriod" => s.message_retention_period = int_attr(k, v, 60..=1_209_600)?,
                "DelaySeconds" => s.delay_seconds = int_attr(k, v, 0..=900)?,
                "ReceiveMessageWaitTimeSeconds" => s.receive_message_wait_time_seconds = int_attr(k, v, 0..=20)?,
                "RedrivePolicy" => {
                    if v.trim().is_empty() {
                        s.redrive_policy = None;
                        s.stored.remove(k);
                    } else {
                        let p = self.parse_redrive(v)?;
                        s.stored.insert(
                            k.clone(),
                            serde_json::json!({"deadLetterTargetArn": p.dead_letter_target_arn, "maxReceiveCount": p.max_receive_count})
                                .to_string(),
                        );
                        s.redrive_policy = Some(p);
                    }
                }
                "Policy" | "RedriveAllowPolicy" => {
                    if v.trim().is_empty() {
                        s.stored.remove(k);
                    } else if serde_json::from_str::<serde_json::Value>(v).map(|j| j.is_object()).unwrap_or(false) {
                        s.stored.insert(k.clone(), v.clone());
                    } else {
                        return Err(SqsError::invalid_attribute_value(k));
                    }
                }
                "KmsMasterKeyId" => {
                    s.stored.insert(k.clone(), v.clone());
                    s.stored.entry("KmsDataKeyReusePeriodSeconds".into()).or_insert_with(|| "300".into());
                    s.stored.insert("SqsManagedSseEnabled".into(), "false".into());
                }
                "KmsDataKeyReusePeriodSeconds" => {
                    int_attr(k, v, 60..=86_400)?;
                    s.stored.insert(k.clone(), v.trim().to_owned());
                }
                "SqsManagedSseEnabled" => match v.trim() {
                    "true" | "false" => {
                        s.stored.insert(k.clone(), v.trim().to_owned());
                    }
                    _ => return Err(SqsError::invalid_attribute_value(k)),
                },
                "FifoQueue" if creating => {
                    if v.trim().eq_ignore_ascii_case("true") {
                        return Err(fifo_unsupported());
                    }
                    if !v.trim().eq_ignore_ascii_case("false") {
                        return Err(SqsError::invalid_attribute_value(k));
                    }
                }
                "ContentBasedDeduplication" | "DeduplicationScope" | "FifoThroughputLimit" => {
                    return Err(SqsError::invalid_attribute_name(k));
                }
                _ => return Err(SqsError::invalid_attribute_name(k)),
            }
        }
        Ok(())
    }

    fn parse_redrive(&self, v: &str) -> SqsResult<RedrivePolicy> {
        let bad = |reason: &str| SqsError::invalid_value("RedrivePolicy", v, reason);
        let j: serde_json::Value =
            serde_json::from_str(v).map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
        let arn = j
            .get("deadLetterTargetArn")
            .and_then(|a| a.as_str())
            .ok_or_else(|| bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn."))?;
        let count = match j.get("maxReceiveCount") {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            None => return Err(bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")),
            _ => None,
        };
        let count = count
            .filter(|c| (1..=1000).contains(c))
            .ok_or_else(|| bad("Invalid value for maxReceiveCount: must be an integer from 1 to 1000."))?;
        if self.by_arn(arn).is_none() {
            return Err(bad("Dead letter target does not exist."));
        }
        Ok(RedrivePolicy { dead_letter_target_arn: arn.to_owned(), max_receive_count: count as u32 })
    }

    /// `CreateQueue`: idempotent for the same attributes; `QueueAlreadyExists` for others.
    pub fn create(
        &mut self,
        name: &str,
        attrs: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
        now: Millis,
    ) -> SqsResult<&Queue> {
        if name.ends_with(".fifo") || attrs.get("FifoQueue").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Err(fifo_unsupported());
        }
        if !valid_queue_name(name) {
            return Err(SqsError::invalid_parameter(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            ));
        }
        let mut settings = Settings::default();
        self.apply_attributes(&mut settings, attrs, true)?;
        if let Some(existing) = self.queues.get(name) {
            let differing: Vec<&str> = attrs
                .iter()
                .filter(|(k, v)| {
                    let mut probe = existing.settings.clone();
                    let one = BTreeMap::from([((*k).clone(), (*v).clone())]);
                    self.apply_attributes(&mut probe, &one, true).is_err() || probe != existing.settings
                })
                .map(|(k, _)| k.as_str())
                .collect();
            if !differing.is_empty() {
                return Err(SqsError::queue_name_exists(format!(
                    "A queue already exists with the same name and a different value for attribute(s) {}",
                    differing.join(", ")
                )));
            }
            return self.queues.get(name).ok_or_else(SqsError::queue_does_not_exist);
        }
        if self.deleted_at.get(name).is_some_and(|t| now < *t + DELETED_RECENTLY_MS) {
            return Err(SqsError::queue_deleted_recently(name));
        }
        self.next_uid += 1;
        let mut q = Queue::new(self.next_uid, name, self.arn(name), settings, now);
        q.tags = tags.clone();
        self.queues.insert(name.to_owned(), q);
        self.queues.get(name).ok_or_else(SqsError::queue_does_not_exist)
    }

    pub fn set_attributes(&mut self, url: &str, attrs: &BTreeMap<String, String>, now: Millis) -> SqsResult<()> {
        let name = self.resolve(url)?.to_owned();
        let mut settings = self.get(&name)?.settings.clone();
        if attrs.contains_key("FifoQueue") {
            return Err(SqsError::invalid_attribute_name("FifoQueue"));
        }
        self.apply_attributes(&mut settings, attrs, false)?;
        let q = self.get_mut(&name)?;
        q.settings = settings;
        q.last_modified_at = now;
        q.retention_changed();
        q.expire(now);
        Ok(())
    }

    /// `DeleteQueue`: the queue and its messages go at once; the name is blocked for 60 s.
    pub fn delete(&mut self, url: &str, now: Millis) -> SqsResult<()> {
        let name = self.resolve(url)?.to_owned();
        if let Some(q) = self.queues.remove(&name) {
            q.notify.notify_waiters();
        }
        self.deleted_at.insert(name, now);
        Ok(())
    }

    /// The attributes `names` asks for (`All` for every one), as strings.
    pub fn attributes(&self, url: &str, names: &[String], now: Millis) -> SqsResult<BTreeMap<String, String>> {
        let q = self.get(url)?;
        for n in names {
            if !QUEUE_ATTRIBUTES.contains(&n.as_str()) {
                return Err(SqsError::invalid_attribute_name(n));
            }
        }
        let all = names.iter().any(|n| n == "All");
        let want = |n: &str| all || names.iter().any(|x| x == n);
        let c = q.counts(now);
        let s = &q.settings;
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            if want(k) {
                out.insert(k.to_owned(), v);
            }
        };
        put("QueueArn", q.arn.clone());
        put("ApproximateNumberOfMessages", c.visible.to_string());
        put("ApproximateNumberOfMessagesNotVisible", c.not_visible.to_string());
        put("ApproximateNumberOfMessagesDelayed", c.delayed.to_string());
        put("CreatedTimestamp", (q.created_at / 1000).to_string());
        put("LastModifiedTimestamp", (q.last_modified_at / 1000).to_string());
        put("VisibilityTimeout", s.visibility_timeout.to_string());
        put("MaximumMessageSize", s.maximum_message_size.to_string());
        put("MessageRetentionPeriod", s.message_retention_period.to_string());
        put("DelaySeconds", s.delay_seconds.to_string());
        put("ReceiveMessageWaitTimeSeconds", s.receive_message_wait_time_seconds.to_string());
        for (k, v) in &s.stored {
            put(k, v.clone());
        }
        Ok(out)
    }

    /// Sends one message to a queue (by name or URL). This is the entry point for the event bus:
    /// it checks the body and attributes as `SendMessage` does and wakes waiting long polls.
    pub fn send(
        &mut self,
        url_or_name: &str,
        body: &str,
        attributes: MessageAttributes,
        now: Millis,
        rng: &mut ChaCha8Rng,
    ) -> SqsResult<Sent> {
        let sender = self.account_id.clone();
        self.send_message(
            url_or_name,
            NewMessage { body: body.to_owned(), attributes, sender_id: sender, ..NewMessage::default() },
            now,
            rng,
        )
    }

    /// Checks and enqueues one message (SendMessage and each SendMessageBatch entry).
    pub fn send_message(
        &mut self,
        url_or_name: &str,
        msg: NewMessage,
        now: Millis,
        rng: &mut ChaCha8Rng,
    ) -> SqsResult<Sent> {
        let q = self.get_mut(url_or_name)?;
        validate_new(&msg, q.settings.maximum_message_size)?;
        q.expire(now);
        Ok(q.send(msg, now, rng))
    }

    /// Receives from a queue, first moving to its dead-letter queue every visible message that
    /// was already received `maxReceiveCount` times.
    pub fn receive(
        &mut self,
        url: &str,
        max: usize,
        visibility: i64,
        now: Millis,
        rng: &mut ChaCha8Rng,
    ) -> SqsResult<Vec<Message>> {
        let name = self.resolve(url)?.to_owned();
        let (redrive, source_arn) = {
            let q = self.get_mut(&name)?;
            q.expire(now);
            (q.settings.redrive_policy.clone(), q.arn.clone())
        };
        if let Some(p) = redrive
            && let Some(dlq) = self.queues.values().find(|q| q.arn == p.dead_letter_target_arn).map(|q| q.name.clone())
            && dlq != name
        {
            let moved = self.get_mut(&name)?.take_exhausted(now, p.max_receive_count);
            if !moved.is_empty() {
                self.get_mut(&dlq)?.accept_dead_letters(moved, &source_arn, now);
            }
        }
        Ok(self.get_mut(&name)?.receive(now, max, visibility, rng))
    }

    /// The URLs (names) of the queues whose redrive policy targets this one.
    pub fn dead_letter_sources(&self, url: &str) -> SqsResult<Vec<String>> {
        let arn = self.get(url)?.arn.clone();
        Ok(self
            .queues
            .values()
            .filter(|q| q.settings.redrive_policy.as_ref().is_some_and(|p| p.dead_letter_target_arn == arn))
            .map(|q| q.name.clone())
            .collect())
    }
}

fn fifo_unsupported() -> SqsError {
    SqsError::unsupported("FIFO queues are not supported by fake-ec2's built-in SQS; create a standard queue.")
}

/// Checks what a sender gives: attributes, body characters and size, per-message delay.
pub fn validate_new(msg: &NewMessage, max_size: usize) -> SqsResult<()> {
    message::validate_attributes(&msg.attributes)?;
    for (k, v) in &msg.system_attributes {
        if k != "AWSTraceHeader" {
            return Err(SqsError::invalid_parameter(format!(
                "Message system attribute name '{k}' is invalid. The only supported message system attribute is AWSTraceHeader."
            )));
        }
        message::validate_value(k, v, "system")?;
        if v.base_type() != "String" {
            return Err(SqsError::invalid_parameter(
                "The message system attribute 'AWSTraceHeader' must have data type 'String'.",
            ));
        }
    }
    message::validate_body(&msg.body, message::attributes_size(&msg.attributes), max_size)?;
    if let Some(d) = msg.delay_seconds
        && !(0..=900).contains(&d)
    {
        return Err(SqsError::invalid_value("DelaySeconds", d, "Must be >= 0 and <= 900, if provided."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn create_is_idempotent_and_checks_attributes() {
        let mut qs = Queues::new("us-west-2", "123456789012");
        let none = BTreeMap::new();
        assert!(qs.create("a", &attrs(&[("VisibilityTimeout", "20")]), &none, 0).is_ok());
        assert!(qs.create("a", &attrs(&[("VisibilityTimeout", "20")]), &none, 0).is_ok());
        let e = qs.create("a", &attrs(&[("VisibilityTimeout", "21")]), &none, 0).err();
        assert_eq!(e.map(|e| e.code), Some("QueueAlreadyExists"));
        let e = qs.create("b", &attrs(&[("VisibilityTimeout", "99999")]), &none, 0).err();
        assert_eq!(e.map(|e| e.code), Some("InvalidAttributeValue"));
        let e = qs.create("b", &attrs(&[("Bogus", "1")]), &none, 0).err();
        assert_eq!(e.map(|e| e.code), Some("InvalidAttributeName"));
        let e = qs.create("c.fifo", &none, &none, 0).err();
        assert_eq!(e.map(|e| e.code), Some("AWS.SimpleQueueService.UnsupportedOperation"));
        let e = qs.create("bad name", &none, &none, 0).err();
        assert_eq!(e.map(|e| e.code), Some("InvalidParameterValue"));
        assert_eq!(qs.resolve("http://localhost:1/123456789012/a").ok(), Some("a"));
        assert!(qs.resolve("http://localhost:1/000000000000/a").is_err());
        assert!(qs.delete("a", 1_000).is_ok());
        let e = qs.create("a", &none, &none, 2_000).err();
        assert_eq!(e.map(|e| e.code), Some("AWS.SimpleQueueService.QueueDeletedRecently"));
        assert!(qs.create("a", &none, &none, 61_000).is_ok());
    }

    #[test]
    fn world_file_queues_take_yaml_scalars() {
        let yaml = "- name: a\n  attributes: { MessageRetentionPeriod: 300, VisibilityTimeout: \"20\" }\n- name: b\n";
        let cfgs: Vec<QueueConfig> = serde_saphyr::from_str(yaml).unwrap_or_default();
        assert_eq!(cfgs.len(), 2);
        let qs = Queues::from_config("us-west-2", "123456789012", &cfgs, 0);
        let qs = qs.unwrap_or_default();
        let a = qs.get("a").map(|q| (q.settings.message_retention_period, q.settings.visibility_timeout));
        assert_eq!(a.ok(), Some((300, 20)));
        let bad = vec![QueueConfig {
            name: "c".into(),
            attributes: BTreeMap::from([("VisibilityTimeout".into(), Scalar::Int(-1))]),
            tags: BTreeMap::new(),
        }];
        assert!(Queues::from_config("us-west-2", "123456789012", &bad, 0).is_err());
    }

    #[test]
    fn redrive_moves_after_max_receive_count() {
        let mut qs = Queues::new("us-west-2", "123456789012");
        let none = BTreeMap::new();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!(qs.create("dlq", &none, &none, 0).is_ok());
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-west-2:123456789012:dlq","maxReceiveCount":2}"#;
        assert!(qs.create("src", &attrs(&[("RedrivePolicy", policy)]), &none, 0).is_ok());
        let bad = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-west-2:123456789012:nope","maxReceiveCount":2}"#;
        assert!(qs.set_attributes("src", &attrs(&[("RedrivePolicy", bad)]), 0).is_err());
        let sent = qs.send("src", "hi", MessageAttributes::new(), 0, &mut rng).ok().map(|s| s.message_id);
        assert_eq!(qs.receive("src", 10, 0, 0, &mut rng).map(|v| v.len()).ok(), Some(1));
        assert_eq!(qs.receive("src", 10, 0, 0, &mut rng).map(|v| v.len()).ok(), Some(1));
        assert_eq!(qs.receive("src", 10, 0, 0, &mut rng).map(|v| v.len()).ok(), Some(0));
        let got = qs.receive("dlq", 10, 30, 0, &mut rng).unwrap_or_default();
        assert_eq!(got.len(), 1);
        assert_eq!(Some(got[0].id.clone()), sent);
        assert_eq!(got[0].dead_letter_source_arn.as_deref(), Some("arn:aws:sqs:us-west-2:123456789012:src"));
        assert_eq!(qs.dead_letter_sources("dlq").ok(), Some(vec!["src".to_owned()]));
    }
}
