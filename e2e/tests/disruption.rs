//! Issue 8 on the local cluster: empty and underutilized nodes consolidate onto cheaper capacity,
//! budgets bound how many nodes go at once, expiry and drift replace a node before it drains, and
//! `karpenter.sh/do-not-disrupt` holds a node. The disruption loop runs every 2 s with a 3 s
//! validation delay here (10 s / 15 s by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::demo::fleet_cost_per_hour;
use e2e::env::{Env, EnvConfig, label, running, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(150);

async fn env() -> Env {
    let cfg = EnvConfig {
        autoscaler_args: ["--disruption-poll", "2s", "--consolidation-validation-delay", "3s"]
            .map(String::from)
            .to_vec(),
        ..EnvConfig::default()
    };
    let env = Env::start(cfg).await.expect("environment");
    env.apply_fixture("nodepools/ec2nodeclass-default.yaml").await.unwrap();
    env
}

async fn inflate(env: &Env, replicas: u32, extra: &str) {
    let text = std::fs::read_to_string(e2e::cluster::repo_root().join("fixtures/workloads/inflate.yaml")).unwrap();
    let text = text.replace("replicas: 10", &format!("replicas: {replicas}"));
    let text = if extra.is_empty() {
        text
    } else {
        text.replace(
            "    spec:\n      terminationGracePeriodSeconds",
            &format!("    spec:\n{extra}      terminationGracePeriodSeconds"),
        )
    };
    env.apply(&text).await.unwrap();
}

async fn scale(env: &Env, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(env.kube.clone(), "default");
    api.patch("inflate", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": replicas}})))
        .await
        .unwrap();
}

async fn all_running(env: &Env, n: usize) -> BTreeSet<String> {
    wait_for(&format!("{n} inflate pods Running"), WAIT, || async {
        let pods = env.pods("app=inflate").await.ok()?;
        let r = running(&pods);
        (pods.len() == n && r.len() == n).then(|| r.iter().map(|(_, node)| node.to_string()).collect())
    })
    .await
    .unwrap()
}

fn instance_types(env: &Env) -> Vec<String> {
    env.live_instances().into_iter().filter(|i| i.state != "shutting-down").map(|i| i.instance_type).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underutilized_nodes_are_replaced_by_cheaper_ones_and_empty_ones_go() {
    let env = env().await;
    env.apply_fixture("nodepools/consolidating.yaml").await.unwrap();
    inflate(&env, 10, "").await;
    all_running(&env, 10).await;
    let big = instance_types(&env);
    let before = fleet_cost_per_hour(&env);
    assert_eq!(big.len(), 1, "{big:?}");

    // One pod left: the big node is underutilized; a cheaper one replaces it, the pod moves.
    scale(&env, 1).await;
    wait_for("a cheaper node to replace the big one", WAIT, || async {
        let types = instance_types(&env);
        (types.len() == 1 && types != big && fleet_cost_per_hour(&env) < before).then_some(())
    })
    .await
    .unwrap();
    all_running(&env, 1).await;
    let after = fleet_cost_per_hour(&env);
    assert!(after < before, "hourly cost {before:.4} -> {after:.4}");
    assert!(env.events_with_reason("DisruptionTerminating").await.unwrap() >= 1);

    // No pods: the node is empty and goes.
    scale(&env, 0).await;
    wait_for("the empty node to go", WAIT, || async { instance_types(&env).is_empty().then_some(()) }).await.unwrap();
    wait_for("no NodeClaims left", WAIT, || async { env.node_claims().await.ok()?.is_empty().then_some(()) })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_percent_budget_never_disrupts_more_than_two_of_twenty_nodes_at_once() {
    let env = env().await;
    env.apply_fixture("nodepools/consolidating.yaml").await.unwrap();
    // One pod per node through hostname anti-affinity: 20 nodes.
    let anti = "      affinity:\n        podAntiAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n            - topologyKey: kubernetes.io/hostname\n              labelSelector: { matchLabels: { app: inflate } }\n";
    inflate(&env, 20, anti).await;
    let nodes = all_running(&env, 20).await;
    assert_eq!(nodes.len(), 20);
    scale(&env, 0).await;
    let start = Instant::now();
    let mut most = 0;
    loop {
        let claims = env.node_claims().await.unwrap();
        let disrupting = claims.iter().filter(|c| c.metadata.deletion_timestamp.is_some()).count()
            + env
                .nodes()
                .await
                .unwrap()
                .iter()
                .filter(|n| n.metadata.deletion_timestamp.is_none())
                .filter(|n| {
                    n.spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|ts| ts.iter().any(|t| t.key == "karpenter.sh/disrupted"))
                })
                .filter(|n| {
                    claims.iter().any(|c| {
                        c.status.as_ref().and_then(|s| s.node_name.as_deref()) == n.metadata.name.as_deref()
                            && c.metadata.deletion_timestamp.is_none()
                    })
                })
                .count();
        most = most.max(disrupting);
        // Karpenter rounds a percentage up over the pool's NodeClaims (deleting ones included):
        // 2 of 20; 3 if the provisioner had launched a 21st.
        let allowed = claims.len().div_ceil(10);
        assert!(
            disrupting <= allowed,
            "{disrupting} nodes disrupted at once with a 10% budget of {} NodeClaims",
            claims.len()
        );
        if claims.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{} NodeClaims left after 5 minutes", claims.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(most >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_drift_replace_the_node_before_it_drains() {
    let env = env().await;
    let pool =
        std::fs::read_to_string(e2e::cluster::repo_root().join("fixtures/nodepools/consolidating.yaml")).unwrap();
    // No consolidation here: only expiry (20 s) and drift may move the pod.
    // m5 only until the drift edit below, so that edit has a node to drift.
    let pool = pool
        .replace("consolidateAfter: 0s", "consolidateAfter: Never")
        .replace("values: [\"m5\", \"m6i\"]", "values: [\"m5\"]")
        .replace("  template:\n    spec:\n", "  template:\n    spec:\n      expireAfter: 20s\n");
    assert!(pool.contains("values: [\"m5\"]"), "the fixture's family requirement changed: {pool}");
    env.apply(&pool).await.unwrap();
    inflate(&env, 1, "").await;
    let first = all_running(&env, 1).await;
    let first_node = first.iter().next().unwrap().clone();
    // Watch: the old node must still be there (not deleted) when the replacement is Ready.
    let replaced = wait_for("an expired node to be replaced", WAIT, || async {
        let nodes = env.nodes().await.ok()?;
        let old = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(&first_node));
        let new_ready = nodes.iter().any(|n| {
            n.metadata.name.as_deref() != Some(&first_node)
                && n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if new_ready {
            return Some(old.is_some());
        }
        None
    })
    .await
    .unwrap();
    assert!(replaced, "the replacement was Ready while the expired node still existed");
    all_running(&env, 1).await;

    // Drift: the pool now only allows m6i; m5 nodes are replaced, m6i ones stay.
    // The precondition: there is an m5 node to drift (else "every node is m6i" proves nothing).
    let m5_nodes: BTreeSet<String> = env
        .nodes()
        .await
        .unwrap()
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| label(n, "karpenter.k8s.aws/instance-family") == Some("m5"))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert!(!m5_nodes.is_empty(), "no m5 node before the drift edit");
    let pools: Api<autoscaler::apis::NodePool> = Api::all(env.kube.clone());
    let never_expire =
        pool.replace("expireAfter: 20s", "expireAfter: Never").replace("values: [\"m5\"]", "values: [\"m6i\"]");
    env.apply(&never_expire).await.unwrap();
    let _ = pools.get("consolidating").await.unwrap();
    wait_for("every node to be m6i", WAIT, || async {
        let nodes = env.nodes().await.ok()?;
        let families: Vec<&str> = nodes
            .iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| label(n, "karpenter.k8s.aws/instance-family"))
            .collect();
        let names: BTreeSet<String> = nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
        (!families.is_empty() && families.iter().all(|f| *f == "m6i") && names.is_disjoint(&m5_nodes)).then_some(())
    })
    .await
    .unwrap();
    all_running(&env, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_disrupt_holds_an_underutilized_node() {
    let env = env().await;
    env.apply_fixture("nodepools/consolidating.yaml").await.unwrap();
    inflate(&env, 10, "").await;
    all_running(&env, 10).await;
    // Mark the pods do-not-disrupt, then scale down: the node is underutilized but held.
    let api: Api<Deployment> = Api::namespaced(env.kube.clone(), "default");
    api.patch("inflate", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1, "template": {"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}}}})))
        .await
        .unwrap();
    all_running(&env, 1).await;
    let types = instance_types(&env);
    // Several disruption rounds (2 s poll + 3 s validation) pass without touching it.
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        assert_eq!(instance_types(&env), types, "a node holding a do-not-disrupt pod was disrupted");
        assert!(env.node_claims().await.unwrap().iter().all(|c| c.metadata.deletion_timestamp.is_none()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Lift the annotation: now it consolidates.
    api.patch(
        "inflate",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"template": {"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "false"}}}}}),
        ),
    )
    .await
    .unwrap();
    wait_for("the node to be consolidated once the annotation is lifted", WAIT, || async {
        let now = instance_types(&env);
        (now.len() == 1 && now != types).then_some(())
    })
    .await
    .unwrap();
}
