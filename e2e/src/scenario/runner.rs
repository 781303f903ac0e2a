//! Runs one scenario on a fresh [`Env`] with the autoscaler under test of [`RunOptions`]: each
//! step in order (or skipped, with its reason, when it is for the other autoscaler), progress on
//! stdout, observations after every wait and expect step into the normalized [`Timeline`],
//! samples, the interruption queue's messages and the AWS calls answered, for the report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::describe::{describe, first_line};
use super::messages::MessageCounts;
use super::model::{Scenario, Step};
use super::observe::Observer;
use super::steps::{run_step, running_pods_by_app};
use crate::cluster::Backend;
use crate::env::{AutoscalerKind, Env, EnvConfig};
use crate::external_sqs::{ExternalQueueReport, QueueHost, SqsKind, interruption_queue};
use crate::karpenter::settings::{ArgMapping, map_autoscaler_args};
use crate::report::timeline::{Normalizer, StepRecord, Timeline};
use crate::report::view::{RunMeta, RunStatus, RunView, Samples};

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

/// Where and with what a scenario runs.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub backend: Backend,
    pub autoscaler: AutoscalerKind,
    /// Where the interruption queue lives, for every scenario that watches one (default: what
    /// each scenario's `sqs:` says).
    pub sqs: Option<SqsKind>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { backend: crate::env::default_backend(), autoscaler: AutoscalerKind::default(), sqs: None }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One answer count of fake-ec2's request log: (service, action, status, error code) -> how many.
pub type CallCount = fake_ec2::requests::Count;

/// What a run leaves.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub description: String,
    pub autoscaler: AutoscalerKind,
    pub status: Status,
    pub timeline: Timeline,
    pub samples: Samples,
    pub wall: Duration,
    /// What the run says beside its steps: autoscaler flags as the autoscaler took them (or not),
    /// steps skipped for this autoscaler.
    pub notes: Vec<String>,
    /// Every AWS call fake-ec2 answered during the run, counted by action and answer.
    pub aws_calls: Vec<CallCount>,
    /// The interruption queue's messages, sent and received.
    pub messages: MessageCounts,
    /// What went through the interruption queue when it was on an external SQS.
    pub external_queue: Option<ExternalQueueReport>,
}

impl Outcome {
    /// A run that did not get to its steps.
    pub fn not_run(scenario: &Scenario, autoscaler: AutoscalerKind, status: Status, wall: Duration) -> Outcome {
        let outcome = match &status {
            Status::Skipped(why) => format!("skipped: {why}"),
            Status::Failed(_) => "failed at step 0".to_owned(),
            Status::Passed => "passed".to_owned(),
        };
        Outcome {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            autoscaler,
            status,
            timeline: Timeline { scenario: scenario.name.clone(), seed: scenario.seed, outcome, ..Timeline::default() },
            samples: Samples::default(),
            wall,
            notes: Vec::new(),
            aws_calls: Vec::new(),
            messages: MessageCounts::default(),
            external_queue: None,
        }
    }

    /// What the report draws of this run.
    pub fn view(&self) -> RunView {
        let meta = RunMeta {
            scenario: self.name.clone(),
            description: self.description.clone(),
            seed: self.timeline.seed,
            autoscaler: Some(self.autoscaler.name().to_owned()),
            status: match &self.status {
                Status::Passed => RunStatus::Passed,
                Status::Failed(m) => RunStatus::Failed(m.clone()),
                Status::Skipped(m) => RunStatus::Skipped(m.clone()),
            },
            wall_seconds: self.wall.as_secs_f64(),
            notes: self.notes.clone(),
        };
        RunView::new(meta, self.samples.clone(), serde_saphyr::to_string(&self.timeline).ok())
    }

    /// `name (autoscaler)`, as summaries name a run.
    pub fn title(&self) -> String {
        format!("{} ({})", self.name, self.autoscaler)
    }
}

/// Runs `scenario` with the project's autoscaler on the default backend.
pub async fn run(scenario: &Scenario) -> anyhow::Result<Outcome> {
    run_with(scenario, RunOptions::default()).await
}

/// Runs `scenario` as `opts` say, unless it is not for that autoscaler or needs a feature it
/// lacks. Fails only when the environment cannot come up; a failing step is a
/// [`Status::Failed`] outcome.
pub async fn run_with(scenario: &Scenario, opts: RunOptions) -> anyhow::Result<Outcome> {
    run_recorded(scenario, opts, None).await
}

