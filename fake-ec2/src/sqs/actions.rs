//! The SQS actions, independent of the wire: each takes its input in the JSON 1.0 shape (the
//! Query front converts its form into that shape first) and answers the JSON 1.0 output, which the
//! Query front turns into XML.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::error::{SqsError, SqsResult};
use super::message::{AttributeValue, MessageAttributes, md5_of_attributes, select_attributes};
use super::queue::{MAX_VISIBILITY_SECONDS, Message, NewMessage, Queue};
use super::queues::Queues;
use crate::clock::Millis;

/// Every action name of the SQS API (2012-11-05), for routing Query requests.
pub const ACTIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

/// The system attributes `ReceiveMessage` can return.
pub(crate) const SYSTEM_ATTRIBUTES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// The largest SendMessageBatch payload (all bodies and attributes).
pub const MAX_BATCH_BYTES: usize = 1_048_576;

/// Where a request came in, for the URLs in answers.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub host: String,
}

/// A typed view of a JSON request object.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    map: &'a Map<String, Value>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Input<'a> {
    pub fn new(v: &'a Value) -> SqsResult<Self> {
        match v {
            Value::Object(map) => Ok(Self { map }),
            Value::Null => Ok(Self { map: &EMPTY }),
            _ => Err(SqsError::malformed("The request body must be a JSON object.")),
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn str(&self, name: &str) -> SqsResult<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(SqsError::invalid_value(name, v, "Expected a string.")),
        }
    }

    pub fn required(&self, name: &str) -> SqsResult<&'a str> {
        self.str(name)?.filter(|s| !s.is_empty()).ok_or_else(|| SqsError::missing(name))
    }

    pub fn int(&self, name: &str) -> SqsResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| SqsError::invalid_value(name, n, "Expected an integer."))
            }
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| SqsError::invalid_value(name, s, "Expected an integer."))
            }
            Some(v) => Err(SqsError::invalid_value(name, v, "Expected an integer.")),
        }
    }

    pub fn strings(&self, name: &str) -> SqsResult<Vec<String>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| SqsError::invalid_value(name, v, "Expected strings."))
                })
                .collect(),
            Some(v) => Err(SqsError::invalid_value(name, v, "Expected a list of strings.")),
        }
    }

    pub fn string_map(&self, name: &str) -> SqsResult<BTreeMap<String, String>> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(SqsError::invalid_value(name, other, "Expected string values.")),
                })
                .collect(),
            Some(v) => Err(SqsError::invalid_value(name, v, "Expected a map.")),
        }
    }

    pub fn list(&self, name: &str) -> SqsResult<Vec<Input<'a>>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(Input::new).collect(),
            Some(v) => Err(SqsError::invalid_value(name, v, "Expected a list.")),
        }
    }

    /// `MessageAttributes` / `MessageSystemAttributes`: name → {DataType, StringValue | BinaryValue}.
    pub fn message_attributes(&self, name: &str) -> SqsResult<MessageAttributes> {
        let Some(v) = self.get(name) else {
            return Ok(MessageAttributes::new());
        };
        let Value::Object(m) = v else {
            return Err(SqsError::invalid_value(name, v, "Expected a map."));
        };
        let mut out = MessageAttributes::new();
        for (k, v) in m {
            let a = Input::new(v)?;
            let binary = match a.str("BinaryValue")? {
                None => None,
                Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| {
                    SqsError::invalid_parameter(format!("The message attribute '{k}' has an invalid binary value."))
                })?),
            };
            out.insert(
                k.clone(),
                AttributeValue {
                    data_type: a.str("DataType")?.unwrap_or_default().to_owned(),
                    string_value: a.str("StringValue")?.map(str::to_owned),
                    binary_value: binary,
                },
            );
        }
        Ok(out)
    }
}

/// What an action leads to: an answer now, or a long poll to wait on.
pub enum Outcome {
    Done(Value),
    Wait(Pending),
}

