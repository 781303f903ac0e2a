//! The admin API (JSON under `/_fake/`): read the world, move its clock, change pools, prices,
//! quotas and throttling. Documented in the README; used by tests and the e2e harness.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{ClockMode, iso};
mod actions;
mod requests;
mod sqs;

use crate::cloud::Cloud;
use crate::cloud::Shared as AppState;
use crate::world::World;
use crate::world::config::ThrottleMode;
use crate::world::pools::CapacityType;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/state", get(state))
        .route("/instances", get(instances))
        .route("/instances/{id}/status", post(set_status))
        .route("/events", get(events))
        .route("/events/log", get(event_log))
        .route("/events/rules", get(rules).post(put_rule))
        .route("/events/forwarded", get(forwarded))
        .route("/interrupt", post(interrupt))
        .route("/health-event", post(health_event))
        .route("/pools", get(pools).post(set_pools))
        .route("/clock", get(clock).post(set_clock))
        .route("/quotas", post(set_quotas))
        .route("/throttling", post(set_throttling))
        .route("/sqs/messages", get(sqs::messages))
        .route("/actions", get(actions::list))
        .route("/requests", get(requests::list))
        .route("/requests/summary", get(requests::summary))
        .route("/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/faults/{id}", axum::routing::delete(delete_fault))
        .route("/experiments", get(experiments).post(start_experiment))
        .route("/experiments/{id}", get(experiment))
}

fn bad(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn clock_json(w: &Cloud) -> Value {
    json!({
        "now": iso(w.now()),
        "now_ms": w.now(),
        "mode": w.clock.mode(),
        "factor": w.clock.factor(),
    })
}

async fn state(State(s): State<AppState>) -> Json<Value> {
    let w = s.cloud();
    let mut by_state = std::collections::BTreeMap::<&str, u64>::new();
    for i in w.ec2.instances.values() {
        *by_state.entry(i.state.name()).or_default() += 1;
    }
    let (spot_vcpus, spot_instances, od_vcpus) = w.ec2.quota_usage();
    Json(json!({
        "seed": w.seed,
        "region": w.region(),
        "clock": clock_json(&w),
        "instances": by_state,
        "launch_templates": w.ec2.launch_templates.len(),
        "quotas": {
            "limits": w.ec2.cfg.quotas,
            "usage": {"spot_vcpus": spot_vcpus, "spot_instances": spot_instances, "on_demand_vcpus": od_vcpus},
        },
        "throttling": w.ec2.throttle,
    }))
}

#[derive(Serialize)]
struct InstanceSummary<'a> {
    id: &'a str,
    instance_type: &'a str,
    zone: &'a str,
    state: &'a str,
    capacity_type: &'a str,
    launch_time: String,
    private_dns_name: &'a str,
    tags: &'a std::collections::BTreeMap<String, String>,
}

async fn instances(State(s): State<AppState>) -> Json<Value> {
    let w = s.cloud();
    let list: Vec<InstanceSummary<'_>> = w
        .ec2
        .instances
        .values()
        .map(|i| InstanceSummary {
            id: &i.id,
            instance_type: &i.instance_type,
            zone: &i.zone,
            state: i.state.name(),
            capacity_type: i.capacity_type.as_str(),
            launch_time: iso(i.launch_time),
            private_dns_name: &i.private_dns_name,
            tags: &i.tags,
        })
        .collect();
    Json(json!(list))
}

#[derive(Deserialize)]
struct StatusChange {
    system_impaired: Option<bool>,
    instance_impaired: Option<bool>,
}

async fn set_status(State(s): State<AppState>, Path(id): Path<String>, Json(c): Json<StatusChange>) -> Response {
    let mut w = s.cloud();
    let now = w.now();
    let Some(i) = w.ec2.instance_mut(&id) else {
        return bad(StatusCode::NOT_FOUND, format!("no instance {id}"));
    };
    if let Some(b) = c.system_impaired {
        i.system_impaired_since = b.then_some(i.system_impaired_since.unwrap_or(now));
    }
    if let Some(b) = c.instance_impaired {
        i.instance_impaired_since = b.then_some(i.instance_impaired_since.unwrap_or(now));
    }
    Json(json!({"id": id})).into_response()
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: usize,
}

