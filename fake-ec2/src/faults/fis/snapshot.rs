//! What a state file keeps of FIS: templates, experiments (their actions' progress and when a
//! running action completes), client tokens. An experiment's parsed effects are derived from its
//! template again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::template::{self, TemplateInput};
use super::{ActionRun, Experiment, Fis, Status, StoredTemplate};
use crate::clock::Millis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FisState {
    templates: BTreeMap<String, StoredTemplate>,
    experiments: Vec<ExperimentState>,
    tokens: BTreeMap<String, String>,
    next_seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExperimentState {
    id: String,
    arn: String,
    template_id: String,
    template: TemplateInput,
    tags: BTreeMap<String, String>,
    status: Status,
    reason: String,
    creation_time: Millis,
    start_time: Millis,
    end_time: Option<Millis>,
    actions: BTreeMap<String, ActionRun>,
    /// When each running action completes (not part of FIS's own view of an action).
    actions_due: BTreeMap<String, Millis>,
    resolved: BTreeMap<String, Vec<String>>,
    actions_mode: String,
    seq: u64,
}

impl Fis {
    pub fn snapshot(&self) -> FisState {
        let experiments = self
            .experiments
            .values()
            .map(|e| ExperimentState {
                id: e.id.clone(),
                arn: e.arn.clone(),
                template_id: e.template_id.clone(),
                template: e.template.clone(),
                tags: e.tags.clone(),
                status: e.status,
                reason: e.reason.clone(),
                creation_time: e.creation_time,
                start_time: e.start_time,
                end_time: e.end_time,
                actions: e.actions.clone(),
                actions_due: e.actions.iter().filter_map(|(n, a)| Some((n.clone(), a.due?))).collect(),
                resolved: e.resolved.clone(),
                actions_mode: e.actions_mode.clone(),
                seq: e.seq,
            })
            .collect();
        FisState {
            templates: self.templates.clone(),
            experiments,
            tokens: self.tokens.clone(),
            next_seq: self.next_seq,
        }
    }

    /// Puts back what [`Fis::snapshot`] kept; `region` re-validates the experiments' templates.
    pub fn restore(&mut self, s: FisState, region: &str) -> Result<(), String> {
        let mut experiments = BTreeMap::new();
        for e in s.experiments {
            let effects = template::validate(&e.template, region)
                .map_err(|err| format!("experiment {}: its template no longer validates: {}", e.id, err.message))?;
            let mut actions = e.actions;
            for (name, due) in e.actions_due {
                if let Some(a) = actions.get_mut(&name) {
                    a.due = Some(due);
                }
            }
            let exp = Experiment {
                id: e.id.clone(),
                arn: e.arn,
                template_id: e.template_id,
                template: e.template,
                effects,
                tags: e.tags,
                status: e.status,
                reason: e.reason,
                creation_time: e.creation_time,
                start_time: e.start_time,
                end_time: e.end_time,
                actions,
                resolved: e.resolved,
                actions_mode: e.actions_mode,
                seq: e.seq,
            };
            experiments.insert(e.id, exp);
        }
        self.templates = s.templates;
        self.experiments = experiments;
        self.tokens = s.tokens;
        self.next_seq = s.next_seq;
        Ok(())
    }
}
