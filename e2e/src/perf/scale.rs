//! Scale-ups: N pending pods to all Running, on a fresh cluster each.

use std::time::Instant;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde::{Deserialize, Serialize};

use super::{PerfConfig, TIMEOUT, UsageByProcess, processes, resources::Sampler, running_pods, start};
use crate::env::claim_ready;
use crate::watched::Watched;

/// What is scaled up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    #[default]
    /// One Deployment (fixtures/workloads/inflate.yaml: 512m / 512Mi) on NodePool `spot`.
    Inflate,
    /// fixtures/workloads/scale-mix.yaml on fixtures/nodepools/scale.yaml: four Deployments with
    /// different requests, zone spread, a spot / on-demand split and anti-affinity.
    Mix,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Workload::Inflate => "inflate",
            Workload::Mix => "mix",
        })
    }
}

impl Workload {
    fn fixtures(self) -> &'static [&'static str] {
        match self {
            Workload::Inflate => &["nodepools/spot.yaml"],
            Workload::Mix => &["nodepools/scale.yaml"],
        }
    }

    fn selector(self) -> &'static str {
        match self {
            Workload::Inflate => "app=inflate",
            Workload::Mix => "bench=scale-mix",
        }
    }

    /// The manifest for `pods` pods.
    pub fn manifest(self, pods: u32) -> anyhow::Result<String> {
        let root = crate::cluster::repo_root();
        match self {
            Workload::Inflate => {
                let text = std::fs::read_to_string(root.join("fixtures/workloads/inflate.yaml"))?;
                Ok(text.replace("replicas: 10", &format!("replicas: {pods}")))
            }
            Workload::Mix => {
                let text = std::fs::read_to_string(root.join("fixtures/workloads/scale-mix.yaml"))?;
                scaled_mix(&text, pods)
            }
        }
    }
}

/// The mix with its replica counts scaled from their sum to `pods` (each Deployment keeps at
/// least one; the largest takes the rounding, so the total is exact).
fn scaled_mix(text: &str, pods: u32) -> anyhow::Result<String> {
    let counts: Vec<u32> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("replicas: "))
        .map(|n| n.trim().parse::<u32>().context("scale-mix.yaml: replicas must be a number"))
        .collect::<anyhow::Result<_>>()?;
    let total: u32 = counts.iter().sum();
    if total == 0 || pods < counts.len() as u32 {
        bail!("scale-mix.yaml has {} Deployments of {total} pods; cannot scale it to {pods}", counts.len());
    }
    let mut scaled: Vec<u32> =
        counts.iter().map(|&c| ((u64::from(c) * u64::from(pods)) / u64::from(total)).max(1) as u32).collect();
    let largest = (0..scaled.len()).max_by_key(|&i| counts[i]).unwrap_or(0);
    let others: u32 = scaled.iter().enumerate().filter(|(i, _)| *i != largest).map(|(_, c)| c).sum();
    scaled[largest] = pods.saturating_sub(others);
    let mut next = scaled.into_iter();
    Ok(text
        .lines()
        .map(|l| match l.trim().strip_prefix("replicas: ") {
            Some(_) => format!("{}replicas: {}", &l[..l.len() - l.trim_start().len()], next.next().unwrap_or(0)),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// One scale-up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScaleUp {
    pub workload: Workload,
    pub pods: u32,
    /// Real seconds from the apply until every pod exists (the controller-manager's pace).
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
    /// Nodes with a Running pod of the workload at the end.
    pub nodes: usize,
    pub fleet_cost_per_hour: f64,
    /// Peak memory and CPU time of each process from the apply to all Running.
    pub usage: UsageByProcess,
    /// Where the run stood every 5 real seconds: which stage the pods wait in.
    pub progress: Vec<Progress>,
    /// The same scale-up with the peer autoscaler, in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Box<super::peer::Peer<ScaleUp>>>,
}

/// One sample of a scale-up's progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// Real seconds since the apply.
    pub t_s: f64,
    /// Pods that exist.
    pub pods: usize,
    /// Pods the scheduler bound to a node.
    pub bound: usize,
    pub running: usize,
    pub nodeclaims: usize,
    pub nodeclaims_ready: usize,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} s: {} pods exist, {} bound, {} Running; {} NodeClaims, {} Ready",
            self.t_s, self.pods, self.bound, self.running, self.nodeclaims, self.nodeclaims_ready
        )
    }
}

