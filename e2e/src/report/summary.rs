//! The numbers a run comes down to (NodeClaims, pods pending, cost, interruptions), computed from
//! its [`RunView`]: shown above a run's chart and side by side on a comparison page.

use std::collections::BTreeMap;

use super::svg::{fmt_cost, fmt_duration, fmt_num};
use super::view::{CapacityType, MarkerKind, RunView};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    pub nodeclaims: usize,
    pub by_capacity_type: BTreeMap<Option<CapacityType>, usize>,
    /// `m5.large` -> NodeClaims launched with it.
    pub instance_types: BTreeMap<String, usize>,
    pub zones: BTreeMap<String, usize>,
    pub launched: usize,
    pub terminated: usize,
    pub peak_pending_pods: usize,
    /// Pending pods integrated over world time.
    pub pending_pod_seconds: f64,
    /// World time from which no pod was Pending again (None: some still were at the end).
    pub pods_settled_at: Option<f64>,
    pub cost_at_first_fault: Option<f64>,
    pub cost_at_end: Option<f64>,
    pub peak_cost: f64,
    pub markers: BTreeMap<MarkerKind, usize>,
    /// For each interruption warning, seconds until a NodeClaim created after it was Ready
    /// (None: none was).
    pub warning_to_replacement_ready: Vec<Option<f64>>,
    pub world_seconds: f64,
    pub wall_seconds: f64,
}

impl RunSummary {
    pub fn of(run: &RunView) -> RunSummary {
        let mut s = RunSummary {
            nodeclaims: run.lanes.len(),
            world_seconds: run.end_time(),
            wall_seconds: run.meta.wall_seconds,
            ..RunSummary::default()
        };
        for l in &run.lanes {
            *s.by_capacity_type.entry(l.capacity_type).or_default() += 1;
            if l.launched.is_some() {
                s.launched += 1;
                if let Some(t) = &l.instance_type {
                    *s.instance_types.entry(t.clone()).or_default() += 1;
                }
                if let Some(z) = &l.zone {
                    *s.zones.entry(z.clone()).or_default() += 1;
                }
            }
            if l.instance_id.is_some() && (l.terminated.is_some() || l.terminating.is_some()) {
                s.terminated += 1;
            }
        }
        let series = &run.series;
        s.peak_pending_pods = series.iter().map(|x| x.pending_pods).max().unwrap_or(0);
        s.pending_pod_seconds = series.windows(2).map(|w| w[0].pending_pods as f64 * (w[1].t - w[0].t).max(0.0)).sum();
        s.pods_settled_at = match series.iter().rposition(|x| x.pending_pods > 0) {
            None => series.first().map(|x| x.t),
            Some(i) => series.get(i + 1).map(|x| x.t),
        };
        let first_fault = run.markers.iter().find(|m| m.kind == MarkerKind::Fault).map(|m| m.t);
        s.cost_at_first_fault =
            first_fault.and_then(|t| series.iter().rev().find(|x| x.t <= t).map(|x| x.fleet_cost_per_hour));
        s.cost_at_end = series.last().map(|x| x.fleet_cost_per_hour);
        s.peak_cost = series.iter().map(|x| x.fleet_cost_per_hour).fold(0.0, f64::max);
        for m in &run.markers {
            *s.markers.entry(m.kind).or_default() += 1;
        }
        s.warning_to_replacement_ready = run
            .markers
            .iter()
            .filter(|m| m.kind == MarkerKind::InterruptionWarning)
            .map(|w| {
                run.lanes
                    .iter()
                    .filter(|l| l.instance_id != w.instance_id && l.created >= w.t - 1.0)
                    .filter_map(|l| l.ready)
                    .map(|ready| (ready - w.t).max(0.0))
                    .reduce(f64::min)
            })
            .collect();
        s
    }

