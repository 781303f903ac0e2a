//! Types shared by the Karpenter kinds: requirements with minValues, the node class reference,
//! durations that may be `Never`, and status conditions.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A node selector requirement as Karpenter extends it: `minValues` asks the launch to stay
/// flexible across at least that many distinct values of the key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorRequirementWithMinValues {
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist, Gt, Lt.
    #[schemars(regex(pattern = r"^(In|NotIn|Exists|DoesNotExist|Gt|Lt)$"))]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub min_values: Option<i64>,
}

/// Points a NodePool or NodeClaim at its EC2NodeClass. v1 uses `group`; v1beta1 manifests carry
/// `apiVersion` instead, which the schema keeps so those manifests apply unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    /// v1beta1 only (`karpenter.k8s.aws/v1beta1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// Error parsing a Go-style duration such as `720h`, `1h30m` or `Never`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: expected a Go duration like \"720h\", \"1h30m\", \"30s\" or \"Never\"")]
pub struct DurationError(pub String);

/// Parses Karpenter's duration fields: Go duration syntax (`h`, `m`, `s`, `ms`; several parts)
/// or `Never` (None).
pub fn parse_duration(text: &str) -> Result<Option<Duration>, DurationError> {
    let text = text.trim();
    if text == "Never" {
        return Ok(None);
    }
    let err = || DurationError(text.to_owned());
    if text == "0" {
        return Ok(Some(Duration::ZERO));
    }
    let mut total_ms: u128 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            _ => return Err(err()),
        };
        total_ms += (number * unit_ms).round() as u128;
        rest = &rest[unit_len..];
    }
    Ok(Some(Duration::from_millis(u64::try_from(total_ms).map_err(|_| err())?)))
}

/// Formats a duration the way Karpenter's defaults read (`720h`, `15s`, `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Sets a condition, keeping its last transition time when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> bool {
    let status = if status { "True" } else { "False" };
    set_condition_status(conditions, type_, status, reason, message, generation, now)
}

/// Like [`set_condition`] with an explicit status string (`Unknown` is allowed). Returns whether
/// anything changed.
pub fn set_condition_status(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> bool {
    let reason = if reason.is_empty() { type_ } else { reason };
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status == status
            && existing.reason == reason
            && existing.message == message
            && existing.observed_generation == generation
        {
            return false;
        }
        if existing.status != status {
            existing.last_transition_time = now;
        }
        existing.status = status.to_owned();
        existing.reason = reason.to_owned();
        existing.message = message.to_owned();
        existing.observed_generation = generation;
        return true;
    }
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: now,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    true
}

/// Whether a condition of this type is True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

/// Kubernetes resource list (`cpu: "4"`, `memory: 16Gi`).
pub type ResourceList = BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_go_durations_and_never() {
        let cases = [
            ("720h", Some(720 * 3600)),
            ("1h30m", Some(5400)),
            ("30s", Some(30)),
            ("0s", Some(0)),
            ("0", Some(0)),
            ("1.5h", Some(5400)),
            ("Never", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).unwrap().map(|d| d.as_secs()), want, "{text}");
        }
        for bad in ["", "10", "5d", "h", "never", "1h-2m"] {
            assert!(parse_duration(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn formats_durations_like_go() {
        assert_eq!(format_duration(Duration::from_secs(720 * 3600)), "720h");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn conditions_keep_transition_time_when_status_holds() {
        use k8s_openapi::jiff::Timestamp;
        let t0 = Time(Timestamp::from_second(100).unwrap());
        let t1 = Time(Timestamp::from_second(200).unwrap());
        let mut cs = Vec::new();
        assert!(set_condition(&mut cs, "Ready", false, "NotLaunched", "", None, t0.clone()));
        assert!(set_condition(&mut cs, "Ready", false, "StillNot", "", None, t1.clone()));
        assert_eq!(cs[0].last_transition_time, t0);
        assert!(set_condition(&mut cs, "Ready", true, "Ready", "", None, t1.clone()));
        assert_eq!(cs[0].last_transition_time, t1);
        assert!(!set_condition(&mut cs, "Ready", true, "Ready", "", None, t0));
        assert!(is_true(&cs, "Ready"));
    }
}
