//! `e2e perf`: the end-to-end performance numbers of the results file — pods pending to all
//! Running (a single Deployment at 10 to 1,000 pods, a realistic mix at 1,000 to 10,000), a spot
//! interruption notice to its replacement Ready, a FIS experiment interrupting a tenth of a
//! 500-node spot fleet, and the scenario suite's wall time — each on a fresh local cluster with
//! fake-ec2 on a scaled clock, with the peak memory and CPU time of every process involved.
//!
//! The peer is the floor the world itself sets: a node cannot be Ready before fake-ec2 has booted
//! and registered it (and `make perf AUTOSCALER=karpenter` runs the same rows with upstream
//! Karpenter). Times are given in real seconds and in world seconds (what an EC2 user would see;
//! the autoscaler's own timers, such as the 1 s batch window, run on real time, so they weigh
//! `clock factor` times more in world seconds).

mod interrupt;
mod peer;
mod render;
pub mod resources;
mod scale;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::env::{AutoscalerKind, Env, EnvConfig};
pub use interrupt::{Interruption, MassInterruption};
pub use render::render;
use render::write_section;
pub use resources::Usage;
pub use scale::{Progress, ScaleUp, Workload};

/// What to measure.
#[derive(Clone, Debug)]
pub struct PerfConfig {
    /// Scale-ups of one Deployment (`inflate`, 512m / 512Mi) on the spot NodePool.
    pub sizes: Vec<u32>,
    /// Scale-ups of the realistic mix (fixtures/workloads/scale-mix.yaml, scaled to each size).
    pub mix_sizes: Vec<u32>,
    pub interruption: bool,
    /// The mass interruption's fleet size (one pod per node), None to skip it.
    pub mass_interruption_nodes: Option<u32>,
    pub suite: bool,
    pub clock_factor: f64,
    /// The autoscaler under test (Karpenter's numbers get their own section and JSON file).
    pub autoscaler: AutoscalerKind,
    /// The project's autoscaler binary, run as its own process so its memory and CPU are its own
    /// (None: in the harness's process).
    pub autoscaler_binary: Option<PathBuf>,
    /// A second autoscaler measured in the same run, each measurement right after the first's:
    /// the peer the first's figures are given as ratios against.
    pub peer: Option<AutoscalerKind>,
}

/// One scenario of the suite.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ScenarioTime {
    pub name: String,
    pub status: String,
    pub wall_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PerfResults {
    pub autoscaler: String,
    pub measured_at: String,
    pub git: String,
    pub cpus: usize,
    /// The build profile of the harness (and of the autoscaler binary next to it).
    pub profile: String,
    pub clock_factor: f64,
    /// World seconds a fresh instance takes to boot and register as a Node (the floor).
    pub node_floor_world_s: f64,
    pub scale_up: Vec<ScaleUp>,
    pub interruption: Option<Interruption>,
    pub mass_interruption: Option<MassInterruption>,
    pub suite: Vec<ScenarioTime>,
    pub suite_wall_s: Option<f64>,
    /// When the suite was not measured this time: the earlier run its figures come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite_from: Option<String>,
    /// Measurements this run did not make, kept from the previous results file: what, and the
    /// run they are from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<String>,
}

impl PerfResults {
    /// `measured_at at git`, how a carried figure names its run.
    fn run_name(&self) -> String {
        format!("{} at {}", self.measured_at, self.git)
    }

