//! On the local control plane (real kube-apiserver, scheduler, controller-manager; kwok as kubelet):
//! an instance launched through aws-sdk-ec2 CreateFleet becomes a Ready Node with the right labels
//! and allocatable, takes a Deployment's pods, and when terminated its Node goes and the pods are
//! left Pending. Also: CRDs install and serve objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{DefaultTargetCapacityType, RequestLaunchTemplateData};
use e2e::cluster::{Backend, Cluster, repo_root};
use fake_ec2::server::{AppState, bind, serve};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use testkit::fleet::{SUBNET_A, karpenter_fleet, override_for};

/// Polls `f` until it returns Some, or fails the test after `timeout` naming what it waited for.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    e2e::env::wait_for(what, timeout, f).await.unwrap()
}

fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_instance_becomes_a_node_runs_pods_and_goes_away_when_terminated() {
    let cluster = Cluster::up(Backend::Local, &repo_root(), None).expect("local cluster");
    let kube = cluster.client().await.unwrap();

    // fake-ec2 in-process, registering Nodes in this cluster.
    let state = AppState::new(testkit::fake::world(1));
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state.clone(), std::future::pending()));
    let nodes_task = tokio::spawn(fake_ec2::nodes::run(state.clone(), kube.clone()));
    let advance = |secs: i64| {
        let mut w = state.cloud();
        w.clock.advance(secs * 1000);
        w.sync();
    };

    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .build(),
    );
    let registration = userdata::NodeRegistration {
        labels: [("karpenter.sh/nodepool".to_owned(), "e2e".to_owned())].into(),
        ..Default::default()
    };
    ec2.create_launch_template()
        .launch_template_name("e2e-nodes")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-0a0b0c0d0e0f10111")
                .user_data(registration.to_base64())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let fleet = karpenter_fleet(
        &ec2,
        "e2e-nodes",
        DefaultTargetCapacityType::Spot,
        1,
        vec![override_for("m5.large", SUBNET_A, "us-west-2a")],
    )
    .send()
    .await
    .unwrap();
    let instance_id = fleet.instances()[0].instance_ids()[0].clone();

    // Boot (15 s) and kubelet registration (10 s) on the world clock.
    advance(25);
    let nodes: Api<Node> = Api::all(kube.clone());
    let provider_id = format!("aws:///us-west-2a/{instance_id}");
    let node = wait_for("the instance's Node to be Ready", Duration::from_secs(90), || {
        let nodes = nodes.clone();
        let provider_id = provider_id.clone();
        async move {
            let list = nodes.list(&ListParams::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(&provider_id) && is_ready(n))
        }
    })
    .await;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    for (k, v) in [
        ("node.kubernetes.io/instance-type", "m5.large"),
        ("topology.kubernetes.io/zone", "us-west-2a"),
        ("karpenter.sh/capacity-type", "spot"),
        ("karpenter.sh/nodepool", "e2e"),
        ("kubernetes.io/arch", "amd64"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
    assert_eq!(alloc.get("cpu").map(|q| q.0.as_str()), Some("1930m"));
    assert_eq!(alloc.get("pods").map(|q| q.0.as_str()), Some("29"));
    let node_name = node.metadata.name.clone().unwrap();

    // A Deployment pinned to the node by a label it registered with.
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), "default");
    let deploy: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "inflate"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "inflate"}},
          "template": {"metadata": {"labels": {"app": "inflate"}},
            "spec": {"nodeSelector": {"karpenter.sh/nodepool": "e2e"},
              "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "250m"}}}]}}}
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deploy).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let app = ListParams::default().labels("app=inflate");
    wait_for("3 inflate pods Running on the node", Duration::from_secs(90), || {
        let pods = pods.clone();
        let app = app.clone();
        let node_name = node_name.clone();
        async move {
            let list = pods.list(&app).await.ok()?;
            let running = list
                .items
                .iter()
                .filter(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name.as_str())
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .count();
            (running == 3).then_some(())
        }
    })
    .await;

    // Terminate: the Node goes, and the replacement pods have nowhere to go.
    ec2.terminate_instances().instance_ids(&instance_id).send().await.unwrap();
    wait_for("the Node to be deleted", Duration::from_secs(60), || {
        let nodes = nodes.clone();
        let node_name = node_name.clone();
        async move { nodes.get_opt(&node_name).await.ok()?.is_none().then_some(()) }
    })
    .await;
    wait_for("3 inflate pods Pending, none on the deleted node", Duration::from_secs(150), || {
        let pods = pods.clone();
        let app = app.clone();
        async move {
            let list = pods.list(&app).await.ok()?;
            let pending = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
                .count();
            (pending == 3).then_some(())
        }
    })
    .await;
    nodes_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_install_and_serve_objects() {
    let cluster = Cluster::up(Backend::Local, &repo_root(), None).expect("local cluster");
    let kube = cluster.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.spotbench.dev"},
        "spec": {"group": "spotbench.dev", "scope": "Cluster",
          "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
          "versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    wait_for("the CRD to be Established", Duration::from_secs(60), || {
        let crds = crds.clone();
        async move {
            let c = crds.get("widgets.spotbench.dev").await.ok()?;
            let established = c.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("spotbench.dev", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::all_with(kube.clone(), &ar);
    // Watch before creating: the object must arrive as a watch event, as controllers see it.
    let mut events = widgets.watch(&kube::api::WatchParams::default(), "0").await.unwrap().boxed();
    let obj: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "spotbench.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}),
    )
    .unwrap();
    widgets.create(&PostParams::default(), &obj).await.unwrap();
    let added = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.try_next().await.unwrap() {
            if let kube::api::WatchEvent::Added(o) = ev {
                return o;
            }
        }
        panic!("watch ended without an Added event");
    })
    .await
    .expect("an Added watch event for w1");
    assert_eq!(added.metadata.name.as_deref(), Some("w1"));
    let got = widgets.get("w1").await.unwrap();
    assert_eq!(got.data["spec"]["size"], 3);
    widgets.delete("w1", &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instance_goes_not_ready_and_a_restarted_fake_ec2_removes_orphans() {
    let cluster = Cluster::up(Backend::Local, &repo_root(), None).expect("local cluster");
    let kube = cluster.client().await.unwrap();
    let state = AppState::new(testkit::fake::world(1));
    let id = {
        let mut w = state.cloud();
        let spec = fake_ec2::world::LaunchSpec {
            instance_type: "c5.large".into(),
            subnet_id: "subnet-0b2b2b2b2b2b2b2b2".into(),
            image_id: "ami-0a0b0c0d0e0f10111".into(),
            reservation_id: "r-0e2e".into(),
            ..Default::default()
        };
        let id = w.launch(&spec).unwrap();
        w.clock.advance(25_000);
        w.sync();
        id
    };
    let nodes: Api<Node> = Api::all(kube.clone());
    let pass = fake_ec2::nodes::reconcile(&state, &kube).await.unwrap();
    assert_eq!(pass.created.len(), 1, "{pass:?}");
    let name = pass.created[0].clone();
    wait_for("the Node to be Ready", Duration::from_secs(60), || {
        let nodes = nodes.clone();
        let name = name.clone();
        async move { nodes.get_opt(&name).await.ok()?.filter(is_ready).map(|_| ()) }
    })
    .await;

    // Stop: the kubelet stops, the Node goes NotReady and stays so.
    state.cloud().stop(&id);
    let pass = fake_ec2::nodes::reconcile(&state, &kube).await.unwrap();
    assert_eq!(pass.stopped, std::slice::from_ref(&name));
    wait_for("the Node to be NotReady", Duration::from_secs(60), || {
        let nodes = nodes.clone();
        let name = name.clone();
        async move { nodes.get_opt(&name).await.ok()?.filter(|n| !is_ready(n)).map(|_| ()) }
    })
    .await;
    // Still NotReady a while later: nothing plays a kubelet for it any more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!is_ready(&nodes.get(&name).await.unwrap()), "a stopped instance's Node must not come back Ready");

    // Start again: Ready again.
    {
        let mut w = state.cloud();
        w.clock.advance(10_000);
        w.sync();
        w.start(&id).unwrap();
        w.clock.advance(15_000);
        w.sync();
    }
    let pass = fake_ec2::nodes::reconcile(&state, &kube).await.unwrap();
    assert_eq!(pass.restarted, std::slice::from_ref(&name));
    wait_for("the Node to be Ready after start", Duration::from_secs(60), || {
        let nodes = nodes.clone();
        let name = name.clone();
        async move { nodes.get_opt(&name).await.ok()?.filter(is_ready).map(|_| ()) }
    })
    .await;

    // fake-ec2 restarts with a world that has no such instance: its Node is an orphan and goes.
    let fresh = AppState::new(testkit::fake::world(1));
    let pass = fake_ec2::nodes::reconcile(&fresh, &kube).await.unwrap();
    assert_eq!(pass.deleted, std::slice::from_ref(&name));
    assert!(nodes.get_opt(&name).await.unwrap().is_none());
}
