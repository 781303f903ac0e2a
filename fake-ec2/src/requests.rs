//! The request log: every AWS request fake-ec2 answered, in arrival order, with its service,
//! action, HTTP status and error code. Tests read it to prove a fault was answered (and that no
//! error was answered that nobody injected); `serve --request-log F` appends it as JSON lines.
//!
//! It sits beside the cloud, not in it: recording a request changes no world state and no draw.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::bounded_log::BoundedLog;
use crate::clock::Millis;

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: u64,
    /// World time when it was answered.
    pub at_ms: Millis,
    /// The signing name of the service that answered (`ec2`, `sqs`, `iam`, ...), or `unknown`.
    pub service: String,
    /// The operation: the Query `Action`, the `X-Amz-Target` operation or the REST operation name.
    pub action: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Answered by an injected fault (admin API rule or FIS action), not by the service.
    pub injected: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
}

impl Entry {
    /// The memory it holds, roughly: the struct and its strings.
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.service.len()
            + self.action.len()
            + self.user_agent.len()
            + self.error_code.as_ref().map_or(0, String::len)
    }
}

/// What a request was, before it is answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub action: String,
    pub user_agent: String,
}

/// Count of answers with one (service, action, status, error code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub service: String,
    pub action: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub injected: u64,
    pub count: u64,
}

type CountKey = (String, String, u16, Option<String>);

/// The newest entries within a byte budget; the counts and the file sink keep everything.
#[derive(Default)]
pub struct RequestLog {
    entries: BoundedLog<Entry>,
    next_seq: u64,
    counts: BTreeMap<CountKey, (u64, u64)>,
    sink: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog").field("next_seq", &self.next_seq).finish_non_exhaustive()
    }
}

impl RequestLog {
    /// Appends every entry from now on to `sink` as a JSON line.
    pub fn set_sink(&mut self, sink: impl Write + Send + 'static) {
        self.sink = Some(Box::new(sink));
    }

    /// Keeps the newest entries within `bytes` in memory (see [`crate::bounded_log`]).
    pub fn set_budget(&mut self, bytes: usize) {
        self.entries.set_budget(bytes);
    }

    pub fn record(&mut self, call: Call, at_ms: Millis, status: u16, error_code: Option<String>, injected: bool) {
        self.next_seq += 1;
        let entry = Entry {
            seq: self.next_seq,
            at_ms,
            service: call.service,
            action: call.action,
            status,
            error_code,
            injected,
            user_agent: call.user_agent,
        };
        let key = (entry.service.clone(), entry.action.clone(), status, entry.error_code.clone());
        let c = self.counts.entry(key).or_default();
        c.0 += 1;
        c.1 += u64::from(injected);
        if let Some(sink) = self.sink.as_mut()
            && let Ok(line) = serde_json::to_string(&entry)
        {
            // A full disk must not fail the request being answered.
            let _ = writeln!(sink, "{line}").and_then(|()| sink.flush());
        }
        let bytes = entry.weight();
        self.entries.push(entry, bytes);
    }

    /// Entries with `seq > since` still kept, oldest first.
    pub fn since(&self, since: u64) -> impl Iterator<Item = &Entry> {
        let skip = self.entries.partition_point(|e| e.seq <= since);
        self.entries.skip(skip)
    }

    /// How many of the oldest entries were dropped from memory to stay within the budget: a reader
    /// asking from before them misses that many.
    pub fn dropped(&self) -> u64 {
        self.entries.dropped()
    }

    /// Every (service, action, status, error code) answered, with how many times, sorted.
    pub fn counts(&self) -> Vec<Count> {
        self.counts
            .iter()
            .map(|((service, action, status, error_code), (count, injected))| Count {
                service: service.clone(),
                action: action.clone(),
                status: *status,
                error_code: error_code.clone(),
                injected: *injected,
                count: *count,
            })
            .collect()
    }

    /// Error answers by code, over every service.
    pub fn errors_by_code(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((_, _, _, code), (n, _)) in &self.counts {
            if let Some(code) = code {
                *out.entry(code.clone()).or_default() += n;
            }
        }
        out
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }
}

/// The error code in an error answer's body, in any of the protocols fake-ec2 speaks: Query XML
/// (`<Code>`), AWS JSON (`__type`, with or without its namespace) or REST-JSON (`x-amzn-errortype`,
/// passed as `error_type`).
pub fn error_code(body: &[u8], error_type: Option<&str>) -> Option<String> {
    if let Some(t) = error_type.map(|t| t.split(':').next().unwrap_or(t).trim()).filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    let text = std::str::from_utf8(body).ok()?;
    if let Some(start) = text.find("<Code>") {
        let rest = &text[start + "<Code>".len()..];
        return rest.find("</Code>").map(|end| rest[..end].to_owned());
    }
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let t = json.get("__type").or_else(|| json.get("code")).and_then(serde_json::Value::as_str)?;
    Some(t.rsplit('#').next().unwrap_or(t).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(action: &str) -> Call {
        Call { service: "ec2".into(), action: action.into(), user_agent: String::new() }
    }

    #[test]
    fn error_codes_in_every_protocol() {
        let xml = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>m</Message></Error></Errors></Response>";
        assert_eq!(error_code(xml, None).as_deref(), Some("RequestLimitExceeded"));
        let json = br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"m"}"#;
        assert_eq!(error_code(json, None).as_deref(), Some("QueueDoesNotExist"));
        assert_eq!(
            error_code(b"{}", Some("ResourceNotFoundException:http://x")).as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(error_code(b"not an error", None), None);
    }

    #[test]
    fn counts_and_paging() {
        let mut log = RequestLog::default();
        log.record(call("CreateFleet"), 1, 200, None, false);
        log.record(call("CreateFleet"), 2, 503, Some("RequestLimitExceeded".into()), true);
        log.record(call("CreateFleet"), 3, 503, Some("RequestLimitExceeded".into()), false);
        assert_eq!(log.since(1).map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(log.errors_by_code().get("RequestLimitExceeded"), Some(&2));
        let throttled = log.counts().into_iter().find(|c| c.status == 503);
        assert_eq!(throttled.map(|c| (c.count, c.injected)), Some((2, 1)));
    }

    #[test]
    fn memory_is_bounded_and_the_counts_keep_everything() {
        let mut log = RequestLog::default();
        log.set_budget(4096);
        for at in 0..1000 {
            log.record(call("DescribeInstances"), at, 200, None, false);
        }
        let kept: Vec<u64> = log.since(0).map(|e| e.seq).collect();
        assert!(kept.len() < 100, "{} entries kept in 4 KiB", kept.len());
        assert_eq!(kept.last(), Some(&1000), "the newest entry is kept");
        assert_eq!(log.dropped() + kept.len() as u64, 1000);
        assert_eq!(log.since(990).count(), 10);
        assert_eq!(log.counts().first().map(|c| c.count), Some(1000));
    }
}
