//! The HTTP front: one endpoint that tells EC2 Query, the Pricing API and SQS apart, as
//! AWS's own endpoints would, and the admin API under `/_fake/`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tracing::{debug, info, warn};

use crate::auth::{self, SignedRequest};
use crate::ec2::error::Ec2Error;
use crate::ec2::query::Form;
use crate::ec2::{self, Call};
use crate::world::World;
use crate::world::throttle::{request_category, resource_category};

/// Shared server state: the world behind one lock (requests are short; order is the world's order).
#[derive(Clone)]
pub struct AppState {
    world: Arc<Mutex<World>>,
}

impl AppState {
    pub fn new(world: World) -> Self {
        Self { world: Arc::new(Mutex::new(world)) }
    }

    /// Locks the world; a panic elsewhere never makes it unusable.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

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
        let mut w = state.world();
        w.events.set_forwarder(tx);
        w.cfg.region.clone()
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

/// Applies timers as world time passes, so state moves on even when nobody asks.
async fn drive_clock(state: AppState) {
    loop {
        let wait = {
            let mut w = state.world();
            w.sync();
            w.next_timer_at().and_then(|at| w.clock.real_delay_until(at))
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

fn xml_response(status: u16, body: String) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml;charset=UTF-8"));
    r.headers_mut().insert(header::SERVER, HeaderValue::from_static("AmazonEC2"));
    r
}

fn json_response(status: u16, content_type: &'static str, body: String) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn aws_endpoint(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let query = uri.query().unwrap_or_default().to_owned();
    let hdrs = lower_headers(&headers);
    if let Some(op) = target.as_deref().and_then(|t| t.strip_prefix("AmazonSQS.")) {
        let signed =
            SignedRequest { method: method.as_str(), path: uri.path(), query: &query, headers: &hdrs, body: &body };
        return crate::sqs::json_request(&state, op, &signed).await;
    }
    if let Some(op) = target.as_deref().and_then(|t| t.strip_prefix("AmazonSSM.")) {
        let signed =
            SignedRequest { method: method.as_str(), path: uri.path(), query: &query, headers: &hdrs, body: &body };
        return ssm_endpoint(&state, op, &signed);
    }
    if let Some(target) = target {
        return json_endpoint(&state, &target, &body);
    }
    if crate::faults::fis::api::is_fis_path(uri.path()) {
        let signed =
            SignedRequest { method: method.as_str(), path: uri.path(), query: &query, headers: &hdrs, body: &body };
        return fis_endpoint(&state, &signed);
    }
    let signed =
        SignedRequest { method: method.as_str(), path: uri.path(), query: &query, headers: &hdrs, body: &body };
    let mut form = Form::parse(&body);
    for (k, v) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        if !k.starts_with("X-Amz-") {
            form.map.entry(k).or_insert(v);
        }
    }
    if crate::sqs::is_query_request(&form.map, &hdrs) {
        return crate::sqs::query_request(&state, &form.map, &signed).await;
    }
    if let Some((status, xml)) = inject(&state, &form, &signed).await {
        return xml_response(status, xml);
    }
    let (status, xml) = ec2_request(&state, &form, &signed);
    xml_response(status, xml)
}

/// Applies injected faults (admin API, FIS) to a signed EC2 call: waits out added latency without
/// the world lock, and answers an injected error in EC2's envelope. None lets the call through.
async fn inject(state: &AppState, form: &Form, signed: &SignedRequest<'_>) -> Option<(u16, String)> {
    let action = form.map.get("Action").map(String::as_str).unwrap_or_default();
    // Only actions EC2 has; anything else gets EC2's own error.
    ec2::handler(action)?;
    let (injected, request_id) = {
        let mut guard = state.world();
        let w = &mut *guard;
        w.sync();
        if auth::check(&w.cfg.auth, signed).is_err() {
            return None;
        }
        let now = w.now();
        let injected = w.faults.decide(action, now, &mut w.rng.faults);
        let request_id = injected.error.as_ref().map(|_| w.rng.request_id());
        (injected, request_id)
    };
    if injected.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(injected.latency_ms)).await;
    }
    let e = injected.error?;
    let request_id = request_id.unwrap_or_default();
    info!(%action, %request_id, code = %e.code, status = e.status, "injected error");
    Some((e.status, e.to_xml(&request_id)))
}

