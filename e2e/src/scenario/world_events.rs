//! fake-ec2's event log lines (`{"seq", "at_ms", "event": <EventBridge event>, ...}`), read back
//! as what the report marks: instance state changes, rebalance recommendations, interruption
//! warnings, AWS Health events and FIS experiment state changes.

use serde_json::Value;

/// One event from the log, at world milliseconds `at_ms`, and the SQS messages its rules sent.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldEvent {
    pub at_ms: i64,
    pub what: What,
    /// (target queue, message id) of each message the event became.
    pub deliveries: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum What {
    State {
        instance_id: String,
        state: String,
    },
    Rebalance {
        instance_id: String,
    },
    /// A spot (or capacity reservation) interruption warning with its action.
    Warning {
        instance_id: String,
        action: String,
        reservation: bool,
    },
    Health {
        code: String,
        instance_ids: Vec<String>,
    },
    Fis {
        experiment_id: String,
        status: String,
    },
}

/// Parses one log line; None for lines of other kinds or that do not parse.
pub fn parse(line: &str) -> Option<WorldEvent> {
    let v: Value = serde_json::from_str(line).ok()?;
    let at_ms = v["at_ms"].as_i64()?;
    let event = &v["event"];
    let detail = &event["detail"];
    let text = |k: &str| detail[k].as_str().map(str::to_owned);
    let what = match event["detail-type"].as_str()? {
        fake_ec2::events::STATE_CHANGE => What::State { instance_id: text("instance-id")?, state: text("state")? },
        fake_ec2::events::REBALANCE => What::Rebalance { instance_id: text("instance-id")? },
        kind @ (fake_ec2::events::SPOT_INTERRUPTION | fake_ec2::events::CAPACITY_RESERVATION_INTERRUPTION) => {
            What::Warning {
                instance_id: text("instance-id")?,
                action: text("instance-action").unwrap_or_default(),
                reservation: kind == fake_ec2::events::CAPACITY_RESERVATION_INTERRUPTION,
            }
        }
        fake_ec2::events::HEALTH => What::Health {
            code: text("eventTypeCode").unwrap_or_default(),
            instance_ids: detail["affectedEntities"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["entityValue"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        },
        fake_ec2::events::FIS_EXPERIMENT_STATE_CHANGE => What::Fis {
            experiment_id: text("experiment-id")?,
            status: detail["new-state"]["status"].as_str()?.to_owned(),
        },
        _ => return None,
    };
    let deliveries = v["deliveries"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .filter_map(|d| Some((d["target"].as_str()?.to_owned(), d["message_id"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Some(WorldEvent { at_ms, what, deliveries })
}

impl What {
    /// The message kind, as the comparison counts interruption-queue messages.
    pub fn kind(&self) -> &'static str {
        match self {
            What::State { .. } => "state change",
            What::Rebalance { .. } => "rebalance recommendation",
            What::Warning { .. } => "interruption warning",
            What::Health { .. } => "AWS Health",
            What::Fis { .. } => "FIS experiment",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(detail_type: &str, detail: Value) -> String {
        serde_json::json!({"seq": 1, "at_ms": 5000, "event": {"detail-type": detail_type, "detail": detail}})
            .to_string()
    }

    #[test]
    fn reads_what_the_report_marks() {
        let warning = line(
            fake_ec2::events::SPOT_INTERRUPTION,
            serde_json::json!({"instance-id": "i-1", "instance-action": "terminate"}),
        );
        assert_eq!(
            parse(&warning),
            Some(WorldEvent {
                at_ms: 5000,
                what: What::Warning { instance_id: "i-1".into(), action: "terminate".into(), reservation: false },
                deliveries: Vec::new(),
            })
        );
        let state =
            line(fake_ec2::events::STATE_CHANGE, serde_json::json!({"instance-id": "i-1", "state": "shutting-down"}));
        assert_eq!(
            parse(&state).map(|e| e.what),
            Some(What::State { instance_id: "i-1".into(), state: "shutting-down".into() })
        );
        let fis = line(
            fake_ec2::events::FIS_EXPERIMENT_STATE_CHANGE,
            serde_json::json!({"experiment-id": "EXP1", "new-state": {"status": "running", "reason": ""}}),
        );
        assert_eq!(
            parse(&fis).map(|e| e.what),
            Some(What::Fis { experiment_id: "EXP1".into(), status: "running".into() })
        );
        let health = line(
            fake_ec2::events::HEALTH,
            serde_json::json!({"eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "affectedEntities": [{"entityValue": "i-2"}]}),
        );
        assert_eq!(
            parse(&health).map(|e| e.what),
            Some(What::Health {
                code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
                instance_ids: vec!["i-2".into()]
            })
        );
        assert_eq!(parse(&line("Something Else", serde_json::json!({}))), None);
        let delivered = serde_json::json!({"seq": 2, "at_ms": 1, "event": {"detail-type": fake_ec2::events::REBALANCE, "detail": {"instance-id": "i-3"}},
            "deliveries": [{"rule": "RebalanceRule", "target": "q", "message_id": "m-1"}, {"rule": "R", "target": "http://x/1/q", "message_id": null}]});
        assert_eq!(parse(&delivered.to_string()).map(|e| e.deliveries), Some(vec![("q".to_owned(), "m-1".to_owned())]));
        assert_eq!(parse("not json"), None);
    }
}
