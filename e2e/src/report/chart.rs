//! One run drawn as one SVG on a given time scale: a time axis on top, labelled markers, a lane
//! per NodeClaim, pending and running pods, fleet cost, and the time axis again (with real time)
//! at the bottom. Marker lines cross every panel, so a fault lines up with what followed it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::lanes::{self, LANE_H};
use super::svg::{TimeScale, esc, fmt_cost, fmt_num, text_width, truncate, value_ticks};
use super::view::{Marker, MarkerKind, RunView, Sample};

/// Page geometry: the SVG's width and where the plot starts and ends.
pub const WIDTH: f64 = 1320.0;
pub const GUTTER: f64 = 240.0;
const RIGHT: f64 = 28.0;
const AXIS_H: f64 = 26.0;
const LABEL_ROW_H: f64 = 14.0;
const MAX_LABEL_ROWS: usize = 8;
const HEADER_H: f64 = 22.0;
const PODS_H: f64 = 120.0;
const COST_H: f64 = 80.0;
const GAP: f64 = 14.0;

/// The time scale for runs drawn together: wide enough for the longest.
pub fn scale_for(runs: &[&RunView]) -> TimeScale {
    let end = runs.iter().map(|r| r.end_time()).fold(0.0, f64::max);
    TimeScale::new(end, GUTTER, WIDTH - RIGHT)
}

/// Markers close together (same kind, a few pixels apart) share one label.
struct LabelGroup<'a> {
    kind: MarkerKind,
    x: f64,
    members: Vec<&'a Marker>,
}

/// A placed label: the group, its row and where its text starts.
struct Placed<'a> {
    group: LabelGroup<'a>,
    row: usize,
    start: f64,
    text: String,
}

fn place_labels<'a>(markers: &'a [Marker], scale: &TimeScale) -> Vec<Placed<'a>> {
    let mut groups: Vec<LabelGroup<'a>> = Vec::new();
    for m in markers {
        let x = scale.x(m.t);
        match groups.iter_mut().rev().find(|g| g.kind == m.kind && (x - g.x).abs() < 4.0) {
            Some(g) => g.members.push(m),
            None => groups.push(LabelGroup { kind: m.kind, x, members: vec![m] }),
        }
    }
    groups.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut row_ends: Vec<f64> = Vec::new();
    let mut placed = Vec::new();
    for g in groups {
        let text = match g.members.as_slice() {
            [one] => truncate(&one.label, 36),
            many => format!("{} ×{}", g.kind.title(), many.len()),
        };
        let w = text_width(&text, 11.0);
        // Left-aligned after the line, unless that runs off the plot.
        let start = if g.x + 4.0 + w > scale.x1 + RIGHT { g.x - 4.0 - w } else { g.x + 4.0 };
        let row = match row_ends.iter().position(|end| *end + 8.0 < start) {
            Some(r) => r,
            None if row_ends.len() < MAX_LABEL_ROWS => {
                row_ends.push(f64::MIN);
                row_ends.len() - 1
            }
            // No room: the line and its hover text stay, the label goes.
            None => continue,
        };
        row_ends[row] = start + w;
        placed.push(Placed { group: g, row, start, text });
    }
    placed
}

fn marker_title(m: &Marker, run: &RunView) -> String {
    let mut t = format!("{} at {} s", m.kind.title(), fmt_num((m.t * 10.0).round() / 10.0));
    if let Some(r) = run.real_at(m.t) {
        let _ = write!(t, " (real {} s)", fmt_num((r * 10.0).round() / 10.0));
    }
    let _ = write!(t, "\n{}", m.label);
    if let Some(i) = &m.instance_id {
        let _ = write!(t, "\ninstance {i}");
        if let Some(l) = run.lanes.iter().find(|l| l.instance_id.as_deref() == Some(i.as_str())) {
            let _ = write!(t, " (NodeClaim {}, {})", l.nodeclaim, l.label());
        }
    }
    t
}

fn time_axis(out: &mut String, scale: &TimeScale, y: f64, top: bool, run: &RunView) {
    let class = if top { "axis axis-time axis-top" } else { "axis axis-time axis-bottom" };
    let _ = write!(out, "<g class=\"{class}\">");
    let _ = write!(
        out,
        "<line class=\"axis-line\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>",
        scale.x0, scale.x1
    );
    for t in scale.ticks() {
        let x = scale.x(t);
        let (tick_to, label_y) = if top { (y - 5.0, y - 8.0) } else { (y + 5.0, y + 17.0) };
        let _ = write!(
            out,
            "<g class=\"tick\" data-t=\"{t}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y:.1}\" y2=\"{tick_to:.1}\"/><text class=\"tick-label\" x=\"{x:.1}\" y=\"{label_y:.1}\" text-anchor=\"middle\">{}</text>",
            esc(&scale.tick_label(t))
        );
        if !top && let Some(r) = run.real_at(t) {
            let _ = write!(
                out,
                "<text class=\"tick-real\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} s</text>",
                y + 31.0,
                fmt_num(r.round())
            );
        }
        out.push_str("</g>");
    }
    // Titles end left of the first tick's label (centred on x0).
    let title_x = scale.x0 - 10.0 - text_width(&scale.tick_label(0.0), 11.0) / 2.0;
    let title_y = if top { y - 8.0 } else { y + 17.0 };
    let _ = write!(
        out,
        "<text class=\"axis-title\" x=\"{title_x:.1}\" y=\"{title_y:.1}\" text-anchor=\"end\">world time</text>"
    );
    if !top && !run.series.is_empty() {
        let _ = write!(
            out,
            "<text class=\"axis-title axis-title-real\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">real time</text>",
            title_x,
            y + 31.0
        );
    }
    out.push_str("</g>");
}

