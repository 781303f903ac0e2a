//! Issue 5 on the local control plane: the autoscaler, fake-ec2 (scaled clock, playing kubelet)
//! and a real kube-apiserver/scheduler. Each test applies the fixtures a Karpenter user would and
//! checks what the cluster and the fake cloud end up with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use autoscaler::apis::common::is_true;
use e2e::env::{Env, EnvConfig, label, running, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

async fn env() -> Env {
    let env = Env::start(EnvConfig::default()).await.expect("environment");
    env.apply_fixture("nodepools/ec2nodeclass-default.yaml").await.unwrap();
    env
}

/// Applies Karpenter's `inflate` Deployment (512m / 512Mi pause pods) with `replicas`.
async fn inflate(env: &Env, replicas: u32) {
    let text = std::fs::read_to_string(e2e::cluster::repo_root().join("fixtures/workloads/inflate.yaml")).unwrap();
    env.apply(&text.replace("replicas: 10", &format!("replicas: {replicas}"))).await.unwrap();
}

/// Waits until every pod of `selector` (expecting `n`) is Running; returns their node names.
async fn all_running(env: &Env, selector: &str, n: usize) -> BTreeSet<String> {
    wait_for(&format!("{n} pods {selector} Running"), WAIT, || async {
        let pods = env.pods(selector).await.ok()?;
        let r = running(&pods);
        (pods.len() == n && r.len() == n).then(|| r.iter().map(|(_, node)| node.to_string()).collect())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_nodepool_fits_ten_pods_on_one_spot_node() {
    let env = env().await;
    env.apply_fixture("nodepools/spot.yaml").await.unwrap();
    env.apply_fixture("workloads/inflate.yaml").await.unwrap();
    let nodes = all_running(&env, "app=inflate", 10).await;
    assert_eq!(nodes.len(), 1, "10 pods of 512m/512Mi fit one node: {nodes:?}");

    let claims = env.node_claims().await.unwrap();
    assert_eq!(claims.len(), 1, "one NodeClaim");
    let claim = &claims[0];
    let conditions = &claim.status.as_ref().unwrap().conditions;
    for c in ["Launched", "Registered", "Initialized", "Ready"] {
        assert!(is_true(conditions, c), "NodeClaim condition {c} True: {conditions:?}");
    }
    let node =
        env.nodes().await.unwrap().into_iter().find(|n| nodes.contains(n.metadata.name.as_deref().unwrap())).unwrap();
    assert_eq!(label(&node, "karpenter.sh/capacity-type"), Some("spot"));
    assert_eq!(label(&node, "karpenter.sh/nodepool"), Some("spot"));
    assert_eq!(label(&node, "karpenter.sh/initialized"), Some("true"));
    let it = label(&node, "node.kubernetes.io/instance-type").unwrap();
    assert!(["c", "m", "r"].iter().any(|c| it.starts_with(c)), "type {it} within the pool's categories");
    assert!(
        !node.spec.as_ref().unwrap().taints.iter().flatten().any(|t| t.key == "karpenter.sh/unregistered"),
        "the unregistered taint is removed at registration"
    );
    // The fake cloud agrees: one spot instance of that type, tagged for the cluster and pool.
    let instances = env.live_instances();
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!((instances[0].capacity_type.as_str(), instances[0].instance_type.as_str()), ("spot", it));
    let tags = env.fake.cloud().ec2.instances.values().next().unwrap().tags.clone();
    assert_eq!(tags.get("karpenter.sh/nodepool").map(String::as_str), Some("spot"));
    assert_eq!(tags.get("eks:eks-cluster-name").map(String::as_str), Some("fake-cluster"));
    assert_eq!(tags.get("team").map(String::as_str), Some("platform"), "EC2NodeClass tags reach the instance");
    // NodePool status counts the node against its limits.
    let pools: kube::Api<autoscaler::apis::NodePool> = kube::Api::all(env.kube.clone());
    wait_for("nodepool status.resources.nodes = 1", WAIT, || async {
        let p = pools.get("spot").await.ok()?;
        let nodes = p.status?.resources?.get("nodes")?.0.clone();
        (nodes == "1").then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_workload_pinned_to_on_demand_gets_an_on_demand_node() {
    let env = env().await;
    env.apply_fixture("nodepools/spot.yaml").await.unwrap();
    env.apply_fixture("nodepools/on-demand.yaml").await.unwrap();
    env.apply_fixture("workloads/stateful-on-demand.yaml").await.unwrap();
    let nodes = all_running(&env, "app=ledger", 2).await;
    for node in env.nodes().await.unwrap().iter().filter(|n| nodes.contains(n.metadata.name.as_deref().unwrap())) {
        assert_eq!(label(node, "karpenter.sh/capacity-type"), Some("on-demand"));
        assert_eq!(label(node, "karpenter.sh/nodepool"), Some("on-demand"));
        assert_eq!(label(node, "workload-class"), Some("stateful"), "template labels reach the node");
    }
    assert!(env.live_instances().iter().all(|i| i.capacity_type == "on-demand"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_spread_with_min_domains_uses_three_zones() {
    let env = env().await;
    env.apply_fixture("nodepools/spot.yaml").await.unwrap();
    env.apply_fixture("workloads/zone-spread.yaml").await.unwrap();
    let nodes = all_running(&env, "app=spread", 3).await;
    let zones: BTreeSet<String> = env
        .nodes()
        .await
        .unwrap()
        .iter()
        .filter(|n| nodes.contains(n.metadata.name.as_deref().unwrap()))
        .filter_map(|n| label(n, "topology.kubernetes.io/zone").map(str::to_owned))
        .collect();
    assert_eq!(zones.len(), 3, "one node per zone: {zones:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_pools_at_zero_capacity_fall_back_to_on_demand() {
    let env = env().await;
    // The pool may use four types; spot capacity for all of them is gone in every zone.
    for t in ["m5.large", "m5.xlarge", "m6i.large", "m6i.xlarge"] {
        env.admin("pools", json!({"instance_type": t, "capacity_type": "spot", "capacity": 0})).await.unwrap();
    }
    env.apply_fixture("nodepools/spot-and-on-demand.yaml").await.unwrap();
    inflate(&env, 2).await;
    let nodes = all_running(&env, "app=inflate", 2).await;
    for node in env.nodes().await.unwrap().iter().filter(|n| nodes.contains(n.metadata.name.as_deref().unwrap())) {
        assert_eq!(label(node, "karpenter.sh/capacity-type"), Some("on-demand"), "fell back to on-demand");
    }
    // The first attempt was spot, failed with InsufficientInstanceCapacity, and its NodeClaim went.
    let ice = env.events_with_reason("InsufficientCapacityError").await.unwrap();
    assert!(ice >= 1, "an InsufficientCapacityError event was recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_quota_exhausted_falls_back_to_on_demand() {
    let env = env().await;
    env.admin("quotas", json!({"spot_vcpus": 0})).await.unwrap();
    env.apply_fixture("nodepools/spot-and-on-demand.yaml").await.unwrap();
    inflate(&env, 2).await;
    let nodes = all_running(&env, "app=inflate", 2).await;
    for node in env.nodes().await.unwrap().iter().filter(|n| nodes.contains(n.metadata.name.as_deref().unwrap())) {
        assert_eq!(label(node, "karpenter.sh/capacity-type"), Some("on-demand"));
    }
    assert!(env.live_instances().iter().all(|i| i.capacity_type == "on-demand"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta1_manifests_from_older_guides_apply_and_provision() {
    let env = Env::start(EnvConfig::default()).await.expect("environment");
    env.apply_fixture("nodepools/v1beta1-default.yaml").await.unwrap();
    inflate(&env, 3).await;
    let nodes = all_running(&env, "app=inflate", 3).await;
    let node =
        env.nodes().await.unwrap().into_iter().find(|n| nodes.contains(n.metadata.name.as_deref().unwrap())).unwrap();
    assert_eq!(label(&node, "karpenter.sh/nodepool"), Some("legacy"));
    assert_eq!(label(&node, "karpenter.sh/capacity-type"), Some("spot"));
    // The v1beta1 pool's kubelet maxPods reached the node through the user data.
    let pods = node.status.as_ref().and_then(|s| s.capacity.as_ref()).and_then(|c| c.get("pods")).map(|q| q.0.clone());
    assert_eq!(pods.as_deref(), Some("20"));
    // v1beta1 expireAfter (under disruption) is carried onto the NodeClaim as v1's expireAfter.
    let claims = env.node_claims().await.unwrap();
    assert_eq!(claims[0].spec.expire_after.as_deref(), Some("168h"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_nodeclaims_terminate_their_instance_and_orphans_are_collected() {
    let env = env().await;
    env.apply_fixture("nodepools/spot.yaml").await.unwrap();
    inflate(&env, 1).await;
    all_running(&env, "app=inflate", 1).await;
    let claim = env.node_claims().await.unwrap().remove(0);
    let claim_name = claim.metadata.name.clone().unwrap();
    let instance = claim.status.as_ref().unwrap().provider_id.clone().unwrap().rsplit('/').next().unwrap().to_owned();

    // An instance tagged for this cluster that no NodeClaim owns: a leak the collector must end.
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-west-2"))
            .endpoint_url(&env.endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .build(),
    );
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let run = ec2
        .run_instances()
        .image_id("ami-0a0b0c0d0e0f10111")
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .subnet_id("subnet-0a1a1a1a1a1a1a1a1")
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(tag("karpenter.sh/nodepool", "spot"))
                .tags(tag("karpenter.k8s.aws/ec2nodeclass", "default"))
                .tags(tag("eks:eks-cluster-name", "fake-cluster"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let orphan = run.instances()[0].instance_id().unwrap().to_owned();

    // Deleting the NodeClaim drains and deletes its Node and terminates the instance; the
    // finalizer goes once EC2 no longer lists it.
    let claims: kube::Api<autoscaler::apis::NodeClaim> = kube::Api::all(env.kube.clone());
    claims.delete(&claim_name, &Default::default()).await.unwrap();
    wait_for("the NodeClaim to be gone", WAIT, || async {
        claims.get_opt(&claim_name).await.ok()?.is_none().then_some(())
    })
    .await
    .unwrap();
    let state = |id: &str| env.fake.cloud().ec2.instance(id).map(|i| i.state.name().to_owned());
    assert!(
        matches!(state(&instance).as_deref(), Some("shutting-down" | "terminated") | None),
        "{:?}",
        state(&instance)
    );
    wait_for("the orphan instance to be terminated", WAIT, || async {
        matches!(state(&orphan).as_deref(), Some("shutting-down" | "terminated") | None).then_some(())
    })
    .await
    .unwrap();
    // The pod's replacement got a new NodeClaim.
    all_running(&env, "app=inflate", 1).await;
}