    /// Keeps from `prev` what this run did not measure (a partial `e2e perf` updates its own rows
    /// and leaves the others), each named with the run it comes from.
    pub(super) fn carry_from(&mut self, prev: PerfResults) {
        let prev_name = prev.run_name();
        let from = |what: &str, carried: &[String]| {
            // A figure already carried keeps the name of the run that measured it.
            carried
                .iter()
                .find(|c| c.starts_with(&format!("{what}: ")))
                .cloned()
                .unwrap_or(format!("{what}: {prev_name}"))
        };
        for row in prev.scale_up {
            if !self.scale_up.iter().any(|r| r.workload == row.workload && r.pods == row.pods) {
                self.carried.push(from(&format!("{} {}", row.workload, row.pods), &prev.carried));
                self.scale_up.push(row);
            }
        }
        self.scale_up.sort_by_key(|r| (r.workload != Workload::Inflate, r.pods));
        if self.interruption.is_none() && prev.interruption.is_some() {
            self.carried.push(from("spot interruption", &prev.carried));
            self.interruption = prev.interruption;
        }
        if self.mass_interruption.is_none() && prev.mass_interruption.is_some() {
            self.carried.push(from("mass interruption", &prev.carried));
            self.mass_interruption = prev.mass_interruption;
        }
        if self.suite_wall_s.is_none() && prev.suite_wall_s.is_some() {
            self.suite_from = prev.suite_from.or(Some(prev_name));
            (self.suite, self.suite_wall_s) = (prev.suite, prev.suite_wall_s);
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(900);

impl PerfConfig {
    /// This configuration with `kind` as the autoscaler under test.
    fn for_kind(&self, kind: AutoscalerKind) -> PerfConfig {
        let autoscaler_binary = if kind == AutoscalerKind::Spotbench { self.autoscaler_binary.clone() } else { None };
        PerfConfig { autoscaler: kind, autoscaler_binary, peer: None, ..self.clone() }
    }

    /// The autoscaler under test, then the peer (when there is one and it is another).
    fn kinds(&self) -> Vec<AutoscalerKind> {
        std::iter::once(self.autoscaler).chain(self.peer.filter(|p| *p != self.autoscaler)).collect()
    }
}

/// Measures, prints as it goes, and writes each autoscaler's section of `results_md` and its JSON
/// file in `bench_dir`. With a peer, each measurement runs with the autoscaler under test and then
/// with the peer, so both meet the same machine; the first's rows carry the peer's figures.
pub async fn run(cfg: PerfConfig, results_md: &Path, bench_dir: &Path) -> anyhow::Result<PerfResults> {
    let kinds = cfg.kinds();
    let measured_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let git = git_head();
    let node_floor_world_s = node_floor_world_s()?;
    let mut results: Vec<PerfResults> = kinds
        .iter()
        .map(|kind| PerfResults {
            autoscaler: kind.name().to_owned(),
            measured_at: measured_at.clone(),
            git: git.clone(),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            profile: if cfg!(debug_assertions) { "debug" } else { "release" }.to_owned(),
            clock_factor: cfg.clock_factor,
            node_floor_world_s,
            ..PerfResults::default()
        })
        .collect();
    let runs =
        cfg.sizes.iter().map(|&n| (Workload::Inflate, n)).chain(cfg.mix_sizes.iter().map(|&n| (Workload::Mix, n)));
    for (workload, n) in runs {
        let what = format!("{n} pods ({workload})");
        let measure = async |c: PerfConfig| scale::scale_up(&c, workload, n).await;
        let report = |s: &ScaleUp| {
            format!(
                "all Running in {:.1} s ({:.0} world s), {} NodeClaims",
                s.all_running_s, s.all_running_world_s, s.nodeclaims
            )
        };
        for (i, s) in with_each_kind(&cfg, &kinds, &what, measure, report).await? {
            results[i].scale_up.push(s);
        }
    }
    if cfg.interruption {
        let measure = async |c: PerfConfig| interrupt::interruption(&c).await;
        let report =
            |m: &Interruption| format!("replacement Ready {:.0} world s after the notice", m.replacement_ready_world_s);
        for (i, m) in with_each_kind(&cfg, &kinds, "spot interruption", measure, report).await? {
            results[i].interruption = Some(m);
        }
    }
    if let Some(nodes) = cfg.mass_interruption_nodes {
        let what = format!("FIS interrupts 10% of {nodes} spot nodes");
        let measure = async |c: PerfConfig| interrupt::mass_interruption(&c, nodes).await;
        let report = |m: &MassInterruption| {
            format!(
                "{} interrupted, every replacement Ready {:.0} world s after the notice, {:.0} pod·s pending",
                m.interrupted, m.replacements_ready_world_s, m.pending_pod_s
            )
        };
        for (i, m) in with_each_kind(&cfg, &kinds, &what, measure, report).await? {
            results[i].mass_interruption = Some(m);
        }
    }
    if cfg.suite {
        // The suite's wall time is the autoscaler under test's only: the matrix (`make e2e
        // AUTOSCALER=karpenter`) is where the peer runs every scenario.
        let started = Instant::now();
        let root = crate::cluster::repo_root();
        for (_, scenario) in crate::scenario::load::all(&root)? {
            println!("perf: scenario {} ...", scenario.name);
            let opts = crate::scenario::runner::RunOptions { autoscaler: cfg.autoscaler, ..Default::default() };
            let out = crate::scenario::runner::run_with(&scenario, opts).await?;
            results[0].suite.push(ScenarioTime {
                name: out.name.clone(),
                status: format!("{:?}", out.status).to_lowercase(),
                wall_s: out.wall.as_secs_f64(),
            });
        }
        results[0].suite_wall_s = Some(started.elapsed().as_secs_f64());
    }
    if let [ours, peer] = &mut results[..] {
        peer::attach(ours, peer);
    }
    let mut under_test = None;
    for (kind, mut res) in kinds.iter().zip(results) {
        let json_out = bench_dir.join(json_name(*kind));
        let previous =
            std::fs::read_to_string(&json_out).ok().and_then(|t| serde_json::from_str::<PerfResults>(&t).ok());
        if let Some(prev) = previous.filter(|p| p.autoscaler == res.autoscaler) {
            res.carry_from(prev);
        }
        std::fs::write(&json_out, serde_json::to_string_pretty(&res)? + "\n")
            .with_context(|| format!("writing {}", json_out.display()))?;
        write_section(results_md, *kind, &render(&res))?;
        println!("perf: wrote {} and {}", results_md.display(), json_out.display());
        under_test.get_or_insert(res);
    }
    under_test.context("no autoscaler measured")
}

/// Writes the end-to-end sections of `results_md` again from the JSON files in `bench_dir`,
/// measuring nothing (after a change to how they are rendered).
pub fn rewrite(results_md: &Path, bench_dir: &Path) -> anyhow::Result<()> {
    for kind in AutoscalerKind::ALL {
        let json = bench_dir.join(json_name(kind));
        let Ok(text) = std::fs::read_to_string(&json) else { continue };
        let res: PerfResults = serde_json::from_str(&text).with_context(|| format!("reading {}", json.display()))?;
        write_section(results_md, kind, &render(&res))?;
        println!("perf: rewrote {kind}'s section of {} from {}", results_md.display(), json.display());
    }
    Ok(())
}

/// Runs `measure` with each of `kinds` in turn (announced as `what`, each result printed with
/// `report`), each with its own configuration, and gives back what each measured with its index
/// in `kinds`. A failure of the autoscaler under test (the first) fails the run; the peer's is
/// reported and left out, so one failing peer row does not lose the others.
async fn with_each_kind<T>(
    cfg: &PerfConfig,
    kinds: &[AutoscalerKind],
    what: &str,
    measure: impl AsyncFn(PerfConfig) -> anyhow::Result<T>,
    report: impl Fn(&T) -> String,
) -> anyhow::Result<Vec<(usize, T)>> {
    let mut measured = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        println!("perf: {what}, {kind} ...");
        match measure(cfg.for_kind(kind)).await.with_context(|| format!("{what} with {kind}")) {
            Ok(m) => {
                println!("perf: {what}, {kind}: {}", report(&m));
                measured.push((i, m));
            }
            Err(e) if i > 0 => println!("perf: left out: {e:#}"),
            Err(e) => return Err(e),
        }
    }
    Ok(measured)
}

fn git_head() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::cluster::repo_root())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Boot plus registration in the default world.
fn node_floor_world_s() -> anyhow::Result<f64> {
    let path = crate::cluster::repo_root().join("fixtures/worlds/default.yaml");
    let cfg = fake_ec2::world::config::WorldConfig::load(&path)?;
    Ok((cfg.lifecycle.boot_seconds + cfg.lifecycle.node_registration_seconds) as f64)
}

/// The JSON file of `kind`'s numbers: `bench/e2e.json` for the project's autoscaler.
pub fn json_name(kind: AutoscalerKind) -> String {
    match kind {
        AutoscalerKind::Spotbench => "e2e.json".to_owned(),
        other => format!("e2e-{other}.json"),
    }
}

/// The autoscaler binary beside this one (`cargo build -p autoscaler` puts it there), if built.
pub fn sibling_autoscaler_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join("autoscaler");
    path.is_file().then_some(path)
}

