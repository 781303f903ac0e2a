#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use fake_ec2::server::{AppState, Hooks};

use super::*;

/// The real SDK against the host's endpoint, with its standard retries (as the autoscaler has).
fn ec2(endpoint: &str) -> aws_sdk_ec2::Client {
    let cfg = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_ec2::Client::from_conf(cfg)
}

async fn live_ids(c: &aws_sdk_ec2::Client) -> Vec<String> {
    let out = c.describe_instances().send().await.unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() != "terminated"))
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// Launches one m5.large (RunInstances) and returns its id.
async fn launch_one(c: &aws_sdk_ec2::Client) -> String {
    let run = c
        .run_instances()
        .image_id(testkit::fleet::AMI)
        .instance_type(InstanceType::M5Large)
        .subnet_id(testkit::fleet::SUBNET_A)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    run.instances()[0].instance_id().unwrap().to_owned()
}

/// A host with a state file, its kubelet pointed at a cluster that is not there (it retries).
async fn host(dir: &std::path::Path) -> (FakeEc2Host, AppState) {
    let recipe = WorldRecipe::read(&crate::cluster::repo_root(), "fixtures/worlds/default.yaml", 7, 10.0).unwrap();
    let state = AppState::new(recipe.build(None).unwrap());
    let file = recipe.state_file(dir.join("state.json")).unwrap();
    let hooks = Arc::new(Hooks { state_file: Some(file), recorder: None });
    let kube = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    (FakeEc2Host::start(state.clone(), hooks, kube, recipe).await.unwrap(), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_the_endpoint_and_keep_or_lose_the_world() {
    let dir = std::env::temp_dir().join(format!("spotbench-chaos-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut host, state) = host(&dir).await;
    let c = ec2(&host.endpoint());
    let id = launch_one(&c).await;
    let endpoint = host.endpoint();

    let kept = host.restart(true).await.unwrap();
    assert_eq!(kept, Restarted { instances_before: 1, instances_after: 1 });
    assert_eq!(host.endpoint(), endpoint);
    assert_eq!(live_ids(&c).await, vec![id.clone()], "the instance came back from the state file");

    let before = state.cloud().now();
    let lost = host.restart(false).await.unwrap();
    assert_eq!(lost, Restarted { instances_before: 1, instances_after: 0 });
    assert!(live_ids(&c).await.is_empty(), "a fresh world has no instance");
    assert!(state.cloud().now() >= before, "the fresh world's clock goes on, not back");
    assert_ne!(launch_one(&c).await, id, "an instance id came twice");
    host.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_state_without_a_state_file_is_an_error() {
    let recipe = WorldRecipe::read(&crate::cluster::repo_root(), "fixtures/worlds/default.yaml", 7, 10.0).unwrap();
    let state = AppState::new(recipe.build(None).unwrap());
    let kube = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let mut host = FakeEc2Host::start(state, Hooks::none(), kube, recipe).await.unwrap();
    let e = host.restart(true).await.unwrap_err().to_string();
    assert!(e.contains("without a state file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_lifts_itself_after_its_world_seconds() {
    let dir = std::env::temp_dir().join(format!("spotbench-chaos-blackhole-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut host, _state) = host(&dir).await;
    let c = ec2(&host.endpoint());
    assert!(live_ids(&c).await.is_empty());
    let (tx, rx) = tokio::sync::oneshot::channel();
    // 20 world seconds: 2 real seconds at x10.
    host.blackhole(BlackholeMode::Refuse, 20.0, move |r| {
        let _ = tx.send(r.map_err(|e| e.to_string()));
    })
    .await
    .unwrap();
    let once = testkit::sdk_client!(aws_sdk_ec2, host.endpoint(), "us-west-2");
    let refused = once.describe_instances().send().await;
    assert!(refused.is_err(), "answered through a blackhole: {refused:?}");
    let cuts = tokio::time::timeout(Duration::from_secs(30), rx).await.unwrap().unwrap().unwrap();
    assert_eq!(cuts.held, 0);
    assert!(live_ids(&c).await.is_empty(), "answered again once lifted");
    host.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
