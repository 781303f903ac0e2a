//! What a scenario file says: its world, seed and autoscaler settings, then steps run in order.
//! Every struct denies unknown fields so a typo is an error at load time, not a silent no-op.
//!
//! The same file runs with either autoscaler under test. What only one of them supports says so:
//! a scenario or a step with `autoscalers: [spotbench]` and a `reason:` (printed when skipped), and
//! an expectation whose value differs per autoscaler with an override block under `expect`
//! (`karpenter: {because: ..., max_pending_seconds: ...}`).

use std::collections::BTreeMap;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::external_sqs::SqsKind;
use crate::under_test::AutoscalerKind;

fn default_world() -> String {
    "fixtures/worlds/default.yaml".to_owned()
}
fn default_seed() -> u64 {
    1
}
fn default_clock_factor() -> f64 {
    10.0
}

/// A scenario: `fixtures/scenarios/<name>.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// World file, relative to the repository root.
    #[serde(default = "default_world")]
    pub world: String,
    /// World seconds per real second.
    #[serde(default = "default_clock_factor")]
    pub clock_factor: f64,
    /// Extra `autoscaler run` flags; with Karpenter, those with an equivalent setting become it
    /// (`--interruption-queue` -> `INTERRUPTION_QUEUE`), the others are reported as not applicable.
    #[serde(default)]
    pub autoscaler_args: Vec<String>,
    /// Autoscaler features the scenario needs (`interruption`); skipped when one is missing.
    #[serde(default)]
    pub requires: Vec<String>,
    /// The autoscalers this scenario runs with (default: every one); the others skip it, printing
    /// `reason`.
    #[serde(default)]
    pub autoscalers: Option<Vec<AutoscalerKind>>,
    /// Why the scenario runs only with `autoscalers` (required with it).
    #[serde(default)]
    pub reason: Option<String>,
    /// Where the interruption queue lives: `built-in` (fake-ec2's, the default), `moto` or
    /// `localstack` (started for the run; `e2e run --sqs` overrides it).
    #[serde(default)]
    pub sqs: SqsKind,
    pub steps: Vec<StepEntry>,
}

impl Scenario {
    /// Why the scenario does not run with `kind` (None: it does).
    pub fn skipped_for(&self, kind: AutoscalerKind) -> Option<String> {
        skipped_for(self.autoscalers.as_deref(), self.reason.as_deref(), kind)
    }

    /// The steps, without the per-autoscaler guards.
    pub fn plain_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().map(|e| &e.step)
    }
}

fn skipped_for(only: Option<&[AutoscalerKind]>, reason: Option<&str>, kind: AutoscalerKind) -> Option<String> {
    let only = only?;
    if only.contains(&kind) {
        return None;
    }
    let names: Vec<&str> = only.iter().map(|k| k.name()).collect();
    Some(format!("only with {}: {}", names.join(", "), reason.unwrap_or("(no reason given)")))
}

/// A step as written: the step, and optionally the autoscalers it is for.
///
/// ```yaml
/// - kill_autoscaler
/// - wait: {instances_launched: 2, instances_terminated: 0}
///   autoscalers: [spotbench]
///   reason: Karpenter terminates the interrupted node as soon as it is drained
/// ```
#[derive(Clone, Debug)]
pub struct StepEntry {
    pub step: Step,
    pub autoscalers: Option<Vec<AutoscalerKind>>,
    pub reason: Option<String>,
}

impl StepEntry {
    /// Why the step does not run with `kind` (None: it does).
    pub fn skipped_for(&self, kind: AutoscalerKind) -> Option<String> {
        skipped_for(self.autoscalers.as_deref(), self.reason.as_deref(), kind)
    }
}

impl From<Step> for StepEntry {
    fn from(step: Step) -> Self {
        StepEntry { step, autoscalers: None, reason: None }
    }
}

/// The step kinds, as written.
pub const STEP_KINDS: &[&str] = &[
    "apply",
    "delete",
    "scale",
    "wait",
    "fault",
    "clock",
    "kill_autoscaler",
    "start_autoscaler",
    "expect",
    "restart_fake_ec2",
    "restart_apiserver",
    "blackhole_aws",
];