/// A fresh environment with the default EC2NodeClass and `fixtures` applied.
async fn start(cfg: &PerfConfig, interruption_queue: bool, fixtures: &[&str]) -> anyhow::Result<Env> {
    let base = if interruption_queue { EnvConfig::with_interruption_queue() } else { EnvConfig::default() };
    let env = Env::start(EnvConfig {
        clock_factor: cfg.clock_factor,
        autoscaler: cfg.autoscaler,
        autoscaler_binary: cfg.autoscaler_binary.clone(),
        ..base
    })
    .await?;
    env.apply_fixture("nodepools/ec2nodeclass-default.yaml").await?;
    for f in fixtures {
        env.apply_fixture(f).await?;
    }
    Ok(env)
}

/// The processes a measurement samples: this one (the harness with fake-ec2, and the project's
/// autoscaler when it runs in-process), the autoscaler's own process, the cluster's components.
fn processes(env: &Env) -> Vec<(String, u32)> {
    let mut all = Vec::new();
    match env.autoscaler_pid() {
        Some(pid) => {
            all.push((HARNESS.to_owned(), std::process::id()));
            all.push((AUTOSCALER.to_owned(), pid));
        }
        None => all.push((format!("{HARNESS} + {AUTOSCALER}"), std::process::id())),
    }
    all.extend(env.cluster.component_pids());
    all
}

/// The harness's process: fake-ec2 serves from it.
pub const HARNESS: &str = "fake-ec2 + harness";
pub const AUTOSCALER: &str = "autoscaler";

/// Usage by process name, as the JSON keeps it.
pub type UsageByProcess = BTreeMap<String, Usage>;

/// The `app=` pods of a watch that are Running, and the nodes they run on.
fn running_pods(pods: &[std::sync::Arc<k8s_openapi::api::core::v1::Pod>]) -> Vec<(String, String)> {
    pods.iter()
        .filter(|p| crate::env::is_running(p))
        .filter_map(|p| Some((p.metadata.name.clone()?, p.spec.as_ref()?.node_name.clone()?)))
        .collect()
}
