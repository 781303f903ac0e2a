//! `e2e run` and `e2e list`: run scenarios (one after another, or `--jobs N` at a time), print a
//! summary table, write the reports and JUnit XML.

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
    run_one_recorded(s, opts, None).await
}

/// [`run_one`] with fake-ec2 recording every request and answer into `record` (for `fake-ec2 replay`).
pub async fn run_one_recorded(s: &Scenario, opts: RunOptions, record: Option<PathBuf>) -> Outcome {
    let started = std::time::Instant::now();
    match runner::run_recorded(s, opts, record).await {
        Ok(o) => o,
        Err(e) => Outcome::not_run(s, opts.autoscaler, Status::Failed(format!("{e:#}")), started.elapsed()),
    }
}

/// A report file's name: `<scenario>.html` for the project's autoscaler (as before there was a
/// choice), `<scenario>.karpenter.html` for Karpenter.
pub fn report_stem(o: &Outcome) -> String {
    stem(&o.name, o.autoscaler)
}

fn stem(scenario: &str, autoscaler: crate::env::AutoscalerKind) -> String {
    match autoscaler {
        crate::env::AutoscalerKind::Spotbench => scenario.to_owned(),
        other => format!("{scenario}.{other}"),
    }
}

/// What `e2e run` was asked for, besides the scenarios.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Where the HTML reports go (default [`default_report_dir`]).
    pub report_dir: Option<PathBuf>,
    /// Also write each normalized timeline as YAML and what the report draws as JSON.
    pub timeline: bool,
    /// Record the results in the scenario × autoscaler matrix.
    pub matrix: bool,
    /// Scenarios run at once, each on its own cluster (1: one after another, lines as they come).
    pub jobs: usize,
    /// Record the run's wall time, by jobs, in this Markdown file's section ([`super::wall_time`]).
    pub wall_time_to: Option<PathBuf>,
    pub opts: RunOptions,
}

/// Runs the scenarios; true when none failed. The summary, the JUnit XML and the matrix list them
/// in the order given, however many ran at once.
pub async fn run(root: &Path, args: &[String], run: RunArgs) -> anyhow::Result<bool> {
    let scenarios = load_named(root, args)?;
    let opts = run.opts;
    // A backend this machine cannot run is a missing capability, not a failure: one line, exit 0.
    if let Some(reason) = crate::cluster::Cluster::unavailable(opts.backend) {
        println!("not run: {} scenario(s) on the {} backend: {reason}", scenarios.len(), opts.backend.name());
        return Ok(true);
    }
    if run.jobs > 1 && matches!(opts.backend, crate::cluster::Backend::Kubeconfig(_)) {
        anyhow::bail!(
            "--jobs {} with kubeconfig:<file>: the scenarios would share one cluster; run them one at a time",
            run.jobs
        );
    }
    let dir = run.report_dir.clone().unwrap_or_else(default_report_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("autoscaler under test: {}", opts.autoscaler);
    let started = std::time::Instant::now();
    let load_at_start = super::wall_time::load_average();
    let results: Vec<anyhow::Result<Outcome>> = if run.jobs <= 1 {
        let mut results = Vec::new();
        for s in &scenarios {
            results.push(run_and_report(s, opts, &dir, run.timeline).await);
        }
        results
    } else {
        super::parallel::run(
            scenarios.len(),
            run.jobs,
            |i| scenarios[i].name.clone(),
            |i| run_and_report(&scenarios[i], opts, &dir, run.timeline),
        )?
    };
    let outcomes = results.into_iter().collect::<anyhow::Result<Vec<Outcome>>>()?;
    print_summary(&outcomes);
    let wall_s = started.elapsed().as_secs_f64();
    println!("wall time: {wall_s:.0}s with {} job(s)", run.jobs.max(1));
    if run.wall_time_to.is_some() && opts.autoscaler != crate::env::AutoscalerKind::Spotbench {
        println!("wall time not recorded: the section compares jobs with the project's autoscaler, not autoscalers");
    } else if let Some(md) = &run.wall_time_to {
        let row = super::wall_time::Row {
            jobs: run.jobs.max(1),
            scenarios: outcomes.len(),
            passed: outcomes.iter().filter(|o| o.status == Status::Passed).count(),
            wall_s,
            sum_s: outcomes.iter().map(|o| o.wall.as_secs_f64()).sum(),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            load: (load_at_start, super::wall_time::load_average()),
            git: super::compare::git_head(root),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        super::wall_time::record(md, &row)?;
        println!("wall time recorded: {}", md.display());
    }
    if let Some(j) = &run.junit {
        std::fs::write(j, report::junit::render(&outcomes)).with_context(|| format!("writing {}", j.display()))?;
        println!("JUnit XML: {}", j.display());
    }
    if run.matrix {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let md = super::matrix::record(root, &outcomes, &super::compare::git_head(root), &at)?;
        println!("matrix: {} (and the README's)", md.display());
    }
    Ok(!outcomes.iter().any(|o| matches!(o.status, Status::Failed(_))))
}

/// Runs one scenario and writes its report (and timeline files); the lines go through
/// [`crate::say!`], grouped when scenarios run side by side.
async fn run_and_report(s: &Scenario, opts: RunOptions, dir: &Path, write_timeline: bool) -> anyhow::Result<Outcome> {
    // Kept next to the report: `fake-ec2 replay` re-asks a failed run's requests on a laptop.
    let record = dir.join(format!("{}.requests.ndjson", stem(&s.name, opts.autoscaler)));
    let outcome = run_one_recorded(s, opts, Some(record.clone())).await;
    if record.exists() {
        crate::say!("[{}] fake-ec2's requests: {} (fake-ec2 replay)", s.name, record.display());
    }
    if !matches!(outcome.status, Status::Skipped(_)) {
        let path = dir.join(format!("{}.html", report_stem(&outcome)));
        std::fs::write(&path, report::html::render(&outcome.view()))
            .with_context(|| format!("writing {}", path.display()))?;
        crate::say!("[{}] report: {}", outcome.name, path.display());
        if write_timeline {
            let path = dir.join(format!("{}.timeline.yaml", report_stem(&outcome)));
            std::fs::write(&path, serde_saphyr::to_string(&outcome.timeline)?)?;
            crate::say!("[{}] timeline: {}", outcome.name, path.display());
            let path = dir.join(format!("{}.run.json", report_stem(&outcome)));
            std::fs::write(&path, serde_json::to_string_pretty(&outcome.view())?)?;
            crate::say!("[{}] what the report draws: {}", outcome.name, path.display());
        }
    }
    Ok(outcome)
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
