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
    collect(&h.ctx).await.unwrap();
    assert_eq!(states(&cloud).await, [json!("shutting-down")]);
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
