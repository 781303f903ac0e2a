//! `e2e perf`: the end-to-end performance numbers of the results file — pods pending to all
//! Running for 10, 100 and 1,000 pods, a spot interruption notice to its replacement Ready, and the
//! scenario suite's wall time — each on a fresh local cluster with fake-ec2 on a scaled clock.
//!
//! There is no Karpenter to race here, so the peer is the floor the world itself sets: a node
//! cannot be Ready before fake-ec2 has booted and registered it. Times are given in real seconds
//! and in world seconds (what an EC2 user would see; the autoscaler's own timers, such as the 1 s
//! batch window, run on real time, so they weigh `clock factor` times more in world seconds).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::ResourceExt;
use serde::Serialize;

use crate::env::{AutoscalerKind, Env, EnvConfig, claim_ready, running};

/// What to measure.
#[derive(Clone, Debug)]
pub struct PerfConfig {
    pub sizes: Vec<u32>,
    pub interruption: bool,
    pub suite: bool,
    pub clock_factor: f64,
    /// The autoscaler under test (Karpenter's numbers get their own section and JSON file).
    pub autoscaler: AutoscalerKind,
}

/// One scale-up: `pods` inflate replicas (512m, 512Mi) on a spot NodePool.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleUp {
    pub pods: u32,
    /// Real seconds from the Deployment's apply until every pod exists (the controller-manager's pace).
    pub all_pods_created_s: f64,
    /// Real seconds until the first NodeClaim exists (batching and the scheduling simulation).
    pub first_nodeclaim_s: f64,
    /// Real seconds until every NodeClaim is Ready.
    pub nodes_ready_s: f64,
    /// Real seconds until every pod is Running.
    pub all_running_s: f64,
    /// The same, in world seconds.
    pub all_running_world_s: f64,
    pub nodeclaims: usize,
    pub fleet_cost_per_hour: f64,
}

/// A spot interruption warning for the only node of a 3-pod workload.
#[derive(Clone, Debug, Serialize)]
pub struct Interruption {
    pub notice_world_s: f64,
    /// World seconds from the warning until a replacement node is Ready.
    pub replacement_ready_world_s: f64,
    pub replacement_ready_s: f64,
    /// World seconds from the warning until every pod runs on the replacement.
    pub pods_moved_world_s: f64,
    pub pods_moved_s: f64,
}

/// One scenario of the suite.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioTime {
    pub name: String,
    pub status: String,
    pub wall_s: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PerfResults {
    pub autoscaler: String,
    pub measured_at: String,
    pub git: String,
    pub cpus: usize,
    pub clock_factor: f64,
    /// World seconds a fresh instance takes to boot and register as a Node (the floor).
    pub node_floor_world_s: f64,
    pub scale_up: Vec<ScaleUp>,
    pub interruption: Option<Interruption>,
    pub suite: Vec<ScenarioTime>,
    pub suite_wall_s: Option<f64>,
}

const TIMEOUT: Duration = Duration::from_secs(900);

