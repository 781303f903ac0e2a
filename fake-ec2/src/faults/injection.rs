//! Injected EC2 API faults: `{operations, code, percentage, latency, until}` rules set through the
//! admin API (`/_fake/faults`) or by FIS `aws:fis:inject-api-*` and
//! `aws:ec2:api-insufficient-instance-capacity-error` actions.
//!
//! Request-level faults answer an EC2 call with an error in EC2's envelope (or delay it) before it
//! reaches the world; `InsufficientInstanceCapacity` faults act per launch instead, so a
//! CreateFleet gets one `errorSet` entry per affected override, as EC2 gives them. Which calls a
//! rule hits is drawn from the world's `faults` stream, and only when a rule matches, so requests
//! that no rule covers never shift the draws.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::clock::{Millis, iso};

/// The code an injected capacity shortfall carries; handled per launch, not per request.
pub const ICE: &str = "InsufficientInstanceCapacity";

/// A fault as the admin API takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// One operation, or `*` for every EC2 action.
    pub operation: Option<String>,
    /// Several operations (EC2 action names); `*` matches every action.
    pub operations: Option<Vec<String>>,
    /// EC2 error code to answer with; none for latency only.
    pub code: Option<String>,
    /// HTTP status for codes this server does not know (400 when absent).
    pub status: Option<u16>,
    /// Error message; EC2's wording for the code when absent.
    pub message: Option<String>,
    /// Share of matching calls hit, 1–100 (100 when absent).
    pub percentage: Option<f64>,
    /// Real milliseconds to hold matching calls before answering (never holding the world lock).
    pub latency_ms: Option<u64>,
    /// World seconds the fault lasts; until cleared when absent.
    pub duration_seconds: Option<f64>,
    /// For `InsufficientInstanceCapacity`: zone names or zone ids (all zones when absent).
    pub zones: Option<Vec<String>>,
}

/// One active fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub id: String,
    /// Matched EC2 actions; `*` for all.
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub status: u16,
    pub message: String,
    pub percentage: f64,
    pub latency_ms: u64,
    /// Zone names or ids an ICE fault applies to; empty for every zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    #[serde(serialize_with = "ser_iso", deserialize_with = "de_iso")]
    pub from: Millis,
    #[serde(
        default,
        serialize_with = "ser_opt_iso",
        deserialize_with = "de_opt_iso",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Millis>,
    /// `admin`, or the experiment and action that set it (`EXP…/actionName`).
    pub source: String,
    /// Calls this rule answered with its error (or delayed).
    pub hits: u64,
}

fn ser_iso<S: serde::Serializer>(v: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(*v))
}

fn ser_opt_iso<S: serde::Serializer>(v: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&iso(*v)),
        None => s.serialize_none(),
    }
}

fn parse_iso<E: serde::de::Error>(s: &str) -> Result<Millis, E> {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).map_err(E::custom)
}

fn de_iso<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
    parse_iso(&String::deserialize(d)?)
}

fn de_opt_iso<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_iso(&s)).transpose()
}

impl Fault {
    fn active(&self, now: Millis) -> bool {
        self.from <= now && self.until.is_none_or(|u| now < u)
    }

    fn covers(&self, action: &str) -> bool {
        self.operations.iter().any(|o| o == "*" || o == action || o.strip_prefix("ec2:") == Some(action))
    }

    pub fn is_ice(&self) -> bool {
        self.code.as_deref() == Some(ICE)
    }
}

/// EC2's status and message for an error code a fault may inject.
pub fn known_code(code: &str) -> Option<(u16, &'static str)> {
    Some(match code {
        "InternalError" => (500, "An internal error has occurred"),
        "InternalFailure" => {
            (500, "The request processing has failed because of an unknown error, exception or failure.")
        }
        "RequestLimitExceeded" => (503, "Request limit exceeded."),
        "ServiceUnavailable" => (503, "The request has failed due to a temporary failure of the server."),
        "Unavailable" => (503, "The server is overloaded and can't handle the request."),
        ICE => (500, "Insufficient capacity."),
        _ => return None,
    })
}

