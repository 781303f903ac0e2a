//! FIS experiment templates: the JSON of `CreateExperimentTemplate`, and its validation into
//! the actions this fake runs. Invalid templates get FIS's `ValidationException`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FisError;
use super::duration::parse_duration;
use crate::clock::Millis;

/// `CreateExperimentTemplate`'s input (and what a template file holds); unknown fields are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInput {
    #[serde(default, skip_serializing)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub stop_conditions: Vec<StopCondition>,
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_options: Option<TemplateOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_report_configuration: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopCondition {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_targeting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_target_resolution_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    pub selection_mode: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub path: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub action_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_after: Vec<String>,
}

pub const SPOT_INSTANCE: &str = "aws:ec2:spot-instance";
pub const INSTANCE: &str = "aws:ec2:instance";
pub const ROLE: &str = "aws:iam:role";

/// How many of the matching resources a target takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    All,
    Count(usize),
    Percent(u32),
}

impl Selection {
    pub fn parse(s: &str) -> Option<Self> {
        if s == "ALL" {
            return Some(Self::All);
        }
        let num = |prefix: &str| s.strip_prefix(prefix)?.strip_suffix(')')?.parse::<u64>().ok();
        if let Some(n) = num("COUNT(") {
            return (n >= 1).then_some(Self::Count(n as usize));
        }
        let n = num("PERCENT(")?;
        ((1..=100).contains(&n)).then_some(Self::Percent(n as u32))
    }

    /// How many of `n` matching resources are taken. PERCENT rounds down, but takes at least one.
    pub fn take(self, n: usize) -> usize {
        match self {
            Self::All => n,
            Self::Count(c) => c.min(n),
            Self::Percent(_) if n == 0 => 0,
            Self::Percent(p) => (n * p as usize / 100).max(1),
        }
    }
}

/// DescribeInstances paths a target filter may use.
pub const FILTER_PATHS: &[&str] = &[
    "State.Name",
    "Placement.AvailabilityZone",
    "InstanceType",
    "InstanceId",
    "ImageId",
    "SubnetId",
    "VpcId",
    "Architecture",
    "InstanceLifecycle",
    "PrivateIpAddress",
    "PrivateDnsName",
    "SpotInstanceRequestId",
    "KeyName",
];

/// What an action does, with its parameters parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `aws:ec2:send-spot-instance-interruptions`: reclaim after `before` (≥ 2 minutes).
    SpotInterruptions {
        before: Millis,
    },
    /// `aws:ec2:stop-instances`, started again after the duration when one is given.
    Stop {
        restart_after: Option<Millis>,
    },
    Terminate,
    Reboot,
    /// `aws:ec2:api-insufficient-instance-capacity-error`.
    Ice {
        duration: Millis,
        percentage: f64,
        zones: Vec<String>,
    },
    /// `aws:fis:inject-api-{internal,throttle,unavailable}-error`.
    ApiError {
        code: &'static str,
        duration: Millis,
        percentage: f64,
        operations: Vec<String>,
    },
    Wait {
        duration: Millis,
    },
}

impl Effect {
    /// The action's target key and the resource type it must name, if it takes a target.
    pub fn target_key(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::SpotInterruptions { .. } => Some(("SpotInstances", SPOT_INSTANCE)),
            Self::Stop { .. } | Self::Terminate | Self::Reboot => Some(("Instances", INSTANCE)),
            Self::Ice { .. } | Self::ApiError { .. } => Some(("Roles", ROLE)),
            Self::Wait { .. } => None,
        }
    }

    /// How long the action runs once started.
    pub fn runs_for(&self) -> Millis {
        match self {
            // FIS completes the action when the 2-minute warning goes out; the reclaim follows.
            Self::SpotInterruptions { before } => (before - 120_000).max(0),
            Self::Stop { restart_after } => restart_after.unwrap_or(0),
            Self::Terminate | Self::Reboot => 0,
            Self::Ice { duration, .. } | Self::ApiError { duration, .. } | Self::Wait { duration } => *duration,
        }
    }
}

pub const ACTION_IDS: &[&str] = &[
    "aws:ec2:send-spot-instance-interruptions",
    "aws:ec2:stop-instances",
    "aws:ec2:terminate-instances",
    "aws:ec2:reboot-instances",
    "aws:ec2:api-insufficient-instance-capacity-error",
    "aws:fis:inject-api-internal-error",
    "aws:fis:inject-api-throttle-error",
    "aws:fis:inject-api-unavailable-error",
    "aws:fis:wait",
];

