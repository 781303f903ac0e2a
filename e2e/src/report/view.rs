//! The plain data a report draws: one run as lanes (a NodeClaim's life), markers (faults,
//! interruptions, restarts) and series (pods, nodes, cost) over world time, with its metadata.
//! The observer fills the parts ([`Lane`], [`Marker`], [`Sample`]); [`RunView`] puts them together
//! with what the run was. Rendering ([`super::html`]) is a pure function of a `RunView`, so two
//! runs of one scenario can be drawn on one time axis. Everything serialises (JSON next to the
//! report lets a comparison page be drawn later from saved runs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One run, ready to draw. Times are world seconds since the scenario started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub meta: RunMeta,
    /// One per NodeClaim, in the order they were created.
    pub lanes: Vec<Lane>,
    /// In time order.
    pub markers: Vec<Marker>,
    /// Samples of the cluster and the fleet, in time order.
    pub series: Vec<Sample>,
    pub pdb_violations: Vec<String>,
    /// The normalized timeline as YAML, shown at the end of a single-run page.
    pub timeline: Option<String>,
}

/// What the run was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// The autoscaler under test (`spotbench`, `karpenter`), when the runner knows it.
    pub autoscaler: Option<String>,
    pub status: RunStatus,
    /// Real seconds the run took, environment start included.
    pub wall_seconds: f64,
    /// What the run says beside its steps (settings the autoscaler has no equivalent for, steps
    /// skipped for it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum RunStatus {
    #[default]
    Passed,
    Failed(String),
    Skipped(String),
}

pub use wellknown::CapacityType;

/// The stable id of a lane's capacity type in data attributes, CSS classes and the legend:
/// `unknown` until the NodeClaim has launched.
pub fn capacity_id(ct: Option<CapacityType>) -> &'static str {
    ct.map_or("unknown", CapacityType::as_str)
}

/// A NodeClaim's life. Each time is when it was first seen true; `None` when it never was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    /// The NodeClaim's name.
    pub nodeclaim: String,
    pub nodepool: String,
    /// `None` until launched.
    pub capacity_type: Option<CapacityType>,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub instance_id: Option<String>,
    pub created: f64,
    /// The instance was launched (its launch time in EC2).
    pub launched: Option<f64>,
    /// The Node joined (Registered).
    pub registered: Option<f64>,
    /// Ready for pods (Ready, else Initialized).
    pub ready: Option<f64>,
    /// Disruption began: deletion requested, a disruption reason set or the node tainted
    /// `karpenter.sh/disrupted`, whichever came first.
    pub disrupted: Option<f64>,
    /// Why, as seen (`deleted`, the disruption reason, `tainted`).
    pub disruption: Option<String>,
    /// The instance began shutting down (or stopping).
    pub terminating: Option<f64>,
    /// The instance is gone (terminated), or the claim is when it never had one.
    pub terminated: Option<f64>,
}

impl Lane {
    /// The last moment this lane knows about.
    pub fn last_time(&self) -> f64 {
        [self.launched, self.registered, self.ready, self.disrupted, self.terminating, self.terminated]
            .into_iter()
            .flatten()
            .fold(self.created, f64::max)
    }

    /// `m5.large · us-west-2a`, or what is known before launch.
    pub fn label(&self) -> String {
        match (&self.instance_type, &self.zone) {
            (Some(t), Some(z)) => format!("{t} · {z}"),
            (Some(t), None) => t.clone(),
            (None, Some(z)) => format!("? · {z}"),
            (None, None) => format!("{} (not launched)", self.nodepool),
        }
    }
}

/// What a marker marks. The id is stable: pages carry it as `data-marker-kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkerKind {
    /// A scenario fault step (pool capacity, quotas, API faults, an interruption, FIS).
    Fault,
    /// A FIS experiment changed state (started, completed).
    FisExperiment,
    RebalanceRecommendation,
    InterruptionWarning,
    /// EC2 took a spot instance back (the interruption's stop or terminate).
    Reclaim,
    /// An AWS Health scheduled change.
    HealthEvent,
    /// The autoscaler was killed, started or restarted.
    Autoscaler,
    /// A scenario step that changes the workload (scale, delete).
    Step,
    /// The world clock was advanced or its speed changed.
    Clock,
}