/// Measures, prints as it goes, and writes the section of `results_md` and `json_out`.
pub async fn run(cfg: PerfConfig, results_md: &Path, json_out: &Path) -> anyhow::Result<PerfResults> {
    let kind = cfg.autoscaler;
    let mut res = PerfResults {
        autoscaler: kind.name().to_owned(),
        measured_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        git: git_head(),
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        clock_factor: cfg.clock_factor,
        node_floor_world_s: node_floor_world_s()?,
        ..PerfResults::default()
    };
    for &n in &cfg.sizes {
        println!("perf: {n} pods ...");
        let s = scale_up(n, cfg.clock_factor, kind).await.with_context(|| format!("scale-up of {n} pods"))?;
        println!(
            "perf: {n} pods all Running in {:.1} s ({:.0} world s), {} NodeClaims",
            s.all_running_s, s.all_running_world_s, s.nodeclaims
        );
        res.scale_up.push(s);
    }
    if cfg.interruption {
        println!("perf: spot interruption ...");
        let i = interruption(cfg.clock_factor, kind).await.context("interruption")?;
        println!("perf: replacement Ready {:.0} world s after the notice", i.replacement_ready_world_s);
        res.interruption = Some(i);
    }
    if cfg.suite {
        let started = Instant::now();
        let root = crate::cluster::repo_root();
        for (_, scenario) in crate::scenario::load::all(&root)? {
            println!("perf: scenario {} ...", scenario.name);
            let opts = crate::scenario::runner::RunOptions { autoscaler: kind, ..Default::default() };
            let out = crate::scenario::runner::run_with(&scenario, opts).await?;
            res.suite.push(ScenarioTime {
                name: out.name.clone(),
                status: format!("{:?}", out.status).to_lowercase(),
                wall_s: out.wall.as_secs_f64(),
            });
        }
        res.suite_wall_s = Some(started.elapsed().as_secs_f64());
    }
    std::fs::write(json_out, serde_json::to_string_pretty(&res)? + "\n")
        .with_context(|| format!("writing {}", json_out.display()))?;
    write_section(results_md, kind, &render(&res))?;
    println!("perf: wrote {} and {}", results_md.display(), json_out.display());
    Ok(res)
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

async fn start(clock_factor: f64, interruption_queue: bool, autoscaler: AutoscalerKind) -> anyhow::Result<Env> {
    let base = if interruption_queue { EnvConfig::with_interruption_queue() } else { EnvConfig::default() };
    let env = Env::start(EnvConfig { clock_factor, autoscaler, ..base }).await?;
    env.apply_fixture("nodepools/ec2nodeclass-default.yaml").await?;
    env.apply_fixture("nodepools/spot.yaml").await?;
    Ok(env)
}

fn inflate(replicas: u32) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(crate::cluster::repo_root().join("fixtures/workloads/inflate.yaml"))?;
    Ok(text.replace("replicas: 10", &format!("replicas: {replicas}")))
}