/// A `ReceiveMessage` as parsed, kept to try again while a long poll waits.
#[derive(Debug, Clone)]
pub struct ReceiveRequest {
    pub queue_url: String,
    pub max: usize,
    pub visibility: Option<i64>,
    pub system_attributes: Vec<String>,
    pub message_attributes: Vec<String>,
}

/// A long poll: retry `request` until a message comes or world time reaches `deadline`.
pub struct Pending {
    pub request: ReceiveRequest,
    pub deadline: Millis,
    pub wait_seconds: i64,
    pub notify: Arc<Notify>,
}

/// What an action works on: the account's queues, the cloud's `sqs` stream (message ids, receipt
/// handles) and the world time it runs at.
pub struct Sqs<'a> {
    pub queues: &'a mut Queues,
    pub rng: &'a mut ChaCha8Rng,
    pub now: Millis,
}

/// Runs one action.
pub fn execute(w: &mut Sqs<'_>, op: &str, input: &Value, ctx: &Ctx) -> SqsResult<Outcome> {
    let i = Input::new(input)?;
    let now = w.now;
    w.queues.expire(now);
    let out = match op {
        "CreateQueue" => create_queue(w, i, ctx, now)?,
        "GetQueueUrl" => get_queue_url(w, i, ctx)?,
        "ListQueues" => list_queues(w, i, ctx)?,
        "GetQueueAttributes" => get_queue_attributes(w, i, now)?,
        "SetQueueAttributes" => {
            w.queues.set_attributes(i.required("QueueUrl")?, &i.string_map("Attributes")?, now)?;
            json!({})
        }
        "DeleteQueue" => {
            w.queues.delete(i.required("QueueUrl")?, now)?;
            json!({})
        }
        "PurgeQueue" => {
            w.queues.get_mut(i.required("QueueUrl")?)?.purge(now)?;
            json!({})
        }
        "SendMessage" => send_message(w, i, now)?,
        "SendMessageBatch" => send_message_batch(w, i, now)?,
        "ReceiveMessage" => return receive_message(w, i),
        "DeleteMessage" => {
            let q = w.queues.get_mut(i.required("QueueUrl")?)?;
            q.delete(i.required("ReceiptHandle")?)?;
            json!({})
        }
        "DeleteMessageBatch" => delete_message_batch(w, i)?,
        "ChangeMessageVisibility" => {
            let q = w.queues.get_mut(i.required("QueueUrl")?)?;
            let handle = i.required("ReceiptHandle")?;
            let timeout = i.int("VisibilityTimeout")?.ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
            q.change_visibility(handle, timeout, now)?;
            json!({})
        }
        "ChangeMessageVisibilityBatch" => change_visibility_batch(w, i, now)?,
        "ListQueueTags" => {
            let q = w.queues.get(i.required("QueueUrl")?)?;
            if q.tags.is_empty() { json!({}) } else { json!({ "Tags": q.tags }) }
        }
        "TagQueue" => {
            let tags = i.string_map("Tags")?;
            let q = w.queues.get_mut(i.required("QueueUrl")?)?;
            q.tags.extend(tags);
            json!({})
        }
        "UntagQueue" => {
            let keys = i.strings("TagKeys")?;
            let q = w.queues.get_mut(i.required("QueueUrl")?)?;
            for k in keys {
                q.tags.remove(&k);
            }
            json!({})
        }
        "ListDeadLetterSourceQueues" => {
            let names = w.queues.dead_letter_sources(i.required("QueueUrl")?)?;
            let urls: Vec<String> = names.iter().map(|n| w.queues.url(&ctx.host, n)).collect();
            json!({ "queueUrls": urls })
        }
        "AddPermission"
        | "RemovePermission"
        | "StartMessageMoveTask"
        | "CancelMessageMoveTask"
        | "ListMessageMoveTasks" => {
            return Err(SqsError::unsupported(format!("{op} is not supported by fake-ec2's built-in SQS.")));
        }
        _ => return Err(SqsError::invalid_action(op)),
    };
    Ok(Outcome::Done(out))
}

