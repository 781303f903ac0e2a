//! `GET /_fake/actions`: every action of every service fake-ec2 serves, one JSON object each:
//! `{"service", "protocol", "action"}`, and for EC2 the throttling buckets it draws from.

use axum::Json;
use serde_json::{Value, json};

/// The services whose actions are plain lists, with their protocols.
const LISTED: &[(&str, &str, &[&str])] = &[
    ("sqs", "json-1.0 query", crate::sqs::actions::ACTIONS),
    ("ssm", "json-1.1", crate::ssm::ACTIONS),
    ("pricing", "json-1.1", crate::pricing::ACTIONS),
    ("fis", "rest-json", crate::faults::fis::api::ACTIONS),
    ("eks", "rest-json", crate::eks::api::ACTIONS),
    ("iam", "query", crate::iam::api::ACTIONS),
    ("sts", "query", crate::sts::ACTIONS),
];

pub(super) async fn list() -> Json<Value> {
    let mut out: Vec<Value> = crate::ec2::actions::ACTIONS
        .iter()
        .map(|a| {
            json!({
                "service": "ec2",
                "protocol": "query",
                "action": a.name,
                "throttling": {
                    "request": a.request,
                    "unfiltered": a.unfiltered,
                    "resource": a.resource.map(|(c, _)| c),
                },
            })
        })
        .collect();
    for (service, protocol, actions) in LISTED {
        out.extend(actions.iter().map(|a| json!({"service": service, "protocol": protocol, "action": a})));
    }
    Json(json!(out))
}
