//! Runs one scenario on a fresh [`Env`]: each step in order, progress on stdout, observations
//! after every wait and expect step into the normalized [`Timeline`], samples for the report.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use serde_json::json;

use super::expect::{self, describe_wait};
use super::model::{Apply, Fault, Scenario, Step};
use super::observe::Observer;
use crate::env::{Env, EnvConfig, wait_for};
use crate::report::timeline::{Normalizer, StepRecord, Timeline};
use crate::report::view::{MarkerKind, RunMeta, RunStatus, RunView, Samples};

/// Autoscaler features scenarios may require (`requires:`). `interruption` joins once the SQS
/// interruption controller is in; `SPOTBENCH_E2E_FEATURES=interruption` adds it for a try.
pub const AUTOSCALER_FEATURES: &[&str] = &["provisioning", "interruption", "disruption"];

pub fn autoscaler_features() -> BTreeSet<String> {
    let mut f: BTreeSet<String> = AUTOSCALER_FEATURES.iter().map(|s| (*s).to_owned()).collect();
    if let Ok(extra) = std::env::var("SPOTBENCH_E2E_FEATURES") {
        f.extend(extra.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    }
    f
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

/// What a run leaves.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub description: String,
    pub status: Status,
    pub timeline: Timeline,
    pub samples: Samples,
    pub wall: Duration,
}

impl Outcome {
    /// What the report draws of this run.
    pub fn view(&self) -> RunView {
        let meta = RunMeta {
            scenario: self.name.clone(),
            description: self.description.clone(),
            seed: self.timeline.seed,
            autoscaler: None,
            status: match &self.status {
                Status::Passed => RunStatus::Passed,
                Status::Failed(m) => RunStatus::Failed(m.clone()),
                Status::Skipped(m) => RunStatus::Skipped(m.clone()),
            },
            wall_seconds: self.wall.as_secs_f64(),
        };
        RunView::new(meta, self.samples.clone(), serde_saphyr::to_string(&self.timeline).ok())
    }
}

/// Runs `scenario` unless it needs a feature the autoscaler lacks. Fails only when the
/// environment cannot come up; a failing step is an [`Status::Failed`] outcome.
pub async fn run(scenario: &Scenario) -> anyhow::Result<Outcome> {
    run_on(scenario, crate::env::default_backend()).await
}

/// [`run`] on the given cluster backend.
pub async fn run_on(scenario: &Scenario, backend: crate::cluster::Backend) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let name = scenario.name.clone();
    let mut timeline = Timeline { scenario: name.clone(), seed: scenario.seed, ..Timeline::default() };
    let have = autoscaler_features();
    let missing: Vec<&str> = scenario.requires.iter().map(String::as_str).filter(|r| !have.contains(*r)).collect();
    if !missing.is_empty() {
        let why = format!("needs autoscaler feature(s) {} (not in this build)", missing.join(", "));
        println!("[{name}] skipped: {why}");
        timeline.outcome = format!("skipped: {why}");
        return Ok(Outcome {
            name,
            description: scenario.description.clone(),
            status: Status::Skipped(why),
            timeline,
            samples: Samples::default(),
            wall: started.elapsed(),
        });
    }
    println!(
        "[{name}] starting: cluster + fake-ec2 (seed {}, clock x{}) + autoscaler",
        scenario.seed, scenario.clock_factor
    );
    let mut env = Env::start(EnvConfig {
        world: scenario.world.clone(),
        seed: scenario.seed,
        clock_factor: scenario.clock_factor,
        autoscaler_args: scenario.autoscaler_args.clone(),
        sqs_endpoint: None,
        backend,
        ..EnvConfig::default()
    })
    .await
    .with_context(|| format!("starting the environment for {name}"))?;
    println!("[{name}] up in {:.1}s", started.elapsed().as_secs_f64());
    let observer = Observer::new(env.fake.clone());
    let side = [
        tokio::spawn(observer.clone().watch_claims(env.kube.clone())),
        tokio::spawn(observer.clone().sample(env.kube.clone())),
    ];
    let mut normalizer = Normalizer::default();
    // The request log's position at the last observation: injected answers since then are the step's.
    let mut requests_seen = 0;
    let mut status = Status::Passed;
    let total = scenario.steps.len();
    for (i, step) in scenario.steps.iter().enumerate() {
        let t0 = Instant::now();
        let mut rec = StepRecord { step: i + 1, action: describe(step), ..StepRecord::default() };
        println!("[{name}] step {}/{total}: {}", i + 1, rec.action);
        let result = run_step(&mut env, &observer, scenario, step, &mut rec).await;
        if matches!(step, Step::Wait(_) | Step::Expect(_)) || result.is_err() {
            let claims = observer.refresh_claims(&env.kube).await;
            let instances = observer.instances();
            let pods = running_pods_by_app(&env).await.unwrap_or_default();
            // Where pods run is recorded only once a step has settled them.
            let settled = match step {
                Step::Wait(w) => w.pods_running.is_some(),
                _ => true,
            };
            normalizer.observe(&mut rec, &claims, &instances, settled.then_some(pods.as_slice()));
            let log = env.fake.requests();
            let codes: std::collections::BTreeSet<String> =
                log.since(requests_seen).filter(|e| e.injected).filter_map(|e| e.error_code.clone()).collect();
            rec.injected_errors = codes.into_iter().collect();
            requests_seen = log.last_seq();
        }
        let elapsed = t0.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("[{name}]   ok ({elapsed:.1}s, world t={:.0}s)", observer.world_seconds()),
            Err(e) => {
                let msg = format!("{e:#}");
                println!("[{name}]   FAILED ({elapsed:.1}s): {msg}");
                rec.error = Some(first_line(&msg));
                status = Status::Failed(format!("step {} ({}): {msg}", i + 1, step.kind()));
                timeline.steps.push(rec);
                break;
            }
        }
        timeline.steps.push(rec);
    }
    timeline.outcome = match &status {
        Status::Passed => "passed".to_owned(),
        Status::Failed(_) => format!("failed at step {}", timeline.steps.len()),
        Status::Skipped(w) => format!("skipped: {w}"),
    };
    for t in &side {
        t.abort();
    }
    let samples = observer.finish(&env.kube).await;
    env.stop().await;
    let wall = started.elapsed();
    println!(
        "[{name}] {} in {:.1}s",
        match &status {
            Status::Passed => "passed",
            Status::Failed(_) => "FAILED",
            Status::Skipped(_) => "skipped",
        },
        wall.as_secs_f64()
    );
    Ok(Outcome { name, description: scenario.description.clone(), status, timeline, samples, wall })
}

