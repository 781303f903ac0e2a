//! The JSON services (SSM and Pricing, AWS JSON 1.1), and the answer to a request no served
//! service takes, in the protocol that request speaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::info;

use super::AppState;
use super::route::{Protocol, Unknown};
use crate::auth::{self, SignedRequest};
use crate::xml::escape;

pub(super) fn json_response(status: u16, content_type: &'static str, body: String) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// One SSM request (AWS JSON 1.1).
pub(super) fn ssm(state: &AppState, op: &str, signed: &SignedRequest<'_>) -> Response {
    let c = state.cloud();
    let (status, body) = match auth::check(&c.ec2.cfg.auth, signed) {
        Ok(()) => crate::ssm::handle(&c.ec2, op, signed.body),
        Err(e) => (e.status, json!({"__type": e.code, "message": e.message}).to_string()),
    };
    drop(c);
    if status != 200 {
        info!(%op, status, "ssm error");
    }
    json_response(status, "application/x-amz-json-1.1", body)
}

/// One Pricing request (AWS JSON 1.1).
pub(super) fn pricing(state: &AppState, op: &str, signed: &SignedRequest<'_>) -> Response {
    let c = state.cloud();
    let (status, body) = crate::pricing::handle(&c.ec2, op, signed.body);
    drop(c);
    if status != 200 {
        info!(%op, status, "pricing error");
    }
    json_response(status, "application/x-amz-json-1.1", body)
}

/// A request for a service (or an operation) fake-ec2 does not serve.
pub(super) fn unknown(state: &AppState, u: &Unknown) -> Response {
    let service = u.service.as_deref().unwrap_or("unknown");
    let message = match &u.service {
        Some(s) => format!("fake-ec2 does not serve the {s} service (operation {})", u.operation),
        None => format!("Unknown operation {}", u.operation),
    };
    info!(service, operation = %u.operation, "request for a service fake-ec2 does not serve");
    match u.protocol {
        Protocol::Json => {
            let body = json!({"__type": "UnknownOperationException", "message": message});
            json_response(400, "application/x-amz-json-1.0", body.to_string())
        }
        Protocol::RestJson => {
            let request_id = state.cloud().rng.request_id();
            let mut r = json_response(404, "application/json", json!({"message": message}).to_string());
            r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static("UnknownOperationException"));
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            r
        }
        Protocol::Query => {
            let request_id = state.cloud().rng.request_id();
            let body = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
                escape(&message),
                escape(&request_id)
            );
            let mut r = json_response(400, "text/xml", body);
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            r
        }
    }
}
