//! bench/compare.md: an overview row per scenario, then per scenario the two runs side by side
//! and their AWS calls by action and error code. Pure: a function of the comparisons.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::metrics::{AbMetrics, Episode, EpisodeKind, NOTICE_SECONDS};
use crate::env::AutoscalerKind;
use crate::report::svg::{fmt_cost, fmt_num};
use crate::scenario::runner::Status;

/// One autoscaler's run of a scenario.
#[derive(Clone, Debug)]
pub struct Side {
    pub autoscaler: AutoscalerKind,
    pub status: Status,
    pub wall_seconds: f64,
    pub metrics: AbMetrics,
    pub notes: Vec<String>,
}

/// One scenario, run with both autoscalers.
#[derive(Clone, Debug)]
pub struct ScenarioComparison {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub sides: [Side; 2],
    /// The HTML page drawing both runs.
    pub page: String,
}

/// What the page says about how it was made.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub command: String,
    pub measured_at: String,
    pub git: String,
    pub karpenter_version: String,
    pub cpus: usize,
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |s| format!("{} s", fmt_num(s.round())))
}

fn status(s: &Side) -> String {
    match &s.status {
        Status::Passed => format!("passed ({} s wall)", fmt_num(s.wall_seconds.round())),
        Status::Failed(m) => format!("**FAILED**: {}", one_line(m)),
        Status::Skipped(m) => format!("skipped: {}", one_line(m)),
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().replace('|', "\\|")
}

fn counts(m: &std::collections::BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "–".to_owned();
    }
    m.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
}

fn episode(e: &Episode) -> String {
    format!("{} pod·s (peak {})", fmt_num(e.pending_pod_seconds.round()), e.peak_pending)
}

fn cost(m: &AbMetrics) -> String {
    let c = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), fmt_cost);
    format!("{} → {}", c(m.cost_before), c(m.cost_after))
}

fn pending_total(m: &AbMetrics) -> String {
    fmt_num(m.summary.pending_pod_seconds.round())
}

fn messages(m: &AbMetrics) -> String {
    if m.messages.by_kind.is_empty() {
        return "–".to_owned();
    }
    m.messages.by_kind.iter().map(|(k, c)| format!("{k} {}/{}", c.received, c.sent)).collect::<Vec<_>>().join(", ")
}