/// An error a rule answers with, in any service's envelope: HTTP status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// What the rules decided for one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Injected {
    pub latency_ms: u64,
    pub error: Option<InjectedError>,
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Fault>,
    next_id: u64,
}

/// What a state file keeps of [`Faults`]: every rule (with its hits) and the next id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultsState {
    rules: Vec<Fault>,
    next_id: u64,
}

impl Faults {
    pub fn snapshot(&self) -> FaultsState {
        FaultsState { rules: self.rules.clone(), next_id: self.next_id }
    }

    pub fn restore(&mut self, s: FaultsState) {
        self.rules = s.rules;
        self.next_id = s.next_id;
    }

    /// Validates an admin request and adds its rule; returns it.
    pub fn add_spec(&mut self, spec: FaultSpec, now: Millis) -> Result<Fault, String> {
        let mut operations = spec.operations.unwrap_or_default();
        operations.extend(spec.operation);
        let code = spec.code.filter(|c| !c.is_empty());
        if operations.is_empty() {
            if code.as_deref() == Some(ICE) {
                operations = vec!["CreateFleet".into(), "RunInstances".into()];
            } else {
                return Err("name the operations to affect: \"operation\" or \"operations\" (\"*\" for all)".into());
            }
        }
        if let Some(bad) = operations
            .iter()
            .find(|o| o.is_empty() || o.chars().any(|c| !c.is_ascii_alphanumeric() && c != '*' && c != ':'))
        {
            return Err(format!("\"{bad}\" is not an EC2 operation name"));
        }
        let percentage = spec.percentage.unwrap_or(100.0);
        if !(percentage.is_finite() && percentage > 0.0 && percentage <= 100.0) {
            return Err("percentage must be in (0, 100]".into());
        }
        let latency_ms = spec.latency_ms.unwrap_or(0);
        if code.is_none() && latency_ms == 0 {
            return Err("a fault needs an error \"code\", a \"latency_ms\", or both".into());
        }
        if latency_ms > 60_000 {
            return Err("latency_ms must be at most 60000".into());
        }
        let until = match spec.duration_seconds {
            Some(d) if !(d.is_finite() && d > 0.0) => return Err("duration_seconds must be positive".into()),
            Some(d) => Some(now + (d * 1000.0) as Millis),
            None => None,
        };
        let (status, message) = match code.as_deref().map(|c| (c, known_code(c))) {
            Some((_, Some((status, message)))) => (spec.status.unwrap_or(status), message.to_owned()),
            Some((c, None)) => (spec.status.unwrap_or(400), format!("Injected {c}.")),
            None => (200, String::new()),
        };
        if !(200..=599).contains(&status) {
            return Err("status must be an HTTP status (200-599)".into());
        }
        let fault = Fault {
            id: String::new(),
            operations,
            code,
            status,
            message: spec.message.unwrap_or(message),
            percentage,
            latency_ms,
            zones: spec.zones.unwrap_or_default(),
            from: now,
            until,
            source: "admin".into(),
            hits: 0,
        };
        Ok(self.add(fault))
    }

    /// Adds a rule, giving it the next id.
    pub fn add(&mut self, mut fault: Fault) -> Fault {
        self.next_id += 1;
        fault.id = format!("fault-{}", self.next_id);
        self.rules.push(fault.clone());
        fault
    }

    /// Rules still in force at `now`, in the order they were added.
    pub fn active(&self, now: Millis) -> impl Iterator<Item = &Fault> {
        self.rules.iter().filter(move |f| f.active(now))
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&mut self) -> usize {
        std::mem::take(&mut self.rules).len()
    }

