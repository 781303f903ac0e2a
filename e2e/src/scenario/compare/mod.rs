//! `e2e compare`: each scenario run with both autoscalers under test on the same seed, one HTML
//! page per scenario with both runs on one time axis ([`crate::report::html::render_comparison`])
//! and a Markdown summary ([`markdown`]) of the numbers ([`metrics`]).

pub mod markdown;
pub mod metrics;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::cli::{load_named, print_summary, run_one};
use super::runner::{Outcome, RunOptions, Status};
use crate::env::AutoscalerKind;
use crate::report;
use markdown::{Provenance, ScenarioComparison, Side};
use metrics::AbMetrics;

/// The scenarios `make compare` runs when none are named.
pub const CORE: &[&str] =
    &["spot-scale-up", "spot-ice-fallback", "spot-interruption-replaced", "fis-50-percent", "consolidation"];

#[derive(Clone, Debug)]
pub struct CompareConfig {
    /// Files or names; the [`CORE`] scenarios when empty.
    pub scenarios: Vec<String>,
    /// Where the pages (and each run's JSON) go.
    pub report_dir: PathBuf,
    /// The Markdown summary.
    pub out: PathBuf,
    pub backend: crate::cluster::Backend,
}

/// Runs the comparisons and writes the pages and the summary; true when no run failed.
pub async fn run(root: &Path, cfg: CompareConfig) -> anyhow::Result<bool> {
    let names: Vec<String> =
        if cfg.scenarios.is_empty() { CORE.iter().map(|s| (*s).to_owned()).collect() } else { cfg.scenarios.clone() };
    let scenarios = load_named(root, &names)?;
    if let Some(reason) = crate::cluster::Cluster::unavailable(cfg.backend) {
        println!("not run: {} comparison(s) on the {} backend: {reason}", scenarios.len(), cfg.backend.name());
        return Ok(true);
    }
    std::fs::create_dir_all(&cfg.report_dir).with_context(|| format!("creating {}", cfg.report_dir.display()))?;
    let karpenter_version = crate::karpenter::Build::locate(root)?.version;
    let mut comparisons = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for s in &scenarios {
        let mut pair = Vec::new();
        for autoscaler in AutoscalerKind::ALL {
            println!("compare: {} with {autoscaler}", s.name);
            let o = run_one(s, RunOptions { backend: cfg.backend, autoscaler, sqs: None }).await;
            let json = cfg.report_dir.join(format!("{}.{autoscaler}.json", s.name));
            std::fs::write(&json, serde_json::to_string_pretty(&o.view())?)
                .with_context(|| format!("writing {}", json.display()))?;
            pair.push(o);
        }
        let (a, b) = (&pair[0], &pair[1]);
        let page = cfg.report_dir.join(format!("{}.html", s.name));
        std::fs::write(
            &page,
            report::html::render_comparison(&a.view(), &b.view(), (a.autoscaler.name(), b.autoscaler.name())),
        )
        .with_context(|| format!("writing {}", page.display()))?;
        println!("compare: {} page: {}", s.name, page.display());
        comparisons.push(ScenarioComparison {
            name: s.name.clone(),
            description: s.description.clone(),
            seed: s.seed,
            sides: [side(a), side(b)],
            page: shown_path(&page),
        });
        outcomes.extend(pair);
    }
    let provenance = Provenance {
        command: command_line(),
        measured_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        git: git_head(root),
        karpenter_version,
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    if let Some(dir) = cfg.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&cfg.out, markdown::render(&provenance, &comparisons))
        .with_context(|| format!("writing {}", cfg.out.display()))?;
    print_summary(&outcomes);
    println!("compare: summary {}", cfg.out.display());
    Ok(!outcomes.iter().any(|o| matches!(o.status, Status::Failed(_))))
}

fn side(o: &Outcome) -> Side {
    Side {
        autoscaler: o.autoscaler,
        status: o.status.clone(),
        wall_seconds: o.wall.as_secs_f64(),
        metrics: AbMetrics::of(&o.view(), &o.aws_calls, &o.messages),
        notes: o.notes.clone(),
    }
}

/// A path as a reader finds it: under the home directory as `~/...`.
fn shown_path(p: &Path) -> String {
    match std::env::var_os("HOME").map(PathBuf::from).and_then(|h| p.strip_prefix(h).ok().map(Path::to_path_buf)) {
        Some(rest) => format!("~/{}", rest.display()),
        None => p.display().to_string(),
    }
}

/// How this process was started, for the summary's first line: `make compare` sets
/// SPOTBENCH_COMMAND to itself.
fn command_line() -> String {
    if let Ok(c) = std::env::var("SPOTBENCH_COMMAND") {
        return c;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("e2e {}", args.join(" "))
}

pub(crate) fn git_head(root: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
