//! EventBridge-shaped events and the bus that routes them to SQS queues by rules.
//!
//! - [`Event`]: the JSON EC2 and AWS Health put on EventBridge, field for field and in their order
//!   (`version, id, detail-type, source, account, time, region, resources, detail`).
//! - [`pattern`]: EventBridge event patterns.
//! - [`Bus`]: the rules (from the world file's `rules:`), delivery into the built-in SQS, and the
//!   append-only event log (JSON lines, in logical order).
//!
//! The bus is pure: the cloud ([`crate::cloud::Cloud`]) publishes every event the world and FIS
//! record, in the order they happened on the world clock, so the same seed and requests give the
//! same messages in the same order.

mod forward;
pub mod pattern;
pub mod snapshot;

pub use forward::{Forward, ForwardCounters, Forwarded, forward};

use std::io::Write;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bounded_log::BoundedLog;
use crate::clock::{Millis, iso_seconds, to_datetime};
use crate::sqs::{MessageAttributes, Queues};
pub use pattern::Pattern;

pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub const SPOT_INTERRUPTION: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
pub const HEALTH: &str = "AWS Health Event";
pub const CAPACITY_RESERVATION_INTERRUPTION: &str = "EC2 Capacity Reservation Instance Interruption Warning";
pub const FIS_EXPERIMENT_STATE_CHANGE: &str = "FIS Experiment State Change";

/// One event, serialised exactly as EventBridge delivers it to an SQS target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    pub time: String,
    pub region: String,
    pub resources: Vec<String>,
    pub detail: Detail,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    StateChange {
        #[serde(rename = "instance-id")]
        instance_id: String,
        state: String,
    },
    Interruption {
        #[serde(rename = "instance-id")]
        instance_id: String,
        #[serde(rename = "instance-action")]
        instance_action: String,
    },
    Rebalance {
        #[serde(rename = "instance-id")]
        instance_id: String,
    },
    Health(HealthDetail),
    Fis(FisDetail),
}

/// The detail of `FIS Experiment State Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FisDetail {
    pub experiment_id: String,
    pub experiment_template_id: String,
    pub new_state: FisState,
    pub old_state: FisState,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FisState {
    pub status: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetail {
    pub event_arn: String,
    pub service: String,
    pub event_type_code: String,
    pub event_type_category: String,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub event_description: Vec<HealthDescription>,
    pub affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDescription {
    pub language: String,
    pub latest_description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    pub entity_value: String,
}

/// What happened, before the world gives it an id and a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    StateChange {
        instance_id: String,
        state: String,
    },
    SpotInterruption {
        instance_id: String,
        action: String,
    },
    Rebalance {
        instance_id: String,
    },
    CapacityReservationInterruption {
        instance_id: String,
        action: String,
    },
    Health {
        event_type_code: String,
        instance_ids: Vec<String>,
        start: Millis,
        end: Option<Millis>,
        description: String,
    },
    FisExperimentStateChange {
        experiment_id: String,
        template_id: String,
        new_status: String,
        new_reason: String,
        old_status: String,
        old_reason: String,
    },
}

impl Kind {
    /// The instance an EC2 event is about (none for Health events, which may name several).
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            Self::StateChange { instance_id, .. }
            | Self::SpotInterruption { instance_id, .. }
            | Self::Rebalance { instance_id }
            | Self::CapacityReservationInterruption { instance_id, .. } => Some(instance_id),
            Self::Health { .. } | Self::FisExperimentStateChange { .. } => None,
        }
    }
}

/// Where an event happened: account and region.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

