//! The numbers an A/B comparison puts side by side, computed from one run (pure): NodeClaims and
//! where they landed, how long pods waited, what each interruption and disruption cost in pending
//! pods, fleet cost before and after, instances, AWS calls, interruption messages, and for each
//! warning how its replacement compared with the reclaim.

use std::collections::BTreeMap;

use crate::report::summary::RunSummary;
use crate::report::view::{CapacityType, MarkerKind, RunView};
use crate::scenario::messages::MessageCounts;
use crate::scenario::runner::CallCount;

/// The seconds EC2 gives between a spot interruption warning and the reclaim.
pub const NOTICE_SECONDS: f64 = 120.0;

/// Events closer than this (world seconds) are one episode (FIS warns many instances at once).
const EPISODE_GAP: f64 = 5.0;

/// What started an episode of disruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpisodeKind {
    Interruption,
    Disruption,
}

/// One interruption (warnings together) or disruption (NodeClaims disrupted together, not by a
/// warning), from its start to the next episode or the run's end.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub kind: EpisodeKind,
    pub start: f64,
    pub end: f64,
    /// Why, for a disruption (`Underutilized`, `Drifted`, `deleted`, ...).
    pub why: String,
    /// Pending pods integrated over the episode, world seconds.
    pub pending_pod_seconds: f64,
    pub peak_pending: usize,
}

/// One interruption warning and what followed for its instance.
#[derive(Clone, Debug, PartialEq)]
pub struct WarningOutcome {
    pub at: f64,
    /// Seconds from the warning until a NodeClaim created after it was Ready.
    pub replacement_ready: Option<f64>,
    /// Seconds from the warning until the instance began shutting down, and whether EC2 reclaimed
    /// it (else the autoscaler terminated it first).
    pub instance_gone: Option<f64>,
    pub reclaimed: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AbMetrics {
    pub summary: RunSummary,
    /// World seconds from the first pod to every pod Running (the first time).
    pub time_to_all_running: Option<f64>,
    pub episodes: Vec<Episode>,
    pub cost_before: Option<f64>,
    pub cost_after: Option<f64>,
    pub warnings: Vec<WarningOutcome>,
    /// `action` -> (calls, error code -> answers).
    pub calls: BTreeMap<String, (u64, BTreeMap<String, u64>)>,
    pub messages: MessageCounts,
}

impl AbMetrics {
    pub fn of(run: &RunView, calls: &[CallCount], messages: &MessageCounts) -> AbMetrics {
        let summary = RunSummary::of(run);
        let series = &run.series;
        let first_pod = series.iter().find(|s| s.pending_pods + s.running_pods > 0).map(|s| s.t);
        let settled = first_pod
            .and_then(|t0| series.iter().find(|s| s.t >= t0 && s.pending_pods == 0 && s.running_pods > 0).map(|s| s.t));
        let time_to_all_running = first_pod.zip(settled).map(|(a, b)| b - a);
        let episodes = episodes(run);
        // Before: the first disturbance after the pods first settled (a fault, a scenario step, an
        // episode), else the settle itself; after: the end.
        let disturbance = settled.and_then(|s| {
            let markers = run
                .markers
                .iter()
                .filter(|m| matches!(m.kind, MarkerKind::Fault | MarkerKind::Step | MarkerKind::FisExperiment))
                .map(|m| m.t);
            markers.chain(episodes.iter().map(|e| e.start)).filter(|t| *t >= s).reduce(f64::min)
        });
        let cost_before =
            disturbance.or(settled).and_then(|t| series.iter().rev().find(|s| s.t <= t).map(|s| s.fleet_cost_per_hour));
        let cost_after = series.last().map(|s| s.fleet_cost_per_hour);
        let warnings = run
            .markers
            .iter()
            .filter(|m| m.kind == MarkerKind::InterruptionWarning)
            .zip(&summary.warning_to_replacement_ready)
            .map(|(w, ready)| {
                let lane = run.lanes.iter().find(|l| l.instance_id.is_some() && l.instance_id == w.instance_id);
                let reclaimed = run
                    .markers
                    .iter()
                    .any(|m| m.kind == MarkerKind::Reclaim && m.instance_id == w.instance_id && m.t >= w.t);
                WarningOutcome {
                    at: w.t,
                    replacement_ready: *ready,
                    instance_gone: lane.and_then(|l| l.terminating.or(l.terminated)).map(|t| (t - w.t).max(0.0)),
                    reclaimed,
                }
            })
            .collect();
        let mut by_action: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
        for c in calls {
            let e = by_action.entry(c.action.clone()).or_default();
            e.0 += c.count;
            if let Some(code) = &c.error_code {
                *e.1.entry(code.clone()).or_default() += c.count;
            }
        }
        AbMetrics {
            summary,
            time_to_all_running,
            episodes,
            cost_before,
            cost_after,
            warnings,
            calls: by_action,
            messages: messages.clone(),
        }
    }

