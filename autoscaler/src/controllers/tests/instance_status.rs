//! The instance status poller against fake-ec2: status checks impaired for 120 s mean forceful
//! termination (the deadline annotated, then the claim deleted); a scheduled event means a drain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::support::{FakeCloud, Harness, at, launched_claim, node_claim, node_class, obj};
use crate::apis::{EC2NodeClass, NodeClaim};
use crate::controllers::instance_status::reconcile;

/// A running instance with its claim in the cache; returns the claim and the instance id.
async fn running(cloud: &FakeCloud, h: &mut Harness) -> (NodeClaim, String) {
    let class: EC2NodeClass = obj(node_class());
    let launched = h.ctx.cloud.create(&obj(node_claim("default-a")), &class, None).await.unwrap();
    cloud.advance(120.0).await;
    h.clock.advance(Duration::from_secs(120));
    let claim: NodeClaim = obj(launched_claim("default-a", &launched.instance.provider_id, None, &[]));
    h.cache.put(claim.clone());
    (claim, launched.instance.id)
}

#[tokio::test]
async fn impaired_status_checks_terminate_the_claim_without_a_drain() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let (claim, id) = running(&cloud, &mut h).await;
    cloud
        .admin(reqwest::Method::POST, &format!("/instances/{id}/status"), Some(json!({"system_impaired": true})))
        .await;
    let ctx = h.ctx.clone();
    let mut first_seen = BTreeMap::new();
    // Impaired just now: not yet.
    reconcile(&ctx, &mut first_seen).await.unwrap();
    h.api.assert_idle();

    cloud.advance(120.0).await;
    h.clock.advance(Duration::from_secs(120));
    let (result, ()) = tokio::join!(reconcile(&ctx, &mut first_seen), async {
        let annotate = h.api.expect("PATCH", "/apis/karpenter.sh/v1/nodeclaims/default-a").await;
        let deadline = json!({"metadata": {"annotations": {"karpenter.sh/nodeclaim-termination-timestamp": at(240)}}});
        assert_eq!(annotate.body, deadline);
        annotate.ok(&claim);
        h.api.expect("DELETE", "/apis/karpenter.sh/v1/nodeclaims/default-a").await.ok(&claim);
        h.api.expect_event("InstanceUnhealthy", "default-a").await;
    });
    result.unwrap();
    h.api.assert_idle();
}

#[tokio::test]
async fn a_scheduled_retirement_drains_at_once() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let (claim, id) = running(&cloud, &mut h).await;
    let body = json!({"instance_ids": [id], "start_in_seconds": 3600});
    cloud.admin(reqwest::Method::POST, "/health-event", Some(body)).await;
    let ctx = h.ctx.clone();
    let mut first_seen = BTreeMap::new();
    let (result, ()) = tokio::join!(reconcile(&ctx, &mut first_seen), async {
        h.api.expect("DELETE", "/apis/karpenter.sh/v1/nodeclaims/default-a").await.ok(&claim);
        h.api.expect_event("InstanceUnhealthy", "default-a").await;
    });
    result.unwrap();
    h.api.assert_idle();
}