fn create_queue(w: &mut Sqs<'_>, i: Input<'_>, ctx: &Ctx, now: Millis) -> SqsResult<Value> {
    let name = i.required("QueueName")?;
    let attrs = i.string_map("Attributes")?;
    let tags = i.string_map("tags")?;
    let name = w.queues.create(name, &attrs, &tags, now)?.name.clone();
    Ok(json!({ "QueueUrl": w.queues.url(&ctx.host, &name) }))
}

fn get_queue_url(w: &Sqs<'_>, i: Input<'_>, ctx: &Ctx) -> SqsResult<Value> {
    let name = i.required("QueueName")?;
    if i.str("QueueOwnerAWSAccountId")?.is_some_and(|a| a != w.queues.account_id) || name.contains('/') {
        return Err(SqsError::queue_does_not_exist());
    }
    let name = w.queues.resolve(name)?;
    Ok(json!({ "QueueUrl": w.queues.url(&ctx.host, name) }))
}

fn list_queues(w: &Sqs<'_>, i: Input<'_>, ctx: &Ctx) -> SqsResult<Value> {
    let prefix = i.str("QueueNamePrefix")?.unwrap_or_default();
    let max = match i.int("MaxResults")? {
        None => None,
        Some(n) if (1..=1000).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(SqsError::invalid_value("MaxResults", n, "MaxResults must be an integer between 1 and 1000."));
        }
    };
    let start = match i.str("NextToken")? {
        None => None,
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SqsError::invalid_parameter("Invalid NextToken value."))?,
        ),
    };
    let names: Vec<&str> = w
        .queues
        .names()
        .filter(|n| n.starts_with(prefix))
        .filter(|n| start.as_deref().is_none_or(|s| *n >= s))
        .collect();
    let limit = max.unwrap_or(1000);
    let page: Vec<String> = names.iter().take(limit).map(|n| w.queues.url(&ctx.host, n)).collect();
    let mut out = Map::new();
    if !page.is_empty() {
        out.insert("QueueUrls".into(), json!(page));
    }
    if max.is_some()
        && let Some(next) = names.get(limit)
    {
        out.insert("NextToken".into(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(next.as_bytes()).into());
    }
    Ok(Value::Object(out))
}

fn get_queue_attributes(w: &Sqs<'_>, i: Input<'_>, now: Millis) -> SqsResult<Value> {
    let names = i.strings("AttributeNames")?;
    let attrs = w.queues.attributes(i.required("QueueUrl")?, &names, now)?;
    Ok(if attrs.is_empty() { json!({}) } else { json!({ "Attributes": attrs }) })
}

fn new_message(e: Input<'_>, sender_id: &str) -> SqsResult<NewMessage> {
    if e.str("MessageDeduplicationId")?.is_some() {
        return Err(SqsError::invalid_value(
            "MessageDeduplicationId",
            e.str("MessageDeduplicationId")?.unwrap_or_default(),
            "The request include parameter that is not valid for this queue type",
        ));
    }
    Ok(NewMessage {
        body: e.str("MessageBody")?.ok_or_else(|| SqsError::missing("MessageBody"))?.to_owned(),
        attributes: e.message_attributes("MessageAttributes")?,
        system_attributes: e.message_attributes("MessageSystemAttributes")?,
        delay_seconds: e.int("DelaySeconds")?,
        sender_id: sender_id.to_owned(),
    })
}

fn sent_json(s: &super::queue::Sent) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("MessageId".into(), s.message_id.clone().into());
    m.insert("MD5OfMessageBody".into(), s.md5_of_body.clone().into());
    if let Some(a) = &s.md5_of_attributes {
        m.insert("MD5OfMessageAttributes".into(), a.clone().into());
    }
    if let Some(a) = &s.md5_of_system_attributes {
        m.insert("MD5OfMessageSystemAttributes".into(), a.clone().into());
    }
    m
}

