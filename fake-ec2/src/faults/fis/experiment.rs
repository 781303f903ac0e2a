//! The experiment state machine: templates stored, experiments started, stepped on the clock
//! (initiating → running → completed, or stopping → stopped, or failed) and stopped.

use std::collections::BTreeMap;

use serde_json::json;

use super::actions::{action_target, finish_action, start_action};
use super::template::{self, TemplateInput};
use super::{
    ActionRun, ActionStatus, Experiment, Fis, FisError, Lab, Status, StoredTemplate, fis_id, state_change,
    state_reason, targets,
};
use crate::clock::Millis;

/// What `StartExperiment` says besides the template.
#[derive(Debug, Clone, Default)]
pub struct StartOptions<'a> {
    pub tags: BTreeMap<String, String>,
    pub actions_mode: Option<&'a str>,
    pub client_token: Option<&'a str>,
}

/// The region and account the lab's world is in, for ARNs.
fn origin(lab: &dyn Lab) -> (String, String) {
    let cfg = &lab.world().cfg;
    (cfg.region.clone(), cfg.account_id.clone())
}

impl Fis {
    /// `CreateExperimentTemplate`: validates and stores a template; returns its id.
    pub fn create_template(
        &mut self,
        input: TemplateInput,
        now: Millis,
        lab: &mut dyn Lab,
    ) -> Result<String, FisError> {
        let (region, account) = origin(lab);
        template::validate(&input, &region)?;
        let key = input.client_token.as_ref().map(|t| format!("template/{t}"));
        if let Some(id) = key.as_ref().and_then(|k| self.tokens.get(k)) {
            return Ok(id.clone());
        }
        let id = fis_id(lab.rng(), "EXT", 14);
        self.next_seq += 1;
        let t = StoredTemplate {
            arn: format!("arn:aws:fis:{region}:{account}:experiment-template/{id}"),
            id: id.clone(),
            input,
            creation_time: now,
            last_update_time: now,
            seq: self.next_seq,
        };
        self.templates.insert(id.clone(), t);
        if let Some(k) = key {
            self.tokens.insert(k, id.clone());
        }
        tracing::info!(template_id = %id, "FIS experiment template created");
        Ok(id)
    }

