//! The interruption controller against fake-ec2's SQS queue: a spot warning deletes the claim of
//! the instance it names (events on claim and node, the offering marked unavailable) and the
//! message goes; a rebalance recommendation only tells.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::core::v1::Node;
use serde_json::json;

use super::support::{FakeCloud, Harness, T0, launched_claim, node, obj};
use crate::apis::NodeClaim;
use crate::controllers::interruption::{Queue, reconcile};
use crate::scheduling::CapacityType;

const QUEUE: &str = "karpenter-interruption";
const ID: &str = "i-0123456789abcdef0";

fn event(detail_type: &str, detail: serde_json::Value) -> String {
    json!({"version": "0", "id": "e-1", "detail-type": detail_type, "source": "aws.ec2", "account": "123456789012",
        "time": T0, "region": "us-west-2", "resources": [format!("arn:aws:ec2:us-west-2:instance/{ID}")],
        "detail": detail})
    .to_string()
}

async fn queue(h: &Harness, body: &str) -> Queue {
    let sqs = &h.ctx.sqs;
    let url = sqs.create_queue().queue_name(QUEUE).send().await.unwrap().queue_url.unwrap();
    sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    Queue::resolve(sqs.clone(), QUEUE).await.unwrap()
}

async fn messages_left(h: &Harness, queue: &Queue) -> String {
    let attrs = h
        .ctx
        .sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let all = attrs.attributes.unwrap();
    let count = |n: &str| all.get(&aws_sdk_sqs::types::QueueAttributeName::from(n)).cloned().unwrap_or_default();
    format!("{}+{}", count("ApproximateNumberOfMessages"), count("ApproximateNumberOfMessagesNotVisible"))
}

fn cached(h: &mut Harness) -> NodeClaim {
    let pid = format!("aws:///us-west-2a/{ID}");
    let mut claim = launched_claim("default-a", &pid, Some("ip-a"), &["Registered", "Initialized"]);
    claim["metadata"]["labels"]["karpenter.sh/capacity-type"] = json!("spot");
    let claim: NodeClaim = obj(claim);
    h.cache.put(claim.clone());
    h.cache.put(obj::<Node>(node("ip-a", &pid, true)));
    claim
}

#[tokio::test]
async fn a_spot_warning_deletes_the_claim_and_the_message() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    let claim = cached(&mut h);
    let body =
        event("EC2 Spot Instance Interruption Warning", json!({"instance-id": ID, "instance-action": "terminate"}));
    let queue = queue(&h, &body).await;
    let ctx = h.ctx.clone();
    let (received, ()) = tokio::join!(reconcile(&ctx, &queue), async {
        h.api.expect_event("SpotInterrupted", "default-a").await;
        h.api.expect_event("SpotInterrupted", "ip-a").await;
        h.api.expect("DELETE", "/apis/karpenter.sh/v1/nodeclaims/default-a").await.ok(&claim);
        h.api.expect_event("TerminatingOnInterruption", "default-a").await;
        h.api.expect_event("TerminatingOnInterruption", "ip-a").await;
    });
    assert_eq!(received.unwrap(), 1);
    h.api.assert_idle();
    assert!(ctx.cloud.unavailable.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));
    assert_eq!(messages_left(&h, &queue).await, "0+0");
}

#[tokio::test]
async fn a_rebalance_recommendation_only_tells() {
    let cloud = FakeCloud::start().await;
    let mut h = Harness::new(&cloud);
    cached(&mut h);
    let queue = queue(&h, &event("EC2 Instance Rebalance Recommendation", json!({"instance-id": ID}))).await;
    let ctx = h.ctx.clone();
    let (received, ()) = tokio::join!(reconcile(&ctx, &queue), async {
        h.api.expect_event("SpotRebalanceRecommendation", "default-a").await;
        h.api.expect_event("SpotRebalanceRecommendation", "ip-a").await;
    });
    assert_eq!(received.unwrap(), 1);
    h.api.assert_idle();
    assert_eq!(messages_left(&h, &queue).await, "0+0");
}
