//! The HTTP front: one endpoint that tells AWS services apart as AWS's own endpoints would
//! ([`route`]), hands each request to its service's endpoint (each answering in its own
//! protocol), and the admin API under `/_fake/`.

mod admin_access;
mod ec2;
pub mod hooks;
mod json;
pub mod limits;
mod query;
mod rest;
pub mod route;
mod sqs;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};

pub use self::admin_access::{AdminExposure, check_exposure};
pub use self::ec2::ec2_request;
pub use self::hooks::Hooks;
use crate::auth::SignedRequest;
use crate::ec2::query::Form;
use route::Route;

/// Shared server state: the cloud behind one lock (requests are short; order is the cloud's order).
pub type AppState = crate::cloud::Shared;

/// The AWS endpoint and the admin API on one listener, the admin API open (loopback use).
pub fn app(state: AppState) -> Router {
    let hooks = Hooks::none();
    aws_app(state.clone(), hooks.clone()).merge(admin_app(state, None, hooks))
}

/// The AWS endpoint alone: every path is an AWS request, `/_fake/` included.
pub fn aws_app(state: AppState, hooks: Arc<Hooks>) -> Router {
    Router::new()
        .route("/", any(aws_endpoint))
        .fallback(aws_endpoint)
        .layer(DefaultBodyLimit::disable())
        .layer(Extension(hooks))
        .with_state(state)
}

/// The admin API under `/_fake/`, behind `Authorization: Bearer <token>` when a token is given.
pub fn admin_app(state: AppState, token: Option<String>, hooks: Arc<Hooks>) -> Router {
    let admin = crate::admin::router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), admin_access::after_admin_call))
        .layer(Extension(hooks));
    let admin = match token {
        Some(t) => admin.layer(axum::middleware::from_fn_with_state(Arc::new(t), admin_access::require_token)),
        None => admin,
    };
    Router::new().nest("/_fake", admin).with_state(state)
}

/// Where and how fake-ec2 listens: the AWS listener, the admin API's own listener if any (else
/// the AWS one serves it too), and the admin API's bearer token if any.
pub struct Listeners {
    pub aws: tokio::net::TcpListener,
    pub admin: Option<tokio::net::TcpListener>,
    pub admin_token: Option<String>,
    /// The state file and the recording, if any.
    pub hooks: Arc<Hooks>,
}

/// Serves until the future `shutdown` completes; returns once the listener is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(Listeners { aws: listener, admin: None, admin_token: None, hooks: Hooks::none() }, state, shutdown).await
}

/// Serves on every listener until `shutdown` completes, then writes the state file (if any) one
/// last time.
pub async fn serve_with(
    listeners: Listeners,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ticker = tokio::spawn(drive_clock(state.clone()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (region, counters) = {
        let mut c = state.cloud();
        c.events.set_forwarder(tx);
        (c.region().to_owned(), c.events.forward_counters())
    };
    let forwarder = tokio::spawn(crate::events::forward(rx, region, counters));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let Listeners { aws, admin, admin_token, hooks } = listeners;
    let flusher = tokio::spawn(hooks::flush_periodically(hooks.clone(), state.clone()));
    let result = match admin {
        None => {
            let router =
                aws_app(state.clone(), hooks.clone()).merge(admin_app(state.clone(), admin_token, hooks.clone()));
            axum::serve(aws, router).with_graceful_shutdown(stopped(stop_rx)).await
        }
        Some(admin) => {
            let aws_server = axum::serve(aws, aws_app(state.clone(), hooks.clone()))
                .with_graceful_shutdown(stopped(stop_rx.clone()));
            let admin_server = axum::serve(admin, admin_app(state.clone(), admin_token, hooks.clone()))
                .with_graceful_shutdown(stopped(stop_rx));
            let (a, b) = tokio::join!(aws_server.into_future(), admin_server.into_future());
            a.and(b)
        }
    };
    ticker.abort();
    forwarder.abort();
    flusher.abort();
    hooks::flush(&hooks, &state);
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
    Extension(hooks): Extension<Arc<Hooks>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let at_ms = state.cloud().now();
    let read = limits::read(body, limits::MAX_REQUEST_BYTES).await;
    let (body, too_large) = match read {
        Ok(limits::ReadBody::Whole(b)) => (b, None),
        Ok(limits::ReadBody::TooLarge { prefix, seen }) => (prefix, Some(seen)),
        // The client went away mid-body: there is nobody to answer.
        Err(_) => (axum::body::Bytes::new(), Some(0)),
    };
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let hdrs = lower_headers(&parts.headers);
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &hdrs,
        body: &body,
    };
    let route = route::classify(&signed);
    let call = route::call_of(&route, &signed);
    let response = match (too_large, route) {
        (Some(seen), route) => limits::too_large(&state, &route, &signed, seen),
        (None, Route::Ec2) => ec2::endpoint(&state, &signed).await,
        (None, Route::SqsJson(op)) => sqs::json_request(&state, &op, &signed).await,
        (None, Route::SqsQuery) => sqs::query_request(&state, &signed).await,
        (None, Route::Ssm(op)) => json::ssm(&state, &op, &signed),
        (None, Route::Pricing(op)) => json::pricing(&state, &op, &signed),
        (None, Route::Fis) => rest::fis(&state, &signed),
        (None, Route::Eks) => rest::eks(&state, &signed),
        (None, Route::Iam) => query::iam(&state, &signed),
        (None, Route::Sts) => query::sts(&state, &signed),
        (None, Route::Unknown(u)) => json::unknown(&state, &u),
    };
    let read_only = crate::persist::is_read_only(&call.service, &call.action);
    let (service, action) = (call.service.clone(), call.action.clone());
    let response = record(&state, call, response).await;
    let asked = hooks::Asked { at_ms, service: &service, action: &action, parts: &parts, body: &body };
    hooks::after(&hooks, &state, asked, response, read_only).await
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
