//! Conditions and expectations evaluated against the environment. Each check yields a stable
//! description (for the timeline) and, when it does not hold, what was seen instead.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use super::model::{Count, Expect, MaxPending, NodeCount, PodsRunning, Wait};
use super::observe::{Observer, fleet_cost_per_hour};
use crate::env::{Env, label};
use autoscaler::cloud::instance::instance_id_from_provider_id;

/// One check: what it says, and `Err(seen)` when it does not hold.
pub type Check = (String, Result<(), String>);

fn count_check(what: String, want: &Count, seen: u64) -> Check {
    let r = if want.holds(seen) { Ok(()) } else { Err(format!("saw {seen}")) };
    (format!("{what} {want}"), r)
}

fn selector_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "all".to_owned();
    }
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

async fn nodes(env: &Env, want: &NodeCount) -> anyhow::Result<Check> {
    let n = env
        .nodes()
        .await?
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| want.labels.iter().all(|(k, v)| label(n, k) == Some(v.as_str())))
        .count();
    Ok(count_check(format!("nodes {}", selector_text(&want.labels)), &want.count, n as u64))
}

fn is_running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && p.metadata.deletion_timestamp.is_none()
}

/// Names of the Nodes that are Ready and not being deleted: a pod "Running" on any other node (its
/// instance reclaimed, kwok still reporting the pod) does not count.
pub async fn ready_nodes(env: &Env) -> anyhow::Result<BTreeSet<String>> {
    Ok(env
        .nodes()
        .await?
        .into_iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|n| n.metadata.name)
        .collect())
}

/// Running, not being deleted, on a Ready node.
pub fn is_healthy(p: &Pod, ready: &BTreeSet<String>) -> bool {
    is_running(p) && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| ready.contains(n))
}

async fn pods_running(env: &Env, want: &PodsRunning) -> anyhow::Result<Check> {
    let pods = env.pods(&want.selector).await?;
    let ready = ready_nodes(env).await?;
    let live = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
    let running = pods.iter().filter(|p| is_healthy(p, &ready)).count();
    let what = format!("pods {} Running", want.selector);
    // Every live pod Running, and as many as asked.
    Ok(if running != live {
        (format!("{what} {}", want.count), Err(format!("{running} of {live} Running")))
    } else {
        count_check(what, &want.count, running as u64)
    })
}

async fn nodeclaims(env: &Env, want: &Count) -> anyhow::Result<Check> {
    let n = env.node_claims().await?.iter().filter(|c| c.metadata.deletion_timestamp.is_none()).count();
    Ok(count_check("nodeclaims".into(), want, n as u64))
}

fn live_instances(env: &Env, want: &Count) -> Check {
    let n = env.live_instances().iter().filter(|i| matches!(i.state.as_str(), "pending" | "running")).count();
    count_check("live instances".into(), want, n as u64)
}

/// Instances launched, and those shutting down or terminated, since the world began.
fn launched_and_gone(env: &Env) -> (u64, u64) {
    let w = env.fake.cloud();
    let gone = w.ec2.instances.values().filter(|i| i.state.is_terminating_or_terminated()).count();
    (w.ec2.instances.len() as u64, gone as u64)
}

/// Whether every condition of a wait holds now; the first that does not, otherwise.
pub async fn wait_holds(env: &Env, w: &Wait) -> anyhow::Result<Result<(), String>> {
    let mut checks = Vec::new();
    if let Some(p) = &w.pods_running {
        checks.push(pods_running(env, p).await?);
    }
    for n in &w.nodes {
        checks.push(nodes(env, n).await?);
    }
    if let Some(c) = &w.nodeclaims {
        checks.push(nodeclaims(env, c).await?);
    }
    if let Some(c) = &w.instances {
        checks.push(live_instances(env, c));
    }
    if let Some(c) = &w.instances_launched {
        checks.push(count_check("instances launched".into(), c, launched_and_gone(env).0));
    }
    if let Some(c) = &w.instances_terminated {
        checks.push(count_check("instances terminated".into(), c, launched_and_gone(env).1));
    }
    Ok(match checks.into_iter().find(|(_, r)| r.is_err()) {
        Some((what, Err(seen))) => Err(format!("{what} ({seen})")),
        _ => Ok(()),
    })
}