    /// NodeClaims by capacity type: `2 (1 spot, 1 on-demand)`.
    pub fn nodeclaims(&self) -> String {
        let ct = |c: Option<CapacityType>| self.summary.by_capacity_type.get(&c).copied().unwrap_or(0);
        let mut parts = Vec::new();
        for c in CapacityType::ALL {
            if ct(Some(c)) > 0 {
                parts.push(format!("{} {c}", ct(Some(c))));
            }
        }
        // No capacity type until launched.
        let never = ct(None);
        if never > 0 {
            parts.push(format!("{never} never launched"));
        }
        format!("{} ({})", self.summary.nodeclaims, parts.join(", "))
    }
}

/// The run's interruption and disruption episodes, in time order.
pub fn episodes(run: &RunView) -> Vec<Episode> {
    let warnings: Vec<(f64, Option<&str>)> = run
        .markers
        .iter()
        .filter(|m| m.kind == MarkerKind::InterruptionWarning)
        .map(|m| (m.t, m.instance_id.as_deref()))
        .collect();
    let mut starts: Vec<(f64, EpisodeKind, String)> =
        warnings.iter().map(|(t, _)| (*t, EpisodeKind::Interruption, String::new())).collect();
    for lane in &run.lanes {
        let Some(t) = lane.disrupted else { continue };
        // A claim that never launched (a failed launch) is not a disruption of running pods, and a
        // warned instance's claim belongs to its interruption.
        let warned = warnings.iter().any(|(w, id)| id.is_some() && *id == lane.instance_id.as_deref() && t >= w - 1.0);
        if lane.launched.is_none() || warned {
            continue;
        }
        starts.push((t, EpisodeKind::Disruption, lane.disruption.clone().unwrap_or_default()));
    }
    starts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, EpisodeKind, String)> = Vec::new();
    for s in starts {
        match merged.last_mut() {
            Some(last) if s.0 - last.0 < EPISODE_GAP && last.1 == s.1 => {
                if !s.2.is_empty() && !last.2.split(", ").any(|w| w == s.2) {
                    last.2 = if last.2.is_empty() { s.2 } else { format!("{}, {}", last.2, s.2) };
                }
            }
            _ => merged.push(s),
        }
    }
    let end = run.end_time();
    let mut out: Vec<Episode> = Vec::new();
    for (i, (start, kind, why)) in merged.iter().enumerate() {
        let until = merged.get(i + 1).map_or(end, |n| n.0);
        let (pod_seconds, peak) = pending_between(run, *start, until);
        out.push(Episode {
            kind: *kind,
            start: *start,
            end: until,
            why: why.clone(),
            pending_pod_seconds: pod_seconds,
            peak_pending: peak,
        });
    }
    out
}

