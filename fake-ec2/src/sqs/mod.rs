//! The built-in SQS: standard queues on the world's clock and seeded streams, served on the same
//! endpoint as EC2 in both wire protocols.
//!
//! - [`queue`]: one queue as a pure state machine (visibility, receipt handles, retention).
//! - [`queues`]: the account's queues, queue attributes, dead-letter redrive, and the Rust API the
//!   event bus uses ([`Queues::send`]).
//! - [`actions`]: the actions on JSON-shaped input and output, shared by both fronts.
//! - [`json`] (AWS JSON 1.0) and [`query`] (Query, XML): the wire.
//! - [`admin`]: `GET /_fake/sqs/messages?queue=<name>`, a peek that changes nothing.
//!
//! Long polls wait without the world lock: on the queue's [`tokio::sync::Notify`] (sends, a
//! visibility set to 0, redrives, purges, deletion) and on a timer for the next message that
//! becomes visible by itself or the end of the wait, converted from world time with
//! [`crate::world::clock::Clock::real_delay_until`]. The timer naps at most [`MAX_NAP`] so a clock
//! advanced by hand (manual mode) is seen promptly; with a manual clock a poll also ends after
//! `WaitTimeSeconds` of real time, so no client waits forever on a clock nobody moves.

pub mod actions;
pub mod admin;
pub mod error;
pub mod json;
pub mod message;
pub mod query;
pub mod queue;
pub mod queues;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use axum::response::Response;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

pub use error::SqsError;
pub use message::{AttributeValue, MessageAttributes};
pub use queue::Sent;
pub use queues::{QueueConfig, Queues};

use crate::auth::{self, SignedRequest};
use crate::server::AppState;
use actions::{Ctx, Outcome, Pending};

/// The longest a waiting long poll sleeps before looking at the clock again.
pub const MAX_NAP: Duration = Duration::from_millis(50);

/// Whether a Query-protocol (form) request is for SQS: the SQS API version, an SQS action name,
/// or a SigV4 credential scope for the `sqs` service.
pub fn is_query_request(form: &BTreeMap<String, String>, headers: &BTreeMap<String, String>) -> bool {
    if form.get("Version").is_some_and(|v| v == query::VERSION) {
        return true;
    }
    if form.get("Action").is_some_and(|a| actions::ACTIONS.contains(&a.as_str())) {
        return true;
    }
    let scope = headers.get("authorization").cloned().or_else(|| form.get("X-Amz-Credential").cloned());
    scope.is_some_and(|s| s.split('/').nth(3) == Some("sqs"))
}

fn host(headers: &BTreeMap<String, String>) -> String {
    headers.get("host").cloned().unwrap_or_else(|| "localhost".to_owned())
}

/// One `X-Amz-Target: AmazonSQS.<op>` request.
pub async fn json_request(state: &AppState, op: &str, signed: &SignedRequest<'_>) -> Response {
    let ctx = Ctx { host: host(signed.headers) };
    let (request_id, result) = match json::parse(signed.body) {
        Ok(input) => run(state, op, &input, &ctx, signed).await,
        Err(e) => (state.world().rng.request_id(), Err(e)),
    };
    json::respond(&request_id, result)
}

/// One Query-protocol request (form already merged from body and URL query).
pub async fn query_request(state: &AppState, form: &BTreeMap<String, String>, signed: &SignedRequest<'_>) -> Response {
    let ctx = Ctx { host: host(signed.headers) };
    let action = form.get("Action").cloned().unwrap_or_default();
    if action.is_empty() {
        let request_id = state.world().rng.request_id();
        return query::respond("Error", &request_id, Err(SqsError::missing("Action")));
    }
    let input = query::to_input(form, &action, signed.path, &ctx.host);
    let (request_id, result) = run(state, &action, &input, &ctx, signed).await;
    query::respond(&action, &request_id, result)
}

/// Runs one action: checks the signature, answers at once or waits out a long poll.
async fn run(
    state: &AppState,
    op: &str,
    input: &Value,
    ctx: &Ctx,
    signed: &SignedRequest<'_>,
) -> (String, Result<Value, SqsError>) {
    let (request_id, first) = {
        let mut w = state.world();
        w.sync();
        let request_id = w.rng.request_id();
        let result =
            auth::check(&w.cfg.auth, signed).map_err(|e| SqsError::auth(e.status, &e.code, e.message)).and_then(|()| {
                std::panic::catch_unwind(AssertUnwindSafe(|| actions::execute(&mut w, op, input, ctx))).unwrap_or_else(
                    |_| {
                        warn!(%op, "SQS handler panicked; answering InternalError");
                        Err(SqsError::internal())
                    },
                )
            });
        (request_id, result)
    };
    let result = match first {
        Ok(Outcome::Done(v)) => Ok(v),
        Ok(Outcome::Wait(p)) => long_poll(state, p).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(_) => debug!(%op, %request_id, "sqs ok"),
        Err(e) => info!(%op, %request_id, code = e.code, status = e.status, "sqs error"),
    }
    (request_id, result)
}

/// Waits for a message or the end of the long poll, never holding the world lock while waiting.
async fn long_poll(state: &AppState, p: Pending) -> Result<Value, SqsError> {
    let real_deadline = Instant::now() + Duration::from_secs(p.wait_seconds.max(0) as u64);
    loop {
        let (mut notified, nap) = {
            let mut w = state.world();
            w.sync();
            let attempt = std::panic::catch_unwind(AssertUnwindSafe(|| actions::receive_once(&mut w, &p.request)))
                .unwrap_or_else(|_| Err(SqsError::internal()))?;
            if let Some(v) = attempt {
                return Ok(v);
            }
            let now = w.now();
            let left = real_deadline.saturating_duration_since(Instant::now());
            if now >= p.deadline || left.is_zero() {
                return Ok(json!({}));
            }
            let (notify, next_visible, _) = actions::wait_state(&w, &p.request.queue_url)?;
            // Registered before the lock is released, so a send from now on is never missed.
            let mut notified = Box::pin(notify.notified_owned());
            notified.as_mut().enable();
            let wake_at = next_visible.map_or(p.deadline, |t| t.min(p.deadline));
            let nap = w.clock.real_delay_until(wake_at).unwrap_or(MAX_NAP).min(MAX_NAP).min(left);
            (notified, nap)
        };
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(nap) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_sqs_query_requests_apart() {
        let form = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let none = BTreeMap::new();
        assert!(is_query_request(&form(&[("Action", "ListQueues"), ("Version", "2012-11-05")]), &none));
        assert!(is_query_request(&form(&[("Action", "SendMessage")]), &none));
        assert!(!is_query_request(&form(&[("Action", "DescribeInstances"), ("Version", "2016-11-15")]), &none));
        let signed = BTreeMap::from([(
            "authorization".to_owned(),
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-west-2/sqs/aws4_request, SignedHeaders=host, Signature=0"
                .to_owned(),
        )]);
        assert!(is_query_request(&form(&[("Action", "Whatever")]), &signed));
    }
}
