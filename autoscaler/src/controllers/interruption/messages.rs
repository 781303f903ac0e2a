//! Interruption queue messages: raw EventBridge JSON, dispatched on (version, source, detail-type)
//! as Karpenter's `EventParser` does (aws/karpenter-provider-aws `pkg/controllers/interruption`).
//! Pure: no I/O, so every shape is unit-tested.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Karpenter's message kinds; the `message_type` label of the interruption metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    SpotInterrupted,
    RebalanceRecommendation,
    InstanceStopped,
    InstanceTerminated,
    ScheduledChange,
    CapacityReservationInterrupted,
    NoOp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SpotInterrupted => "spot_interrupted",
            Kind::RebalanceRecommendation => "rebalance_recommendation",
            Kind::InstanceStopped => "instance_stopped",
            Kind::InstanceTerminated => "instance_terminated",
            Kind::ScheduledChange => "scheduled_change",
            Kind::CapacityReservationInterrupted => "capacity_reservation_interrupted",
            Kind::NoOp => "no_op",
        }
    }

    /// What the controller does with the NodeClaims the message names.
    pub fn action(self) -> Action {
        match self {
            Kind::RebalanceRecommendation | Kind::NoOp => Action::NoAction,
            _ => Action::CordonAndDrain,
        }
    }
}

/// Karpenter's action types (`actionTypeLabel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CordonAndDrain,
    NoAction,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CordonAndDrain => "CordonAndDrain",
            Action::NoAction => "NoAction",
        }
    }
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    /// EventBridge event id.
    pub id: String,
    /// The event's `time`: message latency is measured from it.
    pub time: DateTime<Utc>,
    pub instance_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("message body is not an EventBridge event: {0}")]
    NotAnEvent(String),
    #[error("{detail_type} event: {problem}")]
    Detail { detail_type: String, problem: String },
}

/// The envelope every EventBridge event has (Karpenter's `messages.Metadata`).
#[derive(Deserialize)]
struct Metadata {
    version: String,
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    id: String,
    time: DateTime<Utc>,
    #[serde(default)]
    detail: Value,
}

const SPOT: &str = "EC2 Spot Instance Interruption Warning";
const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
const HEALTH: &str = "AWS Health Event";
const CAPACITY_RESERVATION: &str = "EC2 Capacity Reservation Instance Interruption Warning";

