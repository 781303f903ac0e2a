//! The NodeClaim lifecycle against a scripted API server (and fake-ec2 where it launches or tags):
//! what each step writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::support::{FakeCloud, Harness, T0, at, launched_claim, node, node_claim, node_class, node_pool, obj};
use crate::apis::{EC2NodeClass, NodeClaim, NodePool};
use crate::controllers::nodeclaim::reconcile;

const CLAIMS: &str = "/apis/karpenter.sh/v1/nodeclaims";

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}

#[tokio::test]
async fn launch_records_the_instance_on_the_claim() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    h.cache.put(obj::<EC2NodeClass>(node_class()));
    h.cache.put(obj::<NodePool>(node_pool()));
    let claim: NodeClaim = obj(node_claim("default-a"));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        let labels = h.api.expect("PATCH", &format!("{CLAIMS}/default-a")).await;
        let l = &labels.body["metadata"]["labels"];
        assert_eq!(l["node.kubernetes.io/instance-type"], "m5.large");
        assert_eq!(l["karpenter.sh/capacity-type"], "on-demand");
        assert_eq!(l["kubernetes.io/arch"], "amd64");
        assert!(l["topology.kubernetes.io/zone"].as_str().unwrap().starts_with("us-west-2"), "{l}");
        labels.ok(&claim);
        let status = h.api.expect("PATCH", &format!("{CLAIMS}/default-a/status")).await;
        let s = &status.body["status"];
        assert!(s["providerID"].as_str().unwrap().starts_with("aws:///us-west-2"), "{s}");
        assert_eq!(s["allocatable"]["cpu"], "1930m");
        assert_eq!(condition(s, "Launched")["status"], "True");
        assert_eq!(condition(s, "Launched")["lastTransitionTime"], T0);
        assert_eq!(condition(s, "Registered")["status"], "Unknown");
        assert_eq!(condition(s, "Ready")["reason"], "AwaitingRegistration");
        status.ok(&claim);
        let ev = h.api.expect_event("Launched", "default-a").await;
        assert!(ev["note"].as_str().unwrap().starts_with("Launched on-demand m5.large in us-west-2"), "{ev}");
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
    let instances = cloud.instances().await;
    let ours: Vec<&Value> = instances.iter().filter(|i| i["tags"]["karpenter.sh/nodeclaim"] == "default-a").collect();
    assert_eq!(ours.len(), 1, "{instances:?}");
    assert_eq!(ours[0]["instance_type"], "m5.large");
}

#[tokio::test]
async fn launch_without_its_node_class_says_so_on_the_claim() {
    let mut h = Harness::without_cloud().await;
    let claim: NodeClaim = obj(node_claim("default-a"));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        let status = h.api.expect("PATCH", &format!("{CLAIMS}/default-a/status")).await;
        let launched = condition(&status.body["status"], "Launched");
        assert_eq!((&launched["status"], &launched["reason"]), (&json!("False"), &json!("NodeClassNotFound")));
        status.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(10)));
    h.api.assert_idle();
}

#[tokio::test]
async fn insufficient_capacity_deletes_the_claim() {
    let cloud = FakeCloud::start().await;
    let body = json!({"instance_type": "m5.large", "capacity_type": "on-demand", "capacity": 0});
    cloud.admin(reqwest::Method::POST, "/pools", Some(body)).await;
    let mut h = Harness::new(&cloud);
    h.cache.put(obj::<EC2NodeClass>(node_class()));
    h.cache.put(obj::<NodePool>(node_pool()));
    let claim: NodeClaim = obj(node_claim("default-a"));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        let ev = h.api.expect_event("InsufficientCapacityError", "default-a").await;
        assert!(ev["note"].as_str().unwrap().contains("InsufficientInstanceCapacity"), "{ev}");
        h.api.expect("DELETE", &format!("{CLAIMS}/default-a")).await.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::await_change());
    h.api.assert_idle();
    assert!(cloud.instances().await.is_empty());
}

#[tokio::test]
async fn liveness_deletes_a_claim_that_did_not_launch_in_time() {
    let mut h = Harness::without_cloud().await;
    let claim: NodeClaim = obj(node_claim("default-a"));
    // The launch timeout is 5 minutes.
    h.clock.advance(Duration::from_secs(301));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        h.api.expect("DELETE", &format!("{CLAIMS}/default-a")).await.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::await_change());
    h.api.assert_idle();
}

