//! The interruption controller (aws/karpenter-provider-aws `pkg/controllers/interruption`): long-
//! polls the SQS queue EventBridge feeds, and cordons and drains (deletes the NodeClaims of) the
//! instances a spot warning, state change, Health scheduled change or capacity reservation
//! interruption names. A message goes once handled, unparseable, or naming no NodeClaim; it stays
//! (and comes back after its visibility timeout) only when handling failed.

pub mod messages;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tracing::{error, info, warn};

pub use messages::{Action, Kind, Message, ParseError, parse};

use super::context::Context;
use super::writes::delete_claim;
use crate::apis::NodeClaim;
use crate::apis::labels as l;
use crate::metrics::{ActionLabels, DisruptionLabels, MessageLabels};
use crate::scheduling::CapacityType;

/// Karpenter's `ReceiveMessageInput` (karpenter.md §3, §8).
const MAX_MESSAGES: i32 = 10;
const VISIBILITY_TIMEOUT_S: i32 = 20;
const WAIT_TIME_S: i32 = 20;
/// `workqueue.ParallelizeUntil(ctx, 10, ...)`.
const PARALLELISM: usize = 10;
/// The metric label for bodies that are not events Karpenter could parse.
pub const UNPARSEABLE: &str = "unparseable";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An SQS call failed; the SDK error, with its whole chain in the message.
    #[error("{operation}: {}", DisplayErrorContext(source.as_ref()))]
    Sqs { operation: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("GetQueueUrl: no QueueUrl for queue {0}")]
    NoQueueUrl(String),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

fn sqs_err<E: std::error::Error + Send + Sync + 'static>(operation: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Sqs { operation, source: Box::new(e) }
}

/// The interruption queue, resolved once (Karpenter's `sqs.Provider`).
#[derive(Debug, Clone)]
pub struct Queue {
    sqs: aws_sdk_sqs::Client,
    pub url: String,
}

impl Queue {
    pub async fn resolve(sqs: aws_sdk_sqs::Client, name: &str) -> Result<Queue, Error> {
        let out = sqs.get_queue_url().queue_name(name).send().await.map_err(sqs_err("GetQueueUrl"))?;
        let url = out.queue_url.ok_or_else(|| Error::NoQueueUrl(name.to_owned()))?;
        Ok(Queue { sqs, url })
    }

    /// One long poll.
    pub async fn receive(&self) -> Result<Vec<aws_sdk_sqs::types::Message>, Error> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(MAX_MESSAGES)
            .visibility_timeout(VISIBILITY_TIMEOUT_S)
            .wait_time_seconds(WAIT_TIME_S)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sqs_err("ReceiveMessage"))?;
        Ok(out.messages.unwrap_or_default())
    }

    pub async fn delete(&self, receipt_handle: &str) -> Result<(), Error> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(sqs_err("DeleteMessage"))?;
        Ok(())
    }
}

