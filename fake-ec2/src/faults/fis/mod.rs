//! AWS FIS on the world clock: experiment templates, experiments and their state machine.
//!
//! - [`template`]: the template JSON and its validation (FIS's `ValidationException`).
//! - [`targets`]: resolving targets (ARNs, tags, filters) and choosing `ALL`/`COUNT(n)`/`PERCENT(n)`
//!   of them with the world's `fis` stream.
//! - [`api`]: the REST-JSON wire (`/experimentTemplates`, `/experiments`).
//! - `experiment`: the experiment state machine; `actions`: what each action does.
//!
//! FIS is a service beside the EC2 world: it acts on the cloud only through [`Lab`] (the world's
//! public operations, the fault injector, the event bus and the schedule), which the cloud
//! implements.
//!
//! An experiment is `initiating` when started (its targets are resolved then), `running` from the
//! next step on the clock, and `completed` once every action is; `StopExperiment` makes it
//! `stopping`, then `stopped`; an empty target (unless the template says `skip`) makes it
//! `failed`. Actions start when every action they `startAfter` has completed, and each runs for
//! its duration on the world clock. Every experiment state change is published as FIS's
//! `FIS Experiment State Change` event.

mod actions;
pub mod api;
pub mod duration;
mod experiment;
pub mod snapshot;
pub mod targets;
pub mod template;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use experiment::StartOptions;
use template::{Effect, TemplateInput};

use crate::clock::Millis;
use crate::events::Kind;
use crate::faults::injection::Fault;
use crate::rng::Streams;
use crate::world::World;
use crate::world::instances::InstanceState;
use crate::world::interruption::{InterruptOptions, Interruption};
use crate::world::launch::LaunchFailure;

/// What an experiment acts on and reports through: the cloud as FIS sees it.
pub trait Lab {
    /// The EC2 world, to resolve targets against.
    fn world(&self) -> &World;
    /// The cloud's seeded streams: `ids` for FIS ids, `fis` for the resources a selection takes.
    fn rng(&mut self) -> &mut Streams;
    /// Starts a spot interruption at `at`.
    fn interrupt(&mut self, id: &str, opts: InterruptOptions, at: Millis) -> Result<Interruption, String>;
    /// Stops an instance at `at`, as its user would.
    fn stop(&mut self, id: &str, at: Millis) -> Option<(InstanceState, InstanceState)>;
    /// Terminates an instance at `at`, as its user would.
    fn terminate(&mut self, id: &str, at: Millis) -> Option<(InstanceState, InstanceState)>;
    /// Starts a stopped instance at `at`.
    fn start(&mut self, id: &str, at: Millis) -> Result<Option<(InstanceState, InstanceState)>, LaunchFailure>;
    /// Adds an injected API fault; returns it with its id.
    fn add_fault(&mut self, fault: Fault) -> Fault;
    /// Removes the faults a source (`experiment/action`) added.
    fn remove_faults(&mut self, source: &str);
    /// Publishes an event at `at`; `note` goes to the event log line only.
    fn publish(&mut self, at: Millis, kind: Kind, note: Option<Value>);
    /// Asks for the experiment to take its next step at `at`.
    fn wake(&mut self, at: Millis, experiment_id: &str);
}

/// An error as FIS reports it (REST-JSON: `x-amzn-ErrorType` and `{"message": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct FisError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl FisError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self { status: 400, kind: "ValidationException", message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: 404, kind: "ResourceNotFoundException", message: message.into() }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self { status: 409, kind: "ConflictException", message: message.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Initiating,
    Running,
    Completed,
    Stopping,
    Stopped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Initiating => "initiating",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Stopped | Self::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    Pending,
    Running,
    Completed,
    Cancelled,
    Stopped,
    Failed,
    Skipped,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// Whether actions that start after this one may start.
    fn lets_others_start(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped)
    }
}

/// A template as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub id: String,
    pub arn: String,
    pub input: TemplateInput,
    pub creation_time: Millis,
    pub last_update_time: Millis,
    seq: u64,
}

/// One action of an experiment, as it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRun {
    pub status: ActionStatus,
    pub reason: String,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    /// When a running action completes.
    #[serde(skip)]
    due: Option<Millis>,
    /// The resources the action acted on (instance ids, or the ids of faults it set).
    pub hit: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Experiment {
    pub id: String,
    pub arn: String,
    pub template_id: String,
    /// The template as it was when the experiment started.
    pub template: TemplateInput,
    effects: BTreeMap<String, Effect>,
    pub tags: BTreeMap<String, String>,
    pub status: Status,
    pub reason: String,
    pub creation_time: Millis,
    pub start_time: Millis,
    pub end_time: Option<Millis>,
    pub actions: BTreeMap<String, ActionRun>,
    /// Target name → the resources it resolved to (instance ids or role ARNs), in launch order.
    pub resolved: BTreeMap<String, Vec<String>>,
    pub actions_mode: String,
    seq: u64,
}

/// The account's templates and experiments.
#[derive(Debug, Default)]
pub struct Fis {
    pub templates: BTreeMap<String, StoredTemplate>,
    pub experiments: BTreeMap<String, Experiment>,
    /// `kind/clientToken` → the id it created (idempotent retries).
    tokens: BTreeMap<String, String>,
    next_seq: u64,
}

impl Fis {
    /// Templates in creation order.
    pub fn templates_in_order(&self) -> Vec<&StoredTemplate> {
        let mut v: Vec<&StoredTemplate> = self.templates.values().collect();
        v.sort_by_key(|t| t.seq);
        v
    }

    /// Experiments in start order.
    pub fn experiments_in_order(&self) -> Vec<&Experiment> {
        let mut v: Vec<&Experiment> = self.experiments.values().collect();
        v.sort_by_key(|e| e.seq);
        v
    }
}

fn state_reason(s: Status) -> &'static str {
    match s {
        Status::Pending => "Experiment is pending.",
        Status::Initiating => "Experiment is initiating.",
        Status::Running => "Experiment is running.",
        Status::Completed => "Experiment completed.",
        Status::Stopping => "Experiment is stopping.",
        Status::Stopped => "Experiment stopped.",
        Status::Failed => "Experiment failed.",
    }
}

/// `EXT` / `EXP` followed by mixed-case letters and digits, as FIS's ids look.
fn fis_id(rng: &mut Streams, prefix: &str, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = prefix.to_owned();
    for _ in 0..len {
        out.push(CHARS[(rand::Rng::next_u32(&mut rng.ids) as usize) % CHARS.len()] as char);
    }
    out
}

fn state_change(exp: &Experiment, old: Status) -> Kind {
    Kind::FisExperimentStateChange {
        experiment_id: exp.id.clone(),
        template_id: exp.template_id.clone(),
        new_status: exp.status.as_str().into(),
        new_reason: exp.reason.clone(),
        old_status: old.as_str().into(),
        old_reason: state_reason(old).into(),
    }
}

/// The admin API's view of an experiment: FIS's `GetExperiment` shape plus what it hit.
pub fn admin_view(exp: &Experiment) -> Value {
    let mut v = api::experiment_json(exp);
    if let Some(o) = v.as_object_mut() {
        o.insert("resolvedTargets".into(), json!(exp.resolved));
        let hits: BTreeMap<&String, &Vec<String>> = exp.actions.iter().map(|(n, r)| (n, &r.hit)).collect();
        o.insert("actionHits".into(), json!(hits));
    }
    v
}