    /// (what, value) rows, the same rows for every run so two can be put side by side.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let counts = |m: &BTreeMap<String, usize>| {
            if m.is_empty() {
                "–".to_owned()
            } else {
                m.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
            }
        };
        let ct = |c: CapacityType| self.by_capacity_type.get(&Some(c)).copied().unwrap_or(0);
        let marker = |k: MarkerKind| self.markers.get(&k).copied().unwrap_or(0).to_string();
        let secs = |v: Option<f64>, none: &str| v.map_or_else(|| none.to_owned(), fmt_duration);
        let replacement = if self.warning_to_replacement_ready.is_empty() {
            "–".to_owned()
        } else {
            self.warning_to_replacement_ready.iter().map(|v| secs(*v, "never")).collect::<Vec<_>>().join(", ")
        };
        vec![
            (
                "NodeClaims",
                format!(
                    "{} ({} spot, {} on-demand)",
                    self.nodeclaims,
                    ct(CapacityType::Spot),
                    ct(CapacityType::OnDemand)
                ),
            ),
            ("instance types", counts(&self.instance_types)),
            ("zones", counts(&self.zones)),
            ("instances launched / terminated", format!("{} / {}", self.launched, self.terminated)),
            ("peak pending pods", self.peak_pending_pods.to_string()),
            ("pod-seconds pending", fmt_num(self.pending_pod_seconds.round())),
            (
                "all pods Running from",
                secs(self.pods_settled_at, "never").replace("never", "never (pods still pending)"),
            ),
            ("fleet cost at first fault", self.cost_at_first_fault.map_or_else(|| "–".to_owned(), fmt_cost)),
            ("fleet cost at end", self.cost_at_end.map_or_else(|| "–".to_owned(), fmt_cost)),
            ("peak fleet cost", fmt_cost(self.peak_cost)),
            ("faults injected", marker(MarkerKind::Fault)),
            ("rebalance recommendations", marker(MarkerKind::RebalanceRecommendation)),
            ("interruption warnings", marker(MarkerKind::InterruptionWarning)),
            ("spot reclaims", marker(MarkerKind::Reclaim)),
            ("warning → replacement Ready", replacement),
            ("autoscaler kills/starts", marker(MarkerKind::Autoscaler)),
            ("world time", fmt_duration(self.world_seconds)),
            ("wall time", fmt_duration(self.wall_seconds)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::{Lane, Marker, Sample};

    #[test]
    fn pending_pods_replacements_and_cost_are_summed_from_the_series() {
        let sample = |t: f64, pending: usize, cost: f64| Sample {
            t,
            pending_pods: pending,
            fleet_cost_per_hour: cost,
            ..Sample::default()
        };
        let lane = |name: &str, id: &str, created: f64, ready: f64| Lane {
            nodeclaim: name.into(),
            capacity_type: Some(CapacityType::Spot),
            instance_type: Some("m5.large".into()),
            instance_id: Some(id.into()),
            created,
            launched: Some(created + 1.0),
            ready: Some(ready),
            ..Lane::default()
        };
        let run = RunView {
            lanes: vec![lane("a", "i-1", 0.0, 20.0), lane("b", "i-2", 61.0, 90.0)],
            markers: vec![
                Marker { t: 50.0, kind: MarkerKind::Fault, label: "interrupt".into(), instance_id: None },
                Marker {
                    t: 60.0,
                    kind: MarkerKind::InterruptionWarning,
                    label: "interruption warning".into(),
                    instance_id: Some("i-1".into()),
                },
            ],
            series: vec![sample(0.0, 10, 0.0), sample(10.0, 10, 0.1), sample(20.0, 0, 0.1), sample(100.0, 0, 0.2)],
            ..RunView::default()
        };
        let s = RunSummary::of(&run);
        assert_eq!(s.pending_pod_seconds, 200.0);
        assert_eq!(s.pods_settled_at, Some(20.0));
        assert_eq!(s.cost_at_first_fault, Some(0.1));
        assert_eq!(s.warning_to_replacement_ready, vec![Some(30.0)]);
        assert_eq!(s.instance_types.get("m5.large"), Some(&2));
        assert_eq!(s.rows().len(), RunSummary::default().rows().len());
    }
}
