//! Self-contained HTML pages (inline SVG and CSS, a few lines of script for the hover cursor):
//! [`render`] one run, [`render_comparison`] two runs of a scenario on one time axis. Both are
//! pure functions of [`RunView`]s. Elements carry stable classes and data attributes
//! (`data-nodeclaim`, `data-marker-kind`, `data-phase`, `data-legend`, `axis-time`) for tests.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::chart::{self, run_svg};
use super::lanes::Phase;
use super::summary::RunSummary;
use super::svg::{esc, fmt_duration, fmt_num};
use super::view::{CapacityType, MarkerKind, RunStatus, RunView, capacity_id};

const CSS: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// The page for one run: header, key numbers, legend, the chart, the events, PDB violations and
/// the normalized timeline.
pub fn render(run: &RunView) -> String {
    let mut body = header(run, &run.meta.scenario);
    let summary = RunSummary::of(run);
    body.push_str(&key_numbers(&summary));
    body.push_str(&legend(&[run]));
    let scale = chart::scale_for(&[run]);
    let _ = write!(body, "<section class=\"panel\" data-panel=\"run\">{}</section>", run_svg(run, &scale, "run"));
    body.push_str(&pdb_violations(run));
    body.push_str(&events(run));
    let _ = write!(
        body,
        "<details class=\"numbers\"><summary>All numbers</summary>{}</details>",
        summary_table(&[("", &summary)])
    );
    if let Some(t) = &run.timeline {
        let _ = write!(body, "<h2>Timeline (normalized)</h2><pre class=\"timeline\">{}</pre>", esc(t));
    }
    page(&run.meta.scenario, &body)
}

/// Two runs of one scenario (two autoscalers, say) stacked on one time axis, with their numbers
/// side by side. `titles` name the runs.
pub fn render_comparison(a: &RunView, b: &RunView, titles: (&str, &str)) -> String {
    let name = if a.meta.scenario == b.meta.scenario {
        a.meta.scenario.clone()
    } else {
        format!("{} / {}", a.meta.scenario, b.meta.scenario)
    };
    let mut body = format!(
        "<header><h1>{} <span class=\"vs\">{} vs {}</span></h1><p class=\"desc\">{}</p></header>",
        esc(&name),
        esc(titles.0),
        esc(titles.1),
        esc(&a.meta.description)
    );
    let (sa, sb) = (RunSummary::of(a), RunSummary::of(b));
    body.push_str(&summary_table(&[(titles.0, &sa), (titles.1, &sb)]));
    body.push_str(&legend(&[a, b]));
    let scale = chart::scale_for(&[a, b]);
    for (panel, run, title) in [("a", a, titles.0), ("b", b, titles.1)] {
        let _ = write!(
            body,
            "<section class=\"panel\" data-panel=\"{panel}\"><h2>{} <small>{}</small></h2>{}{}{}</section>",
            esc(title),
            status_text(run),
            notes(run),
            run_svg(run, &scale, panel),
            pdb_violations(run)
        );
    }
    page(&format!("{name}: {} vs {}", titles.0, titles.1), &body)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{CSS}</style></head><body><main>{PATTERNS}{body}</main><script>{SCRIPT}</script></body></html>\n",
        esc(title)
    )
}

/// Hatching for lanes being drained, one per capacity type, shared by every chart of the page.
const PATTERNS: &str = "<svg class=\"defs\" width=\"0\" height=\"0\" aria-hidden=\"true\"><defs>\
<pattern id=\"hatch-spot\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fde3cf\"/><rect width=\"3\" height=\"6\" fill=\"#e8710a\"/></pattern>\
<pattern id=\"hatch-on-demand\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#d2e3fc\"/><rect width=\"3\" height=\"6\" fill=\"#1a73e8\"/></pattern>\
<pattern id=\"hatch-unknown\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#eceff1\"/><rect width=\"3\" height=\"6\" fill=\"#9aa0a6\"/></pattern>\
</defs></svg>";

fn status_text(run: &RunView) -> String {
    match &run.meta.status {
        RunStatus::Passed => "<span class=\"status passed\">passed</span>".to_owned(),
        RunStatus::Failed(_) => "<span class=\"status failed\">FAILED</span>".to_owned(),
        RunStatus::Skipped(_) => "<span class=\"status skipped\">skipped</span>".to_owned(),
    }
}