async fn scale_up(pods: u32, clock_factor: f64, kind: AutoscalerKind) -> anyhow::Result<ScaleUp> {
    let env = start(clock_factor, false, kind).await?;
    let world0 = env.world_now_ms();
    let t0 = Instant::now();
    env.apply(&inflate(pods)?).await?;
    let (mut created, mut first_claim, mut ready) = (None, None, None);
    let result = loop {
        let all = env.pods("app=inflate").await?;
        let claims = env.node_claims().await?;
        let elapsed = t0.elapsed().as_secs_f64();
        if created.is_none() && all.len() == pods as usize {
            created = Some(elapsed);
        }
        if first_claim.is_none() && !claims.is_empty() {
            first_claim = Some(elapsed);
        }
        let claims_ready = !claims.is_empty() && claims.iter().all(claim_ready);
        if claims_ready && ready.is_none() {
            ready = Some(elapsed);
        } else if !claims_ready {
            ready = None;
        }
        let running_now = running(&all).len();
        if running_now == pods as usize {
            break ScaleUp {
                pods,
                all_pods_created_s: created.unwrap_or(elapsed),
                first_nodeclaim_s: first_claim.unwrap_or(elapsed),
                nodes_ready_s: ready.unwrap_or(elapsed),
                all_running_s: elapsed,
                all_running_world_s: (env.world_now_ms() - world0) as f64 / 1000.0,
                nodeclaims: claims.len(),
                fleet_cost_per_hour: crate::scenario::observe::fleet_cost_per_hour(&env.fake),
            };
        }
        if t0.elapsed() > TIMEOUT {
            bail!("{running_now} of {pods} pods Running after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    env.stop().await;
    Ok(result)
}

async fn interruption(clock_factor: f64, kind: AutoscalerKind) -> anyhow::Result<Interruption> {
    let env = start(clock_factor, true, kind).await?;
    env.apply(&inflate(3)?).await?;
    let old = crate::env::wait_for("3 inflate pods Running on one node", TIMEOUT, || async {
        let pods = env.pods("app=inflate").await.ok()?;
        let on = running(&pods);
        let nodes: BTreeSet<String> = on.iter().map(|(_, n)| (*n).to_owned()).collect();
        (on.len() == 3 && nodes.len() == 1).then(|| nodes.into_iter().next()).flatten()
    })
    .await?;
    let instance = env.live_instances().first().map(|i| i.id.clone()).context("no instance")?;
    let world0 = env.world_now_ms();
    let t0 = Instant::now();
    env.admin("interrupt", serde_json::json!({"instance_ids": [instance]})).await?;
    let notice_world_s = env
        .fake
        .cloud()
        .ec2
        .instance(&instance)
        .and_then(|i| i.interruption_at)
        .map_or(120.0, |at| (at - world0) as f64 / 1000.0);
    let mut replacement_ready: Option<(f64, f64)> = None;
    let result = loop {
        let nodes = env.nodes().await?;
        let new_ready = nodes.iter().any(|n| {
            n.name_any() != old
                && n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        let world_s = (env.world_now_ms() - world0) as f64 / 1000.0;
        let real_s = t0.elapsed().as_secs_f64();
        if new_ready && replacement_ready.is_none() {
            replacement_ready = Some((world_s, real_s));
        }
        let pods = env.pods("app=inflate").await?;
        let on = running(&pods);
        let moved = on.len() == 3 && on.iter().all(|(_, n)| *n != old);
        if let (true, Some((ready_world_s, ready_s))) = (moved, replacement_ready) {
            break Interruption {
                notice_world_s,
                replacement_ready_world_s: ready_world_s,
                replacement_ready_s: ready_s,
                pods_moved_world_s: world_s,
                pods_moved_s: real_s,
            };
        }
        if t0.elapsed() > TIMEOUT {
            bail!("pods not moved off the interrupted node after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    env.stop().await;
    Ok(result)
}

const START: &str = "<!-- e2e-performance: written by `make perf` (e2e perf); bench/ec2_bench.py keeps it -->";
const END: &str = "<!-- /e2e-performance -->";

/// The markers around `kind`'s section: the project's autoscaler keeps the original ones.
fn markers(kind: AutoscalerKind) -> (String, String) {
    match kind {
        AutoscalerKind::Spotbench => (START.to_owned(), END.to_owned()),
        other => (
            format!(
                "<!-- e2e-performance-{other}: written by `make perf AUTOSCALER={other}` (e2e perf --autoscaler {other}) -->"
            ),
            format!("<!-- /e2e-performance-{other} -->"),
        ),
    }
}

/// Replaces (or appends) `kind`'s end-to-end section of the results file, leaving the rest alone.
fn write_section(path: &Path, kind: AutoscalerKind, section: &str) -> anyhow::Result<()> {
    let (start, end) = markers(kind);
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{start}\n{section}{end}\n");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &old[..a], old[b + end.len()..].trim_start_matches('\n')),
        _ => format!("{}\n\n{block}", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

/// The Markdown section.
pub fn render(r: &PerfResults) -> String {
    let mut s = String::new();
    let (title, who) = match r.autoscaler.as_str() {
        "karpenter" => (" with upstream Karpenter", "upstream Karpenter (the pinned release, a child process)"),
        _ => ("", "the autoscaler in one process"),
    };
    s.push_str(&format!("## End-to-end performance{title}\n\n"));
    s.push_str(&format!(
        "Measured {} on {} CPUs (git {}), each on a fresh local cluster (kwokctl binary runtime) with fake-ec2's default world on a ×{} clock and {who}. Real seconds are what you wait; world seconds are what EC2 would show. The floor a node cannot beat is fake-ec2's boot plus registration: {:.0} world s ({:.1} real s). Raw numbers: `bench/e2e.json`.\n\n",
        r.measured_at,
        r.cpus,
        r.git,
        r.clock_factor,
        r.node_floor_world_s,
        r.node_floor_world_s / r.clock_factor
    ));
    if !r.scale_up.is_empty() {
        s.push_str("Pods pending to all Running (Deployment `inflate`, 512m / 512Mi each, NodePool `spot`):\n\n");
        s.push_str("| pods | all pods created | first NodeClaim | all NodeClaims Ready | all Running | all Running (world) | ÷ floor (world) | NodeClaims | fleet $/h |\n");
        s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for u in &r.scale_up {
            s.push_str(&format!(
                "| {} | {:.1} s | {:.1} s | {:.1} s | **{:.1} s** | {:.0} s | {:.1}× | {} | {:.3} |\n",
                u.pods,
                u.all_pods_created_s,
                u.first_nodeclaim_s,
                u.nodes_ready_s,
                u.all_running_s,
                u.all_running_world_s,
                u.all_running_world_s / r.node_floor_world_s,
                u.nodeclaims,
                u.fleet_cost_per_hour
            ));
        }
        s.push_str(
            "\n*All pods created* is the control plane's pace, not the autoscaler's: kube-controller-manager creates a Deployment's pods at its client's rate limit (500 requests/s here, set in e2e/k8s/cluster.sh; the default 20/s made 1,000 pods take 50 s); the autoscaler batches them as they come (1 s idle, 10 s at most). *÷ floor* is all Running in world seconds over one node's boot and registration.\n\n",
        );
    }
    if let Some(i) = &r.interruption {
        s.push_str(&format!(
            "Spot interruption (one node running 3 pods; NodePool `spot`; the warning gives {:.0} world s):\n\n| | real | world | margin before the reclaim (world) |\n|---|---:|---:|---:|\n| notice → replacement node Ready | {:.1} s | {:.0} s | {:.0} s |\n| notice → every pod Running on the replacement | {:.1} s | {:.0} s | {:.0} s |\n\n",
            i.notice_world_s,
            i.replacement_ready_s,
            i.replacement_ready_world_s,
            i.notice_world_s - i.replacement_ready_world_s,
            i.pods_moved_s,
            i.pods_moved_world_s,
            i.notice_world_s - i.pods_moved_world_s,
        ));
    }
    if let Some(total) = r.suite_wall_s {
        s.push_str(&format!(
            "Scenario suite (`make e2e`, {} scenarios one after another, cluster start-up included): **{:.0} s** wall time.\n\n| scenario | outcome | wall |\n|---|---|---:|\n",
            r.suite.len(),
            total
        ));
        for t in &r.suite {
            s.push_str(&format!("| {} | {} | {:.1} s |\n", t.name, t.status, t.wall_s));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("perf-section-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.md");
        std::fs::write(&path, "# results\n\ntable\n").unwrap();
        write_section(&path, AutoscalerKind::Spotbench, "first\n").unwrap();
        write_section(&path, AutoscalerKind::Spotbench, "second\n").unwrap();
        write_section(&path, AutoscalerKind::Karpenter, "theirs\n").unwrap();
        write_section(&path, AutoscalerKind::Karpenter, "theirs again\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# results\n\ntable\n"), "{text}");
        assert!(text.contains("second\n") && !text.contains("first\n"), "{text}");
        assert!(text.contains("theirs again\n") && !text.contains("theirs\n"), "{text}");
        assert_eq!(text.matches(START).count(), 1);
        assert_eq!(text.matches(&markers(AutoscalerKind::Karpenter).0).count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn render_names_every_measurement() {
        let r = PerfResults {
            clock_factor: 10.0,
            node_floor_world_s: 25.0,
            scale_up: vec![ScaleUp {
                pods: 10,
                all_pods_created_s: 0.5,
                first_nodeclaim_s: 1.5,
                nodes_ready_s: 5.0,
                all_running_s: 6.0,
                all_running_world_s: 60.0,
                nodeclaims: 1,
                fleet_cost_per_hour: 0.1,
            }],
            interruption: Some(Interruption {
                notice_world_s: 120.0,
                replacement_ready_world_s: 40.0,
                replacement_ready_s: 4.0,
                pods_moved_world_s: 50.0,
                pods_moved_s: 5.0,
            }),
            suite: vec![ScenarioTime { name: "spot-scale-up".into(), status: "passed".into(), wall_s: 20.0 }],
            suite_wall_s: Some(20.0),
            ..PerfResults::default()
        };
        let md = render(&r);
        assert!(md.contains("| 10 | 0.5 s | 1.5 s | 5.0 s | **6.0 s** | 60 s | 2.4× | 1 | 0.100 |"), "{md}");
        assert!(md.contains("| notice → replacement node Ready | 4.0 s | 40 s | 80 s |"), "{md}");
        assert!(md.contains("**20 s** wall time"), "{md}");
    }
}
