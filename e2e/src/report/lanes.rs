//! A NodeClaim's lane: its life cut into phases (a Gantt bar), drawn as SVG.

use std::fmt::Write as _;

use super::svg::{TimeScale, esc, fmt_duration, fmt_num};
use super::view::{Lane, Marker, MarkerKind, capacity_id};

/// The phases of a NodeClaim's life, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Created, the instance not launched yet.
    Launching,
    /// The instance launched, its Node not registered yet.
    Registering,
    /// Registered, not Ready yet.
    Initializing,
    Ready,
    /// Disruption began (deletion, disruption reason or taint): draining.
    Draining,
    /// The instance is shutting down (or stopping).
    ShuttingDown,
}

impl Phase {
    pub const ALL: [Phase; 6] =
        [Phase::Launching, Phase::Registering, Phase::Initializing, Phase::Ready, Phase::Draining, Phase::ShuttingDown];

    pub fn id(self) -> &'static str {
        match self {
            Phase::Launching => "launching",
            Phase::Registering => "registering",
            Phase::Initializing => "initializing",
            Phase::Ready => "ready",
            Phase::Draining => "draining",
            Phase::ShuttingDown => "shutting-down",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Phase::Launching => "created → launched",
            Phase::Registering => "launched → registered",
            Phase::Initializing => "registered → ready",
            Phase::Ready => "ready",
            Phase::Draining => "disrupted (draining)",
            Phase::ShuttingDown => "instance shutting down",
        }
    }
}

/// One stretch of a lane's bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub phase: Phase,
    pub from: f64,
    pub to: f64,
}

/// The lane's bar as segments, up to its termination or `run_end`. Moments observed out of order
/// (a disruption noticed after the instance was already shutting down) are dropped, not drawn
/// backwards.
pub fn segments(lane: &Lane, run_end: f64) -> Vec<Segment> {
    let mut starts: Vec<(f64, Phase)> = [
        (Some(lane.created), Phase::Launching),
        (lane.launched, Phase::Registering),
        (lane.registered, Phase::Initializing),
        (lane.ready, Phase::Ready),
        (lane.disrupted, Phase::Draining),
        (lane.terminating, Phase::ShuttingDown),
    ]
    .into_iter()
    .filter_map(|(t, p)| Some((t?, p)))
    .collect();
    starts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut kept: Vec<(f64, Phase)> = Vec::new();
    for (t, p) in starts {
        if kept.last().is_none_or(|(_, last)| p > *last) {
            kept.push((t, p));
        }
    }
    let end = lane.terminated.unwrap_or(run_end).max(lane.created);
    let mut out = Vec::new();
    for (i, (from, phase)) in kept.iter().enumerate() {
        let to = kept.get(i + 1).map_or(end, |(t, _)| *t).min(end);
        if to > *from {
            out.push(Segment { phase: *phase, from: *from, to });
        }
    }
    out
}

/// Vertical room for one lane.
pub const LANE_H: f64 = 22.0;
const BAR_H: f64 = 12.0;

/// Hover text for a lane: what it is and when each moment came.
fn lane_title(lane: &Lane) -> String {
    let mut t = format!("NodeClaim {} (nodepool {})", lane.nodeclaim, lane.nodepool);
    let _ = write!(t, "\n{} {}", capacity_id(lane.capacity_type), lane.label());
    if let Some(i) = &lane.instance_id {
        let _ = write!(t, "\ninstance {i}");
    }
    let moments = [
        ("created", Some(lane.created)),
        ("launched", lane.launched),
        ("registered", lane.registered),
        ("ready", lane.ready),
        ("disrupted", lane.disrupted),
        ("shutting down", lane.terminating),
        ("terminated", lane.terminated),
    ];
    for (what, at) in moments {
        if let Some(at) = at {
            let _ = write!(t, "\n{what} at {} s", fmt_num((at * 10.0).round() / 10.0));
            if what == "disrupted"
                && let Some(why) = &lane.disruption
            {
                let _ = write!(t, " ({why})");
            }
        }
    }
    t
}

/// The glyph a marker about this lane's instance gets on the lane.
fn glyph(kind: MarkerKind, x: f64, cy: f64) -> Option<String> {
    let top = cy - BAR_H / 2.0;
    Some(match kind {
        MarkerKind::InterruptionWarning => {
            format!("<path d=\"M{:.1},{:.1} l-5,-7 h10 z\"/>", x, top + 1.0)
        }
        // Below the bar: a warning often comes at the same moment, above it.
        MarkerKind::RebalanceRecommendation => {
            format!("<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"3\"/>", cy + BAR_H / 2.0 + 1.0)
        }
        MarkerKind::Reclaim => format!("<path d=\"M{:.1},{:.1} l8,8 m0,-8 l-8,8\"/>", x - 4.0, cy - 4.0),
        MarkerKind::HealthEvent => {
            format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"6\" height=\"6\"/>", x - 3.0, top - 6.0)
        }
        _ => return None,
    })
}