fn header(run: &RunView, title: &str) -> String {
    let m = &run.meta;
    let mut facts = vec![format!("seed {}", m.seed)];
    if let Some(a) = &m.autoscaler {
        facts.push(format!("autoscaler {}", esc(a)));
    }
    facts.push(format!("{} world time", fmt_duration(run.end_time())));
    facts.push(format!("{} wall time", fmt_duration(m.wall_seconds)));
    let mut h = format!(
        "<header><h1>{}</h1><p class=\"desc\">{}</p><p class=\"facts\">{} · {}</p>",
        esc(title),
        esc(&m.description),
        status_text(run),
        facts.join(" · ")
    );
    if let RunStatus::Failed(why) | RunStatus::Skipped(why) = &m.status {
        let _ = write!(h, "<pre class=\"why\">{}</pre>", esc(why));
    }
    h.push_str(&notes(run));
    h.push_str("</header>");
    h
}

/// The run's notes (settings not applicable to its autoscaler, skipped steps), as a list.
fn notes(run: &RunView) -> String {
    if run.meta.notes.is_empty() {
        return String::new();
    }
    let mut h = String::from("<ul class=\"notes\">");
    for n in &run.meta.notes {
        let _ = write!(h, "<li>{}</li>", esc(n));
    }
    h.push_str("</ul>");
    h
}

/// The few numbers worth a glance, as cards.
fn key_numbers(s: &RunSummary) -> String {
    let spot = s.by_capacity_type.get(&Some(CapacityType::Spot)).copied().unwrap_or(0);
    let on_demand = s.by_capacity_type.get(&Some(CapacityType::OnDemand)).copied().unwrap_or(0);
    let cards = [
        ("NodeClaims", s.nodeclaims.to_string(), format!("{spot} spot · {on_demand} on-demand")),
        (
            "peak pending pods",
            s.peak_pending_pods.to_string(),
            format!("{} pod·s pending", fmt_num(s.pending_pod_seconds.round())),
        ),
        (
            "interruption warnings",
            s.markers.get(&MarkerKind::InterruptionWarning).copied().unwrap_or(0).to_string(),
            format!("{} reclaimed", s.markers.get(&MarkerKind::Reclaim).copied().unwrap_or(0)),
        ),
        (
            "fleet cost at end",
            s.cost_at_end.map_or_else(|| "–".to_owned(), |c| format!("${:.3}", c + 0.0)),
            format!("per hour · peak ${:.3}", s.peak_cost),
        ),
    ];
    let mut h = String::from("<div class=\"cards\">");
    for (what, value, sub) in cards {
        let _ = write!(
            h,
            "<div class=\"card\"><div class=\"card-value\">{}</div><div class=\"card-what\">{}</div><div class=\"card-sub\">{}</div></div>",
            esc(&value),
            esc(what),
            esc(&sub)
        );
    }
    h.push_str("</div>");
    h
}