/// One FIS REST-JSON request.
fn fis_endpoint(state: &AppState, signed: &SignedRequest<'_>) -> Response {
    let mut w = state.world();
    w.sync();
    let request_id = w.rng.request_id();
    let result = auth::check(&w.cfg.auth, signed)
        .map_err(|e| {
            // The REST-JSON names of the signature errors EC2 reports in its own words.
            let (status, kind) = match e.code.as_str() {
                "MissingAuthenticationToken" => (403, "MissingAuthenticationTokenException"),
                "IncompleteSignature" => (400, "IncompleteSignatureException"),
                "RequestExpired" => (403, "InvalidSignatureException"),
                _ => (403, "UnrecognizedClientException"),
            };
            crate::faults::fis::FisError { status, kind, message: e.message }
        })
        .and_then(|()| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                crate::faults::fis::api::handle(&mut w, signed.method, signed.path, signed.query, signed.body)
            }))
            .unwrap_or_else(|_| {
                warn!(path = signed.path, "FIS handler panicked; answering InternalServerException");
                Err(crate::faults::fis::FisError {
                    status: 500,
                    kind: "InternalServerException",
                    message: "An internal error has occurred".into(),
                })
            })
        });
    drop(w);
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

/// Handles one EC2 Query request; never panics, never leaves the world half-changed on error.
pub fn ec2_request(state: &AppState, form: &Form, signed: &SignedRequest<'_>) -> (u16, String) {
    let mut w = state.world();
    w.sync();
    let request_id = w.rng.request_id();
    let action = form.map.get("Action").cloned().unwrap_or_default();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| dispatch(&mut w, form, signed, &action, &request_id)));
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
    w: &mut World,
    form: &Form,
    signed: &SignedRequest<'_>,
    action: &str,
    request_id: &str,
) -> Result<String, Ec2Error> {
    if action.is_empty() {
        return Err(Ec2Error::client("MissingAction", "The request must contain the parameter Action"));
    }
    auth::check(&w.cfg.auth, signed)?;
    let handler = ec2::handler(action).ok_or_else(|| Ec2Error::unknown_action(action))?;
    let params = form.root();
    let now = w.now();
    if !w.throttle.try_take(request_category(action, ec2::is_unfiltered(&params)), 1.0, now) {
        return Err(Ec2Error::throttled());
    }
    if let Some(cat) = resource_category(action) {
        let n = if action == "RunInstances" {
            params.int("MaxCount").ok().flatten().unwrap_or(1).max(1)
        } else {
            params.strings("InstanceId").map(|v| v.len()).unwrap_or(1).max(1) as i64
        };
        if !w.throttle.try_take(cat, n as f64, now) {
            return Err(Ec2Error::throttled());
        }
    }
    if ec2::denied(w, action) && !params.flag("DryRun").unwrap_or(false) {
        return Err(Ec2Error::unauthorized());
    }
    let call = Call { action, params, request_id: request_id.to_owned() };
    handler(w, &call)
}

/// One SSM request (AWS JSON 1.1).
fn ssm_endpoint(state: &AppState, op: &str, signed: &SignedRequest<'_>) -> Response {
    let w = state.world();
    let (status, body) = match auth::check(&w.cfg.auth, signed) {
        Ok(()) => crate::ssm::handle(&w, op, signed.body),
        Err(e) => (e.status, serde_json::json!({"__type": e.code, "message": e.message}).to_string()),
    };
    drop(w);
    if status != 200 {
        info!(%op, status, "ssm error");
    }
    json_response(status, "application/x-amz-json-1.1", body)
}

/// JSON protocols, told apart by `X-Amz-Target` as AWS does.
fn json_endpoint(state: &AppState, target: &str, body: &[u8]) -> Response {
    let (service, op) = target.split_once('.').unwrap_or((target, ""));
    match service {
        "AWSPriceListService" => {
            let w = state.world();
            let (status, json) = crate::pricing::handle(&w, op, body);
            json_response(status, "application/x-amz-json-1.1", json)
        }
        _ => {
            let body = serde_json::json!({
                "__type": "UnknownOperationException",
                "message": format!("Unknown operation {target}"),
            });
            json_response(400, "application/x-amz-json-1.0", body.to_string())
        }
    }
}