fn send_message(w: &mut Sqs<'_>, i: Input<'_>, now: Millis) -> SqsResult<Value> {
    let url = i.required("QueueUrl")?;
    w.queues.get(url)?;
    let msg = new_message(i, &w.queues.account_id.clone())?;
    let sent = w.queues.send_message(url, msg, now, w.rng)?;
    Ok(Value::Object(sent_json(&sent)))
}

/// Batch-level checks: 1..=10 entries with distinct, well-formed ids.
fn check_batch(entries: &[Input<'_>], entry_name: &str) -> SqsResult<()> {
    if entries.is_empty() {
        return Err(SqsError::empty_batch(entry_name));
    }
    if entries.len() > 10 {
        return Err(SqsError::too_many_entries(entries.len()));
    }
    let mut seen = BTreeSet::new();
    for e in entries {
        let id = e.required("Id")?;
        if id.len() > 80 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(SqsError::invalid_batch_entry_id());
        }
        if !seen.insert(id) {
            return Err(SqsError::ids_not_distinct(id));
        }
    }
    Ok(())
}

fn failure(id: &str, e: &SqsError) -> Value {
    json!({"Id": id, "SenderFault": e.sender_fault, "Code": e.code, "Message": e.message})
}

fn send_message_batch(w: &mut Sqs<'_>, i: Input<'_>, now: Millis) -> SqsResult<Value> {
    let url = i.required("QueueUrl")?;
    w.queues.get(url)?;
    let entries = i.list("Entries")?;
    check_batch(&entries, "SendMessageBatchRequestEntry")?;
    let sender = w.queues.account_id.clone();
    let msgs: Vec<(&str, SqsResult<NewMessage>)> =
        entries.iter().map(|e| (e.str("Id").ok().flatten().unwrap_or_default(), new_message(*e, &sender))).collect();
    let total: usize = msgs
        .iter()
        .filter_map(|(_, m)| m.as_ref().ok())
        .map(|m| m.body.len() + super::message::attributes_size(&m.attributes))
        .sum();
    if total > MAX_BATCH_BYTES {
        return Err(SqsError::batch_too_long(MAX_BATCH_BYTES, total));
    }
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for (id, m) in msgs {
        match m.and_then(|m| w.queues.send_message(url, m, now, w.rng)) {
            Ok(sent) => {
                let mut j = sent_json(&sent);
                j.insert("Id".into(), id.into());
                ok.push(Value::Object(j));
            }
            Err(e) => failed.push(failure(id, &e)),
        }
    }
    Ok(json!({"Successful": ok, "Failed": failed}))
}

fn receive_message(w: &mut Sqs<'_>, i: Input<'_>) -> SqsResult<Outcome> {
    let url = i.required("QueueUrl")?.to_owned();
    let q = w.queues.get(&url)?;
    let max = i.int("MaxNumberOfMessages")?.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(SqsError::invalid_value("MaxNumberOfMessages", max, "Must be between 1 and 10, if provided."));
    }
    let visibility = i.int("VisibilityTimeout")?;
    if let Some(v) = visibility
        && !(0..=MAX_VISIBILITY_SECONDS).contains(&v)
    {
        return Err(SqsError::invalid_value("VisibilityTimeout", v, "Must be >= 0 and <= 43200, if provided."));
    }
    let wait = i.int("WaitTimeSeconds")?.unwrap_or(q.settings.receive_message_wait_time_seconds);
    if !(0..=20).contains(&wait) {
        return Err(SqsError::invalid_value("WaitTimeSeconds", wait, "Must be >= 0 and <= 20, if provided."));
    }
    let mut system_attributes = i.strings("AttributeNames")?;
    system_attributes.extend(i.strings("MessageSystemAttributeNames")?);
    let notify = q.notify.clone();
    let request = ReceiveRequest {
        queue_url: url,
        max: max as usize,
        visibility,
        system_attributes,
        message_attributes: i.strings("MessageAttributeNames")?,
    };
    match receive_once(w, &request)? {
        Some(v) => Ok(Outcome::Done(v)),
        None if wait == 0 => Ok(Outcome::Done(json!({}))),
        None => Ok(Outcome::Wait(Pending { deadline: w.now + wait * 1000, wait_seconds: wait, notify, request })),
    }
}

