//! Issue 13, every AMI family: for AL2, AL2023 and Bottlerocket, the family's EC2NodeClass
//! fixture, the spot NodePool and a small deployment on the local cluster. Pods must run on nodes
//! whose instances booted with that family's image and user data: fake-ec2's node bridge reads
//! the user data (bootstrap.sh, nodeadm NodeConfig or Bottlerocket TOML) to register the Node, so
//! a Node only appears if the autoscaler wrote the family's format correctly.
//!
//! The same check runs with upstream Karpenter as the autoscaler under test (`karpenter_*`); those
//! tests need the Karpenter build cached by e2e/k8s/build-karpenter.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::env::{AutoscalerKind, Env, EnvConfig, running, wait_for};
use userdata::Family;

const WAIT: Duration = Duration::from_secs(180);
/// The label and taint key the test's NodePool sets, valued by the family.
const LABEL: &str = "spotbench.io/family";

/// Each family's fixture and the image-name prefix its alias resolves to in the default world.
fn fixture(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Al2 => ("nodepools/ec2nodeclass-al2.yaml", "amazon-eks-"),
        Family::Al2023 => ("nodepools/ec2nodeclass-default.yaml", "amazon-eks-node-al2023-"),
        Family::Bottlerocket => ("nodepools/ec2nodeclass-bottlerocket.yaml", "bottlerocket-aws-k8s-"),
    }
}

async fn run_family(kind: AutoscalerKind, family: Family) {
    let env = Env::start(EnvConfig { autoscaler: kind, ..EnvConfig::default() }).await.expect("environment");
    let (class, image_prefix) = fixture(family);
    env.apply_fixture(class).await.unwrap();
    // The NodePool's labels and taints must reach the Node through the family's user data.
    let root = e2e::cluster::repo_root();
    let pool = std::fs::read_to_string(root.join("fixtures/nodepools/spot.yaml")).unwrap();
    let pool = pool.replacen(
        "  template:\n    spec:\n",
        &format!(
            "  template:\n    metadata:\n      labels:\n        {LABEL}: {family}\n    spec:\n      taints:\n        - {{key: {LABEL}, value: {family}, effect: NoSchedule}}\n"
        ),
        1,
    );
    env.apply(&pool).await.unwrap();
    let text = std::fs::read_to_string(root.join("fixtures/workloads/inflate.yaml")).unwrap();
    let workload = text.replace("replicas: 10", "replicas: 3").replace(
        "      containers:\n",
        &format!("      tolerations:\n        - {{key: {LABEL}, operator: Exists}}\n      containers:\n"),
    );
    env.apply(&workload).await.unwrap();

    let nodes: BTreeSet<String> = wait_for(&format!("{family}: 3 inflate pods Running"), WAIT, || async {
        let pods = env.pods("app=inflate").await.ok()?;
        let r = running(&pods);
        (pods.len() == 3 && r.len() == 3).then(|| r.iter().map(|(_, node)| node.to_string()).collect())
    })
    .await
    .unwrap_or_else(|e| {
        let log = env.autoscaler_log().map(|p| e2e::karpenter::log_tail(p, 40)).unwrap_or_default();
        panic!("{e}\nautoscaler log (last lines):\n{log}")
    });

    // Every node the pods run on is an instance of the family's image, with the family's user data.
    let all_nodes = env.nodes().await.unwrap();
    for name in &nodes {
        let node = all_nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name.as_str())).unwrap();
        let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap_or_default();
        let instance_id = provider_id.rsplit('/').next().unwrap_or_default().to_owned();
        // What fake-ec2 knows about the instance: its image's name and its user data's family.
        let (image_name, user_data_family) = {
            let w = env.fake.cloud();
            let i = w.ec2.instance(&instance_id).unwrap_or_else(|| panic!("node {name}: no instance {provider_id}"));
            let image = w.ec2.images.iter().find(|im| im.cfg.id == i.image_id).map(|im| im.cfg.name.clone());
            (image.unwrap_or_default(), i.user_data.as_deref().and_then(|u| userdata::parse(u).ok()).map(|(f, _)| f))
        };
        assert_eq!(user_data_family, Some(family), "node {name}: user data of instance {instance_id}");
        assert!(image_name.starts_with(image_prefix), "node {name}: image {image_name} is not a {family} image");
        if family == Family::Al2 {
            assert!(!image_name.contains("al2023"), "AL2, not AL2023: {image_name}");
        }
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(LABEL).map(String::as_str), Some(family.to_string().as_str()), "node {name}: labels");
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        assert!(
            taints
                .iter()
                .any(|t| t.key == LABEL && t.value.as_deref() == Some(&family.to_string()) && t.effect == "NoSchedule"),
            "node {name}: taints {taints:?}"
        );
        let os =
            node.status.as_ref().and_then(|s| s.node_info.as_ref()).map(|i| i.os_image.clone()).unwrap_or_default();
        let expected_os = if family == Family::Bottlerocket { "Bottlerocket" } else { "Amazon Linux" };
        assert!(os.starts_with(expected_os), "node {name}: osImage {os}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn al2_nodeclass_runs_pods_on_bootstrap_sh_nodes() {
    run_family(AutoscalerKind::default(), Family::Al2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn al2023_nodeclass_runs_pods_on_nodeadm_nodes() {
    run_family(AutoscalerKind::default(), Family::Al2023).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bottlerocket_nodeclass_runs_pods_on_toml_configured_nodes() {
    run_family(AutoscalerKind::default(), Family::Bottlerocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karpenter_runs_pods_on_every_family() {
    for family in Family::ALL {
        run_family(AutoscalerKind::Karpenter, family).await;
    }
}