async fn events(State(s): State<AppState>, Query(q): Query<Since>) -> Json<Value> {
    let w = s.cloud();
    let list: Vec<Value> = w
        .ec2
        .state_changes
        .iter()
        .skip(q.since)
        .map(|c| json!({"at": iso(c.at), "instance_id": c.instance_id, "from": c.from, "to": c.to}))
        .collect();
    Json(json!(list))
}

#[derive(Deserialize, Default)]
struct PoolSelector {
    instance_type: Option<String>,
    zone: Option<String>,
}

fn selected_pools(w: &World, instance_type: Option<&str>, zone: Option<&str>) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    for t in w.catalog.all() {
        if instance_type.is_some_and(|x| x != "*" && x != t.name) {
            continue;
        }
        for z in &w.cfg.zones {
            if zone.is_some_and(|x| x != "*" && x != z.name) {
                continue;
            }
            if let Some(pool) = w.pool_of(&t.name, &z.name) {
                out.push((t.name.clone(), z.name.clone(), pool));
            }
        }
    }
    out
}

async fn pools(State(s): State<AppState>, Query(q): Query<PoolSelector>) -> Json<Value> {
    let w = s.cloud();
    let now = w.now();
    let list: Vec<Value> = selected_pools(&w.ec2, q.instance_type.as_deref(), q.zone.as_deref())
        .into_iter()
        .map(|(t, z, pool)| {
            json!({
                "instance_type": t,
                "zone": z,
                "on_demand_price": w.ec2.pools.on_demand_price(pool),
                "spot_price": w.ec2.pools.spot_price_at(pool, now).1,
                "spot": {"capacity": w.ec2.pools.capacity(CapacityType::Spot, pool), "used": w.ec2.pools.used(CapacityType::Spot, pool)},
                "on_demand": {"capacity": w.ec2.pools.capacity(CapacityType::OnDemand, pool), "used": w.ec2.pools.used(CapacityType::OnDemand, pool)},
            })
        })
        .collect();
    Json(json!(list))
}

#[derive(Deserialize)]
struct PoolChange {
    instance_type: String,
    #[serde(default = "star")]
    zone: String,
    #[serde(default = "spot")]
    capacity_type: String,
    capacity: Option<u32>,
    spot_price: Option<f64>,
}

fn star() -> String {
    "*".into()
}
fn spot() -> String {
    "spot".into()
}

async fn set_pools(State(s): State<AppState>, Json(c): Json<PoolChange>) -> Response {
    let mut w = s.cloud();
    // fake-ec2 models no capacity reservations: only spot and on-demand pools can be changed.
    let Some(ct) = CapacityType::parse(&c.capacity_type).filter(|ct| *ct != CapacityType::Reserved) else {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("capacity_type must be spot or on-demand, not {}", c.capacity_type),
        );
    };
    let pools = selected_pools(&w.ec2, Some(&c.instance_type), Some(&c.zone));
    if pools.is_empty() {
        return bad(
            StatusCode::NOT_FOUND,
            format!("no pool matches instance_type={} zone={}", c.instance_type, c.zone),
        );
    }
    if c.spot_price.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
        return bad(StatusCode::BAD_REQUEST, "spot_price must be a positive number");
    }
    let now = w.now();
    for (_, _, pool) in &pools {
        if let Some(cap) = c.capacity {
            w.ec2.pools.set_capacity(ct, *pool, cap);
        }
        if let Some(p) = c.spot_price {
            w.ec2.pools.set_spot_price(*pool, now, p);
        }
    }
    // Fewer spot slots than running instances: the market takes them back.
    let reclaimed =
        if ct == CapacityType::Spot && c.capacity.is_some() { w.reclaim_over_capacity() } else { Vec::new() };
    Json(json!({"pools_changed": pools.len(), "interrupted": reclaimed})).into_response()
}

async fn clock(State(s): State<AppState>) -> Json<Value> {
    let w = s.cloud();
    Json(clock_json(&w))
}

#[derive(Deserialize)]
struct ClockChange {
    advance_seconds: Option<f64>,
    mode: Option<ClockMode>,
    factor: Option<f64>,
}

async fn set_clock(State(s): State<AppState>, Json(c): Json<ClockChange>) -> Response {
    let mut w = s.cloud();
    if let Some(secs) = c.advance_seconds {
        if !(secs.is_finite() && secs >= 0.0) {
            return bad(StatusCode::BAD_REQUEST, "advance_seconds must be a non-negative number");
        }
        w.advance((secs * 1000.0) as i64);
    }
    if let Some(mode) = c.mode {
        let factor = c.factor.unwrap_or(1.0);
        if mode == ClockMode::Scaled && !(factor.is_finite() && factor > 0.0) {
            return bad(StatusCode::BAD_REQUEST, "factor must be positive for scaled mode");
        }
        w.clock.set_mode(mode, factor);
    }
    Json(clock_json(&w)).into_response()
}