/// The first line of an error, with a real-time timeout's duration taken out (stable snapshots).
fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or_default().to_owned()
}

/// A stable one-line description of a step.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Apply(a) => {
            let what = match (&a.fixture, &a.manifest) {
                (Some(f), _) => f.clone(),
                (None, Some(m)) => format!("inline manifest ({})", manifest_names(m)),
                (None, None) => "nothing".to_owned(),
            };
            match a.replicas {
                Some(r) => format!("apply {what} (replicas {r})"),
                None => format!("apply {what}"),
            }
        }
        Step::Delete(d) => format!("delete {} {}", d.kind, d.name),
        Step::Scale(s) => format!("scale deployment {} to {}", s.deployment, s.replicas),
        Step::Wait(w) => describe_wait(w),
        Step::Fault(f) => format!("fault: {}", describe_fault(f)),
        Step::Clock(c) => match (c.advance_seconds, c.factor) {
            (Some(a), Some(f)) => format!("clock: advance {a}s, then x{f}"),
            (Some(a), None) => format!("clock: advance {a}s"),
            (None, Some(f)) => format!("clock: x{f}"),
            (None, None) => "clock: unchanged".to_owned(),
        },
        Step::KillAutoscaler => "kill the autoscaler".to_owned(),
        Step::StartAutoscaler => "start the autoscaler".to_owned(),
        Step::Expect(_) => "expect".to_owned(),
    }
}

fn describe_fault(f: &Fault) -> String {
    let mut parts = Vec::new();
    for p in &f.pools {
        let mut s = format!("pool {} {} {}", p.instance_type, p.zone, p.capacity_type.as_deref().unwrap_or("*"));
        if let Some(c) = p.capacity {
            s.push_str(&format!(" capacity {c}"));
        }
        if let Some(pr) = p.spot_price {
            s.push_str(&format!(" spot price {pr}"));
        }
        parts.push(s);
    }
    if let Some(q) = &f.quotas {
        parts.push(format!("quotas {}", serde_json::to_string(q).unwrap_or_default()));
    }
    if let Some(a) = &f.api {
        let mut s =
            format!("{} on {} at {}%", a.code.as_deref().unwrap_or("latency"), a.operations.join(","), a.percentage);
        if let Some(d) = a.duration_seconds {
            s.push_str(&format!(" for {d}s"));
        }
        if let Some(l) = a.latency_ms {
            s.push_str(&format!(" (+{l} ms)"));
        }
        parts.push(s);
    }
    if let Some(t) = &f.fis {
        parts.push(format!("FIS experiment {t}"));
    }
    if let Some(n) = f.interrupt_spot {
        parts.push(format!("interrupt {n} spot instance(s)"));
    }
    if f.clear_api_faults {
        parts.push("clear API faults".to_owned());
    }
    parts.join("; ")
}

