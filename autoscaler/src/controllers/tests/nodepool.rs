//! NodePool status: resources of its claims and readiness from its class; written only on change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::support::{Harness, launched_claim, node_class, node_pool, obj};
use crate::apis::{EC2NodeClass, NodeClaim, NodePool};
use crate::controllers::nodepool::update;

#[tokio::test]
async fn status_counts_the_claims_and_follows_the_class() {
    let mut h = Harness::without_cloud().await;
    let mut class = node_class();
    class["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    h.cache.put(obj::<EC2NodeClass>(class));
    for (i, name) in ["default-a", "default-b"].iter().enumerate() {
        h.cache.put(obj::<NodeClaim>(launched_claim(name, &format!("aws:///us-west-2a/i-{i}"), None, &[])));
    }
    let pool: NodePool = obj(node_pool());
    let ctx = h.ctx.clone();
    let mut written = None;
    let (result, ()) = tokio::join!(update(&ctx, &pool), async {
        let patch = h.api.expect("PATCH", "/apis/karpenter.sh/v1/nodepools/default/status").await;
        let s = &patch.body["status"];
        assert_eq!(s["resources"], json!({"cpu": "4", "memory": "15890120704", "nodes": "2", "pods": "58"}));
        for type_ in ["NodeClassReady", "ValidationSucceeded", "Ready"] {
            let c = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap();
            assert_eq!((&c["status"], &c["observedGeneration"]), (&json!("True"), &json!(1)), "{c}");
        }
        assert_eq!(s["nodeClassObservedGeneration"], 1);
        written = Some(s.clone());
        patch.ok(&pool);
    });
    result.unwrap();
    h.api.assert_idle();

    // The same status again: nothing to write.
    let mut seen = serde_json::to_value(&pool).unwrap();
    seen["status"] = written.unwrap();
    let pool: NodePool = obj(seen);
    update(&ctx, &pool).await.unwrap();
    h.api.assert_idle();
}