/// One lane at `y` (its top): the label in the gutter, the bar, glyphs for `markers` about its
/// instance.
pub fn draw(out: &mut String, lane: &Lane, y: f64, scale: &TimeScale, run_end: f64, markers: &[&Marker]) {
    let cy = y + LANE_H / 2.0;
    let _ = write!(
        out,
        "<g class=\"lane ct-{ct}\" data-nodeclaim=\"{name}\" data-capacity-type=\"{ct}\" data-instance-type=\"{it}\" data-zone=\"{zone}\" data-created=\"{created:.3}\"><title>{title}</title>",
        ct = capacity_id(lane.capacity_type),
        name = esc(&lane.nodeclaim),
        it = esc(lane.instance_type.as_deref().unwrap_or("")),
        zone = esc(lane.zone.as_deref().unwrap_or("")),
        created = lane.created,
        title = esc(&lane_title(lane)),
    );
    let _ = write!(
        out,
        "<text class=\"lane-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        scale.x0 - 10.0,
        cy + 4.0,
        esc(&lane.label())
    );
    for s in segments(lane, run_end) {
        let (x0, x1) = (scale.x(s.from), scale.x(s.to));
        let _ = write!(
            out,
            "<rect class=\"seg seg-{id}\" data-phase=\"{id}\" data-from=\"{from:.3}\" data-to=\"{to:.3}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR_H}\"><title>{title}: {a} s → {b} s ({d})</title></rect>",
            id = s.phase.id(),
            from = s.from,
            to = s.to,
            y = cy - BAR_H / 2.0,
            w = (x1 - x0).max(1.0),
            title = s.phase.title(),
            a = fmt_num((s.from * 10.0).round() / 10.0),
            b = fmt_num((s.to * 10.0).round() / 10.0),
            d = fmt_duration(s.to - s.from),
        );
    }
    if let Some(t) = lane.terminated {
        let x = scale.x(t);
        let _ = write!(
            out,
            "<line class=\"lane-end\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            cy - BAR_H / 2.0 - 2.0,
            cy + BAR_H / 2.0 + 2.0
        );
    }
    for m in markers {
        if let Some(g) = glyph(m.kind, scale.x(m.t), cy) {
            let _ = write!(
                out,
                "<g class=\"lane-marker mk-{id}\" data-marker-kind=\"{id}\" data-t=\"{t:.3}\">{g}<title>{label} at {at} s</title></g>",
                id = m.kind.id(),
                t = m.t,
                label = esc(&m.label),
                at = fmt_num((m.t * 10.0).round() / 10.0),
            );
        }
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane() -> Lane {
        Lane { nodeclaim: "spot-abc".into(), created: 10.0, ..Lane::default() }
    }

    #[test]
    fn a_full_life_is_six_phases_in_order() {
        let l = Lane {
            launched: Some(11.0),
            registered: Some(20.0),
            ready: Some(25.0),
            disrupted: Some(100.0),
            terminating: Some(130.0),
            terminated: Some(135.0),
            ..lane()
        };
        let s = segments(&l, 500.0);
        assert_eq!(s.iter().map(|s| s.phase).collect::<Vec<_>>(), Phase::ALL.to_vec());
        assert_eq!((s[0].from, s[5].to), (10.0, 135.0));
        assert!(s.windows(2).all(|w| w[0].to == w[1].from));
    }

    #[test]
    fn a_reclaim_before_the_disruption_is_noticed_draws_no_draining() {
        let l = Lane {
            launched: Some(11.0),
            ready: Some(25.0),
            terminating: Some(130.0),
            disrupted: Some(131.0),
            terminated: Some(135.0),
            ..lane()
        };
        let phases: Vec<Phase> = segments(&l, 500.0).iter().map(|s| s.phase).collect();
        assert_eq!(phases, vec![Phase::Launching, Phase::Registering, Phase::Ready, Phase::ShuttingDown]);
    }

    #[test]
    fn a_failed_launch_is_a_short_launching_bar_and_a_live_claim_runs_to_the_end() {
        let failed = Lane { disrupted: Some(12.0), terminated: Some(12.0), ..lane() };
        assert_eq!(segments(&failed, 500.0), vec![Segment { phase: Phase::Launching, from: 10.0, to: 12.0 }]);
        let live = Lane { launched: Some(11.0), ready: Some(30.0), ..lane() };
        assert_eq!(segments(&live, 500.0).last().map(|s| s.to), Some(500.0));
    }
}
