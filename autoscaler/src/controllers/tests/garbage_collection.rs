//! Garbage collection: instances no NodeClaim owns are terminated once 30 s old; NodeClaims whose
//! instance is gone are deleted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{Value, json};

use super::support::{FakeCloud, Harness, launched_claim, node_claim, node_class, obj};
use crate::apis::{EC2NodeClass, NodeClaim};
use crate::controllers::garbage_collection::collect;

async fn states(cloud: &FakeCloud) -> Vec<Value> {
    cloud.instances().await.iter().map(|i| i["state"].clone()).collect()
}

#[tokio::test]
async fn a_leaked_instance_is_terminated_once_it_is_old_enough() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    // Launched for a claim that is not there (deleted before it recorded the instance).
    h.ctx.cloud.create(&obj(node_claim("default-a")), &class, None).await.unwrap();
    collect(&h.ctx).await.unwrap();
    assert_eq!(states(&cloud).await, [json!("pending")], "a launch in flight is not a leak");
    h.clock.advance(Duration::from_secs(30));
    let ctx = h.ctx.clone();
    let (result, ()) = tokio::join!(collect(&ctx), async {
        // Confirmed against the API server before anything is terminated.
        h.api.expect("GET", "/apis/karpenter.sh/v1/nodeclaims").await.ok(claim_list(&[]));
    });
    result.unwrap();
    assert_eq!(states(&cloud).await, [json!("shutting-down")]);
    h.api.assert_idle();
}

fn claim_list(items: &[Value]) -> Value {
    json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaimList", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Right after an API server restart the watch relists and the cache can lack a claim that
/// exists: the fresh list from the API server keeps its instance alive.
#[tokio::test]
async fn an_instance_whose_claim_the_cache_lacks_is_kept() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    let launched = h.ctx.cloud.create(&obj(node_claim("default-a")), &class, None).await.unwrap();
    h.clock.advance(Duration::from_secs(60));
    let ctx = h.ctx.clone();
    let (result, ()) = tokio::join!(collect(&ctx), async {
        let owner = launched_claim("default-a", &launched.instance.provider_id, None, &[]);
        h.api.expect("GET", "/apis/karpenter.sh/v1/nodeclaims").await.ok(claim_list(&[owner]));
    });
    result.unwrap();
    assert_eq!(states(&cloud).await, [json!("pending")], "owned in the API server, so not a leak");
    h.api.assert_idle();
}

#[tokio::test]
async fn a_claim_whose_instance_is_gone_is_deleted() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let class: EC2NodeClass = obj(node_class());
    // One claim owns a live instance; the other's instance never existed (terminated outside).
    let live = h.ctx.cloud.create(&obj(node_claim("default-a")), &class, None).await.unwrap();
    h.cache.put(obj::<NodeClaim>(launched_claim("default-a", &live.instance.provider_id, None, &[])));
    let gone: NodeClaim = obj(launched_claim("default-b", "aws:///us-west-2a/i-0fffffffffffffff0", None, &[]));
    h.cache.put(gone.clone());
    let ctx = h.ctx.clone();
    let (result, ()) = tokio::join!(collect(&ctx), async {
        h.api.expect("DELETE", "/apis/karpenter.sh/v1/nodeclaims/default-b").await.ok(&gone);
    });
    result.unwrap();
    h.api.assert_idle();
    assert_eq!(states(&cloud).await, [json!("pending")], "the owned instance stays");
}