/// No fields: `- kill_autoscaler:` with nothing, or `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

/// Deserializes the value of step key `kind`.
struct StepOf<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for StepOf<'_> {
    type Value = Step;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Step, D::Error> {
        Ok(match self.0 {
            "apply" => Step::Apply(Apply::deserialize(d)?),
            "delete" => Step::Delete(Delete::deserialize(d)?),
            "scale" => Step::Scale(Scale::deserialize(d)?),
            "wait" => Step::Wait(Wait::deserialize(d)?),
            "fault" => Step::Fault(Fault::deserialize(d)?),
            "clock" => Step::Clock(Clock::deserialize(d)?),
            "expect" => Step::Expect(Expect::deserialize(d)?),
            "restart_fake_ec2" => Step::RestartFakeEc2(RestartFakeEc2::deserialize(d)?),
            "restart_apiserver" => Step::RestartApiserver(RestartApiserver::deserialize(d)?),
            "blackhole_aws" => Step::BlackholeAws(BlackholeAws::deserialize(d)?),
            "kill_autoscaler" => {
                Option::<Nothing>::deserialize(d)?;
                Step::KillAutoscaler
            }
            "start_autoscaler" => {
                Option::<Nothing>::deserialize(d)?;
                Step::StartAutoscaler
            }
            other => return Err(de::Error::unknown_variant(other, STEP_KINDS)),
        })
    }
}

struct StepEntryVisitor;

impl<'de> Visitor<'de> for StepEntryVisitor {
    type Value = StepEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a step: `- kill_autoscaler` or a one-key map such as `- wait: {...}` (with `autoscalers:` and `reason:` beside it)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StepEntry, E> {
        match v {
            "kill_autoscaler" => Ok(Step::KillAutoscaler.into()),
            "start_autoscaler" => Ok(Step::StartAutoscaler.into()),
            other if STEP_KINDS.contains(&other) => {
                Err(E::custom(format!("step `{other}` needs its fields: `- {other}: {{...}}`")))
            }
            other => Err(E::unknown_variant(other, STEP_KINDS)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepEntry, A::Error> {
        let (mut step, mut autoscalers, mut reason) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "autoscalers" => autoscalers = Some(map.next_value::<Vec<AutoscalerKind>>()?),
                "reason" => reason = Some(map.next_value::<String>()?),
                kind => {
                    if let Some((first, _)) = &step {
                        return Err(de::Error::custom(format!(
                            "one step per list item: `{first}` and `{kind}` (start `{kind}` on its own line with `- `)"
                        )));
                    }
                    step = Some((kind.to_owned(), map.next_value_seed(StepOf(kind))?));
                }
            }
        }
        let Some((_, step)) = step else {
            return Err(de::Error::custom(format!("a step without a kind: give one of {}", STEP_KINDS.join(", "))));
        };
        Ok(StepEntry { step, autoscalers, reason })
    }
}

impl<'de> Deserialize<'de> for StepEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StepEntry, D::Error> {
        d.deserialize_any(StepEntryVisitor)
    }
}

/// One step. Written as a one-key map (`- apply: {...}`), or a bare word for the steps without
/// arguments (`- kill_autoscaler`); see [`StepEntry`].
#[derive(Clone, Debug)]
pub enum Step {
    Apply(Apply),
    Delete(Delete),
    Scale(Scale),
    Wait(Wait),
    Fault(Fault),
    Clock(Clock),
    KillAutoscaler,
    StartAutoscaler,
    Expect(Expect),
    RestartFakeEc2(RestartFakeEc2),
    RestartApiserver(RestartApiserver),
    BlackholeAws(BlackholeAws),
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Apply(_) => "apply",
            Step::Delete(_) => "delete",
            Step::Scale(_) => "scale",
            Step::Wait(_) => "wait",
            Step::Fault(_) => "fault",
            Step::Clock(_) => "clock",
            Step::KillAutoscaler => "kill_autoscaler",
            Step::StartAutoscaler => "start_autoscaler",
            Step::Expect(_) => "expect",
            Step::RestartFakeEc2(_) => "restart_fake_ec2",
            Step::RestartApiserver(_) => "restart_apiserver",
            Step::BlackholeAws(_) => "blackhole_aws",
        }
    }
}