/// A step line (the value holds until the next sample) through `points`, as an SVG path.
fn step_path(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        if i == 0 {
            let _ = write!(d, "M{x:.1},{y:.1}");
        } else {
            let _ = write!(d, " H{x:.1} V{y:.1}");
        }
    }
    d
}

/// A value chart between `top` and `top + h`: y ticks in the gutter, series as step lines.
struct ValueChart<'a> {
    id: &'a str,
    title: &'a str,
    top: f64,
    h: f64,
    max: f64,
    whole: bool,
    unit: fn(f64) -> String,
}

impl ValueChart<'_> {
    fn y(&self, v: f64, top_value: f64) -> f64 {
        self.top + self.h - v / top_value * self.h
    }

    /// Draws the frame and the series (`(series id, class, values)`), returns nothing else.
    fn draw(
        &self,
        out: &mut String,
        scale: &TimeScale,
        samples: &[Sample],
        series: &[(&str, &str, Vec<f64>)],
        end: f64,
    ) {
        let (step, top_value) = value_ticks(self.max, 4, self.whole);
        let _ = write!(out, "<g class=\"chart chart-{}\" data-chart=\"{}\">", self.id, self.id);
        let _ =
            write!(out, "<text class=\"section-title\" x=\"8\" y=\"{:.1}\">{}</text>", self.top - 8.0, esc(self.title));
        let _ = write!(out, "<g class=\"axis axis-{}\">", self.id);
        let mut v = 0.0;
        while v <= top_value + step / 2.0 {
            let y = self.y(v, top_value);
            let _ = write!(
                out,
                "<g class=\"tick\" data-v=\"{v}\"><line class=\"grid\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></g>",
                scale.x0,
                scale.x1,
                scale.x0 - 8.0,
                y + 4.0,
                esc(&(self.unit)(v))
            );
            v += step;
        }
        out.push_str("</g>");
        let _ = write!(
            out,
            "<rect class=\"plot-frame\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            scale.x0,
            self.top,
            scale.x1 - scale.x0,
            self.h
        );
        for (id, class, values) in series {
            let mut pts: Vec<(f64, f64)> =
                samples.iter().zip(values).map(|(s, v)| (scale.x(s.t), self.y(*v, top_value))).collect();
            if let Some(last) = pts.last().copied() {
                pts.push((scale.x(end), last.1));
            }
            let line = step_path(&pts);
            if let Some(area) = class.strip_suffix(" area")
                && let Some(first) = pts.first()
            {
                let base = self.top + self.h;
                let _ = write!(out, "<path class=\"{area}-fill\" d=\"{line} V{base:.1} H{:.1} Z\"/>", first.0);
            }
            let _ = write!(out, "<path class=\"series {class}\" data-series=\"{id}\" d=\"{line}\"/>");
        }
        out.push_str("</g>");
    }
}

fn pods_label(v: f64) -> String {
    format!("{} pods", fmt_num(v))
}

