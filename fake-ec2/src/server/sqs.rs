//! The SQS endpoint, both fronts (AWS JSON 1.0 and Query): actions run under the cloud's lock;
//! long polls wait without it, on the queue's [`tokio::sync::Notify`] (sends, a visibility set to
//! 0, redrives, purges, deletion) and on a timer for the next message that becomes visible by
//! itself or the end of the wait, converted from world time with
//! [`crate::clock::Clock::real_delay_until`]. The timer naps at most [`MAX_NAP`] so a clock
//! advanced by hand (manual mode) is seen promptly; with a manual clock a poll also ends after
//! `WaitTimeSeconds` of real time, so no client waits forever on a clock nobody moves.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use axum::response::Response;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::AppState;
use crate::auth::{self, SignedRequest};
use crate::sqs::actions::{self, Ctx, Outcome, Pending, Sqs};
use crate::sqs::{MAX_NAP, SqsError, json, query};

fn host(headers: &BTreeMap<String, String>) -> String {
    headers.get("host").cloned().unwrap_or_else(|| "localhost".to_owned())
}

/// One `X-Amz-Target: AmazonSQS.<op>` request.
pub(super) async fn json_request(state: &AppState, op: &str, signed: &SignedRequest<'_>) -> Response {
    let ctx = Ctx { host: host(signed.headers) };
    let (request_id, result) = match json::parse(signed.body) {
        Ok(input) => run(state, op, &input, &ctx, signed).await,
        Err(e) => (state.cloud().rng.request_id(), Err(e)),
    };
    json::respond(&request_id, result)
}

/// One Query-protocol request (form from the body and the URL query).
pub(super) async fn query_request(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    let form = &super::query_form(signed).map;
    let ctx = Ctx { host: host(signed.headers) };
    let action = form.get("Action").cloned().unwrap_or_default();
    if action.is_empty() {
        let request_id = state.cloud().rng.request_id();
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
        let mut guard = state.cloud();
        let c = &mut *guard;
        let request_id = c.rng.request_id();
        let now = c.now();
        let mut sqs = Sqs { queues: &mut c.sqs, rng: &mut c.rng.sqs, now };
        let result = auth::check(&c.ec2.cfg.auth, signed)
            .map_err(|e| SqsError::auth(e.status, &e.code, e.message))
            .and_then(|()| {
                std::panic::catch_unwind(AssertUnwindSafe(|| actions::execute(&mut sqs, op, input, ctx)))
                    .unwrap_or_else(|_| {
                        warn!(%op, "SQS handler panicked; answering InternalError");
                        Err(SqsError::internal())
                    })
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
            let mut guard = state.cloud();
            let c = &mut *guard;
            let now = c.now();
            let mut sqs = Sqs { queues: &mut c.sqs, rng: &mut c.rng.sqs, now };
            let attempt = std::panic::catch_unwind(AssertUnwindSafe(|| actions::receive_once(&mut sqs, &p.request)))
                .unwrap_or_else(|_| Err(SqsError::internal()))?;
            if let Some(v) = attempt {
                return Ok(v);
            }
            let left = real_deadline.saturating_duration_since(Instant::now());
            if now >= p.deadline || left.is_zero() {
                return Ok(json!({}));
            }
            let (notify, next_visible, _) = actions::wait_state(&c.sqs, &p.request.queue_url, now)?;
            // Registered before the lock is released, so a send from now on is never missed.
            let mut notified = Box::pin(notify.notified_owned());
            notified.as_mut().enable();
            let wake_at = next_visible.map_or(p.deadline, |t| t.min(p.deadline));
            let nap = c.clock.real_delay_until(wake_at).unwrap_or(MAX_NAP).min(MAX_NAP).min(left);
            (notified, nap)
        };
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(nap) => {}
        }
    }
}