/// What the colours, patterns and lines mean, for what the runs contain.
fn legend(runs: &[&RunView]) -> String {
    let kinds: BTreeSet<MarkerKind> = runs.iter().flat_map(|r| r.markers.iter().map(|m| m.kind)).collect();
    let mut types: BTreeSet<Option<CapacityType>> =
        runs.iter().flat_map(|r| r.lanes.iter().map(|l| l.capacity_type)).collect();
    types.extend([Some(CapacityType::Spot), Some(CapacityType::OnDemand)]);
    let item = |key: &str, swatch: &str, text: &str| {
        format!(
            "<span class=\"legend-item\" data-legend=\"{key}\"><svg class=\"swatch\" width=\"26\" height=\"14\">{swatch}</svg>{}</span>",
            esc(text)
        )
    };
    let mut h = String::from("<div class=\"legend\"><div class=\"legend-group\"><b>capacity type</b>");
    for t in types {
        let swatch = format!(
            "<g class=\"lane ct-{}\"><rect class=\"seg seg-ready\" x=\"1\" y=\"2\" width=\"24\" height=\"10\"/></g>",
            capacity_id(t)
        );
        h.push_str(&item(&format!("capacity-type-{}", capacity_id(t)), &swatch, capacity_id(t)));
    }
    h.push_str("</div><div class=\"legend-group\"><b>NodeClaim phase</b>");
    for p in Phase::ALL {
        let swatch = format!(
            "<g class=\"lane ct-spot\"><rect class=\"seg seg-{}\" x=\"1\" y=\"2\" width=\"24\" height=\"10\"/></g>",
            p.id()
        );
        h.push_str(&item(&format!("phase-{}", p.id()), &swatch, p.title()));
    }
    h.push_str("</div><div class=\"legend-group\"><b>markers</b>");
    for k in MarkerKind::ALL.iter().filter(|k| kinds.contains(k)) {
        let swatch = format!(
            "<g class=\"marker mk-{}\"><line class=\"marker-line\" x1=\"13\" x2=\"13\" y1=\"0\" y2=\"14\"/></g>",
            k.id()
        );
        h.push_str(&item(&format!("marker-{}", k.id()), &swatch, k.title()));
    }
    h.push_str("</div><div class=\"legend-group\"><b>series</b>");
    h.push_str(&item("pending-pods", "<path class=\"series-pending-fill\" d=\"M1,12 V4 H25 V12 Z\"/><path class=\"series series-pending\" d=\"M1,4 H25\"/>", "pending pods"));
    h.push_str(&item("running-pods", "<path class=\"series series-running\" d=\"M1,7 H25\"/>", "running pods"));
    h.push_str(&item("fleet-cost", "<path class=\"series series-cost\" d=\"M1,7 H25\"/>", "fleet cost per hour"));
    h.push_str("</div></div>");
    h
}

/// The numbers of one or more runs, a column each.
fn summary_table(runs: &[(&str, &RunSummary)]) -> String {
    let mut h = String::from("<table class=\"summary\"><thead><tr><th></th>");
    for (title, _) in runs {
        let _ = write!(h, "<th>{}</th>", esc(title));
    }
    h.push_str("</tr></thead><tbody>");
    let rows: Vec<Vec<(&str, String)>> = runs.iter().map(|(_, s)| s.rows()).collect();
    let n = rows.first().map_or(0, Vec::len);
    for i in 0..n {
        let what = rows.first().and_then(|r| r.get(i)).map_or("", |r| r.0);
        let values: Vec<&str> = rows.iter().filter_map(|r| r.get(i)).map(|r| r.1.as_str()).collect();
        let differs = values.windows(2).any(|w| w[0] != w[1]);
        let _ = write!(h, "<tr{}><th>{}</th>", if differs { " class=\"differs\"" } else { "" }, esc(what));
        for v in values {
            let _ = write!(h, "<td>{}</td>", esc(v));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

fn pdb_violations(run: &RunView) -> String {
    if run.pdb_violations.is_empty() {
        return String::new();
    }
    let mut h = String::from("<h2 class=\"pdb\">PodDisruptionBudget violations</h2><ul class=\"pdb\">");
    for v in &run.pdb_violations {
        let _ = write!(h, "<li>{}</li>", esc(v));
    }
    h.push_str("</ul>");
    h
}

/// Every marker as a table row, for reading the details.
fn events(run: &RunView) -> String {
    if run.markers.is_empty() {
        return String::new();
    }
    let mut h = format!(
        "<details class=\"events\"><summary>Events ({})</summary><table><thead><tr><th>world</th><th>real</th><th>what</th><th></th><th>NodeClaim</th></tr></thead><tbody>",
        run.markers.len()
    );
    for m in &run.markers {
        let claim = m
            .instance_id
            .as_deref()
            .and_then(|i| run.lanes.iter().find(|l| l.instance_id.as_deref() == Some(i)))
            .map(|l| format!("{} ({})", l.nodeclaim, l.label()))
            .or_else(|| m.instance_id.clone())
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=\"mk-{id}\" data-marker-kind=\"{id}\"><td>{t} s</td><td>{real}</td><td><span class=\"dot\"></span>{kind}</td><td>{label}</td><td>{claim}</td></tr>",
            id = m.kind.id(),
            t = fmt_num((m.t * 10.0).round() / 10.0),
            real = run.real_at(m.t).map(|r| format!("{} s", fmt_num((r * 10.0).round() / 10.0))).unwrap_or_default(),
            kind = esc(m.kind.title()),
            label = esc(&m.label),
            claim = esc(&claim),
        );
    }
    h.push_str("</tbody></table></details>");
    h
}
