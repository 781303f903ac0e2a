//! Spot interruptions: one node's notice to its replacement, and a FIS experiment interrupting a
//! tenth of a fleet of one-pod nodes at once, every interrupted node replaced.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, ResourceExt as _};
use serde::{Deserialize, Serialize};

use super::{PerfConfig, TIMEOUT, UsageByProcess, processes, resources::Sampler, running_pods, start};
use crate::env::{Env, running};
use crate::watched::Watched;

/// A spot interruption warning for the only node of a 3-pod workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Interruption {
    pub notice_world_s: f64,
    /// World seconds from the warning until a replacement node is Ready.
    pub replacement_ready_world_s: f64,
    pub replacement_ready_s: f64,
    /// World seconds from the warning until every pod runs on the replacement.
    pub pods_moved_world_s: f64,
    pub pods_moved_s: f64,
    /// The same with the peer autoscaler, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Box<super::peer::Peer<Interruption>>>,
}

/// A FIS experiment (fixtures/fis/spot-interrupt-10-percent.json) against a fleet of `nodes`
/// spot nodes running one pod each.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MassInterruption {
    pub nodes: u32,
    /// Real seconds the fleet took to be all Running before the experiment.
    pub fleet_ready_s: f64,
    /// Real seconds until, in addition, every Node was Ready (or the wait for it gave up).
    pub fleet_settled_s: f64,
    /// Nodes Ready when the experiment started, and Nodes still registering then (launched
    /// beyond one per pod).
    pub nodes_ready_at_start: usize,
    pub nodes_registering_at_start: usize,
    /// Instances that received the 2-minute warning.
    pub interrupted: usize,
    pub notice_world_s: f64,
    /// From the experiment's start until as many new nodes as were interrupted are Ready.
    pub replacements_ready_s: f64,
    pub replacements_ready_world_s: f64,
    /// From the experiment's start until every pod is Running again, none on an interrupted node.
    pub pods_running_s: f64,
    pub pods_running_world_s: f64,
    /// The most pods not Running at one time.
    pub peak_pending: usize,
    /// Pods not Running, integrated over time (real and world seconds).
    pub pending_pod_s: f64,
    pub pending_pod_world_s: f64,
    /// Nodes that were Ready before the experiment, were not warned, and were seen not Ready
    /// during it: kwok falling behind on heartbeats (node leases) shows here.
    pub bystanders_not_ready: usize,
    pub usage: UsageByProcess,
    /// The same experiment with the peer autoscaler, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Box<super::peer::Peer<MassInterruption>>>,
}