    /// Removes one rule by id.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|f| f.id != id);
        before != self.rules.len()
    }

    /// Removes the rules a source (an experiment's action) set.
    pub fn remove_source(&mut self, source: &str) {
        self.rules.retain(|f| f.source != source);
    }

    /// Drops rules that have run out.
    pub fn prune(&mut self, now: Millis) {
        self.rules.retain(|f| f.until.is_none_or(|u| now < u));
    }

    /// Decides what happens to one EC2 call: added latency, and maybe an error. The first rule
    /// (in order of addition) that fires decides the error; latencies of firing rules add up.
    pub fn decide(&mut self, action: &str, now: Millis, rng: &mut ChaCha8Rng) -> Injected {
        let mut out = Injected::default();
        for f in self.rules.iter_mut().filter(|f| f.active(now) && !f.is_ice() && f.covers(action)) {
            if !draw(rng, f.percentage) {
                continue;
            }
            f.hits += 1;
            out.latency_ms += f.latency_ms;
            if out.error.is_none()
                && let Some(code) = &f.code
            {
                out.error = Some(InjectedError { status: f.status, code: code.clone(), message: f.message.clone() });
            }
        }
        out
    }

    /// Whether an injected capacity shortfall refuses a launch into `zone` (name and id) now.
    pub fn ice(&mut self, zone: &str, zone_id: &str, now: Millis, rng: &mut ChaCha8Rng) -> bool {
        for f in self.rules.iter_mut().filter(|f| f.active(now) && f.is_ice()) {
            if !f.zones.is_empty() && !f.zones.iter().any(|z| z == zone || z == zone_id) {
                continue;
            }
            if draw(rng, f.percentage) {
                f.hits += 1;
                return true;
            }
        }
        false
    }
}

/// One seeded draw: true for `percentage` percent of calls. 100 % never draws, so a rule that
/// always fires does not shift the stream.
fn draw(rng: &mut ChaCha8Rng, percentage: f64) -> bool {
    percentage >= 100.0 || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 100.0 < percentage
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn spec(v: serde_json::Value) -> FaultSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn percentage_is_seeded_and_roughly_right() {
        let run = |seed| {
            let mut f = Faults::default();
            let added = f.add_spec(
                spec(serde_json::json!({"operation": "*", "code": "RequestLimitExceeded", "percentage": 30})),
                0,
            );
            assert!(added.is_ok(), "{added:?}");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..1000).map(|_| f.decide("DescribeInstances", 0, &mut rng).error.is_some()).collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        let hits = a.iter().filter(|x| **x).count();
        assert!((250..350).contains(&hits), "{hits}");
    }

    #[test]
    fn errors_carry_ec2s_status_and_expire_on_the_clock() {
        let mut f = Faults::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let r = f.add_spec(
            spec(serde_json::json!({"operations": ["CreateFleet"], "code": "InternalError", "duration_seconds": 30})),
            1_000,
        );
        assert!(r.is_ok());
        let e = f.decide("CreateFleet", 1_000, &mut rng).error;
        assert_eq!(e.map(|e| (e.status, e.code)), Some((500, "InternalError".to_owned())));
        assert_eq!(f.decide("DescribeInstances", 1_000, &mut rng), Injected::default());
        assert_eq!(f.decide("CreateFleet", 31_000, &mut rng), Injected::default());
        assert_eq!(f.active(31_000).count(), 0);
    }

    #[test]
    fn ice_is_per_zone_and_not_a_request_error() {
        let mut f = Faults::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(f.add_spec(spec(serde_json::json!({"code": ICE, "zones": ["usw2-az1"]})), 0).is_ok());
        assert_eq!(f.decide("CreateFleet", 0, &mut rng), Injected::default());
        assert!(f.ice("us-west-2a", "usw2-az1", 0, &mut rng));
        assert!(!f.ice("us-west-2b", "usw2-az2", 0, &mut rng));
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut f = Faults::default();
        for bad in [
            serde_json::json!({"code": "InternalError"}),
            serde_json::json!({"operation": "*"}),
            serde_json::json!({"operation": "*", "code": "InternalError", "percentage": 0}),
            serde_json::json!({"operation": "*", "code": "InternalError", "duration_seconds": -1}),
            serde_json::json!({"operation": "Describe Instances", "code": "InternalError"}),
        ] {
            assert!(f.add_spec(spec(bad.clone()), 0).is_err(), "{bad}");
        }
    }
}