const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Every how many samples one is printed while the run goes, and shown in results.md (15 s).
pub(super) const SHOWN_EVERY: usize = 3;

pub async fn scale_up(cfg: &PerfConfig, workload: Workload, pods: u32) -> anyhow::Result<ScaleUp> {
    let env = start(cfg, false, workload.fixtures()).await?;
    let pod_watch = Watched::<Pod>::start(Api::all(env.kube.clone()), Some(workload.selector())).await?;
    let claim_watch = Watched::<autoscaler::apis::NodeClaim>::start(Api::all(env.kube.clone()), None).await?;
    let manifest = workload.manifest(pods)?;
    let sampler = Sampler::start(processes(&env));
    let world0 = env.world_now_ms();
    let t0 = Instant::now();
    env.apply(&manifest).await?;
    let (mut created, mut first_claim, mut ready) = (None, None, None);
    let mut progress: Vec<Progress> = Vec::new();
    let mut last_sample = Instant::now();
    let result = loop {
        let all = pod_watch.all();
        let claims = claim_watch.all();
        let elapsed = t0.elapsed().as_secs_f64();
        if created.is_none() && all.len() == pods as usize {
            created = Some(elapsed);
        }
        if first_claim.is_none() && !claims.is_empty() {
            first_claim = Some(elapsed);
        }
        let claims_ready = !claims.is_empty() && claims.iter().all(|c| claim_ready(c));
        if claims_ready && ready.is_none() {
            ready = Some(elapsed);
        } else if !claims_ready {
            ready = None;
        }
        let running = running_pods(&all);
        if running.len() == pods as usize {
            let nodes: std::collections::BTreeSet<&str> = running.iter().map(|(_, n)| n.as_str()).collect();
            break ScaleUp {
                workload,
                pods,
                all_pods_created_s: created.unwrap_or(elapsed),
                first_nodeclaim_s: first_claim.unwrap_or(elapsed),
                nodes_ready_s: ready.unwrap_or(elapsed),
                all_running_s: elapsed,
                all_running_world_s: (env.world_now_ms() - world0) as f64 / 1000.0,
                nodeclaims: claims.len(),
                nodes: nodes.len(),
                fleet_cost_per_hour: crate::scenario::observe::fleet_cost_per_hour(&env.fake),
                usage: UsageByProcess::new(),
                progress,
                peer: None,
            };
        }
        if last_sample.elapsed() >= PROGRESS_EVERY {
            last_sample = Instant::now();
            let sample = Progress {
                t_s: (elapsed * 10.0).round() / 10.0,
                pods: all.len(),
                bound: all.iter().filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some())).count(),
                running: running.len(),
                nodeclaims: claims.len(),
                nodeclaims_ready: claims.iter().filter(|c| claim_ready(c)).count(),
            };
            if progress.len() % SHOWN_EVERY == SHOWN_EVERY - 1 {
                println!("perf:   {sample}");
            }
            progress.push(sample);
        }
        if t0.elapsed() > TIMEOUT {
            bail!("{} of {pods} pods Running after {TIMEOUT:?}", running.len());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let usage = sampler.finish();
    env.stop().await;
    Ok(ScaleUp { usage, ..result })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_mix_scales_to_exactly_the_pods_asked_for() {
        let text =
            std::fs::read_to_string(crate::cluster::repo_root().join("fixtures/workloads/scale-mix.yaml")).unwrap();
        for pods in [1_000u32, 5_000, 10_000] {
            let scaled = scaled_mix(&text, pods).unwrap();
            let counts: Vec<u32> = scaled
                .lines()
                .filter_map(|l| l.trim().strip_prefix("replicas: "))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(counts.iter().sum::<u32>(), pods, "{counts:?}");
            assert!(counts.iter().all(|&c| c >= 1), "{counts:?}");
        }
        assert_eq!(scaled_mix(&text, 10_000).unwrap().trim_end(), text.trim_end(), "10,000 is the file itself");
        assert!(scaled_mix(&text, 2).is_err());
    }
}