/// Applies a manifest: a file under `fixtures/` or inline YAML; `replicas` overrides a
/// Deployment's replica count.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Apply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// Deletes one object by kind and name (`Deployment`, `NodePool`, `NodeClaim`, ...).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    pub kind: String,
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// Sets a Deployment's replicas.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub deployment: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub replicas: u32,
}

/// Waits until every listed condition holds, or fails after `timeout_seconds` (real seconds).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_running: Option<PodsRunning>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeCount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodeclaims: Option<Count>,
    /// Live (not terminated) fake-ec2 instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Count>,
    /// Instances launched since the scenario began (a replacement has launched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_launched: Option<Count>,
    /// Instances shutting down or terminated since the scenario began (a reclaim has happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_terminated: Option<Count>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    120
}

/// Pods matching a label selector that are Running (and, with `count`, exactly that many pods).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodsRunning {
    pub selector: String,
    pub count: Count,
}

/// Nodes carrying every label in `labels` (all nodes when empty).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCount {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub count: Count,
}

/// An exact count (`3`) or a range (`{min: 1, max: 3}`, either bound optional).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged, expecting = "a count (3) or a range ({min: 1, max: 3})")]
pub enum Count {
    Exactly(u64),
    Range(Range),
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Count {
    pub fn holds(&self, n: u64) -> bool {
        match *self {
            Count::Exactly(c) => n == c,
            Count::Range(Range { min, max }) => min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m),
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Count::Exactly(c) => write!(f, "= {c}"),
            Count::Range(Range { min: Some(a), max: Some(b) }) => write!(f, "in {a}..={b}"),
            Count::Range(Range { min: Some(a), max: None }) => write!(f, ">= {a}"),
            Count::Range(Range { min: None, max: Some(b) }) => write!(f, "<= {b}"),
            Count::Range(Range { min: None, max: None }) => write!(f, "any number"),
        }
    }
}

/// fake-ec2's fault knobs, applied in the order written: pool capacity, quotas, API faults, a FIS
/// experiment template, spot interruptions, clearing faults.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolKnob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiFault>,
    /// A FIS experiment template under `fixtures/` (created and started at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fis: Option<String>,
    /// Spot interruptions for this many running spot instances (the oldest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_spot: Option<u32>,
    /// Removes every injected API fault.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear_api_faults: bool,
}

/// `POST /_fake/pools`: `*` or omitted means every type or zone.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolKnob {
    #[serde(default = "star")]
    pub instance_type: String,
    #[serde(default = "star")]
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_price: Option<f64>,
}

fn star() -> String {
    "*".to_owned()
}

/// `POST /_fake/quotas`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_instances: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_vcpus: Option<u32>,
}

/// `POST /_fake/faults`: `operations` are EC2 action names, `*` for all; durations in world
/// seconds; without `code`, only `latency_ms` (real milliseconds each matching call is held).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFault {
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default = "hundred")]
    pub percentage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

fn hundred() -> f64 {
    100.0
}

/// Advances world time or changes its speed.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

/// Checks made once, now. Every field present is checked; all results go to the timeline.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeCount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_running: Option<PodsRunning>,
    /// The longest any pod of `selector` stayed pending before it was scheduled, in world seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_seconds: Option<MaxPending>,
    /// No sample taken during the run saw a PodDisruptionBudget with fewer healthy pods than desired.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_pdb_violated: bool,
    /// Instances launched and terminated since the scenario began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_launched: Option<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_terminated: Option<Count>,
    /// Live instances equal the NodeClaims that have launched (no leaked instance).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_leaked_instances: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodeclaims: Option<Count>,
    /// Kubernetes events by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, Count>,
    /// The fleet's cost per hour at fake-ec2's current prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fleet_cost_per_hour: Option<f64>,
    /// Error answers fake-ec2 gave since the scenario began, by AWS error code (every service):
    /// a fault scenario proves its fault was met (`RequestLimitExceeded: {min: 1}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_errors: BTreeMap<String, Count>,
    /// The longest any pod of `selector` stayed pending is at least this (world seconds): an
    /// outage was felt, not slept through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pending_seconds: Option<MaxPending>,
    /// No NodeClaim or Node has been deleting (held by its finalizers) for over a world minute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_stuck_finalizers: bool,
    /// What differs with the project's autoscaler: these fields replace the ones above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotbench: Option<Box<Expect>>,
    /// What differs with upstream Karpenter: these fields replace the ones above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karpenter: Option<Box<Expect>>,
    /// In an override block (and only there): the behavioural difference it documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
}

