//! Both finalizers against a scripted API server (and fake-ec2 where instances are terminated):
//! what each pass deletes, taints, evicts and lets go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::support::{FakeCloud, Harness, T0, launched_claim, node, node_claim, node_class, obj, pod};
use crate::apis::{EC2NodeClass, NodeClaim};
use crate::controllers::termination::{finalize_node_claim, reconcile_node};

const PID: &str = "aws:///us-west-2a/i-00000000000000001";

fn deleting(mut v: Value) -> Value {
    v["metadata"]["deletionTimestamp"] = json!(T0);
    v["metadata"]["finalizers"] = json!(["karpenter.sh/termination", "example.com/keep"]);
    v
}

#[tokio::test]
async fn claim_finalizer_deletes_the_node_first() {
    let mut h = Harness::without_cloud().await;
    let claim: NodeClaim = obj(deleting(launched_claim("default-a", PID, Some("ip-a"), &["Registered"])));
    h.cache.put(obj::<Node>(node("ip-a", PID, true)));
    let (result, ()) = tokio::join!(finalize_node_claim(&h.ctx, &claim), async {
        h.api.expect("DELETE", "/api/v1/nodes/ip-a").await.ok(node("ip-a", PID, true));
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
    // Someone else deleted it meanwhile: fine, wait for the cache to catch up.
    let (result, ()) = tokio::join!(finalize_node_claim(&h.ctx, &claim), async {
        h.api.expect("DELETE", "/api/v1/nodes/ip-a").await.not_found();
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
}

#[tokio::test]
async fn claim_finalizer_terminates_the_instance_then_lets_the_claim_go() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    let launched = h.ctx.cloud.create(&obj(node_claim("default-a")), &class, None).await.unwrap();
    let pid = launched.instance.provider_id;
    let claim: NodeClaim = obj(deleting(launched_claim("default-a", &pid, None, &[])));

    // The instance is still there: terminate it, write nothing, look again.
    let result = finalize_node_claim(&h.ctx, &claim).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
    let states: Vec<Value> = cloud.instances().await.iter().map(|i| i["state"].clone()).collect();
    assert_eq!(states, [json!("shutting-down")]);

    // Gone from EC2: the finalizer goes, the other one stays.
    cloud.advance(600.0).await;
    let (result, ()) = tokio::join!(finalize_node_claim(&h.ctx, &claim), async {
        let patch = h.api.expect("PATCH", "/apis/karpenter.sh/v1/nodeclaims/default-a").await;
        assert_eq!(patch.body, json!({"metadata": {"finalizers": ["example.com/keep"]}}));
        patch.ok(&claim);
    });
    assert_eq!(result.unwrap(), Action::await_change());
    h.api.assert_idle();
}

#[tokio::test]
async fn node_finalizer_taints_then_evicts_the_first_drain_group() {
    let mut h = Harness::without_cloud().await;
    let node_obj: Node = obj(deleting(node("ip-a", PID, true)));
    h.cache.put(obj::<NodeClaim>(launched_claim("default-a", PID, Some("ip-a"), &["Registered"])));
    h.cache.put(obj::<Pod>(pod("web-1", "500m", Some("ip-a"))));
    let mut daemon = pod("agent", "100m", Some("ip-a"));
    daemon["metadata"]["ownerReferences"][0]["kind"] = json!("DaemonSet");
    h.cache.put(obj::<Pod>(daemon));
    let (result, ()) = tokio::join!(reconcile_node(Arc::new(node_obj.clone()), h.ctx.clone()), async {
        let taint = h.api.expect("PATCH", "/api/v1/nodes/ip-a").await;
        assert_eq!(taint.body["metadata"]["resourceVersion"], "7");
        let taints = taint.body["spec"]["taints"].as_array().unwrap();
        assert!(taints.contains(&json!({"key": "karpenter.sh/disrupted", "effect": "NoSchedule"})), "{taints:?}");
        taint.ok(&node_obj);
        // Non-daemon pods first; the daemon waits for the next pass.
        let evict = h.api.expect("POST", "/api/v1/namespaces/default/pods/web-1/eviction").await;
        assert_eq!(evict.body["metadata"]["name"], "web-1");
        evict.success();
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
}

#[tokio::test]
async fn node_finalizer_deletes_pods_once_the_grace_period_is_over() {
    let mut h = Harness::without_cloud().await;
    let node_obj: Node = obj(deleting(node("ip-a", PID, true)));
    let mut claim = launched_claim("default-a", PID, Some("ip-a"), &["Registered"]);
    claim["spec"]["terminationGracePeriod"] = json!("30s");
    h.cache.put(obj::<NodeClaim>(claim));
    let web: Pod = obj(pod("web-1", "500m", Some("ip-a")));
    h.cache.put(web.clone());
    h.clock.advance(Duration::from_secs(30));
    let (result, ()) = tokio::join!(reconcile_node(Arc::new(node_obj.clone()), h.ctx.clone()), async {
        h.api.expect("PATCH", "/api/v1/nodes/ip-a").await.ok(&node_obj);
        h.api.expect("DELETE", "/api/v1/namespaces/default/pods/web-1").await.ok(&web);
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)));
    h.api.assert_idle();
}

#[tokio::test]
async fn node_finalizer_skips_the_drain_past_the_termination_deadline() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let node_obj: Node = obj(deleting(node("ip-a", PID, true)));
    let mut claim = launched_claim("default-a", PID, Some("ip-a"), &["Registered"]);
    claim["metadata"]["annotations"] = json!({"karpenter.sh/nodeclaim-termination-timestamp": T0});
    h.cache.put(obj::<NodeClaim>(claim));
    h.cache.put(obj::<Pod>(pod("web-1", "500m", Some("ip-a"))));
    // No eviction; the instance (unknown to EC2) is gone, so the finalizer goes at once.
    let (result, ()) = tokio::join!(reconcile_node(Arc::new(node_obj.clone()), h.ctx.clone()), async {
        h.api.expect("PATCH", "/api/v1/nodes/ip-a").await.ok(&node_obj);
        let patch = h.api.expect("PATCH", "/api/v1/nodes/ip-a").await;
        assert_eq!(patch.body, json!({"metadata": {"finalizers": ["example.com/keep"]}}));
        patch.ok(&node_obj);
    });
    assert_eq!(result.unwrap(), Action::await_change());
    h.api.assert_idle();
}