/// One receive attempt: the answer if any message was received, else None.
pub fn receive_once(w: &mut Sqs<'_>, r: &ReceiveRequest) -> SqsResult<Option<Value>> {
    let now = w.now;
    w.queues.expire(now);
    let visibility = match r.visibility {
        Some(v) => v,
        None => w.queues.get(&r.queue_url)?.settings.visibility_timeout,
    };
    let got = w.queues.receive(&r.queue_url, r.max, visibility, now, w.rng)?;
    if got.is_empty() {
        return Ok(None);
    }
    let messages: Vec<Value> = got.iter().map(|m| message_json(m, r)).collect();
    Ok(Some(json!({ "Messages": messages })))
}

/// The queue's notifier and the next time a message there becomes visible by itself.
pub fn wait_state(queues: &Queues, url: &str, now: Millis) -> SqsResult<(Arc<Notify>, Option<Millis>, bool)> {
    let q = queues.get(url)?;
    Ok((q.notify.clone(), q.next_visible_at(now), q.has_visible(now)))
}

fn message_json(m: &Message, r: &ReceiveRequest) -> Value {
    let mut out = Map::new();
    out.insert("MessageId".into(), m.id.clone().into());
    out.insert("ReceiptHandle".into(), m.receipt_handle.clone().unwrap_or_default().into());
    out.insert("MD5OfBody".into(), m.md5_of_body.clone().into());
    out.insert("Body".into(), m.body.clone().into());
    let all = r.system_attributes.iter().any(|n| n == "All");
    let mut attrs = Map::new();
    for name in SYSTEM_ATTRIBUTES {
        if (all || r.system_attributes.iter().any(|n| n == name))
            && let Some(v) = Queue::system_attribute(m, name)
        {
            attrs.insert((*name).to_owned(), v.into());
        }
    }
    if !attrs.is_empty() {
        out.insert("Attributes".into(), Value::Object(attrs));
    }
    let selected = select_attributes(&m.attributes, &r.message_attributes);
    if let Some(md5) = md5_of_attributes(&selected) {
        out.insert("MD5OfMessageAttributes".into(), md5.into());
        let attrs: Map<String, Value> = selected.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
        out.insert("MessageAttributes".into(), Value::Object(attrs));
    }
    Value::Object(out)
}

fn delete_message_batch(w: &mut Sqs<'_>, i: Input<'_>) -> SqsResult<Value> {
    let q = w.queues.get_mut(i.required("QueueUrl")?)?;
    let entries = i.list("Entries")?;
    check_batch(&entries, "DeleteMessageBatchRequestEntry")?;
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for e in entries {
        let id = e.required("Id")?;
        match e.required("ReceiptHandle").and_then(|h| q.delete(h)) {
            Ok(()) => ok.push(json!({ "Id": id })),
            Err(err) => failed.push(failure(id, &err)),
        }
    }
    Ok(json!({"Successful": ok, "Failed": failed}))
}

fn change_visibility_batch(w: &mut Sqs<'_>, i: Input<'_>, now: Millis) -> SqsResult<Value> {
    let q = w.queues.get_mut(i.required("QueueUrl")?)?;
    let entries = i.list("Entries")?;
    check_batch(&entries, "ChangeMessageVisibilityBatchRequestEntry")?;
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for e in entries {
        let id = e.required("Id")?;
        let result = e.required("ReceiptHandle").and_then(|h| {
            let t = e.int("VisibilityTimeout")?.ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
            q.change_visibility(h, t, now)
        });
        match result {
            Ok(()) => ok.push(json!({ "Id": id })),
            Err(err) => failed.push(failure(id, &err)),
        }
    }
    Ok(json!({"Successful": ok, "Failed": failed}))
}
