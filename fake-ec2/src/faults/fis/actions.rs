//! What an experiment's actions do when they start and when they end.

use super::template::Effect;
use super::{ActionStatus, Experiment, Lab};
use crate::clock::Millis;
use crate::faults::injection::{Fault, ICE, known_code};
use crate::world::interruption::InterruptOptions;

/// The target an action acts on, by name.
pub(super) fn action_target(exp: &Experiment, action: &str) -> Option<String> {
    let key = exp.effects.get(action)?.target_key()?.0;
    exp.template.actions.get(action)?.targets.get(key).cloned()
}

pub(super) fn start_action(exp: &mut Experiment, name: &str, at: Millis, lab: &mut dyn Lab) {
    let Some(effect) = exp.effects.get(name).cloned() else {
        return;
    };
    let resources = action_target(exp, name).and_then(|t| exp.resolved.get(&t).cloned()).unwrap_or_default();
    let source = format!("{}/{name}", exp.id);
    let mut hit = Vec::new();
    match &effect {
        Effect::SpotInterruptions { before } => {
            let opts =
                InterruptOptions { rebalance_first: true, notice_seconds: 120, duration_seconds: Some(before / 1000) };
            for id in &resources {
                match lab.interrupt(id, opts, at) {
                    Ok(_) => hit.push(id.clone()),
                    Err(why) => {
                        tracing::warn!(experiment_id = %exp.id, action = name, instance_id = %id, %why, "not interrupted")
                    }
                }
            }
        }
        Effect::Stop { .. } => {
            for id in &resources {
                let changed = lab.stop(id, at);
                if changed.is_some_and(|(a, b)| a != b) {
                    hit.push(id.clone());
                }
            }
        }
        Effect::Terminate => {
            for id in &resources {
                let changed = lab.terminate(id, at);
                if changed.is_some_and(|(a, b)| a != b) {
                    hit.push(id.clone());
                }
            }
        }
        // A reboot keeps an instance running; nothing in the world changes.
        Effect::Reboot => hit.clone_from(&resources),
        Effect::Ice { duration, percentage, zones } => {
            let f = lab.add_fault(Fault {
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
            let f = lab.add_fault(Fault {
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
        lab.wake(due, &exp.id);
    }
}

pub(super) fn finish_action(exp: &mut Experiment, name: &str, at: Millis, to: ActionStatus, lab: &mut dyn Lab) {
    let effect = exp.effects.get(name).cloned();
    let hit = exp.actions.get(name).map(|r| r.hit.clone()).unwrap_or_default();
    match effect {
        Some(Effect::Stop { restart_after: Some(_) }) => {
            // The instances come back at the end of the action, or when the experiment stops.
            for id in &hit {
                if let Err(e) = lab.start(id, at) {
                    tracing::warn!(experiment_id = %exp.id, action = name, instance_id = %id, code = e.code, "not restarted");
                }
            }
        }
        Some(Effect::Ice { .. } | Effect::ApiError { .. }) => lab.remove_faults(&format!("{}/{name}", exp.id)),
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