#[derive(Deserialize)]
struct QuotaChange {
    #[serde(default, with = "double_option")]
    spot_vcpus: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    spot_instances: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    on_demand_vcpus: Option<Option<u32>>,
}

/// Tells an absent field (keep) from an explicit `null` (no limit).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Option::<u32>::deserialize(d).map(Some)
    }
}

async fn set_quotas(State(s): State<AppState>, Json(c): Json<QuotaChange>) -> Json<Value> {
    let mut w = s.cloud();
    if let Some(v) = c.spot_vcpus {
        w.ec2.cfg.quotas.spot_vcpus = v;
    }
    if let Some(v) = c.spot_instances {
        w.ec2.cfg.quotas.spot_instances = v;
    }
    if let Some(v) = c.on_demand_vcpus {
        w.ec2.cfg.quotas.on_demand_vcpus = v;
    }
    Json(json!(w.ec2.cfg.quotas))
}

#[derive(Deserialize)]
struct ThrottleChange {
    mode: ThrottleMode,
    #[serde(default = "one")]
    scale: f64,
}

fn one() -> f64 {
    1.0
}

async fn set_throttling(State(s): State<AppState>, Json(c): Json<ThrottleChange>) -> Response {
    if !(c.scale.is_finite() && c.scale > 0.0) {
        return bad(StatusCode::BAD_REQUEST, "scale must be positive");
    }
    let mut w = s.cloud();
    let now = w.now();
    w.ec2.throttle.configure(c.mode, c.scale, now);
    Json(json!({"mode": c.mode, "scale": c.scale})).into_response()
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    since: u64,
}

const LOG_DROPPED: axum::http::HeaderName = axum::http::HeaderName::from_static("x-fake-ec2-log-dropped");

/// The event log: one JSON object per line (`seq`, `at_ms`, `event`, `deliveries`), logical order.
async fn event_log(State(s): State<AppState>, Query(q): Query<LogQuery>) -> Response {
    let w = s.cloud();
    let mut body = String::new();
    for line in w.events.log_since(q.since) {
        body.push_str(line);
        body.push('\n');
    }
    // How many of the oldest lines the log's memory budget let go: a reader from before them misses them.
    let dropped = w.events.log_dropped().to_string();
    ([(axum::http::header::CONTENT_TYPE, "application/x-ndjson".to_owned()), (LOG_DROPPED, dropped)], body)
        .into_response()
}

async fn rules(State(s): State<AppState>) -> Json<Value> {
    let w = s.cloud();
    let list: Vec<Value> = w
        .events
        .rules
        .iter()
        .map(|r| json!({"name": r.name, "pattern": r.pattern_json, "targets": r.targets}))
        .collect();
    Json(json!(list))
}

/// What the forwarder sent to external SQS queues, and gave up on after its retries.
async fn forwarded(State(s): State<AppState>) -> Json<crate::events::Forwarded> {
    Json(s.cloud().events.forwarded())
}

