//! `GET /_fake/requests?since=N`: the AWS requests answered after entry `N`, oldest first, of
//! those still in memory (`dropped` says how many of the oldest the log's budget let go);
//! `GET /_fake/requests/summary`: how many answers of each (service, action, status, error code),
//! and error answers by code. Fault scenarios check with it that their fault was answered.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cloud::Shared as AppState;

#[derive(Deserialize)]
pub(super) struct Since {
    #[serde(default)]
    since: u64,
}

pub(super) async fn list(State(s): State<AppState>, Query(q): Query<Since>) -> Json<Value> {
    let log = s.requests();
    let requests: Vec<&crate::requests::Entry> = log.since(q.since).collect();
    Json(json!({"requests": requests, "last_seq": log.last_seq(), "dropped": log.dropped()}))
}

pub(super) async fn summary(State(s): State<AppState>) -> Json<Value> {
    let log = s.requests();
    Json(json!({"calls": log.counts(), "errors_by_code": log.errors_by_code(), "last_seq": log.last_seq()}))
}
