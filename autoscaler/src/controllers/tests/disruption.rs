//! Disruption: the pure `decide` over hand-built inputs, and the controller gathering its inputs
//! and carrying a decision out against a scripted API server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::support::{FakeCloud, Harness, T0, launched_claim, node, node_class, node_pool, obj, pod};
use crate::apis::{EC2NodeClass, NodeClaim, NodePool};
use crate::clock::ManualClock;
use crate::controllers::disruption::{
    Budgets, Candidate, PodEvents, Reason, Settings, decide, execute::execute, next_decision,
};
use crate::controllers::snapshot::{Snapshot, SnapshotNode, bound_pods};
use crate::convert;

fn pool_with(disruption: Value) -> Arc<NodePool> {
    let mut v = node_pool();
    v["spec"]["disruption"] = disruption;
    Arc::new(obj(v))
}

/// A registered, initialized node `i` with pods of the given CPU requests.
struct Member {
    claim: Arc<NodeClaim>,
    node: Arc<Node>,
    pods: Vec<Arc<Pod>>,
}

fn member(i: usize, cpus: &[&str]) -> Member {
    let pid = format!("aws:///us-west-2a/i-{i:017x}");
    let name = format!("ip-{i}");
    let claim = launched_claim(&format!("default-{i}"), &pid, Some(&name), &["Registered", "Initialized"]);
    let mut node = node(&name, &pid, true);
    node["spec"]["taints"] = json!([]);
    let pods =
        cpus.iter().enumerate().map(|(j, cpu)| Arc::new(obj(pod(&format!("p-{i}-{j}"), cpu, Some(&name))))).collect();
    Member { claim: Arc::new(obj(claim)), node: Arc::new(obj(node)), pods }
}

/// The inputs the controller would gather for these members (no instance types to launch).
fn inputs(pool: &Arc<NodePool>, members: &[Member]) -> (Snapshot, Vec<Candidate>, Budgets) {
    let all: Vec<Arc<Pod>> = members.iter().flat_map(|m| m.pods.clone()).collect();
    let used = convert::requests_by_node(&all);
    let nodes = members
        .iter()
        .map(|m| SnapshotNode {
            node: convert::existing_node(&m.node, used.get(m.node.metadata.name.as_deref().unwrap()), true, false),
            claim: m.claim.metadata.name.clone(),
        })
        .collect();
    let sched_pool = convert::node_pool(pool, vec![], &crate::scheduling::Resources::new()).unwrap();
    let snapshot = Snapshot {
        pools: vec![sched_pool],
        nodes,
        scheduled: bound_pods(&all),
        daemonsets: vec![],
        skipped_pools: vec![],
    };
    let now = T0.parse().unwrap();
    let candidates = members
        .iter()
        .map(|m| Candidate::new(m.claim.clone(), m.node.clone(), pool.clone(), &m.pods, 0.096, true, now))
        .collect();
    let claims: Vec<Arc<NodeClaim>> = members.iter().map(|m| m.claim.clone()).collect();
    let budgets = Budgets::new(std::slice::from_ref(pool), &claims, &BTreeSet::new());
    (snapshot, candidates, budgets)
}

fn clock() -> ManualClock {
    ManualClock::new(std::time::Instant::now(), T0.parse().unwrap())
}

fn names(candidates: &[Candidate]) -> Vec<String> {
    candidates.iter().map(Candidate::name).collect()
}

#[test]
fn empty_nodes_go_together_as_far_as_the_budget_allows() {
    let pool = pool_with(json!({"consolidationPolicy": "WhenEmpty", "budgets": [{"nodes": "2"}]}));
    let members: Vec<Member> = (0..3).map(|i| member(i, &[])).collect();
    let (snapshot, candidates, budgets) = inputs(&pool, &members);
    let d = decide(&snapshot, &candidates, &budgets, Settings::default(), &clock()).unwrap();
    assert_eq!(d.reason, Reason::Empty);
    assert_eq!(names(&d.candidates), ["default-0", "default-1"]);
    assert!((d.savings - 0.192).abs() < 1e-9, "{}", d.savings);
}

