//! Consolidation decision time for 100, 500 and 1,000 nodes: the pure part of one disruption
//! pass (multi-node prefixes of up to 100 candidates, halving, then single-node candidates one by
//! one), each a scheduling simulation of the candidates' pods onto the rest of the cluster.
//! `cargo bench -p autoscaler --bench consolidation` writes bench/consolidation.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use autoscaler::scheduling::{
    CapacityType, ExistingNode, InstanceType, Offering, Requirement, Requirements, Resources, SchedNodePool, SchedPod,
    ScheduledPodInfo, Scheduler, SchedulerOptions, labels,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const GI: i64 = 1 << 30;

fn types() -> Vec<Arc<InstanceType>> {
    (0..40i64)
        .map(|i| {
            let (cpu, mem) = (i + 1, 4 * (i + 1));
            let price = 0.05 * cpu as f64 + 0.005 * mem as f64;
            let offerings = ["zone-a", "zone-b", "zone-c"]
                .iter()
                .map(|z| Offering { zone: (*z).into(), capacity_type: CapacityType::OnDemand, price, available: true })
                .collect();
            let reqs = Requirements::new().with(labels::ARCH, Requirement::in_values(["amd64"]));
            Arc::new(InstanceType::new(
                &format!("it-{cpu}"),
                reqs,
                Resources::from_milli([("cpu", cpu * 1000), ("memory", mem * GI * 1000), ("pods", 110_000)]),
                Resources::from_milli([("cpu", 100), ("memory", (256 << 20) * 1000)]),
                offerings,
            ))
        })
        .collect()
}

struct Cluster {
    nodes: Vec<(String, Resources, Vec<SchedPod>)>,
}

fn cluster(n: usize, rng: &mut ChaCha8Rng) -> Cluster {
    let alloc = Resources::from_milli([("cpu", 3900), ("memory", 15 * GI * 1000), ("pods", 110_000)]);
    let nodes = (0..n)
        .map(|i| {
            let name = format!("node-{i:04}");
            let pods: Vec<SchedPod> = (0..rng.random_range(1..4))
                .map(|j| {
                    let cpu = [250, 500, 1000][rng.random_range(0..3)];
                    let mut p = SchedPod::new(
                        "default",
                        &format!("p-{i}-{j}"),
                        Resources::from_milli([("cpu", cpu), ("memory", GI * 1000), ("pods", 1000)]),
                    );
                    p.labels = BTreeMap::from([("app".to_owned(), format!("app-{}", i % 20))]);
                    p
                })
                .collect();
            (name, alloc.clone(), pods)
        })
        .collect();
    Cluster { nodes }
}

/// One simulation: the pods of `cands` onto every other node plus new capacity.
fn simulate(c: &Cluster, cands: &[usize], pool: &SchedNodePool) -> Option<usize> {
    let gone: std::collections::BTreeSet<usize> = cands.iter().copied().collect();
    let mut existing = Vec::new();
    let mut scheduled = Vec::new();
    for (i, (name, alloc, pods)) in c.nodes.iter().enumerate() {
        if gone.contains(&i) {
            continue;
        }
        let mut avail = alloc.clone();
        for p in pods {
            avail.sub(&p.requests);
            scheduled.push(ScheduledPodInfo {
                namespace: "default".into(),
                labels: p.labels.clone(),
                node_name: name.clone(),
                anti_affinity: vec![],
            });
        }
        let reqs = Requirements::new()
            .with(labels::HOSTNAME, Requirement::in_values([name.clone()]))
            .with(labels::ZONE, Requirement::in_values([["zone-a", "zone-b", "zone-c"][i % 3]]));
        existing.push(ExistingNode {
            name: name.clone(),
            requirements: reqs,
            taints: vec![],
            available: avail,
            initialized: true,
            marked_for_deletion: false,
        });
    }
    let pods: Vec<SchedPod> = cands.iter().flat_map(|&i| c.nodes[i].2.clone()).collect();
    let mut s = Scheduler::new(vec![pool.clone()], existing, scheduled, vec![], SchedulerOptions::default());
    let r = s.solve(pods);
    (r.pod_errors.is_empty() && r.new_node_claims.len() <= 1).then_some(r.new_node_claims.len())
}

fn main() {
    let pool = SchedNodePool {
        name: "default".into(),
        weight: 0,
        requirements: Requirements::new().with(labels::NODE_POOL, Requirement::in_values(["default"])),
        labels: BTreeMap::new(),
        taints: vec![],
        startup_taints: vec![],
        remaining: None,
        instance_types: types(),
    };
    let mut out = String::from(
        "# Consolidation decision benchmark\n\n`cargo bench -p autoscaler --bench consolidation` (release, one thread). Nodes of 4 vCPU / 16 GiB with 1–3 pods of 250m–1 CPU and 1 GiB (ChaCha8 seed 7); one pass as the disruption controller makes it: multi-node prefixes of up to 100 candidates (halving), then single-node candidates until one can go. Karpenter bounds the same work with timeouts of 1 min (multi-node) and 3 min (single-node).\n\n| nodes | simulations | decision | ms |\n|---:|---:|---|---:|\n",
    );
    for n in [100, 500, 1000] {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let c = cluster(n, &mut rng);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (c.nodes[i].2.len(), i));
        let start = Instant::now();
        let mut sims = 0;
        let mut decision = "none".to_owned();
        let mut k = n.min(100);
        while k >= 2 {
            sims += 1;
            if let Some(new) = simulate(&c, &order[..k], &pool) {
                decision = format!("multi-node: {k} nodes -> {new} new");
                break;
            }
            k /= 2;
        }
        if decision == "none" {
            for &i in &order {
                sims += 1;
                if let Some(new) = simulate(&c, &[i], &pool) {
                    decision = format!("single-node -> {new} new");
                    break;
                }
            }
        }
        let ms = start.elapsed().as_secs_f64() * 1e3;
        println!("{n} nodes: {sims} simulations, {decision}, {ms:.1} ms");
        writeln!(out, "| {n} | {sims} | {decision} | {ms:.1} |").unwrap();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/consolidation.md");
    std::fs::write(&path, out).unwrap();
    println!("wrote {}", path.display());
}