/// Runs the controller while `--interruption-queue` is set; otherwise never returns.
pub async fn run(ctx: Arc<Context>) {
    let Some(name) = ctx.options.interruption_queue.clone() else {
        return std::future::pending().await;
    };
    let mut backoff = Duration::from_secs(1);
    let queue = loop {
        match Queue::resolve(ctx.sqs.clone(), &name).await {
            Ok(q) => break q,
            Err(err) => {
                error!(queue = %name, error = %err, "resolving the interruption queue");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    };
    info!(queue = %name, url = %queue.url, "watching the interruption queue");
    loop {
        // Karpenter requeues immediately after every batch, also an empty one (the poll waits).
        if let Err(err) = reconcile(&ctx, &queue).await {
            error!(error = %err, "receiving interruption messages");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Receives one batch and handles its messages concurrently; returns how many were received.
pub async fn reconcile(ctx: &Context, queue: &Queue) -> Result<usize, Error> {
    let batch = queue.receive().await?;
    let n = batch.len();
    futures::stream::iter(batch).for_each_concurrent(PARALLELISM, |m| process(ctx, queue, m)).await;
    Ok(n)
}

/// One message, start to end. Never fails: what went wrong is logged, and the message is kept
/// only when the action itself failed, so a poison message cannot block the queue.
async fn process(ctx: &Context, queue: &Queue, sqs_message: aws_sdk_sqs::types::Message) {
    let body = sqs_message.body().unwrap_or_default();
    let receipt = sqs_message.receipt_handle().unwrap_or_default();
    let label = match parse(body) {
        Err(err) => {
            error!(message_id = sqs_message.message_id().unwrap_or_default(), error = %err, "failed parsing interruption message");
            count(&ctx.metrics.interruption_received, UNPARSEABLE);
            UNPARSEABLE
        }
        Ok(msg) => {
            count(&ctx.metrics.interruption_received, msg.kind.as_str());
            if let Err(err) = handle(ctx, &msg).await {
                // Kept: SQS delivers it again after the visibility timeout.
                error!(messageKind = msg.kind.as_str(), error = %err, "handling interruption message");
                return;
            }
            let latency = (ctx.clock.utc_now() - msg.time).to_std().unwrap_or_default();
            ctx.metrics.interruption_latency.observe(latency.as_secs_f64());
            msg.kind.as_str()
        }
    };
    match queue.delete(receipt).await {
        Ok(()) => count(&ctx.metrics.interruption_deleted, label),
        Err(err) => warn!(messageKind = label, error = %err, "deleting interruption message"),
    }
}

fn count(
    family: &prometheus_client::metrics::family::Family<MessageLabels, prometheus_client::metrics::counter::Counter>,
    kind: &str,
) {
    family.get_or_create(&MessageLabels { message_type: kind.to_owned() }).inc();
}

/// Applies a parsed message to the NodeClaims of the instances it names (Karpenter's
/// `handleMessage`). Instances without a NodeClaim are not ours: nothing to do.
pub async fn handle(ctx: &Context, msg: &Message) -> Result<(), Error> {
    let mut first_err = None;
    for id in &msg.instance_ids {
        let Some(claim) = ctx.state.node_claim_by_instance_id(id) else { continue };
        let node =
            claim.status.as_ref().and_then(|s| s.provider_id.as_deref()).and_then(|p| ctx.state.node_by_provider_id(p));
        if let Err(err) = handle_node_claim(ctx, msg, &claim, node.as_deref()).await {
            first_err.get_or_insert(err);
        }
    }
    first_err.map_or(Ok(()), Err)
}

async fn handle_node_claim(ctx: &Context, msg: &Message, claim: &NodeClaim, node: Option<&Node>) -> Result<(), Error> {
    notify(ctx, msg.kind, claim, node).await;
    if msg.kind == Kind::SpotInterrupted {
        // The pool is about to be reclaimed: launching into it again would be interrupted too.
        let (zone, it) = (claim.labels().get(l::ZONE), claim.labels().get(l::INSTANCE_TYPE));
        if let (Some(zone), Some(it)) = (zone, it) {
            ctx.cloud.unavailable.mark_unavailable(it, zone, CapacityType::Spot, msg.kind.as_str());
        }
    }
    let action = msg.kind.action();
    let pool = claim.labels().get(l::NODEPOOL).cloned().unwrap_or_default();
    ctx.metrics
        .interruption_actions
        .get_or_create(&ActionLabels { action_type: action.as_str().to_owned(), nodepool: pool.clone() })
        .inc();
    if action == Action::NoAction || claim.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    if matches!(msg.kind, Kind::SpotInterrupted | Kind::CapacityReservationInterrupted) {
        // Two minutes' notice: termination keeps the pods until their replacement is Ready.
        ctx.state.interrupted.nominate(&claim.name_any(), ctx.clock.now());
    }
    delete_claim(ctx, claim, msg.kind.as_str()).await?;
    info!(
        messageKind = msg.kind.as_str(),
        NodeClaim = %claim.name_any(),
        Node = %node.map(ResourceExt::name_any).unwrap_or_default(),
        action = action.as_str(),
        "initiating delete from interruption message"
    );
    ctx.metrics
        .nodeclaims_disrupted
        .get_or_create(&DisruptionLabels { nodepool: pool, reason: msg.kind.as_str().to_owned() })
        .inc();
    publish(
        ctx,
        claim,
        node,
        EventType::Warning,
        "TerminatingOnInterruption",
        "Interruption triggered termination for the NodeClaim",
    )
    .await;
    Ok(())
}

/// Karpenter's `notifyForMessage` events.
async fn notify(ctx: &Context, kind: Kind, claim: &NodeClaim, node: Option<&Node>) {
    let (reason, note) = match kind {
        Kind::SpotInterrupted => ("SpotInterrupted", "Spot interruption warning was triggered"),
        Kind::RebalanceRecommendation => ("SpotRebalanceRecommendation", "Spot rebalance recommendation was triggered"),
        Kind::InstanceStopped => ("InstanceStopping", "Instance is stopping"),
        Kind::InstanceTerminated => ("InstanceTerminating", "Instance is terminating"),
        Kind::ScheduledChange => ("InstanceUnhealthy", "An unhealthy warning was triggered for the instance"),
        Kind::CapacityReservationInterrupted => {
            ("CapacityReservationInterrupted", "Capacity reservation interruption warning was triggered")
        }
        Kind::NoOp => return,
    };
    publish(ctx, claim, node, EventType::Warning, reason, note).await;
}

/// Publishes one event on the NodeClaim and on its Node, as Karpenter does.
pub async fn publish(
    ctx: &Context,
    claim: &NodeClaim,
    node: Option<&Node>,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let refs: Vec<ObjectReference> =
        std::iter::once(claim.object_ref(&())).chain(node.map(|n| n.object_ref(&()))).collect();
    for r in &refs {
        super::writes::publish(ctx, r, type_, reason, reason, note).await;
    }
}
