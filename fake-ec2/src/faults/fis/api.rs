//! The FIS REST-JSON API (`fis-2020-12-01`) on fake-ec2's endpoint, routed by path:
//!
//! | method and path | operation |
//! |---|---|
//! | `POST /experimentTemplates` | CreateExperimentTemplate |
//! | `GET /experimentTemplates` | ListExperimentTemplates |
//! | `GET`/`DELETE /experimentTemplates/{id}` | GetExperimentTemplate / DeleteExperimentTemplate |
//! | `POST /experiments` | StartExperiment |
//! | `GET /experiments` | ListExperiments |
//! | `GET`/`DELETE /experiments/{id}` | GetExperiment / StopExperiment |
//! | `GET /experiments/{id}/resolvedTargets` | ListExperimentResolvedTargets |
//!
//! Timestamps are epoch seconds, as the REST-JSON protocol writes them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::template::TemplateInput;
use super::{Experiment, Fis, FisError, Lab, StoredTemplate};
use crate::clock::Millis;

/// Every FIS operation this server answers (the table above).
pub const ACTIONS: &[&str] = &[
    "CreateExperimentTemplate",
    "ListExperimentTemplates",
    "GetExperimentTemplate",
    "DeleteExperimentTemplate",
    "StartExperiment",
    "ListExperiments",
    "GetExperiment",
    "StopExperiment",
    "ListExperimentResolvedTargets",
];

