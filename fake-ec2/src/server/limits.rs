//! How large a request fake-ec2 reads, and the answer to one that is larger, in the protocol of
//! the service it was for: never axum's plain-text 413 and never a reset connection.
//!
//! The documented limits sit inside the services (SQS: a message and a batch's total payload at
//! most 1 MiB, 1,048,576 bytes, per the SQS API reference of `SendMessage`/`SendMessageBatch` in
//! aws-sdk-sqs 1.119; EC2: user data at most 16 KB raw, per the EC2 user guide). This is the
//! transport's cap above them: the largest legitimate body (a 1 MiB SQS batch, percent-encoded in
//! the Query protocol, about 3 MiB with its attributes) fits well under [`MAX_REQUEST_BYTES`].

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

use super::AppState;
use super::route::{Protocol, Route};
use crate::auth::SignedRequest;
use crate::ec2::error::Ec2Error;
use crate::sqs::SqsError;

/// The largest request body read (10 MiB).
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// How much of an oversized body is still read (and dropped) so the client gets the answer
/// rather than a reset connection; past this the connection is closed.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// A request body: whole, or too large (its first [`MAX_REQUEST_BYTES`] and its length as far as read).
pub enum ReadBody {
    Whole(Bytes),
    TooLarge { prefix: Bytes, seen: usize },
}

/// Reads a body up to `cap` bytes; past it keeps the prefix (to tell the action) and drains the rest.
pub async fn read(body: Body, cap: usize) -> Result<ReadBody, axum::Error> {
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if buf.len() < cap {
            let take = (cap - buf.len()).min(data.len());
            buf.extend_from_slice(&data[..take]);
        }
        if seen > DRAIN_BYTES {
            break;
        }
    }
    let bytes = Bytes::from(buf);
    Ok(if seen > cap { ReadBody::TooLarge { prefix: bytes, seen } } else { ReadBody::Whole(bytes) })
}

/// The answer to a request whose body is over the cap, in its service's own error format.
pub fn too_large(state: &AppState, route: &Route, signed: &SignedRequest<'_>, seen: usize) -> axum::response::Response {
    let message = format!("The request body ({seen} bytes or more) exceeds the {MAX_REQUEST_BYTES}-byte limit.");
    let request_id = state.cloud().rng.request_id();
    match route {
        Route::Ec2 => {
            let e = Ec2Error::client("InvalidParameterValue", message);
            super::ec2::xml_response(e.status, e.to_xml(&request_id))
        }
        Route::SqsJson(op) => crate::sqs::json::respond(&request_id, Err(sqs_error(op, seen, message))),
        Route::SqsQuery => {
            let action = super::query_form(signed).map.get("Action").cloned().unwrap_or_default();
            let e = sqs_error(&action, seen, message);
            crate::sqs::query::respond(if action.is_empty() { "Error" } else { &action }, &request_id, Err(e))
        }
        Route::Iam => query_error(crate::iam::api::XMLNS, &message, &request_id),
        Route::Sts => query_error(crate::sts::XMLNS, &message, &request_id),
        Route::Ssm(_) | Route::Pricing(_) => json_error(&message),
        Route::Fis => super::rest::error(400, "ValidationException", &message, &request_id),
        Route::Eks => super::rest::error(400, "InvalidParameterException", &message, &request_id),
        Route::Unknown(u) => match u.protocol {
            Protocol::Json => json_error(&message),
            Protocol::Query => query_error("", &message, &request_id),
            Protocol::RestJson => super::rest::error(400, "ValidationException", &message, &request_id),
        },
    }
}

fn sqs_error(action: &str, seen: usize, message: String) -> SqsError {
    if action == "SendMessageBatch" {
        SqsError::batch_too_long(crate::sqs::actions::MAX_BATCH_BYTES, seen)
    } else {
        SqsError::invalid_parameter(message)
    }
}

fn query_error(xmlns: &str, message: &str, request_id: &str) -> axum::response::Response {
    let body = crate::xml::query_error(xmlns, 400, "InvalidParameterValue", message, request_id);
    super::query::xml_response(400, request_id, body)
}

fn json_error(message: &str) -> axum::response::Response {
    let body = serde_json::json!({"__type": "ValidationException", "message": message}).to_string();
    super::json::json_response(400, "application/x-amz-json-1.1", body)
}
