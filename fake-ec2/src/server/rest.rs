//! The REST-JSON endpoints (FIS, EKS): errors as `x-amzn-errortype` and `{"message": ...}`, every
//! answer with `x-amzn-requestid`.

use std::panic::AssertUnwindSafe;

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::Value;
use tracing::{debug, info, warn};

use super::AppState;
use super::json::json_response;
use crate::auth::{self, SignedRequest};
use crate::cloud::Cloud;

/// A REST-JSON error: status, error type and message.
struct RestError {
    status: u16,
    kind: &'static str,
    message: String,
}

/// Checks the signature and runs `op` under the lock (a panic answers `InternalServerException`),
/// then answers in REST-JSON.
fn respond(
    state: &AppState,
    service: &'static str,
    signed: &SignedRequest<'_>,
    op: impl FnOnce(&mut Cloud) -> Result<Value, RestError>,
) -> Response {
    let mut guard = state.cloud();
    let c = &mut *guard;
    let request_id = c.rng.request_id();
    let result = auth::check(&c.ec2.cfg.auth, signed)
        .map_err(|e| {
            let (status, kind) = e.json_kind();
            RestError { status, kind, message: e.message }
        })
        .and_then(|()| {
            std::panic::catch_unwind(AssertUnwindSafe(|| op(c))).unwrap_or_else(|_| {
                warn!(service, path = signed.path, "handler panicked; answering InternalServerException");
                Err(RestError {
                    status: 500,
                    kind: "InternalServerException",
                    message: "An internal error has occurred".into(),
                })
            })
        });
    drop(guard);
    let (status, body, kind) = match result {
        Ok(v) => {
            debug!(service, method = signed.method, path = signed.path, %request_id, "ok");
            (200, v.to_string(), None)
        }
        Err(e) => {
            info!(service, method = signed.method, path = signed.path, %request_id, kind = e.kind, status = e.status, "error");
            (e.status, serde_json::json!({"message": e.message}).to_string(), Some(e.kind))
        }
    };
    answer(status, body, kind, &request_id)
}

/// A REST-JSON answer: the body, `x-amzn-requestid` and, for an error, `x-amzn-errortype`.
fn answer(status: u16, body: String, kind: Option<&'static str>, request_id: &str) -> Response {
    let mut r = json_response(status, "application/json", body);
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    if let Some(kind) = kind {
        r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    }
    r
}

/// A REST-JSON error answered before any service saw the request (a body over the size limit).
pub(super) fn error(status: u16, kind: &'static str, message: &str, request_id: &str) -> Response {
    answer(status, serde_json::json!({"message": message}).to_string(), Some(kind), request_id)
}

pub(super) fn fis(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    respond(state, "fis", signed, |c| {
        let now = c.now();
        let (fis, mut lab) = c.lab();
        crate::faults::fis::api::handle(fis, &mut lab, now, signed.method, signed.path, signed.query, signed.body)
            .map_err(|e| RestError { status: e.status, kind: e.kind, message: e.message })
    })
}

pub(super) fn eks(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    respond(state, "eks", signed, |c| {
        crate::eks::api::handle(&c.eks, signed.method, signed.path, signed.query).map_err(|e| RestError {
            status: e.status,
            kind: e.kind,
            message: e.message,
        })
    })
}