/// Whether a request path belongs to FIS.
pub fn is_fis_path(path: &str) -> bool {
    ["/experimentTemplates", "/experiments"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

fn secs(ms: Millis) -> Value {
    json!(ms as f64 / 1000.0)
}

pub fn template_json(t: &StoredTemplate) -> Value {
    let i = &t.input;
    let opts = i.experiment_options.clone().unwrap_or_default();
    let mut v = json!({
        "id": t.id,
        "arn": t.arn,
        "description": i.description,
        "targets": i.targets,
        "actions": i.actions,
        "stopConditions": i.stop_conditions,
        "creationTime": secs(t.creation_time),
        "lastUpdateTime": secs(t.last_update_time),
        "roleArn": i.role_arn,
        "tags": i.tags,
        "experimentOptions": {
            "accountTargeting": opts.account_targeting.unwrap_or_else(|| "single-account".into()),
            "emptyTargetResolutionMode": opts.empty_target_resolution_mode.unwrap_or_else(|| "fail".into()),
        },
        "targetAccountConfigurationsCount": 0,
    });
    if let (Some(o), Some(l)) = (v.as_object_mut(), &i.log_configuration) {
        o.insert("logConfiguration".into(), l.clone());
    }
    v
}

pub fn experiment_json(e: &Experiment) -> Value {
    let opts = e.template.experiment_options.clone().unwrap_or_default();
    let actions: BTreeMap<&String, Value> = e
        .template
        .actions
        .iter()
        .map(|(name, a)| {
            let mut v = serde_json::to_value(a).unwrap_or_else(|_| json!({}));
            if let (Some(o), Some(run)) = (v.as_object_mut(), e.actions.get(name)) {
                o.insert("state".into(), json!({"status": run.status.as_str(), "reason": run.reason}));
                if let Some(t) = run.start_time {
                    o.insert("startTime".into(), secs(t));
                }
                if let Some(t) = run.end_time {
                    o.insert("endTime".into(), secs(t));
                }
            }
            (name, v)
        })
        .collect();
    let mut v = json!({
        "id": e.id,
        "arn": e.arn,
        "experimentTemplateId": e.template_id,
        "roleArn": e.template.role_arn,
        "state": {"status": e.status.as_str(), "reason": e.reason},
        "targets": e.template.targets,
        "actions": actions,
        "stopConditions": e.template.stop_conditions,
        "creationTime": secs(e.creation_time),
        "startTime": secs(e.start_time),
        "tags": e.tags,
        "experimentOptions": {
            "accountTargeting": opts.account_targeting.unwrap_or_else(|| "single-account".into()),
            "emptyTargetResolutionMode": opts.empty_target_resolution_mode.unwrap_or_else(|| "fail".into()),
            "actionsMode": e.actions_mode,
        },
        "targetAccountConfigurationsCount": 0,
    });
    if let (Some(o), Some(end)) = (v.as_object_mut(), e.end_time) {
        o.insert("endTime".into(), secs(end));
    }
    v
}

fn summary_json(e: &Experiment) -> Value {
    json!({
        "id": e.id,
        "arn": e.arn,
        "experimentTemplateId": e.template_id,
        "state": {"status": e.status.as_str(), "reason": e.reason},
        "creationTime": secs(e.creation_time),
        "tags": e.tags,
        "experimentOptions": {"actionsMode": e.actions_mode},
    })
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, FisError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| FisError::validation(format!("The request body is not valid: {e}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartInput {
    client_token: Option<String>,
    experiment_template_id: Option<String>,
    #[serde(default)]
    experiment_options: Option<StartOptions>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartOptions {
    actions_mode: Option<String>,
}

/// `maxResults` / `nextToken` paging over a list; tokens are offsets.
fn page<T>(items: Vec<T>, q: &BTreeMap<String, String>, max: usize) -> Result<(Vec<T>, Option<String>), FisError> {
    let limit = match q.get("maxResults") {
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| (1..=max).contains(m))
            .ok_or_else(|| FisError::validation(format!("maxResults must be from 1 to {max}")))?,
        None => max,
    };
    let start = match q.get("nextToken") {
        Some(t) => t.parse::<usize>().map_err(|_| FisError::validation("The nextToken is not valid."))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + limit < total).then(|| (start + limit).to_string());
    Ok((page, next))
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let (Some(o), Some(t)) = (v.as_object_mut(), next) {
        o.insert("nextToken".into(), json!(t));
    }
    v
}

fn experiment<'a>(fis: &'a Fis, id: &str) -> Result<&'a Experiment, FisError> {
    fis.experiments.get(id).ok_or_else(|| FisError::not_found(format!("Experiment {id} not found.")))
}

/// Answers one FIS request at `now`; the signature has been checked.
pub fn handle(
    fis: &mut Fis,
    lab: &mut dyn Lab,
    now: Millis,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Value, FisError> {
    let q: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["experimentTemplates"]) => {
            let input: TemplateInput = parse_body(body)?;
            let id = fis.create_template(input, now, lab)?;
            let t = fis.templates.get(&id).ok_or_else(|| FisError::not_found(id.clone()))?;
            Ok(json!({"experimentTemplate": template_json(t)}))
        }
        ("GET", ["experimentTemplates"]) => {
            let list: Vec<Value> = fis
                .templates_in_order()
                .into_iter()
                .map(|t| {
                    json!({
                        "id": t.id, "arn": t.arn, "description": t.input.description,
                        "creationTime": secs(t.creation_time), "lastUpdateTime": secs(t.last_update_time),
                        "tags": t.input.tags,
                    })
                })
                .collect();
            let (list, next) = page(list, &q, 100)?;
            Ok(with_token(json!({"experimentTemplates": list}), next))
        }
        ("GET", ["experimentTemplates", id]) => {
            let t = fis
                .templates
                .get(*id)
                .ok_or_else(|| FisError::not_found(format!("Experiment template {id} not found.")))?;
            Ok(json!({"experimentTemplate": template_json(t)}))
        }
        ("DELETE", ["experimentTemplates", id]) => {
            let t = fis.delete_template(id)?;
            Ok(json!({"experimentTemplate": template_json(&t)}))
        }
        ("POST", ["experiments"]) => {
            let input: StartInput = parse_body(body)?;
            let template_id =
                input.experiment_template_id.ok_or_else(|| FisError::validation("experimentTemplateId is required"))?;
            let mode = input.experiment_options.and_then(|o| o.actions_mode);
            let start = super::StartOptions {
                tags: input.tags,
                actions_mode: mode.as_deref(),
                client_token: input.client_token.as_deref(),
            };
            let id = fis.start_experiment(&template_id, start, now, lab)?;
            let e = experiment(fis, &id)?;
            Ok(json!({"experiment": experiment_json(e)}))
        }
        ("GET", ["experiments"]) => {
            let template = q.get("experimentTemplateId");
            let list: Vec<Value> = fis
                .experiments_in_order()
                .into_iter()
                .filter(|e| template.is_none_or(|t| *t == e.template_id))
                .map(summary_json)
                .collect();
            let (list, next) = page(list, &q, 100)?;
            Ok(with_token(json!({"experiments": list}), next))
        }
        ("GET", ["experiments", id]) => Ok(json!({"experiment": experiment_json(experiment(fis, id)?)})),
        ("DELETE", ["experiments", id]) => {
            fis.stop_experiment(id, now, lab)?;
            Ok(json!({"experiment": experiment_json(experiment(fis, id)?)}))
        }
        ("GET", ["experiments", id, "resolvedTargets"]) => {
            let e = experiment(fis, id)?;
            let name = q.get("targetName");
            let cfg = &lab.world().cfg;
            let (region, account) = (&cfg.region, &cfg.account_id);
            let mut list = Vec::new();
            for (target, resources) in e.resolved.iter().filter(|(t, _)| name.is_none_or(|n| n == *t)) {
                let rtype = e.template.targets.get(target).map(|t| t.resource_type.clone()).unwrap_or_default();
                for r in resources {
                    let arn = if r.starts_with("arn:") {
                        r.clone()
                    } else {
                        format!("arn:aws:ec2:{region}:{account}:instance/{r}")
                    };
                    list.push(
                        json!({"resourceType": rtype, "targetName": target, "targetInformation": {"identifier": arn}}),
                    );
                }
            }
            let (list, next) = page(list, &q, 100)?;
            Ok(with_token(json!({"resolvedTargets": list}), next))
        }
        _ => Err(FisError {
            status: 404,
            kind: "UnknownOperationException",
            message: format!("No FIS operation at {method} {path}"),
        }),
    }
}