pub async fn interruption(cfg: &PerfConfig) -> anyhow::Result<Interruption> {
    let env = start(cfg, true, &["nodepools/spot.yaml"]).await?;
    env.apply(&super::Workload::Inflate.manifest(3)?).await?;
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
        let new_ready = nodes.iter().any(|n| n.name_any() != old && node_ready(n));
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
                peer: None,
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

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Ready condition as `status (reason: message)`, for a log line.
fn ready_condition(n: &Node) -> String {
    let c = n.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    c.map_or("no Ready condition".to_owned(), |c| {
        format!("{} ({}: {})", c.status, c.reason.as_deref().unwrap_or("-"), c.message.as_deref().unwrap_or("-"))
    })
}

/// Instances with an interruption warning now, as (instance id, node name).
fn interrupted(env: &Env) -> Vec<(String, String)> {
    let w = env.fake.cloud();
    w.ec2
        .instances
        .values()
        .filter(|i| i.interruption_at.is_some())
        .map(|i| (i.id.clone(), i.private_dns_name.clone()))
        .collect()
}

/// How long the mass interruption waits, after every pod runs, for every Node to be Ready.
const FLEET_SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn mass_interruption(cfg: &PerfConfig, nodes: u32) -> anyhow::Result<MassInterruption> {
    let env = start(cfg, true, &["nodepools/default-spot-large.yaml"]).await?;
    let pod_watch = Watched::<Pod>::start(Api::all(env.kube.clone()), Some("app=one-per-node")).await?;
    let node_watch = Watched::<Node>::start(Api::all(env.kube.clone()), None).await?;
    let root = crate::cluster::repo_root();
    let manifest = std::fs::read_to_string(root.join("fixtures/workloads/one-per-node.yaml"))?
        .replace("replicas: 500", &format!("replicas: {nodes}"));
    let setup = Instant::now();
    env.apply(&manifest).await?;
    crate::env::wait_for(&format!("{nodes} one-per-node pods Running"), TIMEOUT, || async {
        (running_pods(&pod_watch.all()).len() == nodes as usize).then_some(())
    })
    .await?;
    let fleet_ready_s = setup.elapsed().as_secs_f64();
    println!("perf:   {nodes} nodes, one pod each, all Running in {fleet_ready_s:.0} s");
    // kwok can start a pod before its Node reports Ready; the experiment starts on a settled fleet
    // so that runs compare. A fleet that does not settle is measured anyway, and says so.
    let settled = crate::env::wait_for("every Node Ready", FLEET_SETTLE_TIMEOUT, || async {
        node_watch.all().iter().all(|n| node_ready(n)).then_some(())
    })
    .await;
    if let Err(e) = settled {
        println!("perf:   measuring anyway: {e:#}");
    }
    let fleet_settled_s = setup.elapsed().as_secs_f64();
    // Nodes Ready now (a surplus node still registering is not a bystander that lost its heartbeat).
    let before: BTreeSet<String> = node_watch.all().iter().filter(|n| node_ready(n)).map(|n| n.name_any()).collect();
    let present: BTreeSet<String> = node_watch.all().iter().map(|n| n.name_any()).collect();
    let registering = present.len() - before.len();
    println!("perf:   {} nodes Ready, {registering} more registering, when the experiment starts", before.len());
    let template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("fixtures/fis/spot-interrupt-10-percent.json"))?)?;

    let sampler = Sampler::start(processes(&env));
    let world0 = env.world_now_ms();
    let t0 = Instant::now();
    env.admin("experiments", template).await?;
    let (mut peak_pending, mut pending_pod_s, mut pending_pod_world_s) = (0usize, 0.0f64, 0.0f64);
    let (mut last_real, mut last_world) = (0.0f64, 0.0f64);
    let mut replacements_ready: Option<(f64, f64)> = None;
    let mut bystanders_not_ready: BTreeSet<String> = BTreeSet::new();
    let mut hit: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut last_report = Instant::now();
    let result = loop {
        let real_s = t0.elapsed().as_secs_f64();
        let world_s = (env.world_now_ms() - world0) as f64 / 1000.0;
        // Warned instances accumulate: a reclaimed one stops counting in the world once terminated.
        hit.extend(interrupted(&env));
        let hit_nodes: BTreeSet<&str> = hit.values().map(String::as_str).collect();
        let running = running_pods(&pod_watch.all());
        let pending = (nodes as usize).saturating_sub(running.len());
        peak_pending = peak_pending.max(pending);
        pending_pod_s += pending as f64 * (real_s - last_real);
        pending_pod_world_s += pending as f64 * (world_s - last_world);
        (last_real, last_world) = (real_s, world_s);
        let all_nodes = node_watch.all();
        let new_ready = all_nodes.iter().filter(|n| !present.contains(&n.name_any()) && node_ready(n)).count();
        for n in all_nodes.iter().filter(|n| !node_ready(n)) {
            let name = n.name_any();
            if before.contains(&name) && !hit_nodes.contains(name.as_str()) && bystanders_not_ready.insert(name.clone())
            {
                println!("perf:   {real_s:.1} s: node {name}, not warned, is not Ready: {}", ready_condition(n));
            }
        }
        if !hit.is_empty() && new_ready >= hit.len() && replacements_ready.is_none() {
            replacements_ready = Some((real_s, world_s));
        }
        let settled = running.len() == nodes as usize && running.iter().all(|(_, n)| !hit_nodes.contains(n.as_str()));
        if let (true, Some((ready_s, ready_world_s))) = (settled, replacements_ready) {
            break MassInterruption {
                nodes,
                fleet_ready_s,
                fleet_settled_s,
                nodes_ready_at_start: before.len(),
                nodes_registering_at_start: registering,
                interrupted: hit.len(),
                notice_world_s: 120.0,
                replacements_ready_s: ready_s,
                replacements_ready_world_s: ready_world_s,
                pods_running_s: real_s,
                pods_running_world_s: world_s,
                peak_pending,
                pending_pod_s,
                pending_pod_world_s,
                bystanders_not_ready: bystanders_not_ready.len(),
                usage: UsageByProcess::new(),
                peer: None,
            };
        }
        if last_report.elapsed().as_secs() >= 15 {
            last_report = Instant::now();
            println!(
                "perf:   {real_s:.0} s: {} interrupted, {new_ready} new nodes Ready, {pending} pods not Running",
                hit.len()
            );
        }
        if t0.elapsed() > TIMEOUT {
            bail!(
                "after {TIMEOUT:?}: {} interrupted, {new_ready} replacements Ready, {pending} pods not Running",
                hit.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let usage = sampler.finish();
    env.stop().await;
    Ok(MassInterruption { usage, ..result })
}
