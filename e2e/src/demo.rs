//! `e2e demo`: the spot scale-up scenario end to end on the local cluster, shown as it happens.
//! The README's first command runs it; the scenario harness (issue 7) generalises it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use kube::ResourceExt;

use crate::env::{AutoscalerKind, Env, EnvConfig, claim_ready, running};

/// The fleet's cost per hour at the world's current prices: spot price of each instance's pool,
/// or the on-demand list price.
pub fn fleet_cost_per_hour(env: &Env) -> f64 {
    crate::scenario::observe::fleet_cost_per_hour(&env.fake)
}

pub async fn run(replicas: u32, keep: bool, autoscaler: AutoscalerKind) -> anyhow::Result<()> {
    let started = Instant::now();
    let who = match autoscaler {
        AutoscalerKind::Spotbench => "the project's autoscaler",
        AutoscalerKind::Karpenter => "upstream Karpenter",
    };
    println!("demo: local cluster + fake-ec2 (default world, clock x10) + {who} ...");
    let env = Env::start(EnvConfig { autoscaler, ..EnvConfig::default() }).await?;
    println!(
        "demo: up in {:.0?}; applying EC2NodeClass 'default', NodePool 'spot', Deployment 'inflate' ({replicas} x 512m/512Mi)",
        started.elapsed()
    );
    env.apply_fixture("nodepools/ec2nodeclass-default.yaml").await?;
    env.apply_fixture("nodepools/spot.yaml").await?;
    let inflate = std::fs::read_to_string(crate::cluster::repo_root().join("fixtures/workloads/inflate.yaml"))?
        .replace("replicas: 10", &format!("replicas: {replicas}"));
    env.apply(&inflate).await?;
    let t0 = Instant::now();
    let mut last = String::new();
    loop {
        let pods = env.pods("app=inflate").await?;
        let run = running(&pods).len();
        let claims = env.node_claims().await?;
        let ready = claims.iter().filter(|c| claim_ready(c)).count();
        let line = format!(
            "pods running {run}/{replicas}, nodeclaims {} ({ready} ready), instances {}",
            claims.len(),
            env.live_instances().len()
        );
        if line != last {
            println!("  t+{:>5.1}s  {line}", t0.elapsed().as_secs_f64());
            last = line;
        }
        if run == replicas as usize {
            break;
        }
        if t0.elapsed() > Duration::from_secs(180) {
            bail!("pods not all Running after 3 minutes: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("demo: all {replicas} pods Running {:.1}s after the Deployment was applied", t0.elapsed().as_secs_f64());
    let mut by: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for i in env.live_instances() {
        *by.entry((i.capacity_type, i.zone, i.instance_type)).or_default() += 1;
    }
    println!("demo: fleet");
    for ((ct, zone, it), n) in &by {
        println!("  {n} x {it:<12} {ct:<9} {zone}");
    }
    println!("demo: fleet cost ${:.4}/hour at fake-ec2's current prices", fleet_cost_per_hour(&env));
    for c in env.node_claims().await? {
        println!(
            "  nodeclaim {} -> node {}",
            c.name_any(),
            c.status.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
        );
    }
    if keep {
        println!("demo: left running.");
        print!("{}", crate::up::howto(&env));
        println!("demo: Ctrl-C tears everything down");
        tokio::signal::ctrl_c().await?;
    }
    println!("demo: done in {:.0?}; tearing down", started.elapsed());
    env.stop().await;
    Ok(())
}
