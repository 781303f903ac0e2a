//! The EC2 endpoint: injected faults first (added latency waited out without the lock), then
//! auth, the action table's throttling buckets, and the handler, under the cloud's lock.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{debug, info, warn};

use super::AppState;
use crate::auth::{self, SignedRequest};
use crate::cloud::{Cloud, Neighbours};
use crate::ec2::error::Ec2Error;
use crate::ec2::query::Form;
use crate::ec2::{self, Call, Ec2Ctx, actions};

pub(super) fn xml_response(status: u16, body: String) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml;charset=UTF-8"));
    r.headers_mut().insert(header::SERVER, HeaderValue::from_static("AmazonEC2"));
    r
}

pub(super) async fn endpoint(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    let form = super::query_form(signed);
    if let Some((status, xml)) = inject(state, &form, signed).await {
        let mut r = xml_response(status, xml);
        r.extensions_mut().insert(super::Injected);
        return r;
    }
    let (status, xml) = ec2_request(state, &form, signed);
    xml_response(status, xml)
}

/// Applies injected faults (admin API, FIS) to a signed EC2 call: waits out added latency without
/// the lock, and answers an injected error in EC2's envelope. None lets the call through.
async fn inject(state: &AppState, form: &Form, signed: &SignedRequest<'_>) -> Option<(u16, String)> {
    let action = form.map.get("Action").map(String::as_str).unwrap_or_default();
    // Only actions EC2 has; anything else gets EC2's own error.
    actions::find(action)?;
    let (injected, request_id) = {
        let mut guard = state.cloud();
        let c = &mut *guard;
        if auth::check(&c.ec2.cfg.auth, signed).is_err() {
            return None;
        }
        let now = c.now();
        let injected = c.faults.decide(action, now, &mut c.rng.faults);
        let request_id = injected.error.as_ref().map(|_| c.rng.request_id());
        (injected, request_id)
    };
    if injected.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(injected.latency_ms)).await;
    }
    let e = Ec2Error::from(injected.error?);
    let request_id = request_id.unwrap_or_default();
    info!(%action, %request_id, code = %e.code, status = e.status, "injected error");
    Some((e.status, e.to_xml(&request_id)))
}

/// Handles one EC2 Query request; never panics, never leaves the world half-changed on error.
pub fn ec2_request(state: &AppState, form: &Form, signed: &SignedRequest<'_>) -> (u16, String) {
    let mut c = state.cloud();
    let request_id = c.rng.request_id();
    let action = form.map.get("Action").cloned().unwrap_or_default();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| dispatch(&mut c, form, signed, &action, &request_id)));
    let result = result.unwrap_or_else(|_| {
        warn!(%action, %request_id, "handler panicked; answering InternalError");
        Err(Ec2Error::internal())
    });
    match result {
        Ok(xml) => {
            debug!(%action, %request_id, "ok");
            (200, xml)
        }
        Err(e) => {
            info!(%action, %request_id, code = %e.code, status = e.status, "error");
            (e.status, e.to_xml(&request_id))
        }
    }
}

fn dispatch(
    c: &mut Cloud,
    form: &Form,
    signed: &SignedRequest<'_>,
    action: &str,
    request_id: &str,
) -> Result<String, Ec2Error> {
    if action.is_empty() {
        return Err(Ec2Error::client("MissingAction", "The request must contain the parameter Action"));
    }
    auth::check(&c.ec2.cfg.auth, signed)?;
    let entry = actions::find(action).ok_or_else(|| Ec2Error::unknown_action(action))?;
    let params = form.root();
    let now = c.now();
    let throttle = &mut c.ec2.throttle;
    if !throttle.try_take(entry.request_category(ec2::is_unfiltered(&params)), 1.0, now) {
        return Err(Ec2Error::throttled());
    }
    if let Some((category, n)) = entry.resource_tokens(&params)
        && !throttle.try_take(category, n, now)
    {
        return Err(Ec2Error::throttled());
    }
    if ec2::denied(&c.ec2, action) && !params.flag("DryRun").unwrap_or(false) {
        return Err(Ec2Error::unauthorized());
    }
    let call = Call { action, params, request_id: request_id.to_owned() };
    let mut neighbours = Neighbours { faults: &mut c.faults, iam: &c.iam, clock: &c.clock };
    let mut cx = Ec2Ctx { world: &mut c.ec2, now, rng: &mut c.rng, checks: &mut neighbours };
    let out = (entry.handler)(&mut cx, &call);
    c.settle();
    out
}
