//! `GET /_fake/sqs/messages?queue=<name or URL>`: every message of a queue as it stands, without
//! receiving it (no visibility change, no receive count), like LocalStack's
//! `/_aws/sqs/messages`. Without `queue`, lists the queues with their counters.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clock::iso;
use crate::cloud::Shared as AppState;
use crate::sqs::queue::Queue;

#[derive(Deserialize)]
pub struct Peek {
    queue: Option<String>,
}

pub(super) async fn messages(State(s): State<AppState>, Query(q): Query<Peek>) -> Response {
    let mut w = s.cloud();
    let now = w.now();
    w.sqs.expire(now);
    let Some(name) = q.queue else {
        let queues: Vec<Value> = w
            .sqs
            .names()
            .filter_map(|n| w.sqs.get(n).ok())
            .map(|q| {
                let c = q.counts(now);
                json!({"name": q.name, "arn": q.arn, "visible": c.visible, "not_visible": c.not_visible, "delayed": c.delayed})
            })
            .collect();
        return Json(json!({ "queues": queues })).into_response();
    };
    let queue = match w.sqs.get(&name) {
        Ok(queue) => queue,
        Err(e) => return (StatusCode::NOT_FOUND, Json(json!({"error": e.message, "queue": name}))).into_response(),
    };
    let list: Vec<Value> = queue
        .messages()
        .map(|m| {
            let mut attrs = Map::new();
            for n in crate::sqs::actions::SYSTEM_ATTRIBUTES.iter().copied() {
                if let Some(v) = Queue::system_attribute(m, n) {
                    attrs.insert(n.to_owned(), v.into());
                }
            }
            let user: Map<String, Value> = m.attributes.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
            json!({
                "MessageId": m.id,
                "Body": m.body,
                "MD5OfBody": m.md5_of_body,
                "MD5OfMessageAttributes": m.md5_of_attributes,
                "Attributes": attrs,
                "MessageAttributes": user,
                "Visible": m.is_visible(now),
                "VisibleAt": iso(m.visible_at),
                "SentAt": iso(m.sent_at),
            })
        })
        .collect();
    Json(json!({ "QueueUrl": name, "QueueArn": queue.arn, "Messages": list })).into_response()
}