/// `Sat, 05 Jun 2016 15:10:09 GMT`, the form AWS Health uses for start and end times.
pub fn health_time(ms: Millis) -> String {
    to_datetime(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn instance_arn(o: Origin<'_>, id: &str) -> String {
    format!("arn:aws:ec2:{}:{}:instance/{id}", o.region, o.account)
}

/// A UUID (version 4 layout) from the events stream.
pub fn event_id(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rand::Rng::fill_bytes(rng, &mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

impl Event {
    pub fn build(kind: Kind, id: String, at: Millis, o: Origin<'_>) -> Self {
        let ec2 = |detail_type: &str, instance_id: &str, detail: Detail| Self {
            version: "0".into(),
            id: id.clone(),
            detail_type: detail_type.into(),
            source: "aws.ec2".into(),
            account: o.account.into(),
            time: iso_seconds(at),
            region: o.region.into(),
            resources: vec![instance_arn(o, instance_id)],
            detail,
        };
        match kind {
            Kind::StateChange { instance_id, state } => {
                ec2(STATE_CHANGE, &instance_id.clone(), Detail::StateChange { instance_id, state })
            }
            Kind::SpotInterruption { instance_id, action } => ec2(
                SPOT_INTERRUPTION,
                &instance_id.clone(),
                Detail::Interruption { instance_id, instance_action: action },
            ),
            Kind::CapacityReservationInterruption { instance_id, action } => ec2(
                CAPACITY_RESERVATION_INTERRUPTION,
                &instance_id.clone(),
                Detail::Interruption { instance_id, instance_action: action },
            ),
            Kind::Rebalance { instance_id } => ec2(REBALANCE, &instance_id.clone(), Detail::Rebalance { instance_id }),
            Kind::FisExperimentStateChange {
                experiment_id,
                template_id,
                new_status,
                new_reason,
                old_status,
                old_reason,
            } => Self {
                version: "0".into(),
                id: id.clone(),
                detail_type: FIS_EXPERIMENT_STATE_CHANGE.into(),
                source: "aws.fis".into(),
                account: o.account.into(),
                time: iso_seconds(at),
                region: o.region.into(),
                resources: vec![format!("arn:aws:fis:{}:{}:experiment/{experiment_id}", o.region, o.account)],
                detail: Detail::Fis(FisDetail {
                    experiment_id,
                    experiment_template_id: template_id,
                    new_state: FisState { status: new_status, reason: new_reason },
                    old_state: FisState { status: old_status, reason: old_reason },
                }),
            },
            Kind::Health { event_type_code, instance_ids, start, end, description } => Self {
                version: "0".into(),
                id: id.clone(),
                detail_type: HEALTH.into(),
                source: "aws.health".into(),
                account: o.account.into(),
                time: iso_seconds(at),
                region: o.region.into(),
                resources: instance_ids.clone(),
                detail: Detail::Health(HealthDetail {
                    event_arn: format!(
                        "arn:aws:health:{}::event/EC2/{event_type_code}/{event_type_code}_{}",
                        o.region,
                        id.replace('-', "").get(..16).unwrap_or_default()
                    ),
                    service: "EC2".into(),
                    event_type_code,
                    event_type_category: "scheduledChange".into(),
                    start_time: health_time(start),
                    end_time: end.map(health_time),
                    event_description: vec![HealthDescription {
                        language: "en_US".into(),
                        latest_description: description,
                    }],
                    affected_entities: instance_ids
                        .into_iter()
                        .map(|entity_value| AffectedEntity { entity_value })
                        .collect(),
                }),
            },
        }
    }
}

/// A rule as the world file writes it: `{name, pattern, targets: [queue name or ARN]}`. The
/// pattern is a YAML/JSON object, or a string holding the JSON (as `put-rule --event-pattern`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub pattern: Value,
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub pattern: Pattern,
    pub pattern_json: Value,
    pub targets: Vec<String>,
}

impl Rule {
    pub fn from_config(c: &RuleConfig) -> Result<Self, String> {
        let json = match &c.pattern {
            Value::String(s) => {
                serde_json::from_str(s).map_err(|e| format!("rule {}: pattern is not JSON: {e}", c.name))?
            }
            v => v.clone(),
        };
        let pattern = Pattern::compile(&json).map_err(|e| format!("rule {}: {e}", c.name))?;
        Ok(Self { name: c.name.clone(), pattern, pattern_json: json, targets: c.targets.clone() })
    }
}

/// One delivery of an event to a rule's target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub rule: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
struct LogLine<'a> {
    seq: u64,
    at_ms: Millis,
    event: &'a Event,
    deliveries: &'a [Delivery],
    /// What the world adds for the log only, e.g. the resources an FIS experiment resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a Value>,
}

/// The rules, and the log of every event published.
#[derive(Debug, Default)]
pub struct Bus {
    pub rules: Vec<Rule>,
    /// The newest log lines within a byte budget (the file sink keeps everything).
    log: BoundedLog<String>,
    /// Sequence number of the next event (1-based).
    next_seq: u64,
    sink: Option<std::io::LineWriter<std::fs::File>>,
    /// Where events for external SQS queues (targets that are queue URLs) go: the forwarder task.
    external: Option<tokio::sync::mpsc::UnboundedSender<Forward>>,
    /// What the forwarder delivered and gave up on, shared with its task.
    forwarded: std::sync::Arc<ForwardCounters>,
}

impl Bus {
    pub fn new(rules: &[RuleConfig]) -> Result<Self, String> {
        let rules = rules.iter().map(Rule::from_config).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules, next_seq: 1, ..Self::default() })
    }

    /// Keeps the newest log lines within `bytes` in memory (see [`crate::bounded_log`]).
    pub fn set_log_budget(&mut self, bytes: usize) {
        self.log.set_budget(bytes);
    }

    /// How many of the oldest log lines were dropped from memory to stay within the budget.
    pub fn log_dropped(&self) -> u64 {
        self.log.dropped()
    }

    /// Appends every log line from now on to `file` as well.
    pub fn set_sink(&mut self, file: std::fs::File) {
        self.sink = Some(std::io::LineWriter::new(file));
    }

    /// Sends messages for targets that are queue URLs (`http(s)://host/account/name`) to `tx`.
    pub fn set_forwarder(&mut self, tx: tokio::sync::mpsc::UnboundedSender<Forward>) {
        self.external = Some(tx);
    }

    /// The counters the forwarder task updates (hand them to [`forward`]).
    pub fn forward_counters(&self) -> std::sync::Arc<ForwardCounters> {
        self.forwarded.clone()
    }

    /// What the forwarder has delivered to external SQS queues so far, and given up on.
    pub fn forwarded(&self) -> Forwarded {
        self.forwarded.read()
    }

    /// Adds or replaces a rule by name.
    pub fn put_rule(&mut self, rule: Rule) {
        match self.rules.iter_mut().find(|r| r.name == rule.name) {
            Some(r) => *r = rule,
            None => self.rules.push(rule),
        }
    }

    /// Routes one event to every matching rule's targets (built-in queues, by name or ARN) and
    /// logs it. Returns the deliveries.
    pub fn publish(&mut self, event: &Event, at: Millis, queues: &mut Queues, rng: &mut ChaCha8Rng) -> Vec<Delivery> {
        self.publish_noted(event, at, queues, rng, None)
    }

    /// [`Bus::publish`], with a note that only the log line carries.
    pub fn publish_noted(
        &mut self,
        event: &Event,
        at: Millis,
        queues: &mut Queues,
        rng: &mut ChaCha8Rng,
        note: Option<&Value>,
    ) -> Vec<Delivery> {
        let value = serde_json::to_value(event).unwrap_or(Value::Null);
        let body = serde_json::to_string(event).unwrap_or_default();
        let mut deliveries = Vec::new();
        for rule in self.rules.iter().filter(|r| r.pattern.matches(&value)) {
            for target in &rule.targets {
                if target.starts_with("http://") || target.starts_with("https://") {
                    let sent = match &self.external {
                        Some(tx) => tx
                            .send(Forward { queue_url: target.clone(), body: body.clone() })
                            .map(|()| self.forwarded.queue())
                            .map_err(|_| "the forwarder has stopped".to_owned()),
                        None => Err("no forwarder to external SQS endpoints runs".to_owned()),
                    };
                    deliveries.push(Delivery {
                        rule: rule.name.clone(),
                        target: target.clone(),
                        message_id: None,
                        error: sent.err(),
                    });
                    continue;
                }
                let name = if target.starts_with("arn:") {
                    queues.by_arn(target).map(|q| q.name.clone())
                } else {
                    Some(target.clone())
                };
                let sent = name
                    .ok_or_else(|| "no such queue".to_owned())
                    .and_then(|n| queues.send(&n, &body, MessageAttributes::new(), at, rng).map_err(|e| e.message));
                deliveries.push(Delivery {
                    rule: rule.name.clone(),
                    target: target.clone(),
                    message_id: sent.as_ref().ok().map(|s| s.message_id.clone()),
                    error: sent.err(),
                });
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let line = serde_json::to_string(&LogLine { seq, at_ms: at, event, deliveries: &deliveries, note })
            .unwrap_or_default();
        if let Some(sink) = &mut self.sink
            && let Err(e) = writeln!(sink, "{line}")
        {
            tracing::warn!(error = %e, "cannot append to the event log file; no longer writing it");
            self.sink = None;
        }
        self.keep_line(line);
        deliveries
    }

    fn keep_line(&mut self, line: String) {
        let bytes = std::mem::size_of::<String>() + line.len();
        self.log.push(line, bytes);
    }

    /// Log lines with sequence number > `since` still kept, oldest first.
    pub fn log_since(&self, since: u64) -> impl Iterator<Item = &str> {
        let first = self.next_seq - self.log.len() as u64;
        let skip = since.saturating_sub(first.saturating_sub(1)) as usize;
        self.log.skip(skip).map(String::as_str)
    }

    /// How many events were published.
    pub fn published(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const O: Origin<'static> = Origin { account: "123456789012", region: "us-west-2" };
    const T: Millis = 1_767_225_600_000;

    #[test]
    fn spot_warning_json_is_exactly_ec2s() {
        let e = Event::build(
            Kind::SpotInterruption { instance_id: "i-0123456789abcdef0".into(), action: "terminate".into() },
            "1e5527d7-bb36-4607-3370-4164db56a40e".into(),
            T,
            O,
        );
        assert_eq!(
            serde_json::to_string(&e).unwrap_or_default(),
            r#"{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-west-2","resources":["arn:aws:ec2:us-west-2:123456789012:instance/i-0123456789abcdef0"],"detail":{"instance-id":"i-0123456789abcdef0","instance-action":"terminate"}}"#
        );
    }

    #[test]
    fn health_event_has_what_karpenter_reads() {
        let e = Event::build(
            Kind::Health {
                event_type_code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
                instance_ids: vec!["i-0abc".into()],
                start: T + 86_400_000,
                end: None,
                description: "retiring".into(),
            },
            "7fb65329-1628-4cf3-a740-95fa457a1402".into(),
            T,
            O,
        );
        let v = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(v["source"], "aws.health");
        assert_eq!(v["detail-type"], "AWS Health Event");
        assert_eq!(v["resources"], json!(["i-0abc"]));
        assert_eq!(v["detail"]["service"], "EC2");
        assert_eq!(v["detail"]["eventTypeCategory"], "scheduledChange");
        assert_eq!(v["detail"]["startTime"], "Fri, 02 Jan 2026 00:00:00 GMT");
        assert_eq!(v["detail"]["affectedEntities"], json!([{"entityValue": "i-0abc"}]));
        assert_eq!(v["detail"]["eventDescription"][0]["language"], "en_US");
        assert!(v["detail"]["eventArn"].as_str().unwrap_or_default().starts_with(
            "arn:aws:health:us-west-2::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_"
        ));
    }

    #[test]
    fn bus_routes_by_rule_to_queues_by_name_or_arn_and_logs() {
        use rand::SeedableRng;
        let mut queues = Queues::new("us-west-2", "123456789012");
        for q in ["a", "b"] {
            let _ = queues.create(q, &Default::default(), &Default::default(), T);
        }
        let rules: Vec<RuleConfig> = serde_json::from_value(json!([
            {"name": "spot", "pattern": {"source": ["aws.ec2"], "detail-type": [SPOT_INTERRUPTION]}, "targets": ["a", "arn:aws:sqs:us-west-2:123456789012:b"]},
            {"name": "states", "pattern": "{\"detail\": {\"state\": [\"terminated\"]}}", "targets": ["b", "missing"]},
        ]))
        .unwrap_or_default();
        let mut bus = Bus::new(&rules).unwrap_or_default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let warn =
            Event::build(Kind::SpotInterruption { instance_id: "i-1".into(), action: "stop".into() }, "x".into(), T, O);
        let d = bus.publish(&warn, T, &mut queues, &mut rng);
        assert_eq!(
            d.iter().map(|d| d.target.as_str()).collect::<Vec<_>>(),
            ["a", "arn:aws:sqs:us-west-2:123456789012:b"]
        );
        assert!(d.iter().all(|d| d.error.is_none() && d.message_id.is_some()));
        let running =
            Event::build(Kind::StateChange { instance_id: "i-1".into(), state: "running".into() }, "y".into(), T, O);
        assert!(bus.publish(&running, T, &mut queues, &mut rng).is_empty());
        let gone =
            Event::build(Kind::StateChange { instance_id: "i-1".into(), state: "terminated".into() }, "z".into(), T, O);
        let d = bus.publish(&gone, T, &mut queues, &mut rng);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].error.as_deref(), Some("The specified queue does not exist."));
        assert_eq!(queues.get("a").map(|q| q.len()).unwrap_or_default(), 1);
        assert_eq!(queues.get("b").map(|q| q.len()).unwrap_or_default(), 2);
        let body = queues.get("a").ok().and_then(|q| q.messages().next().map(|m| m.body.clone())).unwrap_or_default();
        assert_eq!(body, serde_json::to_string(&warn).unwrap_or_default());
        assert_eq!(bus.published(), 3);
        let lines: Vec<&str> = bus.log_since(1).collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with(r#"{"seq":2,"at_ms":1767225600000,"event":{"version":"0","id":"y""#),
            "{}",
            lines[0]
        );
        assert!(
            Bus::new(&[RuleConfig { name: "bad".into(), pattern: json!({"source": "x"}), targets: vec![] }]).is_err()
        );
    }

    #[test]
    fn the_log_keeps_its_newest_lines_within_its_budget() {
        use rand::SeedableRng;
        let mut queues = Queues::new("us-west-2", "123456789012");
        let mut bus = Bus::new(&[]).unwrap_or_default();
        bus.set_log_budget(2048);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for i in 0..100 {
            let e = Event::build(
                Kind::StateChange { instance_id: format!("i-{i}"), state: "running".into() },
                format!("id-{i}"),
                T,
                O,
            );
            bus.publish(&e, T, &mut queues, &mut rng);
        }
        let kept: Vec<&str> = bus.log_since(0).collect();
        assert!(!kept.is_empty() && kept.len() < 20, "{} lines kept in 2 KiB", kept.len());
        assert_eq!(bus.log_dropped() + kept.len() as u64, 100);
        assert!(kept.last().is_some_and(|l| l.starts_with(r#"{"seq":100,"#)), "{kept:?}");
        assert_eq!(bus.log_since(98).count(), 2, "a reader keeping up misses nothing");
    }
}
