//! Consolidation decision time for 100, 500 and 1,000 nodes: the product's pure
//! [`disruption::decide`], as the disruption controller calls it after gathering its inputs
//! (emptiness, drift, expiration, multi-node prefixes of up to 100 candidates halving, then
//! single-node candidates), over a cluster built from Kubernetes objects the way the controller's
//! snapshot is. `cargo bench -p autoscaler --bench consolidation` writes bench/consolidation.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use autoscaler::apis::{NodeClaim, NodePool};
use autoscaler::clock::{Clock, SystemClock};
use autoscaler::controllers::disruption::{self, Budgets, Candidate, Settings};
use autoscaler::controllers::snapshot::{Snapshot, SnapshotNode, bound_pods};
use autoscaler::convert;
use autoscaler::scheduling::{CapacityType, InstanceType, Offering, Requirement, Requirements, Resources, labels};
use k8s_openapi::api::core::v1::{Node, Pod};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const GI: i64 = 1 << 30;
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

fn types() -> Vec<Arc<InstanceType>> {
    (0..40i64)
        .map(|i| {
            let (cpu, mem) = (i + 1, 4 * (i + 1));
            let offerings = ZONES
                .iter()
                .map(|z| Offering {
                    zone: (*z).into(),
                    capacity_type: CapacityType::OnDemand,
                    price: price(cpu, mem),
                    available: true,
                })
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

fn price(cpu: i64, mem_gib: i64) -> f64 {
    0.05 * cpu as f64 + 0.005 * mem_gib as f64
}

/// Consolidation allowed for every node at once, so the budgets do not cut the work short.
fn node_pool() -> Arc<NodePool> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
            "spec": {
                "template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}},
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s", "budgets": [{"nodes": "100%"}]},
            },
        }))
        .unwrap(),
    )
}

/// One 4 vCPU / 16 GiB node (type it-4) with its NodeClaim and 1–3 pods of 250m–1 CPU, 1 GiB.
struct Member {
    claim: Arc<NodeClaim>,
    node: Arc<Node>,
    pods: Vec<Arc<Pod>>,
}

fn member(i: usize, rng: &mut ChaCha8Rng) -> Member {
    let name = format!("node-{i:04}");
    let zone = ZONES[i % 3];
    let provider_id = format!("aws:///{zone}/i-{i:017x}");
    let labels = json!({
        (labels::HOSTNAME): name, (labels::ZONE): zone, (labels::INSTANCE_TYPE): "it-4",
        (labels::CAPACITY_TYPE): "on-demand", (labels::NODE_POOL): "default", (labels::ARCH): "amd64",
    });
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"providerID": provider_id},
        "status": {"allocatable": {"cpu": "3900m", "memory": "15Gi", "pods": "110"}},
    }))
    .unwrap();
    let claim: NodeClaim = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": format!("default-{i:04}"), "labels": labels},
        "spec": {"nodeClassRef": {"name": "default"}, "requirements": []},
        "status": {"providerID": provider_id, "nodeName": name},
    }))
    .unwrap();
    let pods = (0..rng.random_range(1..4))
        .map(|j| {
            let cpu = ["250m", "500m", "1"][rng.random_range(0..3)];
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("p-{i}-{j}"), "namespace": "default", "labels": {"app": format!("app-{}", i % 20)},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]},
                "spec": {"nodeName": name, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
                "status": {"phase": "Running"},
            }))
            .unwrap();
            Arc::new(pod)
        })
        .collect();
    Member { claim: Arc::new(claim), node: Arc::new(node), pods }
}

/// The controller's inputs for a cluster of `n` nodes: snapshot, candidates and budgets.
fn inputs(n: usize, rng: &mut ChaCha8Rng) -> (Snapshot, Vec<Candidate>, Budgets) {
    let pool = node_pool();
    let members: Vec<Member> = (0..n).map(|i| member(i, rng)).collect();
    let all_pods: Vec<Arc<Pod>> = members.iter().flat_map(|m| m.pods.iter().cloned()).collect();
    let used = convert::requests_by_node(&all_pods);
    let nodes = members
        .iter()
        .map(|m| SnapshotNode {
            node: convert::existing_node(&m.node, used.get(m.node.metadata.name.as_deref().unwrap()), true, false),
            claim: m.claim.metadata.name.clone(),
        })
        .collect();
    let sched_pool = convert::node_pool(&pool, types(), &Resources::new()).unwrap();
    let snapshot = Snapshot {
        pools: vec![sched_pool],
        nodes,
        scheduled: bound_pods(&all_pods),
        daemonsets: vec![],
        skipped_pools: vec![],
    };
    let now = SystemClock.timestamp();
    let mut candidates: Vec<Candidate> = members
        .iter()
        .map(|m| Candidate::new(m.claim.clone(), m.node.clone(), pool.clone(), &m.pods, price(4, 16), true, now))
        .collect();
    candidates.sort_by_key(Candidate::name);
    let claims: Vec<Arc<NodeClaim>> = members.iter().map(|m| m.claim.clone()).collect();
    let budgets = Budgets::new(&[pool], &claims, &BTreeSet::new());
    (snapshot, candidates, budgets)
}

fn main() {
    let mut out = String::from(
        "# Consolidation decision benchmark\n\n`cargo bench -p autoscaler --bench consolidation` (release, one thread). The product's `disruption::decide` (the pure function the disruption controller calls after gathering its inputs) over nodes of 4 vCPU / 16 GiB with 1–3 pods of 250m–1 CPU and 1 GiB (ChaCha8 seed 7), all consolidatable, budget 100%: emptiness, drift and expiration find nothing; multi-node prefixes of up to 100 candidates (halving), then single-node candidates until one can go. Karpenter bounds the same work with timeouts of 1 min (multi-node) and 3 min (single-node).\n\n| nodes | decision | savings $/h | ms |\n|---:|---|---:|---:|\n",
    );
    for n in [100, 500, 1000] {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (snapshot, candidates, budgets) = inputs(n, &mut rng);
        let start = Instant::now();
        let decision = disruption::decide(&snapshot, &candidates, &budgets, Settings::default(), &SystemClock);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let (what, savings) = match &decision {
            Some(d) => (
                format!("{}: {} node(s) -> {} new", d.reason.as_str(), d.candidates.len(), d.replacements.len()),
                format!("{:.2}", d.savings),
            ),
            None => ("none".to_owned(), "-".to_owned()),
        };
        println!("{n} nodes: {what}, {ms:.1} ms");
        writeln!(out, "| {n} | {what} | {savings} | {ms:.1} |").unwrap();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/consolidation.md");
    std::fs::write(&path, out).unwrap();
    println!("wrote {}", path.display());
}