impl MarkerKind {
    pub const ALL: [MarkerKind; 9] = [
        MarkerKind::Fault,
        MarkerKind::FisExperiment,
        MarkerKind::RebalanceRecommendation,
        MarkerKind::InterruptionWarning,
        MarkerKind::Reclaim,
        MarkerKind::HealthEvent,
        MarkerKind::Autoscaler,
        MarkerKind::Step,
        MarkerKind::Clock,
    ];

    pub fn id(self) -> &'static str {
        match self {
            MarkerKind::Fault => "fault",
            MarkerKind::FisExperiment => "fis-experiment",
            MarkerKind::RebalanceRecommendation => "rebalance-recommendation",
            MarkerKind::InterruptionWarning => "interruption-warning",
            MarkerKind::Reclaim => "reclaim",
            MarkerKind::HealthEvent => "health-event",
            MarkerKind::Autoscaler => "autoscaler",
            MarkerKind::Step => "step",
            MarkerKind::Clock => "clock",
        }
    }

    /// Words for a legend.
    pub fn title(self) -> &'static str {
        match self {
            MarkerKind::Fault => "fault injected",
            MarkerKind::FisExperiment => "FIS experiment",
            MarkerKind::RebalanceRecommendation => "rebalance recommendation",
            MarkerKind::InterruptionWarning => "interruption warning",
            MarkerKind::Reclaim => "spot reclaim",
            MarkerKind::HealthEvent => "AWS Health event",
            MarkerKind::Autoscaler => "autoscaler kill/start",
            MarkerKind::Step => "scenario step",
            MarkerKind::Clock => "clock change",
        }
    }
}

/// A moment worth marking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// World seconds.
    pub t: f64,
    pub kind: MarkerKind,
    /// Short text drawn on the chart.
    pub label: String,
    /// The instance it is about, which ties it to a lane.
    pub instance_id: Option<String>,
}

/// One sample of the cluster and the fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// World seconds since the scenario started.
    pub t: f64,
    /// Real seconds since the scenario started.
    pub real: f64,
    /// `capacity-type zone` -> Ready nodes.
    pub nodes: BTreeMap<String, usize>,
    pub pending_pods: usize,
    pub running_pods: usize,
    pub fleet_cost_per_hour: f64,
}

/// What an observer collected during a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    pub samples: Vec<Sample>,
    pub markers: Vec<Marker>,
    pub lanes: Vec<Lane>,
    /// Some sample saw a PodDisruptionBudget with fewer healthy pods than it wants.
    pub pdb_violations: Vec<String>,
}

impl RunView {
    /// A run's view from what was observed: lanes by creation, markers and samples by time.
    pub fn new(meta: RunMeta, observed: Samples, timeline: Option<String>) -> RunView {
        let Samples { mut samples, mut markers, mut lanes, pdb_violations } = observed;
        lanes.sort_by(|a, b| a.created.total_cmp(&b.created).then_with(|| a.nodeclaim.cmp(&b.nodeclaim)));
        markers.sort_by(|a, b| a.t.total_cmp(&b.t));
        samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        RunView { meta, lanes, markers, series: samples, pdb_violations, timeline }
    }

    /// The last moment anything in the run happened.
    pub fn end_time(&self) -> f64 {
        let lanes = self.lanes.iter().map(Lane::last_time);
        let markers = self.markers.iter().map(|m| m.t);
        let series = self.series.iter().map(|s| s.t);
        lanes.chain(markers).chain(series).fold(0.0, f64::max)
    }

    /// Real seconds at world second `t`, interpolated between samples (the run starts at 0 in
    /// both); None past the last sample.
    pub fn real_at(&self, t: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> =
            std::iter::once((0.0, 0.0)).chain(self.series.iter().map(|s| (s.t, s.real))).collect();
        let (a, b) = points.windows(2).map(|w| (w[0], w[1])).find(|(a, b)| a.0 <= t && t <= b.0)?;
        let span = b.0 - a.0;
        Some(if span <= 0.0 { b.1 } else { a.1 + (t - a.0) / span * (b.1 - a.1) })
    }
}
