//! AWS FIS on the world clock: experiment templates, experiments and their state machine.
//!
//! - [`template`]: the template JSON and its validation (FIS's `ValidationException`).
//! - [`targets`]: resolving targets (ARNs, tags, filters) and choosing `ALL`/`COUNT(n)`/`PERCENT(n)`
//!   of them with the world's `fis` stream.
//! - [`api`]: the REST-JSON wire (`/experimentTemplates`, `/experiments`).
//!
//! An experiment is `initiating` when started (its targets are resolved then), `running` from the
//! next step on the clock, and `completed` once every action is; `StopExperiment` makes it
//! `stopping`, then `stopped`; an empty target (unless the template says `skip`) makes it
//! `failed`. Actions start when every action they `startAfter` has completed, and each runs for
//! its duration on the world clock. Every experiment state change is published as FIS's
//! `FIS Experiment State Change` event.

pub mod api;
pub mod duration;
pub mod targets;
pub mod template;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::events::Kind;
use crate::faults::injection::{Fault, ICE, known_code};
use crate::world::World;
use crate::world::clock::Millis;
use crate::world::instances::Timer;
use crate::world::interruption::InterruptOptions;
use template::{Effect, TemplateInput};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone)]
pub struct StoredTemplate {
    pub id: String,
    pub arn: String,
    pub input: TemplateInput,
    pub creation_time: Millis,
    pub last_update_time: Millis,
    seq: u64,
}

/// One action of an experiment, as it runs.
#[derive(Debug, Clone, Serialize)]
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
fn fis_id(w: &mut World, prefix: &str, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = prefix.to_owned();
    for _ in 0..len {
        out.push(CHARS[(rand::Rng::next_u32(&mut w.rng.ids) as usize) % CHARS.len()] as char);
    }
    out
}

impl World {
    /// `CreateExperimentTemplate`: validates and stores a template; returns its id.
    pub fn create_experiment_template(&mut self, input: TemplateInput) -> Result<String, FisError> {
        template::validate(&input, &self.cfg.region)?;
        let key = input.client_token.as_ref().map(|t| format!("template/{t}"));
        if let Some(id) = key.as_ref().and_then(|k| self.fis.tokens.get(k)) {
            return Ok(id.clone());
        }
        let id = fis_id(self, "EXT", 14);
        let now = self.now();
        self.fis.next_seq += 1;
        let t = StoredTemplate {
            arn: format!("arn:aws:fis:{}:{}:experiment-template/{id}", self.cfg.region, self.cfg.account_id),
            id: id.clone(),
            input,
            creation_time: now,
            last_update_time: now,
            seq: self.fis.next_seq,
        };
        self.fis.templates.insert(id.clone(), t);
        if let Some(k) = key {
            self.fis.tokens.insert(k, id.clone());
        }
        tracing::info!(template_id = %id, "FIS experiment template created");
        Ok(id)
    }