#[tokio::test]
async fn liveness_deletes_a_claim_whose_node_did_not_register_in_time() {
    let mut h = Harness::without_cloud().await;
    let claim: NodeClaim = obj(launched_claim("default-a", "aws:///us-west-2a/i-0000000000000000a", None, &[]));
    // Within the 15 minute registration timeout: wait for the Node.
    h.clock.advance(Duration::from_secs(900));
    let result = reconcile(Arc::new(claim.clone()), h.ctx.clone()).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
    h.clock.advance(Duration::from_secs(1));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        h.api.expect("DELETE", &format!("{CLAIMS}/default-a")).await.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn registration_syncs_the_node_and_names_the_instance() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    h.cache.put(class.clone());
    // A real instance to tag, launched the way the launch step does.
    let launched = h.ctx.cloud.create(&obj(node_claim("default-a")), &class, None).await.unwrap();
    let pid = launched.instance.provider_id.clone();
    let claim: NodeClaim = obj(launched_claim("default-a", &pid, None, &[]));
    h.cache.put(obj::<k8s_openapi::api::core::v1::Node>(node("ip-10-0-0-1", &pid, false)));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        let sync = h.api.expect("PATCH", "/api/v1/nodes/ip-10-0-0-1").await;
        let m = &sync.body["metadata"];
        assert_eq!(m["labels"]["karpenter.sh/registered"], "true");
        assert_eq!(m["labels"]["karpenter.sh/nodepool"], "default");
        assert_eq!(m["finalizers"], json!(["karpenter.sh/termination"]));
        assert_eq!(m["ownerReferences"][0]["kind"], "NodeClaim");
        assert_eq!(m["ownerReferences"][0]["name"], "default-a");
        assert_eq!(m["resourceVersion"], "7", "the patch must not overwrite a newer Node");
        assert_eq!(sync.body["spec"]["taints"], json!([]), "karpenter.sh/unregistered is lifted");
        sync.ok(node("ip-10-0-0-1", &pid, false));
        let status = h.api.expect("PATCH", "/apis/karpenter.sh/v1/nodeclaims/default-a/status").await;
        let s = &status.body["status"];
        assert_eq!(s["nodeName"], "ip-10-0-0-1");
        assert_eq!(condition(s, "Registered")["status"], "True");
        assert_eq!(condition(s, "Initialized")["reason"], "AwaitingInitialization");
        status.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
    let instances = cloud.instances().await;
    let tagged = instances.iter().find(|i| Some(i["id"].as_str().unwrap()) == pid.rsplit('/').next()).unwrap();
    assert_eq!(tagged["tags"]["Name"], "ip-10-0-0-1");
}

#[tokio::test]
async fn initialization_waits_for_ready_and_no_ephemeral_taint_then_marks_the_node_and_claim() {
    let mut h = Harness::without_cloud().await;
    let pid = "aws:///us-west-2a/i-0000000000000000a";
    let claim: NodeClaim = obj(launched_claim("default-a", pid, Some("ip-10-0-0-1"), &["Registered"]));
    // Not Ready, and the registration labels were lost: synced again, then wait.
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        h.api.expect("GET", "/api/v1/nodes/ip-10-0-0-1").await.ok(node("ip-10-0-0-1", pid, false));
        let sync = h.api.expect("PATCH", "/api/v1/nodes/ip-10-0-0-1").await;
        assert_eq!(sync.body["metadata"]["labels"]["karpenter.sh/registered"], "true");
        sync.ok(node("ip-10-0-0-1", pid, false));
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();

    // Ready and registered, but the node lifecycle controller has not lifted `not-ready` yet:
    // the scheduler cannot bind to it, so the claim is not initialized (nothing written).
    let registered = |taints: Value| {
        let mut n = node("ip-10-0-0-1", pid, true);
        n["metadata"]["labels"]["karpenter.sh/registered"] = json!("true");
        n["spec"]["taints"] = taints;
        n
    };
    let further_request = async {
        let not_ready = json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]);
        h.api.expect("GET", "/api/v1/nodes/ip-10-0-0-1").await.ok(registered(not_ready));
        h.api.next().await
    };
    let result = tokio::select! {
        result = reconcile(Arc::new(claim.clone()), h.ctx.clone()) => result,
        call = further_request => panic!("initialized despite the not-ready taint: {} {}", call.method, call.path),
    };
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)), "a known ephemeral taint is left");
    h.api.assert_idle();

    h.clock.advance(Duration::from_secs(30));
    let (result, ()) = tokio::join!(reconcile(Arc::new(claim.clone()), h.ctx.clone()), async {
        h.api.expect("GET", "/api/v1/nodes/ip-10-0-0-1").await.ok(registered(json!([])));
        let label = h.api.expect("PATCH", "/api/v1/nodes/ip-10-0-0-1").await;
        assert_eq!(label.body, json!({"metadata": {"labels": {"karpenter.sh/initialized": "true"}}}));
        label.ok(node("ip-10-0-0-1", pid, true));
        let status = h.api.expect("PATCH", "/apis/karpenter.sh/v1/nodeclaims/default-a/status").await;
        let s = &status.body["status"];
        for type_ in ["Initialized", "Ready"] {
            assert_eq!(condition(s, type_)["status"], "True");
            assert_eq!(condition(s, type_)["lastTransitionTime"], at(30));
        }
        status.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(60)));
    h.api.assert_idle();
}
