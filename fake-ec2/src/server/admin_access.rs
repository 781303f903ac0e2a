//! Who may use the admin API (`/_fake/*`: faults, pools, the clock): anyone who reaches a loopback
//! listener, or whoever holds `--admin-token`. `serve` refuses an exposure that gives a non-loopback
//! caller the admin API without a token ([`check_exposure`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::hooks::{Asked, Hooks};

/// Where the admin API is served and how it is protected.
#[derive(Debug, Clone, Copy)]
pub struct AdminExposure<'a> {
    /// The AWS listener's address.
    pub listen: SocketAddr,
    /// The admin API's own listener, if it has one (else it shares the AWS listener).
    pub admin_listen: Option<SocketAddr>,
    pub token: Option<&'a str>,
}

/// Refuses an admin API that a caller off this machine could reach without a token, with what to
/// do about it.
pub fn check_exposure(e: AdminExposure<'_>) -> Result<(), String> {
    let admin_addr = e.admin_listen.unwrap_or(e.listen);
    if e.token.is_some_and(|t| t.is_empty()) {
        return Err("--admin-token must not be empty.".into());
    }
    if admin_addr.ip().is_loopback() || e.token.is_some() {
        return Ok(());
    }
    let shared = if e.admin_listen.is_none() { " (it shares the AWS listener by default)" } else { "" };
    Err(format!(
        "refusing to serve the admin API (/_fake/*: faults, pools, the clock) unauthenticated on \
         {admin_addr}, which is not a loopback address{shared}. Either move it to a loopback \
         listener of its own with --admin-listen 127.0.0.1:4567 (the AWS API stays on {}), or \
         protect it with --admin-token <secret> (env FAKE_EC2_ADMIN_TOKEN; callers then send \
         `Authorization: Bearer <secret>`, and the fake-ec2 CLI takes the same --admin-token).",
        e.listen
    ))
}

/// Answers 401 (JSON, as the admin API answers every error) unless the request carries the token.
pub(super) async fn require_token(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    let mut r = (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "the admin API needs Authorization: Bearer <the --admin-token of serve>"})),
    )
        .into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// After an admin call that changes something (not a GET): records it and writes the state
/// file, before answering.
pub(super) async fn after_admin_call(
    State(state): State<AppState>,
    Extension(hooks): Extension<Arc<Hooks>>,
    request: Request,
    next: Next,
) -> Response {
    let changes = request.method() != Method::GET && request.method() != Method::HEAD;
    if !changes || (hooks.recorder.is_none() && hooks.state_file.is_none()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let at_ms = state.cloud().now();
    let body = match super::limits::read(body, ADMIN_MAX_BYTES).await {
        Ok(super::limits::ReadBody::Whole(b)) => b,
        _ => {
            let error = format!("admin requests are at most {ADMIN_MAX_BYTES} bytes");
            return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(json!({ "error": error }))).into_response();
        }
    };
    let response = next.run(Request::from_parts(parts.clone(), axum::body::Body::from(body.clone()))).await;
    // Nested under /_fake (server::admin_router), this layer sees paths stripped: record the
    // path sent, so the replay sends it to the same place.
    let mut sent = parts.clone();
    let full = format!("/_fake{}", parts.uri.path_and_query().map_or("", |p| p.as_str()));
    if let Ok(uri) = full.parse() {
        sent.uri = uri;
    }
    // The admin token stays out of the recording (the replay's admin API needs none).
    sent.headers.remove(header::AUTHORIZATION);
    let action = format!("{} {}", sent.method, sent.uri.path());
    let asked = Asked { at_ms, service: "admin", action: &action, parts: &sent, body: &body };
    super::hooks::after(&hooks, &state, asked, response, false).await
}

/// The largest admin request read (1 MiB): templates and fault specs are a few KiB.
const ADMIN_MAX_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure<'a>(listen: &str, admin: Option<&str>, token: Option<&'a str>) -> AdminExposure<'a> {
        AdminExposure {
            listen: listen.parse().unwrap_or_else(|_| unreachable!()),
            admin_listen: admin.map(|a| a.parse().unwrap_or_else(|_| unreachable!())),
            token,
        }
    }

    #[test]
    fn refuses_only_an_open_admin_api_off_loopback() {
        assert!(check_exposure(exposure("127.0.0.1:4566", None, None)).is_ok());
        assert!(check_exposure(exposure("[::1]:4566", None, None)).is_ok());
        assert!(check_exposure(exposure("0.0.0.0:4566", Some("127.0.0.1:4567"), None)).is_ok());
        assert!(check_exposure(exposure("0.0.0.0:4566", None, Some("s3cret"))).is_ok());
        let e = check_exposure(exposure("0.0.0.0:4566", None, None)).err().unwrap_or_default();
        assert!(e.contains("--admin-listen") && e.contains("--admin-token"), "{e}");
        assert!(check_exposure(exposure("127.0.0.1:4566", Some("0.0.0.0:4567"), None)).is_err());
        assert!(check_exposure(exposure("0.0.0.0:4566", None, Some(""))).is_err());
    }

    #[test]
    fn compares_tokens_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
