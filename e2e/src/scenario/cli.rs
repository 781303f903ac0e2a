//! `e2e run` and `e2e list`: run scenarios one after another, print a summary table, write the
//! reports and JUnit XML.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::load;
use super::model::Scenario;
use super::runner::{self, Outcome, RunOptions, Status};
use crate::report;

/// Default report directory: `$XDG_CACHE_HOME/spotbench/reports` or `~/.cache/spotbench/reports`.
pub fn default_report_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("spotbench/reports")
}

pub fn list(root: &Path) -> anyhow::Result<()> {
    let all = load::all(root)?;
    let width = all.iter().map(|(_, s)| s.name.len()).max().unwrap_or(0);
    for (_, s) in all {
        let req = if s.requires.is_empty() { String::new() } else { format!(" [requires: {}]", s.requires.join(", ")) };
        let only = s
            .autoscalers
            .as_ref()
            .map(|a| format!(" [only: {}]", a.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")))
            .unwrap_or_default();
        println!("{:<width$}  {}{req}{only}", s.name, s.description);
    }
    Ok(())
}

/// The scenarios named (files or names), all of them when none is; every one loaded before any
/// runs, so a malformed file fails before a cluster starts.
pub fn load_named(root: &Path, args: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let files: Vec<PathBuf> = if args.is_empty() {
        load::all(root)?.into_iter().map(|(f, _)| f).collect()
    } else {
        args.iter().map(|a| load::resolve(root, a)).collect::<Result<_, _>>()?
    };
    Ok(files.iter().map(|f| load::load_file(root, f)).collect::<Result<Vec<_>, _>>()?)
}

/// Runs one scenario; an environment that could not come up is a failed outcome.
pub async fn run_one(s: &Scenario, opts: RunOptions) -> Outcome {
    let started = std::time::Instant::now();
    match runner::run_with(s, opts).await {
        Ok(o) => o,
        Err(e) => Outcome::not_run(s, opts.autoscaler, Status::Failed(format!("{e:#}")), started.elapsed()),
    }
}

/// A report file's name: `<scenario>.html` for the project's autoscaler (as before there was a
/// choice), `<scenario>.karpenter.html` for Karpenter.
pub fn report_stem(o: &Outcome) -> String {
    match o.autoscaler {
        crate::env::AutoscalerKind::Spotbench => o.name.clone(),
        other => format!("{}.{other}", o.name),
    }
}

/// Runs the scenarios; true when none failed.
pub async fn run(
    root: &Path,
    args: &[String],
    junit: Option<&Path>,
    report_dir: Option<PathBuf>,
    write_timeline: bool,
    matrix: bool,
    opts: RunOptions,
) -> anyhow::Result<bool> {
    let scenarios = load_named(root, args)?;
    // A backend this machine cannot run is a missing capability, not a failure: one line, exit 0.
    if let Some(reason) = crate::cluster::Cluster::unavailable(opts.backend) {
        println!("not run: {} scenario(s) on the {} backend: {reason}", scenarios.len(), opts.backend.name());
        return Ok(true);
    }
    let dir = report_dir.unwrap_or_else(default_report_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("autoscaler under test: {}", opts.autoscaler);
    let mut outcomes: Vec<Outcome> = Vec::new();
    for s in &scenarios {
        let outcome = run_one(s, opts).await;
        if !matches!(outcome.status, Status::Skipped(_)) {
            let path = dir.join(format!("{}.html", report_stem(&outcome)));
            std::fs::write(&path, report::html::render(&outcome.view()))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("[{}] report: {}", outcome.name, path.display());
            if write_timeline {
                let path = dir.join(format!("{}.timeline.yaml", report_stem(&outcome)));
                std::fs::write(&path, serde_saphyr::to_string(&outcome.timeline)?)?;
                println!("[{}] timeline: {}", outcome.name, path.display());
                let path = dir.join(format!("{}.run.json", report_stem(&outcome)));
                std::fs::write(&path, serde_json::to_string_pretty(&outcome.view())?)?;
                println!("[{}] what the report draws: {}", outcome.name, path.display());
            }
        }
        outcomes.push(outcome);
    }
    print_summary(&outcomes);
    if let Some(j) = junit {
        std::fs::write(j, report::junit::render(&outcomes)).with_context(|| format!("writing {}", j.display()))?;
        println!("JUnit XML: {}", j.display());
    }
    if matrix {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let md = super::matrix::record(root, &outcomes, &super::compare::git_head(root), &at)?;
        println!("matrix: {} (and the README's)", md.display());
    }
    Ok(!outcomes.iter().any(|o| matches!(o.status, Status::Failed(_))))
}

pub fn print_summary(outcomes: &[Outcome]) {
    let width = outcomes.iter().map(|o| o.title().len()).max().unwrap_or(8).max(8);
    println!();
    println!("{:<width$}  {:<7}  {:>7}  detail", "scenario", "result", "time");
    for o in outcomes {
        let (result, detail) = match &o.status {
            Status::Passed => ("passed", String::new()),
            Status::Failed(m) => ("FAILED", m.lines().next().unwrap_or("").to_owned()),
            Status::Skipped(m) => ("skipped", m.clone()),
        };
        println!("{:<width$}  {result:<7}  {:>6.1}s  {detail}", o.title(), o.wall.as_secs_f64());
    }
    let count = |f: fn(&Status) -> bool| outcomes.iter().filter(|o| f(&o.status)).count();
    let total: f64 = outcomes.iter().map(|o| o.wall.as_secs_f64()).sum();
    println!(
        "{} passed, {} failed, {} skipped in {total:.0}s",
        count(|s| matches!(s, Status::Passed)),
        count(|s| matches!(s, Status::Failed(_))),
        count(|s| matches!(s, Status::Skipped(_)))
    );
}
