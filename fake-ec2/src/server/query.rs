//! The Query-protocol endpoints other than EC2's (IAM, STS): XML answers, errors in the
//! `<ErrorResponse>` envelope with the service's namespace.

use std::panic::AssertUnwindSafe;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{debug, info, warn};

use super::AppState;
use crate::auth::{self, SignedRequest};
use crate::cloud::Cloud;
use crate::xml::query_error;

pub(super) fn xml_response(status: u16, request_id: &str, body: String) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

/// Checks the signature and runs `op` (the action, the cloud, the request id) under the lock.
fn respond(
    state: &AppState,
    service: &'static str,
    xmlns: &str,
    signed: &SignedRequest<'_>,
    op: impl FnOnce(&str, &mut Cloud, &str) -> (u16, String),
) -> Response {
    let form = super::query_form(signed);
    let action = form.map.get("Action").cloned().unwrap_or_default();
    let mut guard = state.cloud();
    let c = &mut *guard;
    let request_id = c.rng.request_id();
    let (status, body) = match auth::check(&c.ec2.cfg.auth, signed) {
        Err(e) => {
            let (status, code) = e.query_kind();
            (status, query_error(xmlns, status, code, &e.message, &request_id))
        }
        Ok(()) => std::panic::catch_unwind(AssertUnwindSafe(|| op(&action, c, &request_id))).unwrap_or_else(|_| {
            warn!(service, %action, "handler panicked; answering ServiceFailure");
            (500, query_error(xmlns, 500, "ServiceFailure", "An internal error has occurred", &request_id))
        }),
    };
    drop(guard);
    if status == 200 {
        debug!(service, %action, %request_id, "ok");
    } else {
        info!(service, %action, %request_id, status, "error");
    }
    xml_response(status, &request_id, body)
}

pub(super) fn iam(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    let form = super::query_form(signed);
    respond(state, "iam", crate::iam::api::XMLNS, signed, |_, c, request_id| {
        let now = c.now();
        crate::iam::api::handle(&mut c.iam, &form.map, now, &mut c.rng, request_id)
    })
}

pub(super) fn sts(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    let access_key = auth::scope(signed.headers, signed.query, signed.body).map(|s| s.access_key).unwrap_or_default();
    respond(state, "sts", crate::sts::XMLNS, signed, |action, c, request_id| {
        crate::sts::handle(action, c.account_id(), &access_key, request_id)
    })
}