fn invalid(msg: impl Into<String>) -> FisError {
    FisError::validation(msg)
}

fn param<'a>(name: &str, a: &'a Action, key: &str) -> Result<&'a str, FisError> {
    a.parameters
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| invalid(format!("Action {name}: missing required parameter {key} for {}", a.action_id)))
}

fn duration_param(name: &str, a: &Action, key: &str, min: Millis, max: Millis) -> Result<Millis, FisError> {
    let v = param(name, a, key)?;
    let d = parse_duration(v)
        .ok_or_else(|| invalid(format!("Action {name}: parameter {key} value {v} is not a valid ISO 8601 duration")))?;
    if d < min || d > max {
        return Err(invalid(format!(
            "Action {name}: parameter {key} value {v} is out of range ({} to {})",
            human(min),
            human(max)
        )));
    }
    Ok(d)
}

fn human(ms: Millis) -> String {
    match ms {
        m if m % 3_600_000 == 0 => format!("PT{}H", m / 3_600_000),
        m if m % 60_000 == 0 => format!("PT{}M", m / 60_000),
        m => format!("PT{}S", m / 1000),
    }
}

fn percentage_param(name: &str, a: &Action) -> Result<f64, FisError> {
    let v = param(name, a, "percentage")?;
    v.parse::<u32>().ok().filter(|p| (1..=100).contains(p)).map(f64::from).ok_or_else(|| {
        invalid(format!("Action {name}: parameter percentage value {v} must be an integer from 1 to 100"))
    })
}

fn list_param(name: &str, a: &Action, key: &str) -> Result<Vec<String>, FisError> {
    let v: Vec<String> =
        param(name, a, key)?.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if v.is_empty() {
        return Err(invalid(format!("Action {name}: parameter {key} must list at least one value")));
    }
    Ok(v)
}

const HOUR: Millis = 3_600_000;

/// Parses one action's id and parameters.
pub fn effect(name: &str, a: &Action) -> Result<Effect, FisError> {
    let api = |code: &'static str| -> Result<Effect, FisError> {
        let service = param(name, a, "service")?;
        if service != "ec2" {
            return Err(invalid(format!(
                "Action {name}: parameter service value {service} is not supported; supported: ec2"
            )));
        }
        Ok(Effect::ApiError {
            code,
            duration: duration_param(name, a, "duration", 60_000, 12 * HOUR)?,
            percentage: percentage_param(name, a)?,
            operations: list_param(name, a, "operations")?,
        })
    };
    Ok(match a.action_id.as_str() {
        "aws:ec2:send-spot-instance-interruptions" => Effect::SpotInterruptions {
            before: duration_param(name, a, "durationBeforeInterruption", 120_000, 15 * 60_000)?,
        },
        "aws:ec2:stop-instances" => Effect::Stop {
            restart_after: match a.parameters.get("startInstancesAfterDuration") {
                Some(_) => Some(duration_param(name, a, "startInstancesAfterDuration", 60_000, 12 * HOUR)?),
                None => None,
            },
        },
        "aws:ec2:terminate-instances" => Effect::Terminate,
        "aws:ec2:reboot-instances" => Effect::Reboot,
        "aws:ec2:api-insufficient-instance-capacity-error" => Effect::Ice {
            duration: duration_param(name, a, "duration", 60_000, 12 * HOUR)?,
            percentage: percentage_param(name, a)?,
            zones: list_param(name, a, "availabilityZoneIdentifiers")?,
        },
        "aws:fis:inject-api-internal-error" => api("InternalError")?,
        "aws:fis:inject-api-throttle-error" => api("RequestLimitExceeded")?,
        "aws:fis:inject-api-unavailable-error" => api("Unavailable")?,
        "aws:fis:wait" => Effect::Wait { duration: duration_param(name, a, "duration", 60_000, 12 * HOUR)? },
        other => {
            return Err(invalid(format!(
                "Action {name}: action ID {other} is not supported here; supported: {}",
                ACTION_IDS.join(", ")
            )));
        }
    })
}