    /// `StartExperiment`: resolves the template's targets now and starts running on the clock.
    pub fn start_experiment(
        &mut self,
        template_id: &str,
        tags: BTreeMap<String, String>,
        actions_mode: Option<&str>,
        client_token: Option<&str>,
    ) -> Result<String, FisError> {
        self.flush_events();
        let key = client_token.map(|t| format!("experiment/{t}"));
        if let Some(id) = key.as_ref().and_then(|k| self.fis.tokens.get(k)) {
            return Ok(id.clone());
        }
        let template = self
            .fis
            .templates
            .get(template_id)
            .map(|t| t.input.clone())
            .ok_or_else(|| FisError::not_found(format!("Experiment template {template_id} not found.")))?;
        let actions_mode = actions_mode.unwrap_or("run-all");
        if actions_mode != "run-all" && actions_mode != "skip-all" {
            return Err(FisError::validation("actionsMode must be run-all or skip-all"));
        }
        let effects = template::validate(&template, &self.cfg.region)?;
        let now = self.now();
        let id = fis_id(self, "EXP", 15);
        let mut resolved = BTreeMap::new();
        for (name, t) in &template.targets {
            resolved.insert(name.clone(), self.resolve_target(t));
        }
        let actions = template
            .actions
            .keys()
            .map(|name| {
                let run = ActionRun {
                    status: ActionStatus::Pending,
                    reason: "Initial state".into(),
                    start_time: None,
                    end_time: None,
                    due: None,
                    hit: Vec::new(),
                };
                (name.clone(), run)
            })
            .collect();
        self.fis.next_seq += 1;
        let exp = Experiment {
            arn: format!("arn:aws:fis:{}:{}:experiment/{id}", self.cfg.region, self.cfg.account_id),
            id: id.clone(),
            template_id: template_id.to_owned(),
            template,
            effects,
            tags,
            status: Status::Initiating,
            reason: state_reason(Status::Initiating).into(),
            creation_time: now,
            start_time: now,
            end_time: None,
            actions,
            resolved,
            actions_mode: actions_mode.to_owned(),
            seq: self.fis.next_seq,
        };
        tracing::info!(experiment_id = %id, template_id, resolved = ?exp.resolved, "FIS experiment started");
        let note = json!({"fis": {"experiment-id": id, "resolved-targets": exp.resolved}});
        self.emit_noted(now, state_change(&exp, Status::Pending), Some(note));
        self.fis.experiments.insert(id.clone(), exp);
        if let Some(k) = key {
            self.fis.tokens.insert(k, id.clone());
        }
        self.schedule(now, Timer::Experiment(id.clone()));
        Ok(id)
    }

    /// `StopExperiment`: an experiment under way becomes `stopping`, then `stopped` at the next step.
    pub fn stop_experiment(&mut self, id: &str) -> Result<(), FisError> {
        self.flush_events();
        let now = self.now();
        let exp = self
            .fis
            .experiments
            .get_mut(id)
            .ok_or_else(|| FisError::not_found(format!("Experiment {id} not found.")))?;
        if exp.status.is_final() || exp.status == Status::Stopping {
            return Err(FisError::validation(format!(
                "Experiment {id} is {} and cannot be stopped.",
                exp.status.as_str()
            )));
        }
        let old = exp.status;
        exp.status = Status::Stopping;
        exp.reason = state_reason(Status::Stopping).into();
        let kind = state_change(exp, old);
        self.emit(now, kind);
        self.schedule(now, Timer::Experiment(id.to_owned()));
        Ok(())
    }

    /// Deletes a template (experiments already started keep their copy).
    pub fn delete_experiment_template(&mut self, id: &str) -> Result<StoredTemplate, FisError> {
        self.fis.templates.remove(id).ok_or_else(|| FisError::not_found(format!("Experiment template {id} not found.")))
    }

    /// Moves an experiment on as of `at` (a timer's due time).
    pub(crate) fn experiment_step(&mut self, id: &str, at: Millis) {
        let Some(mut exp) = self.fis.experiments.remove(id) else {
            return;
        };
        self.advance_experiment(&mut exp, at);
        self.fis.experiments.insert(id.to_owned(), exp);
    }

    fn set_status(&mut self, exp: &mut Experiment, to: Status, reason: Option<String>, at: Millis) {
        let old = exp.status;
        exp.status = to;
        exp.reason = reason.unwrap_or_else(|| state_reason(to).into());
        if to.is_final() {
            exp.end_time = Some(at);
        }
        self.emit(at, state_change(exp, old));
        tracing::info!(experiment_id = %exp.id, from = old.as_str(), to = to.as_str(), "FIS experiment state");
    }