/// [`run_with`], fake-ec2 recording its requests and answers into `record` when given.
pub async fn run_recorded(scenario: &Scenario, opts: RunOptions, record: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let name = scenario.name.clone();
    let kind = opts.autoscaler;
    let have = autoscaler_features();
    let missing: Vec<&str> = scenario.requires.iter().map(String::as_str).filter(|r| !have.contains(*r)).collect();
    let skip = match scenario.skipped_for(kind) {
        Some(why) => Some(why),
        None if !missing.is_empty() => {
            Some(format!("needs autoscaler feature(s) {} (not in this build)", missing.join(", ")))
        }
        None => None,
    };
    // Only a scenario watching an interruption queue can have it elsewhere.
    let sqs = match interruption_queue(&scenario.autoscaler_args) {
        Some(_) => QueueHost::from(opts.sqs.unwrap_or(scenario.sqs)),
        None => QueueHost::BuiltIn,
    };
    let skip = skip.or_else(|| sqs.unavailable().map(|why| format!("not run: the interruption queue on {sqs}: {why}")));
    if let Some(why) = skip {
        crate::say!("[{name}] skipped with {kind}: {why}");
        return Ok(Outcome::not_run(scenario, kind, Status::Skipped(why), started.elapsed()));
    }
    let (karpenter_env, mut notes) = settings_for(scenario, kind)?;
    if sqs != QueueHost::BuiltIn {
        notes.push(format!("interruption queue on {sqs}"));
    }
    for n in &notes {
        crate::say!("[{name}] {n}");
    }
    crate::say!(
        "[{name}] starting: cluster + fake-ec2 (seed {}, clock x{}) + {kind}",
        scenario.seed,
        scenario.clock_factor
    );
    let state_file = state_file_for(scenario, kind, record.as_deref());
    let mut env = Env::start(EnvConfig {
        world: scenario.world.clone(),
        seed: scenario.seed,
        clock_factor: scenario.clock_factor,
        autoscaler_args: scenario.autoscaler_args.clone(),
        sqs_endpoint: None,
        sqs,
        backend: opts.backend,
        autoscaler: kind,
        karpenter_env,
        record,
        state_file: state_file.clone(),
        ..EnvConfig::default()
    })
    .await
    .with_context(|| format!("starting the environment for {name} with {kind}"))?;
    crate::say!("[{name}] up in {:.1}s", started.elapsed().as_secs_f64());
    let observer = Observer::new(env.fake.clone(), env.autoscaler_restarts());
    let side = [
        tokio::spawn(observer.clone().watch_claims(env.kube.clone())),
        tokio::spawn(observer.clone().sample(env.kube.clone())),
    ];
    let mut timeline = Timeline { scenario: name.clone(), seed: scenario.seed, ..Timeline::default() };
    let mut normalizer = Normalizer::default();
    // The request log's position at the last observation: injected answers since then are the step's.
    let mut requests_seen = 0;
    let mut status = Status::Passed;
    let total = scenario.steps.len();
    for (i, entry) in scenario.steps.iter().enumerate() {
        let step = &entry.step;
        let t0 = Instant::now();
        let mut rec = StepRecord { step: i + 1, action: describe(step), ..StepRecord::default() };
        if let Some(why) = entry.skipped_for(kind) {
            crate::say!("[{name}] step {}/{total}: {} — skipped with {kind}: {why}", i + 1, rec.action);
            notes.push(format!("step {} ({}) skipped: {why}", i + 1, step.kind()));
            rec.action = format!("{} (skipped: {why})", rec.action);
            timeline.steps.push(rec);
            continue;
        }
        crate::say!("[{name}] step {}/{total}: {}", i + 1, rec.action);
        let result = run_step(&mut env, &observer, scenario, step, &mut rec).await;
        if matches!(step, Step::Wait(_) | Step::Expect(_)) || result.is_err() {
            let claims = observer.settled_claims(&env.kube, CLAIMS_SETTLE).await;
            let instances = observer.instances();
            let pods = running_pods_by_app(&env).await.unwrap_or_default();
            // Where pods run is recorded only once a step has settled them.
            let settled = match step {
                Step::Wait(w) => w.pods_running.is_some(),
                _ => true,
            };
            normalizer.observe(&mut rec, &claims, &instances, settled.then_some(pods.as_slice()));
            let log = env.fake.requests();
            let codes: BTreeSet<String> =
                log.since(requests_seen).filter(|e| e.injected).filter_map(|e| e.error_code.clone()).collect();
            rec.injected_errors = codes.into_iter().collect();
            requests_seen = log.last_seq();
        }
        let elapsed = t0.elapsed().as_secs_f64();
        match result {
            Ok(()) => crate::say!("[{name}]   ok ({elapsed:.1}s, world t={:.0}s)", observer.world_seconds()),
            Err(e) => {
                let mut msg = format!("{e:#}");
                if let Some(log) = env.autoscaler_log() {
                    msg.push_str(&format!("\n(Karpenter's log: {})", log.display()));
                }
                crate::say!("[{name}]   FAILED ({elapsed:.1}s): {msg}");
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
    // Before the queue goes with the environment: what crossed it, once the last message is through.
    let external_queue = match env.external_sqs() {
        Some(queue) => Some(queue.settle(&env.fake, EXTERNAL_QUEUE_SETTLE).await),
        None => None,
    };
    if let Some(report) = &external_queue {
        crate::say!("[{name}] {}", report.describe());
        notes.push(report.describe());
    }
    let samples = observer.finish(&env.kube).await;
    let messages = observer.messages();
    let aws_calls = env.fake.requests().counts();
    env.stop().await;
    if let Some(f) = state_file.filter(|_| matches!(status, Status::Passed)) {
        let _ = std::fs::remove_file(f);
    }
    let wall = started.elapsed();
    crate::say!(
        "[{name}] {} with {kind} in {:.1}s",
        match &status {
            Status::Passed => "passed",
            Status::Failed(_) => "FAILED",
            Status::Skipped(_) => "skipped",
        },
        wall.as_secs_f64()
    );
    Ok(Outcome {
        name,
        description: scenario.description.clone(),
        autoscaler: kind,
        status,
        timeline,
        samples,
        wall,
        notes,
        aws_calls,
        messages,
        external_queue,
    })
}

/// How long a run's end waits for its external queue's last messages to be forwarded and consumed.
const EXTERNAL_QUEUE_SETTLE: Duration = Duration::from_secs(30);
/// How long a step's observation waits for an autoscaler to record an instance it launched on its
/// NodeClaim (one status write; milliseconds unless the machine is starved).
const CLAIMS_SETTLE: Duration = Duration::from_secs(5);

/// Where fake-ec2 keeps its state file when a step restarts it keeping its state: beside the
/// recording when there is one, else in the temporary directory (kept when the run fails).
fn state_file_for(scenario: &Scenario, kind: AutoscalerKind, record: Option<&Path>) -> Option<PathBuf> {
    let needed = scenario.plain_steps().any(|s| matches!(s, Step::RestartFakeEc2(r) if r.keep_state));
    if !needed {
        return None;
    }
    let name = format!("{}-{}-{}.state.json", scenario.name, kind.name(), std::process::id());
    Some(match record.and_then(Path::parent) {
        Some(dir) => dir.join(name),
        None => std::env::temp_dir().join(name),
    })
}

/// Karpenter's extra environment for the scenario's `autoscaler_args`, and a note per flag
/// saying how it was taken (nothing for the project's autoscaler, which takes them as they are).
/// Environment variables and notes.
type Settings = (Vec<(String, String)>, Vec<String>);

fn settings_for(scenario: &Scenario, kind: AutoscalerKind) -> anyhow::Result<Settings> {
    if kind != AutoscalerKind::Karpenter {
        return Ok((Vec::new(), Vec::new()));
    }
    let mapped = map_autoscaler_args(&scenario.autoscaler_args)
        .map_err(|e| anyhow::anyhow!("{}: autoscaler_args: {e}", scenario.name))?;
    let env = mapped
        .iter()
        .filter_map(|m| match m {
            ArgMapping::Env { key, value, .. } => Some((key.clone(), value.clone())),
            ArgMapping::NotApplicable { .. } => None,
        })
        .collect();
    let notes = mapped.iter().map(|m| format!("karpenter: {}", m.describe())).collect();
    Ok((env, notes))
}

/// Loads and runs a scenario file with the project's autoscaler.
pub async fn run_file(root: &Path, file: &Path) -> anyhow::Result<Outcome> {
    let scenario = super::load::load_file(root, file)?;
    run(&scenario).await
}