/// Parses one SQS message body. Unknown (version, source, detail-type) tuples and events Karpenter
/// ignores (other states, other services, other Health categories) are `NoOp`, not errors.
pub fn parse(body: &str) -> Result<Message, ParseError> {
    let m: Metadata = serde_json::from_str(body).map_err(|e| ParseError::NotAnEvent(e.to_string()))?;
    let detail_err = |problem: &str| ParseError::Detail { detail_type: m.detail_type.clone(), problem: problem.into() };
    let instance_id = || {
        m.detail
            .get("instance-id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| vec![s.to_owned()])
            .ok_or_else(|| detail_err("no detail.instance-id"))
    };
    let (kind, instance_ids) = match (m.version.as_str(), m.source.as_str(), m.detail_type.as_str()) {
        ("0", "aws.ec2", SPOT) => (Kind::SpotInterrupted, instance_id()?),
        ("0", "aws.ec2", REBALANCE) => (Kind::RebalanceRecommendation, instance_id()?),
        ("0", "aws.ec2", CAPACITY_RESERVATION) => (Kind::CapacityReservationInterrupted, instance_id()?),
        ("0", "aws.ec2", STATE_CHANGE) => {
            let state = m.detail.get("state").and_then(Value::as_str).ok_or_else(|| detail_err("no detail.state"))?;
            let kind = match state {
                "stopping" | "stopped" => Kind::InstanceStopped,
                "shutting-down" | "terminated" => Kind::InstanceTerminated,
                _ => Kind::NoOp,
            };
            (kind, instance_id()?)
        }
        ("0", "aws.health", HEALTH) => scheduled_change(&m.detail).map_err(|p| detail_err(&p))?,
        _ => (Kind::NoOp, vec![]),
    };
    let instance_ids = if kind == Kind::NoOp { vec![] } else { instance_ids };
    Ok(Message { kind, id: m.id, time: m.time, instance_ids })
}

/// Karpenter acts on EC2 scheduled changes only; every affected entity is an instance.
fn scheduled_change(detail: &Value) -> Result<(Kind, Vec<String>), String> {
    let text = |k: &str| detail.get(k).and_then(Value::as_str);
    if text("service") != Some("EC2") || text("eventTypeCategory") != Some("scheduledChange") {
        return Ok((Kind::NoOp, vec![]));
    }
    let entities = detail.get("affectedEntities").and_then(Value::as_array).ok_or("no detail.affectedEntities")?;
    let mut ids = Vec::new();
    for e in entities {
        let id = e.get("entityValue").and_then(Value::as_str).ok_or("an affected entity without entityValue")?;
        ids.push(id.to_owned());
    }
    Ok((Kind::ScheduledChange, ids))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // karpenter.md §3.1, verbatim.
    const SPOT_MSG: &str = r#"{
  "version": "0",
  "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
  "detail-type": "EC2 Spot Instance Interruption Warning",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2022-08-11T14:00:00Z",
  "region": "us-east-2",
  "resources": ["arn:aws:ec2:us-east-2:instance/i-0123456789"],
  "detail": { "instance-id": "i-0123456789", "instance-action": "terminate" }
}"#;
    const REBALANCE_MSG: &str = r#"{
  "version": "0",
  "id": "5d5555d5-dd55-5555-5555-5555dd55d55d",
  "detail-type": "EC2 Instance Rebalance Recommendation",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2020-10-26T14:14:14Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1b:instance/i-0b662ef9931388ba0"],
  "detail": { "instance-id": "i-0b662ef9931388ba0" }
}"#;
    const STATE_MSG: &str = r#"{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2015-11-11T21:29:54Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
  "detail": { "instance-id": "i-abcd1111", "state": "shutting-down" }
}"#;
    const HEALTH_MSG: &str = r#"{
  "version": "0",
  "id": "7fb65329-1628-4cf3-a740-95fg457h1402",
  "detail-type": "AWS Health Event",
  "source": "aws.health",
  "account": "123456789012",
  "time": "2016-06-05T06:27:57Z",
  "region": "us-east-1",
  "resources": ["i-12345678"],
  "detail": {
    "eventArn": "arn:aws:health:region::event/id",
    "service": "EC2",
    "eventTypeCode": "AWS_EC2_DEDICATED_HOST_NETWORK_MAINTENANCE_SCHEDULED",
    "eventTypeCategory": "scheduledChange",
    "startTime": "Sat, 05 Jun 2016 15:10:09 GMT",
    "eventDescription": [{ "language": "en_US", "latestDescription": "A description of the event will be provided here" }],
    "affectedEntities": [{ "entityValue": "i-12345678", "tags": { "stage": "prod" } }]
  }
}"#;

    fn kind_and_ids(body: &str) -> (Kind, Vec<String>) {
        let m = parse(body).unwrap();
        (m.kind, m.instance_ids)
    }

    #[test]
    fn karpenters_example_messages() {
        let m = parse(SPOT_MSG).unwrap();
        assert_eq!(m.kind, Kind::SpotInterrupted);
        assert_eq!(m.instance_ids, ["i-0123456789"]);
        assert_eq!(m.id, "1e5527d7-bb36-4607-3370-4164db56a40e");
        assert_eq!(m.time.to_rfc3339(), "2022-08-11T14:00:00+00:00");
        assert_eq!(kind_and_ids(REBALANCE_MSG), (Kind::RebalanceRecommendation, vec!["i-0b662ef9931388ba0".into()]));
        assert_eq!(kind_and_ids(STATE_MSG), (Kind::InstanceTerminated, vec!["i-abcd1111".into()]));
        assert_eq!(kind_and_ids(HEALTH_MSG), (Kind::ScheduledChange, vec!["i-12345678".into()]));
        let cr = SPOT_MSG.replace(SPOT, CAPACITY_RESERVATION);
        assert_eq!(kind_and_ids(&cr), (Kind::CapacityReservationInterrupted, vec!["i-0123456789".into()]));
    }

    #[test]
    fn state_changes_karpenter_acts_on() {
        for (state, kind) in [
            ("stopping", Kind::InstanceStopped),
            ("stopped", Kind::InstanceStopped),
            ("shutting-down", Kind::InstanceTerminated),
            ("terminated", Kind::InstanceTerminated),
            ("running", Kind::NoOp),
            ("pending", Kind::NoOp),
        ] {
            let body = STATE_MSG.replace("\"shutting-down\"", &format!("\"{state}\""));
            assert_eq!(parse(&body).unwrap().kind, kind, "{state}");
        }
        assert!(parse(&STATE_MSG.replace("\"shutting-down\"", "\"running\"")).unwrap().instance_ids.is_empty());
    }

    #[test]
    fn actions() {
        assert_eq!(Kind::SpotInterrupted.action(), Action::CordonAndDrain);
        assert_eq!(Kind::ScheduledChange.action(), Action::CordonAndDrain);
        assert_eq!(Kind::InstanceStopped.action(), Action::CordonAndDrain);
        assert_eq!(Kind::RebalanceRecommendation.action(), Action::NoAction);
        assert_eq!(Kind::NoOp.action(), Action::NoAction);
    }

    #[test]
    fn health_events_other_than_ec2_scheduled_changes_are_noops() {
        let other_service = HEALTH_MSG.replace("\"service\": \"EC2\"", "\"service\": \"RDS\"");
        assert_eq!(kind_and_ids(&other_service), (Kind::NoOp, vec![]));
        let issue = HEALTH_MSG.replace("\"scheduledChange\"", "\"issue\"");
        assert_eq!(parse(&issue).unwrap().kind, Kind::NoOp);
        // Karpenter's own synthetic messages carry only these fields.
        let minimal = r#"{"version":"0","id":"x","detail-type":"AWS Health Event","source":"aws.health",
            "account":"000000000000","time":"2026-01-01T00:00:00Z","region":"us-west-2","resources":[],
            "detail":{"service":"EC2","eventTypeCategory":"scheduledChange",
            "affectedEntities":[{"entityValue":"i-1"},{"entityValue":"i-2"}]}}"#;
        assert_eq!(kind_and_ids(minimal), (Kind::ScheduledChange, vec!["i-1".into(), "i-2".into()]));
    }

    #[test]
    fn unknown_tuples_are_noops() {
        assert_eq!(parse(&SPOT_MSG.replace("\"version\": \"0\"", "\"version\": \"1\"")).unwrap().kind, Kind::NoOp);
        assert_eq!(parse(&SPOT_MSG.replace("aws.ec2", "aws.s3")).unwrap().kind, Kind::NoOp);
        let other = SPOT_MSG.replace(SPOT, "EC2 AMI State Change");
        assert_eq!(kind_and_ids(&other), (Kind::NoOp, vec![]));
    }

    #[test]
    fn malformed_messages_are_errors() {
        for body in [
            "",
            "not json",
            "{}",
            "[1,2]",
            r#"{"version":"0","source":"aws.ec2"}"#,
            // A time that is not RFC 3339.
            &SPOT_MSG.replace("2022-08-11T14:00:00Z", "yesterday"),
            // Truncated.
            &SPOT_MSG[..SPOT_MSG.len() / 2],
        ] {
            assert!(matches!(parse(body), Err(ParseError::NotAnEvent(_))), "{body:?}");
        }
        let no_instance = SPOT_MSG.replace("\"instance-id\": \"i-0123456789\",", "");
        assert!(matches!(parse(&no_instance), Err(ParseError::Detail { .. })));
        let no_state = STATE_MSG.replace(", \"state\": \"shutting-down\"", "");
        assert!(matches!(parse(&no_state), Err(ParseError::Detail { .. })));
        let no_entities = HEALTH_MSG.replace("affectedEntities", "entities");
        assert!(matches!(parse(&no_entities), Err(ParseError::Detail { .. })));
        let bad_entity = HEALTH_MSG.replace("entityValue", "value");
        assert!(matches!(parse(&bad_entity), Err(ParseError::Detail { .. })));
    }
}