fn warnings(m: &AbMetrics) -> String {
    if m.warnings.is_empty() {
        return "–".to_owned();
    }
    m.warnings
        .iter()
        .map(|w| {
            let gone = match (w.instance_gone, w.reclaimed) {
                (Some(g), true) => format!("reclaimed +{} s", fmt_num(g.round())),
                (Some(g), false) => format!("terminated by the autoscaler +{} s", fmt_num(g.round())),
                (None, _) => format!("reclaim due +{} s", fmt_num(NOTICE_SECONDS)),
            };
            let ready = w.replacement_ready.map_or_else(
                || "no replacement Ready".to_owned(),
                |r| format!("replacement Ready +{} s", fmt_num(r.round())),
            );
            format!("@{} s: {ready}; {gone}", fmt_num(w.at.round()))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The episodes of one kind as rows: `interruption 1 (@51 s | @55 s)`.
fn episode_rows(out: &mut String, sides: &[Side; 2], kind: EpisodeKind) {
    let of = |s: &Side| -> Vec<Episode> { s.metrics.episodes.iter().filter(|e| e.kind == kind).cloned().collect() };
    let (a, b) = (of(&sides[0]), of(&sides[1]));
    let name = match kind {
        EpisodeKind::Interruption => "pending during interruption",
        EpisodeKind::Disruption => "pending during disruption",
    };
    for i in 0..a.len().max(b.len()) {
        let cell = |e: Option<&Episode>| {
            e.map_or_else(
                || "–".to_owned(),
                |e| {
                    let why = if e.why.is_empty() { String::new() } else { format!(" {}", e.why) };
                    format!("@{} s{why}: {}", fmt_num(e.start.round()), episode(e))
                },
            )
        };
        let _ = writeln!(out, "| {name} {} | {} | {} |", i + 1, cell(a.get(i)), cell(b.get(i)));
    }
}

/// The AWS calls of both runs by action: `12` or `12 (3 RequestLimitExceeded)`.
fn calls_table(out: &mut String, sides: &[Side; 2]) {
    let actions: BTreeSet<&String> = sides.iter().flat_map(|s| s.metrics.calls.keys()).collect();
    if actions.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n<details><summary>AWS calls by action (error answers by code)</summary>\n\n| action | {} | {} |\n|---|---:|---:|",
        sides[0].autoscaler, sides[1].autoscaler
    );
    for action in actions {
        let cell = |s: &Side| match s.metrics.calls.get(action) {
            None => "–".to_owned(),
            Some((n, errors)) if errors.is_empty() => n.to_string(),
            Some((n, errors)) => {
                let e: Vec<String> = errors.iter().map(|(code, k)| format!("{k} {code}")).collect();
                format!("{n} ({})", e.join(", "))
            }
        };
        let _ = writeln!(out, "| {action} | {} | {} |", cell(&sides[0]), cell(&sides[1]));
    }
    out.push_str("\n</details>\n");
}

/// The whole file.
pub fn render(p: &Provenance, comparisons: &[ScenarioComparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# A/B: the project's autoscaler vs upstream Karpenter {}\n", p.karpenter_version);
    let _ = writeln!(
        out,
        "Written by `{}` at {} (git {}, {} CPUs). Each scenario ran twice on fresh local clusters, once with each autoscaler, with the same seed, world and steps; the two runs are drawn on one time axis in the page linked under each scenario. Times are world seconds (fake-ec2's clock, ×10 in these scenarios, sampled once a real second, so ±10 s); both autoscalers' own timers run on real time. Pending pod·s integrate pods in phase Pending over each episode (an interruption: from its warnings; a disruption: from the NodeClaims disrupted together) until the next one or the end.\n",
        p.command, p.measured_at, p.git, p.cpus
    );
    out.push_str("| scenario | spotbench | karpenter | NodeClaims | all pods Running after | pod·s pending (whole run) | fleet $/h before → after |\n|---|---|---|---|---|---|---|\n");
    for c in comparisons {
        let [a, b] = &c.sides;
        let short = |s: &Side| match s.status {
            Status::Passed => "passed",
            Status::Failed(_) => "**FAILED**",
            Status::Skipped(_) => "skipped",
        };
        let _ = writeln!(
            out,
            "| [{}](#{}) | {} | {} | {} / {} | {} / {} | {} / {} | {} / {} |",
            c.name,
            c.name,
            short(a),
            short(b),
            a.metrics.summary.nodeclaims,
            b.metrics.summary.nodeclaims,
            secs(a.metrics.time_to_all_running),
            secs(b.metrics.time_to_all_running),
            pending_total(&a.metrics),
            pending_total(&b.metrics),
            cost(&a.metrics),
            cost(&b.metrics),
        );
    }
    out.push_str("\n(each cell: spotbench / karpenter)\n");
    for c in comparisons {
        let [a, b] = &c.sides;
        let _ = writeln!(out, "\n## {}\n\n{} Seed {}. Page: `{}`\n", c.name, c.description, c.seed, c.page);
        let _ = writeln!(out, "| | {} | {} |\n|---|---|---|", a.autoscaler, b.autoscaler);
        let row = |out: &mut String, what: &str, f: &dyn Fn(&Side) -> String| {
            let _ = writeln!(out, "| {what} | {} | {} |", f(a), f(b));
        };
        row(&mut out, "result", &status);
        row(&mut out, "NodeClaims", &|s| s.metrics.nodeclaims());
        row(&mut out, "instance types", &|s| counts(&s.metrics.summary.instance_types));
        row(&mut out, "zones", &|s| counts(&s.metrics.summary.zones));
        row(&mut out, "instances launched / terminated", &|s| {
            format!("{} / {}", s.metrics.summary.launched, s.metrics.summary.terminated)
        });
        row(&mut out, "all pods Running after", &|s| secs(s.metrics.time_to_all_running));
        row(&mut out, "pod·s pending (whole run)", &|s| pending_total(&s.metrics));
        episode_rows(&mut out, &c.sides, EpisodeKind::Interruption);
        episode_rows(&mut out, &c.sides, EpisodeKind::Disruption);
        row(&mut out, "fleet $/h before → after", &|s| cost(&s.metrics));
        row(&mut out, "interruption messages received/sent", &|s| messages(&s.metrics));
        row(&mut out, "warning → replacement Ready vs the reclaim", &|s| warnings(&s.metrics));
        if c.sides.iter().any(|s| !s.notes.is_empty()) {
            row(&mut out, "notes", &|s| {
                if s.notes.is_empty() { "–".to_owned() } else { s.notes.join("; ").replace('|', "\\|") }
            });
        }
        calls_table(&mut out, &c.sides);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::compare::metrics::WarningOutcome;
    use crate::scenario::messages::{KindCount, MessageCounts};

    fn side(kind: AutoscalerKind, pending: f64) -> Side {
        let mut m = AbMetrics::default();
        m.summary.nodeclaims = 2;
        m.summary.pending_pod_seconds = pending;
        m.time_to_all_running = Some(48.2);
        m.episodes = vec![Episode {
            kind: EpisodeKind::Interruption,
            start: 51.0,
            end: 200.0,
            why: String::new(),
            pending_pod_seconds: pending,
            peak_pending: 2,
        }];
        m.warnings = vec![WarningOutcome {
            at: 51.0,
            replacement_ready: Some(57.0),
            instance_gone: Some(120.0),
            reclaimed: true,
        }];
        m.calls.insert("CreateFleet".into(), (2, [("InsufficientInstanceCapacity".to_owned(), 1)].into()));
        m.messages.by_kind.insert("interruption warning".into(), KindCount { sent: 1, received: 1 });
        Side { autoscaler: kind, status: Status::Passed, wall_seconds: 30.0, metrics: m, notes: Vec::new() }
    }

    #[test]
    fn every_measure_has_its_row_for_both_autoscalers() {
        let c = ScenarioComparison {
            name: "spot-interruption-replaced".into(),
            description: "One spot node is interrupted.".into(),
            seed: 1,
            sides: [side(AutoscalerKind::Spotbench, 0.0), side(AutoscalerKind::Karpenter, 92.0)],
            page: "/tmp/x.html".into(),
        };
        let md = render(&Provenance { command: "e2e compare".into(), ..Provenance::default() }, &[c]);
        assert!(md.contains("Written by `e2e compare`"), "{md}");
        assert!(md.contains("| [spot-interruption-replaced](#spot-interruption-replaced) | passed | passed | 2 / 2 | 48 s / 48 s | 0 / 92 |"), "{md}");
        assert!(
            md.contains("| pending during interruption 1 | @51 s: 0 pod·s (peak 2) | @51 s: 92 pod·s (peak 2) |"),
            "{md}"
        );
        assert!(md.contains("@51 s: replacement Ready +57 s; reclaimed +120 s"), "{md}");
        assert!(
            md.contains("| CreateFleet | 2 (1 InsufficientInstanceCapacity) | 2 (1 InsufficientInstanceCapacity) |"),
            "{md}"
        );
        assert!(md.contains("interruption warning 1/1"), "{md}");
        let _ = MessageCounts::default();
    }
}