impl Expect {
    /// The override block for `kind`, if any.
    pub fn override_for(&self, kind: AutoscalerKind) -> Option<&Expect> {
        match kind {
            AutoscalerKind::Spotbench => self.spotbench.as_deref(),
            AutoscalerKind::Karpenter => self.karpenter.as_deref(),
        }
    }

    /// What is expected with `kind`: every field the override block sets replaces the base's
    /// (a map's entries one by one), and why, when there is a block.
    pub fn resolved(&self, kind: AutoscalerKind) -> (Expect, Option<String>) {
        let mut e = Expect { spotbench: None, karpenter: None, because: None, ..self.clone() };
        let Some(o) = self.override_for(kind) else { return (e, None) };
        if !o.nodes.is_empty() {
            e.nodes = o.nodes.clone();
        }
        replace(&mut e.pods_running, &o.pods_running);
        replace(&mut e.max_pending_seconds, &o.max_pending_seconds);
        replace(&mut e.min_pending_seconds, &o.min_pending_seconds);
        replace(&mut e.instances_launched, &o.instances_launched);
        replace(&mut e.instances_terminated, &o.instances_terminated);
        replace(&mut e.nodeclaims, &o.nodeclaims);
        if o.max_fleet_cost_per_hour.is_some() {
            e.max_fleet_cost_per_hour = o.max_fleet_cost_per_hour;
        }
        e.no_pdb_violated |= o.no_pdb_violated;
        e.no_leaked_instances |= o.no_leaked_instances;
        e.no_stuck_finalizers |= o.no_stuck_finalizers;
        e.events.extend(o.events.clone());
        e.api_errors.extend(o.api_errors.clone());
        (e, o.because.clone())
    }
}

/// `base` becomes `over` when `over` is set.
fn replace<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
    if over.is_some() {
        base.clone_from(over);
    }
}

impl Expect {
    /// Whether any expectation field is set (the override blocks and `because` aside).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.pods_running.is_none()
            && self.max_pending_seconds.is_none()
            && !self.no_pdb_violated
            && self.instances_launched.is_none()
            && self.instances_terminated.is_none()
            && !self.no_leaked_instances
            && self.nodeclaims.is_none()
            && self.events.is_empty()
            && self.max_fleet_cost_per_hour.is_none()
            && self.api_errors.is_empty()
            && self.min_pending_seconds.is_none()
            && !self.no_stuck_finalizers
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPending {
    pub selector: String,
    pub seconds: f64,
}

/// `restart_fake_ec2`: fake-ec2 stops and starts again behind the same endpoint; with
/// `keep_state` its world comes back from its state file, without it a fresh world (same world
/// file and seed) replaces it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartFakeEc2 {
    #[serde(default)]
    pub keep_state: bool,
}

/// `restart_apiserver`: kube-apiserver (and etcd with `etcd: true`) stops and starts again (the
/// local backend only).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartApiserver {
    #[serde(default)]
    pub etcd: bool,
}

/// `blackhole_aws`: for `seconds` world seconds every connection to fake-ec2's AWS endpoint is
/// refused (`refuse`) or accepted and never answered (`hang`); then it is reachable again. The
/// step returns at once, as a fault with a duration does.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeAws {
    pub seconds: f64,
    #[serde(default)]
    pub mode: crate::chaos::BlackholeMode,
}