fn check_target(name: &str, t: &Target, region: &str) -> Result<(), FisError> {
    if ![SPOT_INSTANCE, INSTANCE, ROLE].contains(&t.resource_type.as_str()) {
        return Err(invalid(format!(
            "Target {name}: resource type {} is not supported here; supported: {SPOT_INSTANCE}, {INSTANCE}, {ROLE}",
            t.resource_type
        )));
    }
    if Selection::parse(&t.selection_mode).is_none() {
        return Err(invalid(format!(
            "Target {name}: selection mode {} is invalid; use ALL, COUNT(n) or PERCENT(n)",
            t.selection_mode
        )));
    }
    if !t.resource_arns.is_empty() && !t.resource_tags.is_empty() {
        return Err(invalid(format!("Target {name}: specify resourceArns or resourceTags, not both")));
    }
    if t.resource_type == ROLE {
        if t.resource_arns.is_empty() || !t.resource_tags.is_empty() || !t.filters.is_empty() {
            return Err(invalid(format!("Target {name}: {ROLE} targets take resourceArns only")));
        }
        if let Some(bad) = t.resource_arns.iter().find(|a| !(a.starts_with("arn:aws:iam::") && a.contains(":role/"))) {
            return Err(invalid(format!("Target {name}: {bad} is not an IAM role ARN")));
        }
        return Ok(());
    }
    if t.resource_arns.is_empty() && t.resource_tags.is_empty() && t.filters.is_empty() {
        return Err(invalid(format!("Target {name}: specify resourceArns, resourceTags or filters")));
    }
    if let Some(bad) = t.resource_arns.iter().find(|a| instance_of_arn(a, region).is_none()) {
        return Err(invalid(format!("Target {name}: {bad} is not an EC2 instance ARN in {region}")));
    }
    for f in &t.filters {
        if !FILTER_PATHS.contains(&f.path.as_str()) {
            return Err(invalid(format!(
                "Target {name}: filter path {} is not supported here; supported: {}",
                f.path,
                FILTER_PATHS.join(", ")
            )));
        }
        if f.values.is_empty() {
            return Err(invalid(format!("Target {name}: filter {} has no values", f.path)));
        }
    }
    Ok(())
}

/// The instance id in `arn:aws:ec2:<region>:<account>:instance/<id>`.
pub fn instance_of_arn<'a>(arn: &'a str, region: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:ec2:")?;
    let (r, rest) = rest.split_once(':')?;
    let (_account, id) = rest.split_once(":instance/")?;
    (r == region && crate::world::instances::is_instance_id(id)).then_some(id)
}

/// Checks a whole template as FIS does at create time; returns each action's effect.
pub fn validate(t: &TemplateInput, region: &str) -> Result<BTreeMap<String, Effect>, FisError> {
    if t.description.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("description is required"));
    }
    if t.role_arn.as_deref().is_none_or(|r| !(r.starts_with("arn:aws:iam::") && r.contains(":role/"))) {
        return Err(invalid("roleArn is required and must be an IAM role ARN"));
    }
    if t.stop_conditions.is_empty() {
        return Err(invalid("stopConditions is required: use [{\"source\": \"none\"}] for none"));
    }
    for s in &t.stop_conditions {
        match s.source.as_str() {
            "none" => {}
            "aws:cloudwatch:alarm" if s.value.as_deref().is_some_and(|v| v.starts_with("arn:aws:cloudwatch:")) => {}
            other => {
                return Err(invalid(format!("Stop condition source {other} is invalid (or its value is missing)")));
            }
        }
    }
    if t.actions.is_empty() {
        return Err(invalid("An experiment template needs at least one action"));
    }
    let mode = t.experiment_options.as_ref().and_then(|o| o.empty_target_resolution_mode.as_deref());
    if mode.is_some_and(|m| m != "fail" && m != "skip") {
        return Err(invalid("emptyTargetResolutionMode must be fail or skip"));
    }
    for (name, target) in &t.targets {
        check_target(name, target, region)?;
    }
    let mut effects = BTreeMap::new();
    for (name, a) in &t.actions {
        let e = effect(name, a)?;
        match (e.target_key(), a.targets.iter().next()) {
            (None, None) => {}
            (None, Some((k, _))) => {
                return Err(invalid(format!("Action {name}: {} takes no targets, got {k}", a.action_id)));
            }
            (Some((key, _)), None) => {
                return Err(invalid(format!("Action {name}: {} needs a {key} target", a.action_id)));
            }
            (Some((key, rtype)), Some(_)) => {
                if let Some(other) = a.targets.keys().find(|k| *k != key) {
                    return Err(invalid(format!(
                        "Action {name}: target key {other} is invalid for {}; use {key}",
                        a.action_id
                    )));
                }
                let target_name = &a.targets[key];
                let target = t
                    .targets
                    .get(target_name)
                    .ok_or_else(|| invalid(format!("Action {name}: target {target_name} is not defined")))?;
                if target.resource_type != rtype {
                    return Err(invalid(format!(
                        "Action {name}: target {target_name} has resource type {}, but {} needs {rtype}",
                        target.resource_type, a.action_id
                    )));
                }
            }
        }
        if let Some(missing) = a.start_after.iter().find(|s| !t.actions.contains_key(*s)) {
            return Err(invalid(format!("Action {name}: startAfter names {missing}, which is not an action")));
        }
        effects.insert(name.clone(), e);
    }
    check_acyclic(t)?;
    Ok(effects)
}