/// A stable description of a wait.
pub fn describe_wait(w: &Wait) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &w.pods_running {
        parts.push(format!("pods {} Running {}", p.selector, p.count));
    }
    for n in &w.nodes {
        parts.push(format!("nodes {} {}", selector_text(&n.labels), n.count));
    }
    if let Some(c) = &w.nodeclaims {
        parts.push(format!("nodeclaims {c}"));
    }
    if let Some(c) = &w.instances {
        parts.push(format!("live instances {c}"));
    }
    if let Some(c) = &w.instances_launched {
        parts.push(format!("instances launched {c}"));
    }
    if let Some(c) = &w.instances_terminated {
        parts.push(format!("instances terminated {c}"));
    }
    format!("wait for {}", parts.join(" and "))
}

/// The longest any pod of `selector` stayed pending before it was scheduled (world seconds),
/// and how many are not scheduled yet.
async fn longest_pending(env: &Env, selector: &str, clock_factor: f64) -> anyhow::Result<(f64, usize)> {
    let pods = env.pods(selector).await?;
    let mut worst: f64 = 0.0;
    let mut unscheduled = 0;
    for p in &pods {
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let scheduled = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled" && c.status == "True"))
            .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0));
        match (created, scheduled) {
            (Some(c), Some(s)) => {
                let real = s.duration_since(c).as_secs_f64();
                worst = worst.max(real * clock_factor);
            }
            _ => unscheduled += 1,
        }
    }
    Ok((worst, unscheduled))
}

async fn max_pending(env: &Env, m: &MaxPending, clock_factor: f64) -> anyhow::Result<Check> {
    let (worst, unscheduled) = longest_pending(env, &m.selector, clock_factor).await?;
    let what = format!("longest pending of pods {} <= {}s (world)", m.selector, m.seconds);
    Ok(if unscheduled > 0 {
        (what, Err(format!("{unscheduled} pods not scheduled")))
    } else if worst <= m.seconds {
        (what, Ok(()))
    } else {
        (what, Err(format!("a pod waited {worst:.0}s")))
    })
}

async fn min_pending(env: &Env, m: &MaxPending, clock_factor: f64) -> anyhow::Result<Check> {
    let (worst, _) = longest_pending(env, &m.selector, clock_factor).await?;
    let what = format!("longest pending of pods {} >= {}s (world)", m.selector, m.seconds);
    Ok(if worst >= m.seconds { (what, Ok(())) } else { (what, Err(format!("the longest wait was {worst:.0}s"))) })
}

/// How long an instance without a NodeClaim may live, in real seconds. An autoscaler collects
/// one only once its `LaunchTime` is 30 s behind the autoscaler's own clock (Karpenter's grace, and
/// the project's; fake-ec2 gives `LaunchTime` on the clients' clock) and looks every 10 s, every
/// 2 min after Karpenter's first 20 passes: a leak is only a leak once that has gone by.
const LEAK_COLLECTED_WITHIN: std::time::Duration = std::time::Duration::from_secs(150);

/// Live instances that no NodeClaim names, until there are none or [`LEAK_COLLECTED_WITHIN`].
async fn leaked_instances(env: &Env, observer: &Observer) -> anyhow::Result<Check> {
    let what = format!(
        "no leaked instance (live instances = launched NodeClaims, within {} s)",
        LEAK_COLLECTED_WITHIN.as_secs()
    );
    let started = std::time::Instant::now();
    loop {
        let check = std::time::Instant::now();
        let live: BTreeSet<String> = observer.instances().into_iter().filter(|i| !i.gone).map(|i| i.id).collect();
        let claimed: BTreeSet<String> = env
            .node_claims()
            .await?
            .iter()
            .filter_map(|c| instance_id_from_provider_id(c.status.as_ref()?.provider_id.as_deref()?).map(str::to_owned))
            .collect();
        let leaked: Vec<&String> = live.difference(&claimed).collect();
        if leaked.is_empty() {
            return Ok((what, Ok(())));
        }
        if started.elapsed() > LEAK_COLLECTED_WITHIN {
            let ids: Vec<&str> = leaked.iter().map(|s| s.as_str()).collect();
            return Ok((what, Err(format!("{} live instances without a NodeClaim: {}", leaked.len(), ids.join(", ")))));
        }
        tokio::time::sleep(crate::env::poll_pause(check.elapsed())).await;
    }
}