    /// `StartExperiment`: resolves the template's targets now and starts running on the clock.
    pub fn start_experiment(
        &mut self,
        template_id: &str,
        start: StartOptions<'_>,
        now: Millis,
        lab: &mut dyn Lab,
    ) -> Result<String, FisError> {
        let StartOptions { tags, actions_mode, client_token } = start;
        let key = client_token.map(|t| format!("experiment/{t}"));
        if let Some(id) = key.as_ref().and_then(|k| self.tokens.get(k)) {
            return Ok(id.clone());
        }
        let template = self
            .templates
            .get(template_id)
            .map(|t| t.input.clone())
            .ok_or_else(|| FisError::not_found(format!("Experiment template {template_id} not found.")))?;
        let actions_mode = actions_mode.unwrap_or("run-all");
        if actions_mode != "run-all" && actions_mode != "skip-all" {
            return Err(FisError::validation("actionsMode must be run-all or skip-all"));
        }
        let (region, account) = origin(lab);
        let effects = template::validate(&template, &region)?;
        let id = fis_id(lab.rng(), "EXP", 15);
        let mut resolved = BTreeMap::new();
        for (name, t) in &template.targets {
            resolved.insert(name.clone(), targets::resolve(t, lab));
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
        self.next_seq += 1;
        let exp = Experiment {
            arn: format!("arn:aws:fis:{region}:{account}:experiment/{id}"),
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
            seq: self.next_seq,
        };
        tracing::info!(experiment_id = %id, template_id, resolved = ?exp.resolved, "FIS experiment started");
        let note = json!({"fis": {"experiment-id": id, "resolved-targets": exp.resolved}});
        lab.publish(now, state_change(&exp, Status::Pending), Some(note));
        self.experiments.insert(id.clone(), exp);
        if let Some(k) = key {
            self.tokens.insert(k, id.clone());
        }
        lab.wake(now, &id);
        Ok(id)
    }

    /// `StopExperiment`: an experiment under way becomes `stopping`, then `stopped` at the next step.
    pub fn stop_experiment(&mut self, id: &str, now: Millis, lab: &mut dyn Lab) -> Result<(), FisError> {
        let exp =
            self.experiments.get_mut(id).ok_or_else(|| FisError::not_found(format!("Experiment {id} not found.")))?;
        if exp.status.is_final() || exp.status == Status::Stopping {
            return Err(FisError::validation(format!(
                "Experiment {id} is {} and cannot be stopped.",
                exp.status.as_str()
            )));
        }
        let old = exp.status;
        exp.status = Status::Stopping;
        exp.reason = state_reason(Status::Stopping).into();
        lab.publish(now, state_change(exp, old), None);
        lab.wake(now, id);
        Ok(())
    }

    /// Deletes a template (experiments already started keep their copy).
    pub fn delete_template(&mut self, id: &str) -> Result<StoredTemplate, FisError> {
        self.templates.remove(id).ok_or_else(|| FisError::not_found(format!("Experiment template {id} not found.")))
    }

    /// Moves an experiment on as of `at` (a timer's due time).
    pub fn step(&mut self, id: &str, at: Millis, lab: &mut dyn Lab) {
        let Some(exp) = self.experiments.get_mut(id) else {
            return;
        };
        advance(exp, at, lab);
    }
}

fn set_status(exp: &mut Experiment, to: Status, reason: Option<String>, at: Millis, lab: &mut dyn Lab) {
    let old = exp.status;
    exp.status = to;
    exp.reason = reason.unwrap_or_else(|| state_reason(to).into());
    if to.is_final() {
        exp.end_time = Some(at);
    }
    lab.publish(at, state_change(exp, old), None);
    tracing::info!(experiment_id = %exp.id, from = old.as_str(), to = to.as_str(), "FIS experiment state");
}

fn advance(exp: &mut Experiment, at: Millis, lab: &mut dyn Lab) {
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
                let Some(target) = action_target(exp, &name) else {
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
                set_status(exp, Status::Failed, Some(reason), at, lab);
                return;
            }
            set_status(exp, Status::Running, None, at, lab);
        }
        Status::Stopping => {
            let names: Vec<String> = exp.actions.keys().cloned().collect();
            for name in names {
                match exp.actions[&name].status {
                    ActionStatus::Running => finish_action(exp, &name, at, ActionStatus::Stopped, lab),
                    ActionStatus::Pending => {
                        if let Some(run) = exp.actions.get_mut(&name) {
                            run.status = ActionStatus::Cancelled;
                            run.reason = "Action was cancelled.".into();
                        }
                    }
                    _ => {}
                }
            }
            set_status(exp, Status::Stopped, None, at, lab);
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
            finish_action(exp, &name, at, ActionStatus::Completed, lab);
            changed = true;
        }
        let ready: Vec<String> = exp
            .actions
            .iter()
            .filter(|(n, r)| {
                r.status == ActionStatus::Pending
                    && exp.template.actions.get(*n).is_some_and(|a| {
                        a.start_after.iter().all(|s| exp.actions.get(s).is_some_and(|r| r.status.lets_others_start()))
                    })
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in ready {
            start_action(exp, &name, at, lab);
            changed = true;
        }
        if !changed {
            break;
        }
    }
    if exp.actions.values().all(|r| r.status.is_final()) {
        // An action that can never start (its predecessor failed) is cancelled.
        let failed = exp.actions.values().any(|r| r.status == ActionStatus::Failed);
        set_status(exp, if failed { Status::Failed } else { Status::Completed }, None, at, lab);
    } else if !exp.actions.values().any(|r| r.status == ActionStatus::Running) {
        for run in exp.actions.values_mut().filter(|r| r.status == ActionStatus::Pending) {
            run.status = ActionStatus::Cancelled;
            run.reason = "Action was cancelled because an action it starts after did not complete.".into();
        }
        set_status(exp, Status::Failed, None, at, lab);
    }
}
