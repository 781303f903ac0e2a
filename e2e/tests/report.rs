//! The HTML report in a real browser: a run like fis-50-percent (spot NodeClaims, half of them
//! interrupted by FIS, replacements, a failed launch, an autoscaler restart) is rendered, opened
//! in headless Chromium, and what is drawn is measured in the page (a script records the boxes of
//! lanes, markers, ticks, labels and legend entries; `--dump-dom` returns them): one lane per
//! NodeClaim with its label, markers of each kind where their times put them on the axis, axis
//! labels with units, legend entries, no labels on top of each other. Screenshots are written
//! next to the reports (paths printed).
//!
//! Chromium is a machine capability `make setup` installs (Debian's `chromium` package); without
//! it these tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::report::html::{render, render_comparison};
use e2e::report::view::{
    CapacityType, Lane, Marker, MarkerKind, RunMeta, RunStatus, RunView, Sample, Samples, capacity_id,
};
use serde_json::Value;

const ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];

fn marker(t: f64, kind: MarkerKind, label: &str, instance: Option<&str>) -> Marker {
    Marker { t, kind, label: label.into(), instance_id: instance.map(str::to_owned) }
}

/// A run like fis-50-percent: 10 spot claims; FIS interrupts 5 at t=120 (rebalance and warning at
/// once, reclaim at 240); `fast` replaces them at the warning (no pod pending), otherwise
/// replacements wait until the reclaim and pods are pending meanwhile.
fn fis_run(fast: bool) -> RunView {
    let mut lanes = Vec::new();
    let mut markers = vec![
        marker(1.0, MarkerKind::Step, "scale inflate to 40", None),
        marker(119.5, MarkerKind::Fault, "FIS experiment fis/spot-interrupt-50-percent.json", None),
        marker(120.0, MarkerKind::FisExperiment, "FIS EXPabc123 running", None),
        marker(300.0, MarkerKind::Autoscaler, "autoscaler killed", None),
        marker(330.0, MarkerKind::Autoscaler, "autoscaler started", None),
        marker(480.0, MarkerKind::FisExperiment, "FIS EXPabc123 completed", None),
    ];
    // A spot launch that failed (capacity): created and gone, never launched.
    lanes.push(Lane {
        nodeclaim: "spot-failed".into(),
        nodepool: "spot".into(),
        created: 2.0,
        disrupted: Some(3.0),
        disruption: Some("deleted".into()),
        terminated: Some(3.5),
        ..Lane::default()
    });
    for i in 0..10 {
        let id = format!("i-0{i:02}aaaabbbbcccc");
        let mut lane = Lane {
            nodeclaim: format!("spot-{i:02}x7k"),
            nodepool: "spot".into(),
            capacity_type: Some(CapacityType::Spot),
            instance_type: Some(if i % 3 == 0 { "m5.xlarge" } else { "m5.large" }.into()),
            zone: Some(ZONES[i % 3].into()),
            instance_id: Some(id.clone()),
            created: 2.0 + i as f64 * 0.2,
            launched: Some(3.0 + i as f64 * 0.2),
            registered: Some(18.0 + i as f64),
            ready: Some(24.0 + i as f64),
            ..Lane::default()
        };
        if i < 5 {
            markers.push(marker(120.0, MarkerKind::RebalanceRecommendation, "rebalance", Some(&id)));
            markers.push(marker(120.0, MarkerKind::InterruptionWarning, "interruption warning (terminate)", Some(&id)));
            if (fast && i < 4) || i < 2 {
                // Drained and terminated by the autoscaler before the reclaim.
                lane.disrupted = Some(121.0);
                lane.disruption = Some("deleted".into());
                lane.terminating = Some(if fast { 170.0 } else { 200.0 } + i as f64);
                lane.terminated = lane.terminating.map(|t| t + 4.0);
            } else {
                lane.terminating = Some(240.0);
                lane.disrupted = Some(241.0);
                lane.terminated = Some(244.0);
                markers.push(marker(240.0, MarkerKind::Reclaim, "reclaim", Some(&id)));
            }
        }
        lanes.push(lane);
    }
    for i in 0..5 {
        let created = if fast { 121.0 } else { 241.0 } + i as f64 * 0.3;
        lanes.push(Lane {
            nodeclaim: format!("spot-r{i}q2m"),
            nodepool: "spot".into(),
            capacity_type: Some(CapacityType::Spot),
            instance_type: Some("m5.large".into()),
            zone: Some(ZONES[(i + 1) % 3].into()),
            instance_id: Some(format!("i-1{i:02}ddddeeeeffff")),
            created,
            launched: Some(created + 1.0),
            registered: Some(created + 17.0),
            ready: Some(created + 22.0),
            ..Lane::default()
        });
    }
    for i in 0..4 {
        lanes.push(Lane {
            nodeclaim: format!("on-demand-{i}p8w"),
            nodepool: "on-demand".into(),
            capacity_type: Some(CapacityType::OnDemand),
            instance_type: Some("c5.large".into()),
            zone: Some(ZONES[i % 3].into()),
            instance_id: Some(format!("i-2{i:02}ffff00001111")),
            created: 340.0 + i as f64,
            launched: Some(341.0 + i as f64),
            registered: Some(356.0 + i as f64),
            ready: Some(360.0 + i as f64),
            ..Lane::default()
        });
    }
    let samples = (0..=500)
        .step_by(2)
        .map(|t| {
            let t = t as f64;
            let pending = if t < 26.0 {
                40
            } else if !fast && (240.0..266.0).contains(&t) {
                20
            } else if (340.0..362.0).contains(&t) {
                8
            } else {
                0
            };
            let nodes = lanes.iter().filter(|l| l.ready.is_some_and(|r| r <= t) && l.terminated.is_none_or(|e| e > t));
            let cost: f64 =
                nodes.clone().map(|l| if l.capacity_type == Some(CapacityType::Spot) { 0.035 } else { 0.085 }).sum();
            Sample {
                t,
                real: t / 10.0,
                nodes: Default::default(),
                pending_pods: pending,
                running_pods: 48 - pending.min(48),
                fleet_cost_per_hour: cost,
            }
        })
        .collect();
    let meta = RunMeta {
        scenario: "fis-50-percent".into(),
        description: "An FIS experiment interrupts half of the spot fleet; replacements come up, no pod is lost."
            .into(),
        seed: 7,
        autoscaler: Some(if fast { "spotbench" } else { "karpenter" }.into()),
        status: RunStatus::Passed,
        wall_seconds: 61.5,
        notes: Vec::new(),
    };
    RunView::new(
        meta,
        Samples {
            samples,
            markers,
            lanes,
            pdb_violations: vec!["PDB inflate had 7 healthy pods, wants 8 (t=241s)".into()],
        },
        Some("scenario: fis-50-percent\nseed: 7\nsteps: []\noutcome: passed\n".into()),
    )
}