/// How long an object may be deleting (held by its finalizers) before it counts as stuck, in
/// world seconds.
const STUCK_AFTER_WORLD_SECONDS: f64 = 60.0;

/// NodeClaims and Nodes deleting for longer than [`STUCK_AFTER_WORLD_SECONDS`], as `kind/name`.
async fn stuck_finalizers(env: &Env, clock_factor: f64) -> anyhow::Result<Check> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let deleting_for = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.map(|t| now.duration_since(t.0).as_secs_f64() * clock_factor)
    };
    let mut stuck = Vec::new();
    for c in env.node_claims().await? {
        if deleting_for(c.metadata.deletion_timestamp.as_ref()).is_some_and(|s| s > STUCK_AFTER_WORLD_SECONDS) {
            stuck.push(format!("NodeClaim/{}", c.metadata.name.unwrap_or_default()));
        }
    }
    for n in env.nodes().await? {
        if deleting_for(n.metadata.deletion_timestamp.as_ref()).is_some_and(|s| s > STUCK_AFTER_WORLD_SECONDS) {
            stuck.push(format!("Node/{}", n.metadata.name.unwrap_or_default()));
        }
    }
    let what = format!("no NodeClaim or Node held by its finalizers over {STUCK_AFTER_WORLD_SECONDS}s (world)");
    Ok((what, if stuck.is_empty() { Ok(()) } else { Err(stuck.join(", ")) }))
}

/// Evaluates every expectation in `e`.
pub async fn check(env: &Env, observer: &Observer, e: &Expect, clock_factor: f64) -> anyhow::Result<Vec<Check>> {
    let mut out = Vec::new();
    for n in &e.nodes {
        out.push(nodes(env, n).await?);
    }
    if let Some(p) = &e.pods_running {
        out.push(pods_running(env, p).await?);
    }
    if let Some(m) = &e.max_pending_seconds {
        out.push(max_pending(env, m, clock_factor).await?);
    }
    if let Some(m) = &e.min_pending_seconds {
        out.push(min_pending(env, m, clock_factor).await?);
    }
    if e.no_pdb_violated {
        let v = observer.lock().samples.pdb_violations.clone();
        out.push(("no PodDisruptionBudget violated".into(), if v.is_empty() { Ok(()) } else { Err(v.join("; ")) }));
    }
    let instances = observer.instances();
    if let Some(c) = &e.instances_launched {
        out.push(count_check("instances launched".into(), c, instances.len() as u64));
    }
    if let Some(c) = &e.instances_terminated {
        out.push(count_check("instances terminated".into(), c, instances.iter().filter(|i| i.gone).count() as u64));
    }
    if e.no_leaked_instances {
        out.push(leaked_instances(env, observer).await?);
    }
    if e.no_stuck_finalizers {
        out.push(stuck_finalizers(env, clock_factor).await?);
    }
    if let Some(c) = &e.nodeclaims {
        out.push(nodeclaims(env, c).await?);
    }
    for (reason, c) in &e.events {
        let n = env.events_with_reason(reason).await?;
        out.push(count_check(format!("events {reason}"), c, n as u64));
    }
    if !e.api_errors.is_empty() {
        let answered = env.fake.requests().errors_by_code();
        for (code, c) in &e.api_errors {
            out.push(count_check(format!("AWS error answers {code}"), c, answered.get(code).copied().unwrap_or(0)));
        }
    }
    if let Some(max) = e.max_fleet_cost_per_hour {
        let cost = fleet_cost_per_hour(&env.fake);
        out.push((
            format!("fleet cost per hour <= ${max}"),
            if cost <= max { Ok(()) } else { Err(format!("${cost:.4}/hour")) },
        ));
    }
    Ok(out)
}