    fn advance_experiment(&mut self, exp: &mut Experiment, at: Millis) {
        match exp.status {
            Status::Initiating => {
                if exp.actions_mode == "skip-all" {
                    for run in exp.actions.values_mut() {
                        run.status = ActionStatus::Skipped;
                        run.reason = "Action was skipped.".into();
                    }
                }
                let skip_empty =
                    exp.template.experiment_options.as_ref().and_then(|o| o.empty_target_resolution_mode.as_deref())
                        == Some("skip");
                let names: Vec<String> = exp.actions.keys().cloned().collect();
                for name in names {
                    let Some(target) = self.action_target(exp, &name) else {
                        continue;
                    };
                    if exp.actions[&name].status != ActionStatus::Pending
                        || exp.resolved.get(&target).is_some_and(|r| !r.is_empty())
                    {
                        continue;
                    }
                    if skip_empty {
                        if let Some(run) = exp.actions.get_mut(&name) {
                            run.status = ActionStatus::Skipped;
                            run.reason = format!("Target {target} resolved to no resources.");
                        }
                        continue;
                    }
                    for run in exp.actions.values_mut() {
                        run.status = ActionStatus::Cancelled;
                        run.reason = "Action was cancelled.".into();
                    }
                    let reason = format!("Target resolution failed: target {target} resolved to no resources.");
                    self.set_status(exp, Status::Failed, Some(reason), at);
                    return;
                }
                self.set_status(exp, Status::Running, None, at);
            }
            Status::Stopping => {
                let names: Vec<String> = exp.actions.keys().cloned().collect();
                for name in names {
                    match exp.actions[&name].status {
                        ActionStatus::Running => self.finish_action(exp, &name, at, ActionStatus::Stopped),
                        ActionStatus::Pending => {
                            if let Some(run) = exp.actions.get_mut(&name) {
                                run.status = ActionStatus::Cancelled;
                                run.reason = "Action was cancelled.".into();
                            }
                        }
                        _ => {}
                    }
                }
                self.set_status(exp, Status::Stopped, None, at);
                return;
            }
            Status::Running => {}
            _ => return,
        }
        loop {
            let mut changed = false;
            let due: Vec<String> = exp
                .actions
                .iter()
                .filter(|(_, r)| r.status == ActionStatus::Running && r.due.is_some_and(|d| d <= at))
                .map(|(n, _)| n.clone())
                .collect();
            for name in due {
                self.finish_action(exp, &name, at, ActionStatus::Completed);
                changed = true;
            }
            let ready: Vec<String> = exp
                .actions
                .iter()
                .filter(|(n, r)| {
                    r.status == ActionStatus::Pending
                        && exp.template.actions.get(*n).is_some_and(|a| {
                            a.start_after
                                .iter()
                                .all(|s| exp.actions.get(s).is_some_and(|r| r.status.lets_others_start()))
                        })
                })
                .map(|(n, _)| n.clone())
                .collect();
            for name in ready {
                self.start_action(exp, &name, at);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        if exp.actions.values().all(|r| r.status.is_final()) {
            // An action that can never start (its predecessor failed) is cancelled.
            let failed = exp.actions.values().any(|r| r.status == ActionStatus::Failed);
            self.set_status(exp, if failed { Status::Failed } else { Status::Completed }, None, at);
        } else if !exp.actions.values().any(|r| r.status == ActionStatus::Running) {
            for run in exp.actions.values_mut().filter(|r| r.status == ActionStatus::Pending) {
                run.status = ActionStatus::Cancelled;
                run.reason = "Action was cancelled because an action it starts after did not complete.".into();
            }
            self.set_status(exp, Status::Failed, None, at);
        }
    }

    /// The target an action acts on, by name.
    fn action_target(&self, exp: &Experiment, action: &str) -> Option<String> {
        let key = exp.effects.get(action)?.target_key()?.0;
        exp.template.actions.get(action)?.targets.get(key).cloned()
    }

    fn start_action(&mut self, exp: &mut Experiment, name: &str, at: Millis) {
        let Some(effect) = exp.effects.get(name).cloned() else {
            return;
        };
        let resources = self.action_target(exp, name).and_then(|t| exp.resolved.get(&t).cloned()).unwrap_or_default();
        let source = format!("{}/{name}", exp.id);
        let mut hit = Vec::new();
        match &effect {
            Effect::SpotInterruptions { before } => {
                let opts = InterruptOptions {
                    rebalance_first: true,
                    notice_seconds: 120,
                    duration_seconds: Some(before / 1000),
                };
                for id in &resources {
                    match self.interrupt_at(id, opts, at) {
                        Ok(_) => hit.push(id.clone()),
                        Err(why) => {
                            tracing::warn!(experiment_id = %exp.id, action = name, instance_id = %id, %why, "not interrupted")
                        }
                    }
                }
            }
            Effect::Stop { .. } => {
                for id in &resources {
                    let changed = self.stop_as(
                        id,
                        at,
                        "User initiated",
                        "Client.UserInitiatedShutdown",
                        "Client.UserInitiatedShutdown: User initiated shutdown",
                    );
                    if changed.is_some_and(|(a, b)| a != b) {
                        hit.push(id.clone());
                    }
                }
            }
            Effect::Terminate => {
                for id in &resources {
                    let changed = self.terminate_as(
                        id,
                        at,
                        "User initiated",
                        "Client.UserInitiatedShutdown",
                        "Client.UserInitiatedShutdown: User initiated shutdown",
                    );
                    if changed.is_some_and(|(a, b)| a != b) {
                        hit.push(id.clone());
                    }
                }
            }
            // A reboot keeps an instance running; nothing in the world changes.
            Effect::Reboot => hit.clone_from(&resources),
            Effect::Ice { duration, percentage, zones } => {
                let f = self.faults.add(Fault {
                    id: String::new(),
                    operations: vec!["CreateFleet".into(), "RunInstances".into()],
                    code: Some(ICE.into()),
                    status: 500,
                    message: known_code(ICE).map(|c| c.1).unwrap_or_default().into(),
                    percentage: *percentage,
                    latency_ms: 0,
                    zones: zones.clone(),
                    from: at,
                    until: Some(at + duration),
                    source: source.clone(),
                    hits: 0,
                });
                hit.push(f.id);
            }
            Effect::ApiError { code, duration, percentage, operations } => {
                let (status, message) = known_code(code).unwrap_or((500, "An internal error has occurred"));
                let f = self.faults.add(Fault {
                    id: String::new(),
                    operations: operations.clone(),
                    code: Some((*code).into()),
                    status,
                    message: message.into(),
                    percentage: *percentage,
                    latency_ms: 0,
                    zones: Vec::new(),
                    from: at,
                    until: Some(at + duration),
                    source: source.clone(),
                    hits: 0,
                });
                hit.push(f.id);
            }
            Effect::Wait { .. } => {}
        }
        let due = at + effect.runs_for();
        if let Some(run) = exp.actions.get_mut(name) {
            run.status = ActionStatus::Running;
            run.reason = "Action is running.".into();
            run.start_time = Some(at);
            run.due = Some(due);
            run.hit = hit;
        }
        tracing::info!(experiment_id = %exp.id, action = name, "FIS action started");
        if due > at {
            self.schedule(due, Timer::Experiment(exp.id.clone()));
        }
    }

    fn finish_action(&mut self, exp: &mut Experiment, name: &str, at: Millis, to: ActionStatus) {
        let effect = exp.effects.get(name).cloned();
        let hit = exp.actions.get(name).map(|r| r.hit.clone()).unwrap_or_default();
        match effect {
            Some(Effect::Stop { restart_after: Some(_) }) => {
                // The instances come back at the end of the action, or when the experiment stops.
                for id in &hit {
                    if let Err(e) = self.start_at(id, at) {
                        tracing::warn!(experiment_id = %exp.id, action = name, instance_id = %id, code = e.code, "not restarted");
                    }
                }
            }
            Some(Effect::Ice { .. } | Effect::ApiError { .. }) => {
                self.faults.remove_source(&format!("{}/{name}", exp.id))
            }
            _ => {}
        }
        if let Some(run) = exp.actions.get_mut(name) {
            run.status = to;
            run.reason = match to {
                ActionStatus::Stopped => "Action was stopped.".into(),
                _ => "Action was completed.".into(),
            };
            run.end_time = Some(at);
            run.due = None;
        }
        tracing::info!(experiment_id = %exp.id, action = name, status = to.as_str(), "FIS action ended");
    }
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
