//! The AWS JSON 1.0 front (`X-Amz-Target: AmazonSQS.<Op>`), the protocol current SDKs speak.
//!
//! Errors: HTTP status from the model, body `{"__type":"com.amazonaws.sqs#<Shape>","message":..}`
//! and, because the service is `awsQueryCompatible`, the header
//! `x-amzn-query-error: <legacy code>;Sender`, from which botocore, aws-sdk-go(-v2), the JS SDK and
//! smithy-rs take the error code they report.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{SqsError, SqsResult};

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The request body as JSON (an empty body is an empty input).
pub fn parse(body: &[u8]) -> SqsResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| SqsError::malformed(format!("Could not parse the request body: {e}")))
}

pub fn respond(request_id: &str, result: SqsResult<Value>) -> Response {
    let (status, body, query_error) = match result {
        Ok(v) => (200, v.to_string(), None),
        Err(e) => {
            let body = json!({"__type": format!("com.amazonaws.sqs#{}", e.shape), "message": e.message});
            (e.status, body.to_string(), Some(format!("{};{}", e.code, e.fault())))
        }
    };
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(q) = query_error.and_then(|q| HeaderValue::from_str(&q).ok()) {
        h.insert("x-amzn-query-error", q);
    }
    r
}
