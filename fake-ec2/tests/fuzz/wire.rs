//! Sending a fuzzed request to an in-process fake-ec2 and judging the answer: no panic (a panic in
//! a handler reaches the test through `oneshot`), no 5xx the service would not send, and a 4xx in
//! the wire format of the service the request was for.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use fake_ec2::cloud::{Cloud, Shared};
use fake_ec2::world::config::{ThrottleMode, WorldConfig};
use proptest::test_runner::TestCaseError;
use tower::ServiceExt;

pub const DEFAULT_WORLD: &str = include_str!("../../../fixtures/worlds/default.yaml");

/// The wire format a service answers errors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// EC2 Query: `<Response><Errors><Error><Code>`.
    Ec2,
    /// The Query protocol of SQS, IAM and STS: `<ErrorResponse><Error><Code>`.
    Query,
    /// AWS JSON 1.0/1.1 (SQS, SSM, Pricing): a JSON object with `__type`.
    Json,
    /// REST-JSON (FIS, EKS): `x-amzn-errortype` and a JSON body.
    RestJson,
    /// Whatever service the request ends up at: any of the above.
    Any,
}

/// One HTTP request as the fuzzers build it (and as corpus files spell it).
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn signed(service: &str) -> (String, String) {
    let v = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-west-2/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
    );
    ("authorization".into(), v)
}

impl Req {
    pub fn post(service: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![signed(service), ("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// The default world on a manual clock with throttling off: fuzzed requests must meet the
/// parsers, not the token buckets.
pub fn world() -> Shared {
    let text = DEFAULT_WORLD.replace("mode: real", "mode: manual");
    let mut cfg = WorldConfig::parse(&text, "default.yaml").expect("the default world parses");
    cfg.throttling.mode = ThrottleMode::Off;
    Shared::new(Cloud::new(cfg, 1, Path::new(".")).expect("the default world builds"))
}

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// An answer: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `req` to `state`'s app; `None` if it took longer than a long poll's fair share (fuzzers
/// keep WaitTimeSeconds out of 1..=20, so only a hang gets here).
pub fn send(state: &Shared, req: &Req) -> Result<Option<Answer>, String> {
    let mut builder = Request::builder().method(req.method.as_str()).uri(req.target.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    // A request the HTTP layer itself cannot carry never reaches fake-ec2.
    let Ok(request) = builder.body(Body::from(req.body.clone())) else { return Ok(Some(ok_answer())) };
    let app = fake_ec2::server::app(state.clone());
    RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        let rt = rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
        });
        rt.block_on(async {
            let Ok(answered) = tokio::time::timeout(Duration::from_secs(3), app.oneshot(request)).await else {
                return Ok(None);
            };
            let response = answered.map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| e.to_string())?.to_vec();
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            Ok(Some(Answer { status: parts.status.as_u16(), headers, body }))
        })
    })
}

fn ok_answer() -> Answer {
    Answer { status: 200, headers: Vec::new(), body: Vec::new() }
}

/// EC2 answers these with a 5xx, as AWS does; anything else 5xx is a bug.
const SERVER_SIDE_CODES: &[&str] = &["InsufficientInstanceCapacity"];

/// Sends `req` and checks the invariant for `wire`.
pub fn exchange(state: &Shared, wire: Wire, req: &Req) -> Result<(), TestCaseError> {
    exchange_status(state, wire, req).map(|_| ())
}

/// [`exchange`], returning the status answered.
pub fn exchange_status(state: &Shared, wire: Wire, req: &Req) -> Result<u16, TestCaseError> {
    let answer = send(state, req).map_err(TestCaseError::fail)?;
    let Some(a) = answer else {
        return Err(TestCaseError::fail("no answer within 3 s"));
    };
    // A HEAD answer has no body (HTTP drops it): only its status can be judged.
    let wire = if req.method == "HEAD" && a.body.is_empty() { None } else { Some(wire) };
    judge(wire, &a).map(|()| a.status).map_err(|why| {
        let body = String::from_utf8_lossy(&a.body);
        TestCaseError::fail(format!("{why}: HTTP {} {:?}\n{body}", a.status, a.headers))
    })
}

/// The invariant: 2xx, or a 4xx in `wire`'s format (any format when `wire` is `None`), or a 5xx
/// only for what AWS itself answers with one.
pub fn judge(wire: Option<Wire>, a: &Answer) -> Result<(), String> {
    let body = String::from_utf8_lossy(&a.body);
    let Some(wire) = wire else {
        return if (200..500).contains(&a.status) { Ok(()) } else { Err(format!("status {}", a.status)) };
    };
    match a.status {
        200..=299 => Ok(()),
        400..=499 => in_format(wire, a, &body),
        500..=599 => {
            in_format(wire, a, &body)?;
            if SERVER_SIDE_CODES.iter().any(|c| body.contains(&format!("<Code>{c}</Code>"))) {
                Ok(())
            } else {
                Err("a 5xx no AWS service sends for a bad request".into())
            }
        }
        s => Err(format!("status {s}")),
    }
}

fn in_format(wire: Wire, a: &Answer, body: &str) -> Result<(), String> {
    let ec2 = || body.contains("<Response><Errors><Error><Code>");
    let query = || body.contains("<ErrorResponse") && body.contains("<Code>");
    let json = || {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v.get("__type").is_some_and(serde_json::Value::is_string))
    };
    let rest = || a.header("x-amzn-errortype").is_some() && serde_json::from_str::<serde_json::Value>(body).is_ok();
    let fits = match wire {
        Wire::Ec2 => ec2(),
        Wire::Query => query(),
        Wire::Json => json(),
        Wire::RestJson => rest(),
        Wire::Any => ec2() || query() || json() || rest(),
    };
    if fits { Ok(()) } else { Err(format!("not a {wire:?} error")) }
}
