//! The HTTP front: one endpoint that tells AWS services apart as AWS's own endpoints would
//! ([`route`]), hands each request to its service's endpoint (each answering in its own
//! protocol), and the admin API under `/_fake/`.

mod ec2;
mod json;
mod query;
mod rest;
pub mod route;
mod sqs;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::any;

pub use self::ec2::ec2_request;
use crate::auth::SignedRequest;
use crate::ec2::query::Form;
use route::Route;

/// Shared server state: the cloud behind one lock (requests are short; order is the cloud's order).
pub type AppState = crate::cloud::Shared;

pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/_fake", crate::admin::router())
        .route("/", any(aws_endpoint))
        .fallback(aws_endpoint)
        .with_state(state)
}

/// Serves until the future `shutdown` completes; returns once the listener is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ticker = tokio::spawn(drive_clock(state.clone()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let region = {
        let mut c = state.cloud();
        c.events.set_forwarder(tx);
        c.region().to_owned()
    };
    let forwarder = tokio::spawn(crate::events::forward(rx, region));
    let result = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await;
    ticker.abort();
    forwarder.abort();
    result
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Applies timers as world time passes (taking the lock does), so state moves on even when
/// nobody asks.
async fn drive_clock(state: AppState) {
    loop {
        let wait = {
            let c = state.cloud();
            c.next_timer_at().and_then(|at| c.clock.real_delay_until(at))
        };
        let wait =
            wait.unwrap_or(Duration::from_millis(200)).clamp(Duration::from_millis(5), Duration::from_millis(200));
        tokio::time::sleep(wait).await;
    }
}

fn lower_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in h {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        out.entry(k.as_str().to_ascii_lowercase())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// A Query-protocol request's parameters: the form body, then the URL's (signature ones aside).
fn query_form(signed: &SignedRequest<'_>) -> Form {
    let mut form = Form::parse(signed.body);
    for (k, v) in form_urlencoded::parse(signed.query.as_bytes()).into_owned() {
        if !k.starts_with("X-Amz-") {
            form.map.entry(k).or_insert(v);
        }
    }
    form
}

async fn aws_endpoint(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or_default().to_owned();
    let hdrs = lower_headers(&headers);
    let signed =
        SignedRequest { method: method.as_str(), path: uri.path(), query: &query, headers: &hdrs, body: &body };
    let route = route::classify(&signed);
    let call = route::call_of(&route, &signed);
    let response = match route {
        Route::Ec2 => ec2::endpoint(&state, &signed).await,
        Route::SqsJson(op) => sqs::json_request(&state, &op, &signed).await,
        Route::SqsQuery => sqs::query_request(&state, &signed).await,
        Route::Ssm(op) => json::ssm(&state, &op, &signed),
        Route::Pricing(op) => json::pricing(&state, &op, &signed),
        Route::Fis => rest::fis(&state, &signed),
        Route::Eks => rest::eks(&state, &signed),
        Route::Iam => query::iam(&state, &signed),
        Route::Sts => query::sts(&state, &signed),
        Route::Unknown(u) => json::unknown(&state, &u),
    };
    record(&state, call, response).await
}

/// Marks an answer an injected fault (admin rule or FIS action) gave, for the request log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Injected;

/// Logs the answer (its status and, for an error, its code) and passes it on.
async fn record(state: &AppState, call: crate::requests::Call, response: Response) -> Response {
    let status = response.status().as_u16();
    let injected = response.extensions().get::<Injected>().is_some();
    let (response, code) = if status >= 400 {
        let (parts, body) = response.into_parts();
        // Error answers are small; one that cannot be read is logged without its code.
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let error_type = parts.headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok());
        let code = crate::requests::error_code(&bytes, error_type);
        (Response::from_parts(parts, axum::body::Body::from(bytes)), code)
    } else {
        (response, None)
    };
    let at = state.cloud().now();
    state.requests().record(call, at, status, code, injected);
    response
}