/// The Chromium binary, or why there is none.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path).flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n))));
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("headless Chromium is needed to check the HTML report and none is installed: run `make setup` (it installs Debian's chromium package)")
    })
}

/// Runs headless Chromium on `page` with `args`; returns its stdout.
fn run_chromium(page: &Path, args: &[String]) -> String {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("spotbench-report-chromium-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let (stdout, stderr) = (profile.with_extension("stdout"), profile.with_extension("stderr"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        // Files, not pipes: a DOM larger than a pipe's buffer would block Chromium.
        .stdout(std::fs::File::create(&stdout).expect("chromium stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("chromium stderr file"))
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish with {} in 90 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    let _ = (std::fs::remove_file(&stdout), std::fs::remove_file(&stderr));
    assert!(status.success(), "chromium failed ({status}): {err}");
    out
}

/// Records what the page draws, as JSON in a `<script id="measured">` the dumped DOM carries.
const MEASURE: &str = r#"<script>
(function () {
  function box(e) { var b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; }
  function panel(e) { var s = e.closest('svg.run-chart'); return s ? s.dataset.panel : null; }
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  var out = {
    page: {w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight},
    lanes: all('.lane[data-nodeclaim]').map(function (l) {
      var label = l.querySelector('.lane-label');
      return {panel: panel(l), nodeclaim: l.dataset.nodeclaim, capacityType: l.dataset.capacityType,
        label: label.textContent, labelBox: box(label),
        segs: Array.prototype.slice.call(l.querySelectorAll('.seg')).map(function (s) {
          var cs = getComputedStyle(s);
          return {phase: s.dataset.phase, from: +s.dataset.from, to: +s.dataset.to, box: box(s), fill: cs.fill, opacity: cs.fillOpacity};
        }),
        glyphs: Array.prototype.slice.call(l.querySelectorAll('.lane-marker')).map(function (g) {
          return {kind: g.dataset.markerKind, t: +g.dataset.t, box: box(g)};
        })};
    }),
    markers: all('.marker[data-marker-kind]').map(function (m) {
      return {panel: panel(m), kind: m.dataset.markerKind, t: +m.dataset.t, box: box(m.querySelector('.marker-line')),
        stroke: getComputedStyle(m.querySelector('.marker-line')).stroke};
    }),
    markerLabels: all('.marker-label').map(function (m) {
      return {panel: panel(m), kind: m.dataset.markerKind, text: m.textContent, box: box(m)};
    }),
    ticks: all('.axis-time .tick').map(function (t) {
      return {panel: panel(t), top: !!t.closest('.axis-top'), t: +t.dataset.t, label: t.querySelector('.tick-label').textContent,
        x: box(t.querySelector('line')).x, labelBox: box(t.querySelector('.tick-label'))};
    }),
    valueTicks: all('.chart .tick-label').map(function (t) {
      return {panel: panel(t), chart: t.closest('.chart').dataset.chart, label: t.textContent, box: box(t)};
    }),
    axisTitles: all('.axis-title').map(function (t) { return t.textContent; }),
    legend: all('.legend-item').map(function (i) { return {key: i.dataset.legend, text: i.textContent, box: box(i)}; }),
    charts: all('svg.run-chart').map(function (s) { return {panel: s.dataset.panel, box: box(s)}; }),
    summaryColumns: all('table.summary thead th').length,
    summaryRows: all('table.summary tbody tr').length
  };
  var s = document.createElement('script');
  s.type = 'application/json'; s.id = 'measured';
  s.textContent = JSON.stringify(out);
  document.body.appendChild(s);
})();
</script>"#;

/// Writes the page, measures it in Chromium and takes a screenshot of all of it next to it.
fn open(html: &str, name: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&dir).expect("report dir");
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, html).expect("writing the report");
    let probe = dir.join(format!("{name}.measure.html"));
    std::fs::write(&probe, html.replace("</body>", &format!("{MEASURE}</body>"))).expect("writing the probe");
    let dom = run_chromium(&probe, &["--window-size=1400,1000".to_owned(), "--dump-dom".to_owned()]);
    let start = dom.find(r#"<script type="application/json" id="measured">"#).expect("the measuring script ran");
    let json = &dom[start..];
    let json = &json[json.find('>').expect("tag end") + 1..json.find("</script>").expect("script end")];
    let measured: Value = serde_json::from_str(json).expect("measurements are JSON");
    let height = measured["page"]["h"].as_f64().expect("page height").ceil() as u64;
    let shot = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    run_chromium(&page, &[format!("--window-size=1400,{height}"), format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a real screenshot at {}", shot.display());
    println!("report: {}\nscreenshot: {}", page.display(), shot.display());
    measured
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn in_panel<'a>(list: &'a Value, panel: &str) -> Vec<&'a Value> {
    list.as_array().expect("a list").iter().filter(|v| v["panel"] == panel).collect()
}

/// The x the bottom axis's ticks put world time `t` at (a line through the first and last tick).
fn x_of(ticks: &[&Value], t: f64) -> f64 {
    let bottom: Vec<&&Value> = ticks.iter().filter(|t| t["top"] == false).collect();
    let (a, b) = (bottom.first().expect("ticks"), bottom.last().expect("ticks"));
    f(&a["x"]) + (t - f(&a["t"])) / (f(&b["t"]) - f(&a["t"])) * (f(&b["x"]) - f(&a["x"]))
}

fn overlaps(a: &Value, b: &Value) -> bool {
    let (ax, ay, aw, ah) = (f(&a["x"]), f(&a["y"]), f(&a["w"]), f(&a["h"]));
    let (bx, by, bw, bh) = (f(&b["x"]), f(&b["y"]), f(&b["w"]), f(&b["h"]));
    ax < bx + bw - 0.5 && bx < ax + aw - 0.5 && ay < by + bh - 0.5 && by < ay + ah - 0.5
}

fn assert_apart(boxes: &[(&str, &Value)], what: &str) {
    for (i, (na, a)) in boxes.iter().enumerate() {
        for (nb, b) in &boxes[i + 1..] {
            assert!(!overlaps(a, b), "{what} overlap: {na:?} {a} and {nb:?} {b}");
        }
    }
}

/// Everything one panel must show of `run`.
fn check_panel(m: &Value, panel: &str, run: &RunView) {
    let ticks = in_panel(&m["ticks"], panel);
    let bottom: Vec<&&Value> = ticks.iter().filter(|t| t["top"] == false).collect();
    assert!(bottom.len() >= 5, "at least 5 time ticks: {bottom:?}");
    for t in &ticks {
        let label = t["label"].as_str().unwrap_or_default();
        let (n, unit) = label.split_once(' ').unwrap_or_default();
        assert!(n.parse::<f64>().is_ok() && matches!(unit, "s" | "min"), "tick label with a unit: {label:?}");
    }
    assert!(bottom.windows(2).all(|w| f(&w[0]["x"]) < f(&w[1]["x"])), "ticks left to right");
    let labels: Vec<(&str, &Value)> =
        ticks.iter().map(|t| (t["label"].as_str().unwrap_or_default(), &t["labelBox"])).collect();
    assert_apart(&labels, "tick labels");
    let end = x_of(&ticks, run.end_time());
    let chart = in_panel(&m["charts"], panel)[0];
    assert!(end <= f(&chart["box"]["x"]) + f(&chart["box"]["w"]), "the run fits the axis");

    // One lane per NodeClaim, in order, labelled, coloured by capacity type, with its bar where
    // its times put it.
    let lanes = in_panel(&m["lanes"], panel);
    assert_eq!(lanes.len(), run.lanes.len(), "one lane per NodeClaim");
    let plot_x0 = x_of(&ticks, 0.0);
    for (drawn, lane) in lanes.iter().zip(&run.lanes) {
        assert_eq!(drawn["nodeclaim"], lane.nodeclaim.as_str());
        assert_eq!(drawn["label"], lane.label().as_str());
        assert_eq!(drawn["capacityType"], capacity_id(lane.capacity_type));
        let label_box = &drawn["labelBox"];
        assert!(f(&label_box["w"]) > 20.0, "a visible label for {}", lane.nodeclaim);
        assert!(
            f(&label_box["x"]) + f(&label_box["w"]) < plot_x0,
            "the label of {} is left of the plot",
            lane.nodeclaim
        );
        let segs = drawn["segs"].as_array().expect("segments");
        let width: f64 = segs.iter().map(|s| f(&s["box"]["w"])).sum();
        assert!(width > 2.0, "{} has a bar", lane.nodeclaim);
        let first = &segs[0];
        assert!(
            (f(&first["box"]["x"]) - x_of(&ticks, lane.created)).abs() < 1.5,
            "{} starts at its creation",
            lane.nodeclaim
        );
        let last = segs.last().expect("a segment");
        let right = f(&last["box"]["x"]) + f(&last["box"]["w"]);
        let want = x_of(&ticks, lane.terminated.unwrap_or(run.end_time()));
        assert!((right - want).abs() < 1.5, "{} ends at {want} (drawn {right})", lane.nodeclaim);
        // The phases look different from each other.
        let looks: std::collections::BTreeSet<String> =
            segs.iter().map(|s| format!("{} {}", s["fill"], s["opacity"])).collect();
        assert_eq!(looks.len(), segs.len(), "distinct phases for {}: {segs:?}", lane.nodeclaim);
    }
    let ready_fill = |ct: &str| {
        lanes
            .iter()
            .filter(|l| l["capacityType"] == ct)
            .flat_map(|l| l["segs"].as_array().cloned().unwrap_or_default())
            .find(|s| s["phase"] == "ready")
            .map(|s| s["fill"].as_str().unwrap_or_default().to_owned())
    };
    if let (Some(spot), Some(od)) = (ready_fill("spot"), ready_fill("on-demand")) {
        assert_ne!(spot, od, "spot and on-demand lanes are told apart by colour");
    }
    let label_boxes: Vec<(&str, &Value)> =
        lanes.iter().map(|l| (l["nodeclaim"].as_str().unwrap_or_default(), &l["labelBox"])).collect();
    assert_apart(&label_boxes, "lane labels");

    // Every marker, at the x its time gives.
    let markers = in_panel(&m["markers"], panel);
    assert_eq!(markers.len(), run.markers.len());
    for kind in MarkerKind::ALL {
        let want = run.markers.iter().filter(|x| x.kind == kind).count();
        let drawn: Vec<&&Value> = markers.iter().filter(|x| x["kind"] == kind.id()).collect();
        assert_eq!(drawn.len(), want, "{} markers", kind.id());
        for d in drawn {
            let x = f(&d["box"]["x"]) + f(&d["box"]["w"]) / 2.0;
            assert!((x - x_of(&ticks, f(&d["t"]))).abs() < 1.5, "{} marker at t={} drawn at x={x}", kind.id(), d["t"]);
        }
    }
    // Markers about an instance show on its lane too.
    for mk in run.markers.iter().filter(|x| x.kind == MarkerKind::InterruptionWarning) {
        let lane = run.lanes.iter().position(|l| l.instance_id == mk.instance_id).expect("the warned lane");
        let glyphs = lanes[lane]["glyphs"].as_array().expect("glyphs");
        assert!(
            glyphs.iter().any(|g| g["kind"] == "interruption-warning" && f(&g["box"]["w"]) > 0.0),
            "the warning shows on {}",
            run.lanes[lane].nodeclaim
        );
    }
    let marker_labels = in_panel(&m["markerLabels"], panel);
    assert!(
        marker_labels
            .iter()
            .any(|l| l["kind"] == "interruption-warning" && l["text"].as_str().is_some_and(|t| t.contains("×5"))),
        "five warnings at once share one label: {marker_labels:?}"
    );
    let boxes: Vec<(&str, &Value)> =
        marker_labels.iter().map(|l| (l["text"].as_str().unwrap_or_default(), &l["box"])).collect();
    assert_apart(&boxes, "marker labels");

    // The value axes say their units.
    let values = in_panel(&m["valueTicks"], panel);
    assert!(
        values
            .iter()
            .filter(|v| v["chart"] == "pods")
            .all(|v| v["label"].as_str().is_some_and(|l| l.ends_with(" pods")))
    );
    assert!(
        values
            .iter()
            .filter(|v| v["chart"] == "cost")
            .all(|v| { v["label"].as_str().is_some_and(|l| l.starts_with('$') && l.ends_with("/h")) })
    );
    assert!(values.iter().any(|v| v["chart"] == "pods") && values.iter().any(|v| v["chart"] == "cost"));
}

#[test]
fn the_report_draws_lanes_markers_and_axes_in_a_browser() {
    let run = fis_run(true);
    assert_eq!(run.lanes.len(), 20);
    let m = open(&render(&run), "fis-50-percent");
    check_panel(&m, "run", &run);
    let titles: Vec<&str> = m["axisTitles"].as_array().expect("titles").iter().filter_map(Value::as_str).collect();
    assert!(titles.contains(&"world time") && titles.contains(&"real time"), "{titles:?}");
    let legend: Vec<&str> = m["legend"].as_array().expect("legend").iter().filter_map(|i| i["key"].as_str()).collect();
    for key in [
        "capacity-type-spot",
        "capacity-type-on-demand",
        "phase-launching",
        "phase-ready",
        "phase-draining",
        "phase-shutting-down",
        "marker-fault",
        "marker-fis-experiment",
        "marker-rebalance-recommendation",
        "marker-interruption-warning",
        "marker-reclaim",
        "marker-autoscaler",
        "pending-pods",
        "running-pods",
        "fleet-cost",
    ] {
        assert!(legend.contains(&key), "legend entry {key} in {legend:?}");
    }
    assert!(m["legend"].as_array().expect("legend").iter().all(|i| f(&i["box"]["w"]) > 10.0));
    assert!(f(&m["page"]["w"]) <= 1400.0, "no horizontal scrolling at 1400 px: {}", m["page"]);
}

#[test]
fn a_comparison_stacks_two_runs_on_one_time_axis() {
    let (a, b) = (fis_run(true), fis_run(false));
    let m = open(&render_comparison(&a, &b, ("spotbench", "karpenter")), "fis-50-percent.compare");
    check_panel(&m, "a", &a);
    check_panel(&m, "b", &b);
    let tick_xs = |panel: &str| -> Vec<(f64, f64)> {
        in_panel(&m["ticks"], panel).iter().map(|t| (f(&t["t"]), f(&t["x"]))).collect()
    };
    assert_eq!(tick_xs("a"), tick_xs("b"), "both panels share the time axis");
    assert_eq!(m["summaryColumns"], 3, "what, then a column per run");
    assert!(m["summaryRows"].as_u64().is_some_and(|n| n >= 10));
    let charts = m["charts"].as_array().expect("charts");
    assert_eq!(charts.len(), 2);
    assert!(f(&charts[1]["box"]["y"]) > f(&charts[0]["box"]["y"]) + f(&charts[0]["box"]["h"]) - 1.0, "stacked");
}

#[test]
fn rendering_is_a_pure_function_of_the_view_and_escapes_what_it_shows() {
    let mut run = fis_run(true);
    run.lanes[1].nodeclaim = "spot-<b>&\"x\"".into();
    run.markers[0].label = "scale <inflate> to 40".into();
    let html = render(&run);
    assert_eq!(html, render(&run), "same view, same bytes");
    assert!(html.contains("data-nodeclaim=\"spot-&lt;b&gt;&amp;&quot;x&quot;\""));
    assert!(html.contains("scale &lt;inflate&gt; to 40") && !html.contains("<inflate>"));
    // A view saved as JSON draws the same page (a comparison can be drawn from saved runs).
    let saved = serde_json::to_string(&run).expect("a view serialises");
    let back: RunView = serde_json::from_str(&saved).expect("and reads back");
    assert_eq!(render(&back), html);
    let no_namespace = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !no_namespace.contains("http") && !html.contains("<link") && !html.contains("src="),
        "self-contained: no external assets"
    );
}
