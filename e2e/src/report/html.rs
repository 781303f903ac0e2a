//! The per-run HTML page: an inline SVG of nodes by capacity type and zone (stacked), pending
//! pods and fleet cost over world time, with faults, interruptions and autoscaler restarts marked;
//! then the timeline.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::scenario::runner::{Outcome, Status};

const W: f64 = 900.0;
const H: f64 = 260.0;
const PAD: f64 = 40.0;
const COLORS: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn render(o: &Outcome) -> String {
    let mut h = String::new();
    let (badge, color) = match &o.status {
        Status::Passed => ("passed".to_owned(), "#2ca02c"),
        Status::Failed(m) => (format!("FAILED: {m}"), "#d62728"),
        Status::Skipped(m) => (format!("skipped: {m}"), "#888"),
    };
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}.legend span{{margin-right:1.2em}}</style></head><body><h1>{name}</h1><p>{desc}</p><p style=\"color:{color}\"><b>{badge}</b> ({secs:.1}s wall)</p>",
        name = esc(&o.name),
        desc = esc(&o.description),
        badge = esc(&badge),
        secs = o.wall.as_secs_f64()
    );
    h.push_str(&svg(o));
    h.push_str("<h2>Timeline (normalized)</h2><pre>");
    h.push_str(&esc(&serde_saphyr::to_string(&o.timeline).unwrap_or_default()));
    h.push_str("</pre>");
    if !o.samples.pdb_violations.is_empty() {
        h.push_str("<h2>PodDisruptionBudget violations</h2><ul>");
        for v in &o.samples.pdb_violations {
            let _ = write!(h, "<li>{}</li>", esc(v));
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

fn svg(o: &Outcome) -> String {
    let s = &o.samples;
    if s.samples.is_empty() {
        return "<p>(no samples)</p>".to_owned();
    }
    let t_max = s.samples.iter().map(|x| x.t).chain(s.markers.iter().map(|m| m.t)).fold(1.0_f64, f64::max);
    let series: BTreeSet<&String> = s.samples.iter().flat_map(|x| x.nodes.keys()).collect();
    let series: Vec<&String> = series.into_iter().collect();
    let max_nodes = s.samples.iter().map(|x| x.nodes.values().sum::<usize>()).max().unwrap_or(0);
    let max_pending = s.samples.iter().map(|x| x.pending_pods).max().unwrap_or(0);
    let y_max = max_nodes.max(max_pending).max(1) as f64;
    let cost_max = s.samples.iter().map(|x| x.fleet_cost_per_hour).fold(0.0_f64, f64::max).max(0.0001);
    let x = |t: f64| PAD + t / t_max * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD - v / y_max * (H - 2.0 * PAD);
    let yc = |v: f64| H - PAD - v / cost_max * (H - 2.0 * PAD);
    let mut g = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" style=\"border:1px solid #ddd\">"
    );
    // Stacked areas: nodes by capacity type and zone.
    let mut below = vec![0.0_f64; s.samples.len()];
    for (k, key) in series.iter().enumerate() {
        let top: Vec<f64> =
            s.samples.iter().zip(&below).map(|(smp, b)| b + smp.nodes.get(*key).copied().unwrap_or(0) as f64).collect();
        let mut pts = String::new();
        for (smp, v) in s.samples.iter().zip(&top) {
            let _ = write!(pts, "{:.1},{:.1} ", x(smp.t), y(*v));
        }
        for (smp, v) in s.samples.iter().zip(&below).rev() {
            let _ = write!(pts, "{:.1},{:.1} ", x(smp.t), y(*v));
        }
        let _ = write!(
            g,
            "<polygon points=\"{pts}\" fill=\"{}\" fill-opacity=\"0.55\" stroke=\"none\"><title>nodes {}</title></polygon>",
            COLORS[k % COLORS.len()],
            esc(key)
        );
        below = top;
    }
    // Pending pods and fleet cost as lines.
    let line = |vals: Vec<(f64, f64)>, color: &str, dash: &str, title: &str| {
        let pts: String = vals.iter().map(|(a, b)| format!("{a:.1},{b:.1} ")).collect();
        format!(
            "<polyline points=\"{pts}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"><title>{title}</title></polyline>"
        )
    };
    g.push_str(&line(
        s.samples.iter().map(|p| (x(p.t), y(p.pending_pods as f64))).collect(),
        "#000",
        "",
        "pending pods",
    ));
    g.push_str(&line(
        s.samples.iter().map(|p| (x(p.t), yc(p.fleet_cost_per_hour))).collect(),
        "#b8860b",
        "5,3",
        "fleet cost $/h",
    ));
    // Markers.
    for m in &s.markers {
        let color = match m.kind.as_str() {
            "fault" => "#d62728",
            "autoscaler" => "#9467bd",
            _ => "#999",
        };
        let _ = write!(
            g,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{color}\" stroke-dasharray=\"2,2\"><title>t={3:.0}s {4}: {5}</title></line>",
            x(m.t),
            PAD / 2.0,
            H - PAD,
            m.t,
            esc(&m.kind),
            esc(&m.label)
        );
    }
    // Axes.
    let _ = write!(
        g,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/><line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#333\"/><text x=\"{PAD}\" y=\"{t}\" font-size=\"11\">0</text><text x=\"{r}\" y=\"{t}\" font-size=\"11\" text-anchor=\"end\">{t_max:.0}s world time</text><text x=\"4\" y=\"{PAD}\" font-size=\"11\">{y_max:.0}</text><text x=\"{r}\" y=\"{PAD}\" font-size=\"11\" text-anchor=\"end\" fill=\"#b8860b\">${cost_max:.3}/h</text>",
        b = H - PAD,
        r = W - PAD,
        t = H - PAD + 16.0,
    );
    g.push_str("</svg>");
    let mut legend = String::from("<p class=\"legend\">");
    for (k, key) in series.iter().enumerate() {
        let _ = write!(legend, "<span style=\"color:{}\">&#9632; nodes {}</span>", COLORS[k % COLORS.len()], esc(key));
    }
    legend.push_str("<span>&#9473; pending pods</span><span style=\"color:#b8860b\">&#9476; fleet cost $/h</span><span style=\"color:#d62728\">&#9482; fault</span><span style=\"color:#9467bd\">&#9482; autoscaler kill/start</span></p>");
    let mut marks = String::from("<ul>");
    for m in &s.markers {
        let _ = write!(marks, "<li>t={:.0}s {}: {}</li>", m.t, esc(&m.kind), esc(&m.label));
    }
    marks.push_str("</ul>");
    format!("{g}{legend}{marks}")
}