/// The run as one SVG on `scale`; `panel` names it in ids (`a`, `b` on a comparison page).
pub fn run_svg(run: &RunView, scale: &TimeScale, panel: &str) -> String {
    let end = run.end_time();
    let placed = place_labels(&run.markers, scale);
    let rows = placed.iter().map(|p| p.row + 1).max().unwrap_or(0);
    let band_top = AXIS_H + 4.0;
    let lanes_header = band_top + rows as f64 * LABEL_ROW_H + 6.0;
    let lanes_top = lanes_header + HEADER_H;
    let lane_rows = run.lanes.len().max(1);
    let pods_top = lanes_top + lane_rows as f64 * LANE_H + GAP + HEADER_H;
    let cost_top = pods_top + PODS_H + GAP + HEADER_H;
    let bottom_axis = cost_top + COST_H + 8.0;
    let height = bottom_axis + 42.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"run-chart\" id=\"chart-{p}\" data-panel=\"{p}\" width=\"{WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH} {height:.0}\" data-x0=\"{x0}\" data-x1=\"{x1}\" data-t-max=\"{tm}\" data-plot-top=\"{band_top}\" data-plot-bottom=\"{bottom_axis}\">",
        p = esc(panel),
        x0 = scale.x0,
        x1 = scale.x1,
        tm = scale.t_max,
    );
    // Vertical grid at the ticks, behind everything.
    out.push_str("<g class=\"grid-x\">");
    for t in scale.ticks() {
        let x = scale.x(t);
        let _ =
            write!(out, "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{AXIS_H}\" y2=\"{bottom_axis:.1}\"/>");
    }
    out.push_str("</g>");
    time_axis(&mut out, scale, AXIS_H, true, run);

    // Lanes: zebra rows, then the bars.
    let _ = write!(
        out,
        "<text class=\"section-title\" x=\"8\" y=\"{:.1}\">NodeClaims ({})</text>",
        lanes_top - 8.0,
        run.lanes.len()
    );
    for i in (0..lane_rows).step_by(2) {
        let _ = write!(
            out,
            "<rect class=\"zebra\" x=\"0\" y=\"{:.1}\" width=\"{WIDTH}\" height=\"{LANE_H}\"/>",
            lanes_top + i as f64 * LANE_H
        );
    }
    if run.lanes.is_empty() {
        let _ = write!(
            out,
            "<text class=\"lane-label empty\" x=\"{:.1}\" y=\"{:.1}\">no NodeClaim was created</text>",
            scale.x0 + 8.0,
            lanes_top + 15.0
        );
    }

    // Marker lines (with a wide invisible line to hover) and their labels.
    out.push_str("<g class=\"markers\">");
    for m in &run.markers {
        let x = scale.x(m.t);
        let _ = write!(
            out,
            "<g class=\"marker mk-{id}\" data-marker-kind=\"{id}\" data-t=\"{t:.3}\"{inst}><title>{title}</title><line class=\"marker-line\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{band_top:.1}\" y2=\"{bottom_axis:.1}\"/><line class=\"marker-hit\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{band_top:.1}\" y2=\"{bottom_axis:.1}\"/></g>",
            id = m.kind.id(),
            t = m.t,
            inst = m.instance_id.as_ref().map(|i| format!(" data-instance=\"{}\"", esc(i))).unwrap_or_default(),
            title = esc(&marker_title(m, run)),
        );
    }
    for p in &placed {
        let y = band_top + (p.row as f64 + 1.0) * LABEL_ROW_H - 3.0;
        let titles: Vec<String> = p.group.members.iter().map(|m| marker_title(m, run)).collect();
        let _ = write!(
            out,
            "<text class=\"marker-label mk-{id}\" data-marker-kind=\"{id}\" data-t=\"{t:.3}\" data-count=\"{n}\" x=\"{x:.1}\" y=\"{y:.1}\">{text}<title>{title}</title></text>",
            id = p.group.kind.id(),
            t = p.group.members.first().map_or(0.0, |m| m.t),
            n = p.group.members.len(),
            x = p.start,
            text = esc(&p.text),
            title = esc(&titles.join("\n\n")),
        );
    }
    out.push_str("</g>");

    // The lanes, with glyphs for markers about their instances.
    let mut by_instance: BTreeMap<&str, Vec<&Marker>> = BTreeMap::new();
    for m in &run.markers {
        if let Some(i) = &m.instance_id {
            by_instance.entry(i.as_str()).or_default().push(m);
        }
    }
    out.push_str("<g class=\"lanes\">");
    for (i, lane) in run.lanes.iter().enumerate() {
        let markers = lane.instance_id.as_deref().and_then(|id| by_instance.get(id)).cloned().unwrap_or_default();
        lanes::draw(&mut out, lane, lanes_top + i as f64 * LANE_H, scale, end, &markers);
    }
    out.push_str("</g>");

    // Pods and cost.
    let samples = &run.series;
    let pods_max = samples.iter().map(|s| s.pending_pods.max(s.running_pods)).max().unwrap_or(0) as f64;
    ValueChart { id: "pods", title: "Pods", top: pods_top, h: PODS_H, max: pods_max, whole: true, unit: pods_label }
        .draw(
            &mut out,
            scale,
            samples,
            &[
                ("pending-pods", "series-pending area", samples.iter().map(|s| s.pending_pods as f64).collect()),
                ("running-pods", "series-running", samples.iter().map(|s| s.running_pods as f64).collect()),
            ],
            end,
        );
    let cost_max = samples.iter().map(|s| s.fleet_cost_per_hour).fold(0.0, f64::max);
    ValueChart {
        id: "cost",
        title: "Fleet cost",
        top: cost_top,
        h: COST_H,
        max: cost_max,
        whole: false,
        unit: fmt_cost,
    }
    .draw(
        &mut out,
        scale,
        samples,
        &[("fleet-cost", "series-cost area", samples.iter().map(|s| s.fleet_cost_per_hour).collect())],
        end,
    );
    if samples.is_empty() {
        let _ = write!(
            out,
            "<text class=\"lane-label empty\" x=\"{:.1}\" y=\"{:.1}\">no samples</text>",
            scale.x0 + 8.0,
            pods_top + 20.0
        );
    }
    time_axis(&mut out, scale, bottom_axis, false, run);
    // The hover cursor (moved by the page's script).
    let _ = write!(
        out,
        "<g class=\"cursor\" visibility=\"hidden\"><line x1=\"0\" x2=\"0\" y1=\"{AXIS_H}\" y2=\"{bottom_axis:.1}\"/><text class=\"cursor-label\" x=\"0\" y=\"{:.1}\"></text></g>",
        bottom_axis - 5.0
    );
    out.push_str("</svg>");
    out
}
