//! The FIS endpoint (REST-JSON): errors as `x-amzn-errortype` and `{"message": ...}`.

use std::panic::AssertUnwindSafe;

use axum::http::HeaderValue;
use axum::response::Response;
use tracing::{debug, info, warn};

use super::AppState;
use super::json::json_response;
use crate::auth::{self, SignedRequest};
use crate::faults::fis::{FisError, api};

pub(super) fn endpoint(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    let mut guard = state.cloud();
    let c = &mut *guard;
    let request_id = c.rng.request_id();
    let result = auth::check(&c.ec2.cfg.auth, signed)
        .map_err(|e| {
            let (status, kind) = e.json_kind();
            FisError { status, kind, message: e.message }
        })
        .and_then(|()| {
            let now = c.now();
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                let (fis, mut lab) = c.lab();
                api::handle(fis, &mut lab, now, signed.method, signed.path, signed.query, signed.body)
            }))
            .unwrap_or_else(|_| {
                warn!(path = signed.path, "FIS handler panicked; answering InternalServerException");
                Err(FisError {
                    status: 500,
                    kind: "InternalServerException",
                    message: "An internal error has occurred".into(),
                })
            })
        });
    drop(guard);
    let (status, body, kind) = match result {
        Ok(v) => {
            debug!(method = signed.method, path = signed.path, %request_id, "fis ok");
            (200, v.to_string(), None)
        }
        Err(e) => {
            info!(method = signed.method, path = signed.path, %request_id, kind = e.kind, status = e.status, "fis error");
            (e.status, serde_json::json!({"message": e.message}).to_string(), Some(e.kind))
        }
    };
    let mut r = json_response(status, "application/json", body);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    if let Some(kind) = kind {
        r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    }
    r
}