fn manifest_names(m: &str) -> String {
    docs(m)
        .filter_map(|d| serde_saphyr::from_str::<serde_json::Value>(d).ok())
        .map(|v| format!("{} {}", v["kind"].as_str().unwrap_or("?"), v["metadata"]["name"].as_str().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn docs(yaml: &str) -> impl Iterator<Item = &str> {
    yaml.split("\n---").map(str::trim).filter(|d| !d.is_empty() && d.lines().any(|l| !l.trim_start().starts_with('#')))
}

async fn run_step(
    env: &mut Env,
    observer: &Observer,
    scenario: &Scenario,
    step: &Step,
    rec: &mut StepRecord,
) -> anyhow::Result<()> {
    match step {
        Step::Apply(a) => apply(env, a).await,
        Step::Delete(d) => {
            observer.mark(MarkerKind::Step, format!("delete {} {}", d.kind, d.name));
            delete(env, &d.kind, &d.name, &d.namespace).await
        }
        Step::Scale(s) => {
            observer.mark(MarkerKind::Step, format!("scale {} to {}", s.deployment, s.replicas));
            let api: Api<Deployment> = Api::namespaced(env.kube.clone(), &s.namespace);
            api.patch(&s.deployment, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": s.replicas}})))
                .await
                .with_context(|| format!("scaling deployment {}", s.deployment))?;
            Ok(())
        }
        Step::Wait(w) => {
            let timeout = Duration::from_secs(w.timeout_seconds);
            let last = std::sync::Mutex::new(String::new());
            let what = describe_wait(w).replacen("wait for ", "", 1);
            let r = wait_for(&what, timeout, || async {
                match expect::wait_holds(env, w).await {
                    Ok(Ok(())) => Some(()),
                    Ok(Err(seen)) => {
                        if let Ok(mut l) = last.lock() {
                            *l = seen;
                        }
                        None
                    }
                    Err(_) => None,
                }
            })
            .await;
            r.map_err(|e| {
                let seen = last.lock().map(|l| l.clone()).unwrap_or_default();
                anyhow::anyhow!("{e}; last seen: {seen}")
            })
        }
        Step::Fault(f) => {
            observer.mark(MarkerKind::Fault, describe_fault(f));
            fault(env, f).await
        }
        Step::Clock(c) => {
            observer.mark(MarkerKind::Clock, describe(step));
            if let Some(a) = c.advance_seconds {
                env.admin("clock", json!({"advance_seconds": a})).await?;
            }
            if let Some(f) = c.factor {
                env.admin("clock", json!({"mode": "scaled", "factor": f})).await?;
            }
            Ok(())
        }
        Step::KillAutoscaler => {
            observer.mark(MarkerKind::Autoscaler, "autoscaler killed".into());
            env.kill_autoscaler();
            Ok(())
        }
        Step::StartAutoscaler => {
            observer.mark(MarkerKind::Autoscaler, "autoscaler started".into());
            env.start_autoscaler();
            Ok(())
        }
        Step::Expect(e) => {
            let checks = expect::check(env, observer, e, scenario.clock_factor).await?;
            let mut failed = Vec::new();
            for (what, r) in checks {
                match r {
                    Ok(()) => {
                        println!("[{}]   ok: {what}", scenario.name);
                        rec.expectations.push(format!("ok: {what}"));
                    }
                    Err(seen) => {
                        println!("[{}]   NOT: {what} ({seen})", scenario.name);
                        rec.expectations.push(format!("FAILED: {what}"));
                        failed.push(format!("{what} ({seen})"));
                    }
                }
            }
            if failed.is_empty() { Ok(()) } else { bail!("expectation(s) not met: {}", failed.join("; ")) }
        }
    }
}

async fn apply(env: &Env, a: &Apply) -> anyhow::Result<()> {
    let text = match (&a.fixture, &a.manifest) {
        (Some(f), _) => std::fs::read_to_string(crate::cluster::repo_root().join("fixtures").join(f))
            .with_context(|| format!("reading fixtures/{f}"))?,
        (None, Some(m)) => m.clone(),
        (None, None) => bail!("apply: give `fixture` or `manifest`"),
    };
    let Some(replicas) = a.replicas else { return env.apply(&text).await };
    // JSON is YAML: rewrite each document with the replica count and apply that.
    let mut out = Vec::new();
    for d in docs(&text) {
        let mut v: serde_json::Value = serde_saphyr::from_str(d).context("parsing manifest")?;
        if matches!(v["kind"].as_str(), Some("Deployment" | "StatefulSet" | "ReplicaSet")) {
            v["spec"]["replicas"] = json!(replicas);
        }
        out.push(serde_json::to_string(&v)?);
    }
    env.apply(&out.join("\n---\n")).await
}

/// Kinds a scenario may delete, by the kind's name.
fn gvk_of(kind: &str) -> anyhow::Result<GroupVersionKind> {
    let (g, v) = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => ("apps", "v1"),
        "Pod" | "Node" | "ConfigMap" | "Service" => ("", "v1"),
        "PodDisruptionBudget" => ("policy", "v1"),
        "NodePool" | "NodeClaim" => ("karpenter.sh", "v1"),
        "EC2NodeClass" => ("karpenter.k8s.aws", "v1"),
        other => bail!(
            "cannot delete kind {other}: one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Node, ConfigMap, Service, PodDisruptionBudget, NodePool, NodeClaim, EC2NodeClass"
        ),
    };
    Ok(GroupVersionKind::gvk(g, v, kind))
}

async fn delete(env: &Env, kind: &str, name: &str, namespace: &str) -> anyhow::Result<()> {
    let (resource, caps) = pinned_kind(&env.kube, &gvk_of(kind)?).await?;
    let api: Api<DynamicObject> = match caps.scope {
        kube::discovery::Scope::Namespaced => Api::namespaced_with(env.kube.clone(), namespace, &resource),
        kube::discovery::Scope::Cluster => Api::all_with(env.kube.clone(), &resource),
    };
    api.delete(name, &DeleteParams::default()).await.with_context(|| format!("deleting {kind} {name}"))?;
    Ok(())
}

async fn fault(env: &Env, f: &Fault) -> anyhow::Result<()> {
    for p in &f.pools {
        env.admin("pools", serde_json::to_value(p)?).await?;
    }
    if let Some(q) = &f.quotas {
        env.admin("quotas", serde_json::to_value(q)?).await?;
    }
    if let Some(a) = &f.api {
        env.admin("faults", serde_json::to_value(a)?).await?;
    }
    if let Some(t) = &f.fis {
        let path = crate::cluster::repo_root().join("fixtures").join(t);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading fixtures/{t}"))?;
        let template: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("fixtures/{t} is not JSON"))?;
        env.admin("experiments", template).await?;
    }
    if let Some(n) = f.interrupt_spot {
        let ids: Vec<String> = env
            .live_instances()
            .into_iter()
            .filter(|i| i.capacity_type == "spot" && i.state == "running")
            .take(n as usize)
            .map(|i| i.id)
            .collect();
        if ids.len() < n as usize {
            bail!("interrupt_spot: {n} wanted, {} running spot instances", ids.len());
        }
        env.admin("interrupt", json!({"instance_ids": ids})).await?;
    }
    if f.clear_api_faults {
        let resp = reqwest::Client::new().delete(format!("{}/_fake/faults", env.endpoint)).send().await?;
        if !resp.status().is_success() {
            bail!("clearing faults: {}", resp.status());
        }
    }
    Ok(())
}

/// Running pods on Ready nodes as (`app` label, the instance id behind their node).
async fn running_pods_by_app(env: &Env) -> anyhow::Result<Vec<(String, String)>> {
    let ready = expect::ready_nodes(env).await?;
    let instance_of: std::collections::BTreeMap<String, String> = env
        .nodes()
        .await?
        .into_iter()
        .filter_map(|n| {
            let id = n.spec.as_ref()?.provider_id.as_deref()?.rsplit('/').next()?.to_owned();
            Some((n.metadata.name?, id))
        })
        .collect();
    Ok(env
        .pods("app")
        .await?
        .iter()
        .filter(|p| expect::is_healthy(p, &ready))
        .filter_map(|p| {
            let app = p.metadata.labels.as_ref()?.get("app")?.clone();
            let node = p.spec.as_ref()?.node_name.clone()?;
            Some((app, instance_of.get(&node).cloned().unwrap_or(node)))
        })
        .collect())
}

/// Loads and runs a scenario file.
pub async fn run_file(root: &Path, file: &Path) -> anyhow::Result<Outcome> {
    let scenario = super::load::load_file(root, file)?;
    run(&scenario).await
}