/// Pending pods integrated over `[from, to)` (each sample holds until the next), and the peak.
/// Only samples taken at or after `from` count: one taken before it (a second of real time is
/// ten world seconds) may still show the pods the scenario's last wait saw scheduled.
fn pending_between(run: &RunView, from: f64, to: f64) -> (f64, usize) {
    let s = &run.series;
    let mut total = 0.0;
    let mut peak = 0;
    for (i, x) in s.iter().enumerate() {
        if x.t < from {
            continue;
        }
        let next = s.get(i + 1).map_or(to, |n| n.t);
        let (a, b) = (x.t.max(from), next.min(to));
        if b > a {
            total += x.pending_pods as f64 * (b - a);
            peak = peak.max(x.pending_pods);
        }
    }
    (total, peak)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::{Lane, Marker, Sample};

    fn sample(t: f64, pending: usize, running: usize, cost: f64) -> Sample {
        Sample { t, pending_pods: pending, running_pods: running, fleet_cost_per_hour: cost, ..Sample::default() }
    }

    fn lane(name: &str, id: &str, created: f64, ready: f64) -> Lane {
        Lane {
            nodeclaim: name.into(),
            capacity_type: Some(CapacityType::Spot),
            instance_type: Some("m5.large".into()),
            zone: Some("us-west-2a".into()),
            instance_id: Some(id.into()),
            created,
            launched: Some(created + 1.0),
            ready: Some(ready),
            ..Lane::default()
        }
    }

    #[test]
    fn an_interruption_and_a_consolidation_are_two_episodes_with_their_pending_pods() {
        let mut old = lane("a", "i-1", 0.0, 30.0);
        old.disrupted = Some(100.5);
        old.terminating = Some(180.0);
        let mut new = lane("b", "i-2", 101.0, 150.0);
        new.disrupted = Some(300.0);
        new.disruption = Some("Underutilized".into());
        let warn = |t| Marker {
            t,
            kind: MarkerKind::InterruptionWarning,
            label: "interruption warning".into(),
            instance_id: Some("i-1".into()),
        };
        let run = RunView {
            lanes: vec![old, new, lane("c", "i-3", 290.0, 320.0)],
            markers: vec![
                Marker { t: 100.0, kind: MarkerKind::Fault, label: "interrupt".into(), instance_id: None },
                warn(100.0),
            ],
            series: vec![
                sample(0.0, 10, 0, 0.0),
                sample(40.0, 0, 10, 0.1),
                sample(110.0, 2, 8, 0.2),
                sample(150.0, 0, 10, 0.2),
                sample(310.0, 1, 9, 0.2),
                sample(330.0, 0, 10, 0.05),
            ],
            ..RunView::default()
        };
        let calls = vec![CallCount {
            service: "ec2".into(),
            action: "CreateFleet".into(),
            status: 200,
            error_code: None,
            injected: 0,
            count: 3,
        }];
        let m = AbMetrics::of(&run, &calls, &MessageCounts::default());
        assert_eq!(m.time_to_all_running, Some(40.0));
        assert_eq!(m.episodes.len(), 2);
        assert_eq!(
            (m.episodes[0].kind, m.episodes[0].start, m.episodes[0].end),
            (EpisodeKind::Interruption, 100.0, 300.0)
        );
        assert_eq!(m.episodes[0].pending_pod_seconds, 80.0);
        assert_eq!(m.episodes[0].peak_pending, 2);
        assert_eq!((m.episodes[1].kind, m.episodes[1].why.as_str()), (EpisodeKind::Disruption, "Underutilized"));
        assert_eq!(m.episodes[1].pending_pod_seconds, 20.0);
        assert_eq!((m.cost_before, m.cost_after), (Some(0.1), Some(0.05)));
        assert_eq!(
            m.warnings,
            vec![WarningOutcome {
                at: 100.0,
                replacement_ready: Some(50.0),
                instance_gone: Some(80.0),
                reclaimed: false
            }]
        );
        assert_eq!(m.calls["CreateFleet"].0, 3);
        assert_eq!(m.nodeclaims(), "3 (3 spot)");
    }

    #[test]
    fn a_sample_taken_before_an_episode_does_not_count_in_it() {
        // The last sample before the warning still showed the scale-up's pending pods.
        let run = RunView {
            series: vec![sample(80.0, 10, 0, 0.1), sample(90.0, 0, 10, 0.1), sample(100.0, 1, 9, 0.1)],
            ..RunView::default()
        };
        assert_eq!(pending_between(&run, 86.0, 110.0), (10.0, 1));
    }
}