#[test]
fn a_scheduled_budget_window_holds_every_disruption_while_open() {
    // Nothing during the first hour of every day: T0 is midnight.
    let budgets = json!([{"nodes": "0", "schedule": "@daily", "duration": "1h"}]);
    let pool = pool_with(json!({"consolidationPolicy": "WhenEmpty", "budgets": budgets}));
    let members: Vec<Member> = (0..2).map(|i| member(i, &[])).collect();
    let (snapshot, candidates, budgets) = inputs(&pool, &members);
    let clock = clock();
    assert!(decide(&snapshot, &candidates, &budgets, Settings::default(), &clock).is_none());
    clock.advance(std::time::Duration::from_secs(3600));
    let d = decide(&snapshot, &candidates, &budgets, Settings::default(), &clock).unwrap();
    assert_eq!(names(&d.candidates), ["default-0", "default-1"]);
}

#[test]
fn an_underutilized_node_goes_when_its_pods_fit_on_another() {
    let pool = pool_with(json!({"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"}));
    // Both cannot go (nothing to launch); one can: its pod fits beside the other's.
    let members = [member(0, &["500m"]), member(1, &["500m"])];
    let (snapshot, candidates, budgets) = inputs(&pool, &members);
    let d = decide(&snapshot, &candidates, &budgets, Settings::default(), &clock()).unwrap();
    assert_eq!(d.reason, Reason::Underutilized);
    assert_eq!(names(&d.candidates), ["default-0"]);
    assert!(d.replacements.is_empty());
    // Too full to take each other's pods: nothing to do.
    let members = [member(0, &["1500m"]), member(1, &["1500m"])];
    let (snapshot, candidates, budgets) = inputs(&pool, &members);
    assert!(decide(&snapshot, &candidates, &budgets, Settings::default(), &clock()).is_none());
}

#[test]
fn when_empty_pools_are_not_consolidated() {
    let pool = pool_with(json!({"consolidationPolicy": "WhenEmpty"}));
    let members = [member(0, &["500m"]), member(1, &["500m"])];
    let (snapshot, candidates, budgets) = inputs(&pool, &members);
    assert!(decide(&snapshot, &candidates, &budgets, Settings::default(), &clock()).is_none());
}

#[tokio::test]
async fn the_controller_gathers_decides_and_deletes_an_empty_node() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    h.cache.put(obj::<EC2NodeClass>(node_class()));
    let pool = pool_with(json!({"consolidationPolicy": "WhenEmpty", "consolidateAfter": "0s"}));
    h.cache.put((*pool).clone());
    let m = member(0, &[]);
    h.cache.put((*m.claim).clone());
    h.cache.put((*m.node).clone());
    let ctx = h.ctx.clone();
    let mut events = PodEvents::default();

    let (decision, ()) = tokio::join!(next_decision(&ctx, &mut events), async {
        let pdbs = h.api.expect("GET", "/apis/policy/v1/poddisruptionbudgets").await;
        pdbs.ok(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudgetList", "metadata": {}, "items": []}));
    });
    let decision = decision.unwrap().unwrap();
    assert_eq!((decision.reason, names(&decision.candidates)), (Reason::Empty, vec!["default-0".to_owned()]));
    assert!((decision.savings - 0.096).abs() < 1e-9, "priced from fake-ec2's m5.large: {}", decision.savings);
    h.api.assert_idle();

    let (result, ()) = tokio::join!(execute(&ctx, &decision), async {
        let taint = h.api.expect("PATCH", "/api/v1/nodes/ip-0").await;
        assert_eq!(taint.body["spec"]["taints"], json!([{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]));
        taint.ok(&*m.node);
        let ev = h.api.expect_event("DisruptionLaunching", "default-0").await;
        assert_eq!(ev["note"], "Disrupting NodeClaim: Empty (delete)");
        h.api.expect_event("DisruptionTerminating", "default-0").await;
        h.api.expect("DELETE", "/apis/karpenter.sh/v1/nodeclaims/default-0").await.ok(&*m.claim);
        // What the watch would deliver next: execute waits for it before it returns.
        let mut deleting = (*m.claim).clone();
        deleting.metadata.deletion_timestamp = Some(ctx.now());
        h.cache.put(deleting);
    });
    result.unwrap();
    h.api.assert_idle();
}