fn check_acyclic(t: &TemplateInput) -> Result<(), FisError> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < t.actions.len() {
        let ready: Vec<&str> = t
            .actions
            .iter()
            .filter(|(n, a)| !done.contains(n.as_str()) && a.start_after.iter().all(|s| done.contains(s.as_str())))
            .map(|(n, _)| n.as_str())
            .collect();
        if ready.is_empty() {
            return Err(invalid("The startAfter relations between actions form a cycle"));
        }
        done.extend(ready);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(v: Value) -> TemplateInput {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn base() -> Value {
        json!({
            "description": "spot",
            "roleArn": "arn:aws:iam::123456789012:role/fis",
            "stopConditions": [{"source": "none"}],
            "targets": {"spot": {"resourceType": SPOT_INSTANCE, "resourceTags": {"a": "b"}, "selectionMode": "PERCENT(50)"}},
            "actions": {"interrupt": {"actionId": "aws:ec2:send-spot-instance-interruptions",
                "parameters": {"durationBeforeInterruption": "PT2M"}, "targets": {"SpotInstances": "spot"}}},
        })
    }

    #[test]
    fn a_good_template_passes() {
        let e = validate(&template(base()), "us-west-2");
        assert_eq!(
            e.ok().and_then(|e| e.get("interrupt").cloned()),
            Some(Effect::SpotInterruptions { before: 120_000 })
        );
    }

    #[test]
    fn bad_templates_say_why() {
        let cases: Vec<(&str, Value)> = vec![
            ("/actions/interrupt/parameters/durationBeforeInterruption", json!("PT1M")),
            ("/actions/interrupt/parameters/durationBeforeInterruption", json!("two minutes")),
            ("/targets/spot/resourceType", json!(INSTANCE)),
            ("/targets/spot/selectionMode", json!("PERCENT(0)")),
            ("/targets/spot/selectionMode", json!("SOME")),
            ("/actions/interrupt/actionId", json!("aws:ec2:nope")),
            ("/actions/interrupt/targets", json!({"SpotInstances": "missing"})),
            ("/actions/interrupt/startAfter", json!(["interrupt"])),
            ("/roleArn", json!("nope")),
            ("/stopConditions", json!([])),
        ];
        for (path, value) in cases {
            let mut v = base();
            if let Some(slot) = v.pointer_mut(path) {
                *slot = value.clone();
            } else {
                let (parent, key) = path.rsplit_once('/').unwrap_or_default();
                if let Some(p) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
                    p.insert(key.to_owned(), value.clone());
                }
            }
            let r = validate(&template(v), "us-west-2");
            assert!(r.is_err(), "{path} = {value} should be refused");
        }
    }

    #[test]
    fn selection_modes() {
        assert_eq!(Selection::parse("COUNT(3)").map(|s| s.take(10)), Some(3));
        assert_eq!(Selection::parse("COUNT(30)").map(|s| s.take(10)), Some(10));
        assert_eq!(Selection::parse("PERCENT(50)").map(|s| s.take(10)), Some(5));
        assert_eq!(Selection::parse("PERCENT(10)").map(|s| s.take(3)), Some(1));
        assert_eq!(Selection::parse("ALL").map(|s| s.take(7)), Some(7));
        assert_eq!(Selection::parse("PERCENT(101)"), None);
        assert_eq!(Selection::parse("COUNT(0)"), None);
    }

    #[test]
    fn instance_arns() {
        assert_eq!(
            instance_of_arn("arn:aws:ec2:us-west-2:123456789012:instance/i-0123456789abcdef0", "us-west-2"),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(instance_of_arn("arn:aws:ec2:us-east-1:1:instance/i-0123456789abcdef0", "us-west-2"), None);
    }
}