async fn put_rule(State(s): State<AppState>, Json(c): Json<crate::events::RuleConfig>) -> Response {
    match crate::events::Rule::from_config(&c) {
        Ok(rule) => {
            s.cloud().events.put_rule(rule);
            Json(json!({"name": c.name})).into_response()
        }
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct InterruptRequest {
    instance_ids: Vec<String>,
    #[serde(default = "yes")]
    rebalance: bool,
    #[serde(default = "two_minutes")]
    notice_seconds: i64,
    duration_seconds: Option<i64>,
}

fn yes() -> bool {
    true
}
fn two_minutes() -> i64 {
    120
}

/// Starts the spot interruption sequence for each instance; reports which ones could not be.
async fn interrupt(State(s): State<AppState>, Json(r): Json<InterruptRequest>) -> Response {
    if r.notice_seconds < 0 || r.duration_seconds.is_some_and(|d| d < 0) {
        return bad(StatusCode::BAD_REQUEST, "notice_seconds and duration_seconds must not be negative");
    }
    let mut w = s.cloud();
    let opts = crate::world::interruption::InterruptOptions {
        rebalance_first: r.rebalance,
        notice_seconds: r.notice_seconds,
        duration_seconds: r.duration_seconds,
    };
    let mut interrupted = Vec::new();
    let mut skipped = Vec::new();
    for id in &r.instance_ids {
        match w.interrupt(id, opts) {
            Ok(i) => interrupted.push(json!({
                "instance_id": i.instance_id,
                "action": i.action,
                "warning_at": iso(i.warning_at),
                "reclaim_at": iso(i.reclaim_at),
            })),
            Err(e) => skipped.push(json!({"instance_id": id, "reason": e})),
        }
    }
    let status = if interrupted.is_empty() && !skipped.is_empty() { StatusCode::CONFLICT } else { StatusCode::OK };
    (status, Json(json!({"interrupted": interrupted, "skipped": skipped}))).into_response()
}

#[derive(Deserialize)]
struct HealthEventRequest {
    instance_ids: Vec<String>,
    #[serde(default = "retirement")]
    event_type_code: String,
    #[serde(default)]
    start_in_seconds: i64,
    duration_seconds: Option<i64>,
}

fn retirement() -> String {
    "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into()
}

/// Publishes an AWS Health scheduled change for the instances.
async fn health_event(State(s): State<AppState>, Json(r): Json<HealthEventRequest>) -> Response {
    let mut w = s.cloud();
    match w.health_event(&r.instance_ids, &r.event_type_code, r.start_in_seconds, r.duration_seconds) {
        Ok(e) => Json(json!(e)).into_response(),
        Err(e) => bad(StatusCode::NOT_FOUND, e),
    }
}

async fn faults(State(s): State<AppState>) -> Json<Value> {
    let w = s.cloud();
    let now = w.now();
    let list: Vec<&crate::faults::Fault> = w.faults.active(now).collect();
    Json(json!(list))
}

/// Adds an injected fault: `{operation(s), code, percentage, latency_ms, duration_seconds, zones}`.
async fn add_fault(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let spec: crate::faults::FaultSpec = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("not a fault: {e}")),
    };
    let mut w = s.cloud();
    let now = w.now();
    match w.faults.add_spec(spec, now) {
        Ok(f) => {
            tracing::info!(fault_id = %f.id, operations = ?f.operations, code = ?f.code, percentage = f.percentage, "fault added");
            Json(json!(f)).into_response()
        }
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(State(s): State<AppState>) -> Json<Value> {
    let n = s.cloud().faults.clear();
    Json(json!({"cleared": n}))
}

async fn delete_fault(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    if s.cloud().faults.remove(&id) {
        Json(json!({"id": id})).into_response()
    } else {
        bad(StatusCode::NOT_FOUND, format!("no fault {id}"))
    }
}

async fn experiments(State(s): State<AppState>) -> Json<Value> {
    let w = s.cloud();
    let list: Vec<Value> = w.fis.experiments_in_order().into_iter().map(crate::faults::fis::admin_view).collect();
    Json(json!(list))
}

async fn experiment(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let w = s.cloud();
    match w.fis.experiments.get(&id) {
        Some(e) => Json(crate::faults::fis::admin_view(e)).into_response(),
        None => bad(StatusCode::NOT_FOUND, format!("no experiment {id}")),
    }
}

/// Creates a template from a real FIS template JSON (CreateExperimentTemplate's input, or
/// GetExperimentTemplate's output) and starts an experiment from it at once.
async fn start_experiment(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let mut v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("not JSON: {e}")),
    };
    if let Some(inner) = v.get("experimentTemplate").cloned() {
        v = inner;
    }
    let input: crate::faults::fis::template::TemplateInput = match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("ValidationException: {e}")),
    };
    let mut w = s.cloud();
    let started = w
        .create_experiment_template(crate::faults::fis::template::TemplateInput { client_token: None, ..input })
        .and_then(|t| w.start_experiment(&t, Default::default()));
    drop(w);
    match started {
        Ok(id) => {
            // Taking the lock again lets the experiment take its first step, so the answer shows
            // it running.
            let w = s.cloud();
            match w.fis.experiments.get(&id) {
                Some(e) => Json(crate::faults::fis::admin_view(e)).into_response(),
                None => bad(StatusCode::INTERNAL_SERVER_ERROR, "the experiment vanished"),
            }
        }
        Err(e) => bad(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
