//! Termination: the finalizers on NodeClaims and Nodes. A deleted NodeClaim deletes its Node; a
//! deleted Node is tainted, drained through the Eviction API (PodDisruptionBudgets respected, in
//! Karpenter's order) and its instance terminated; finalizers go only once EC2 reports it gone.

mod drain;
mod hold;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

pub use drain::drain_groups;
pub use hold::MAX_HOLD;

use super::context::Context;
use super::error::Error;
use super::writes::{remove_termination_finalizer, taint_disrupted};
use crate::apis::NodeClaim;
use crate::apis::labels as l;
use crate::metrics::NodePoolLabels;

/// Draining and instance termination are watched every 2 s (Karpenter rechecks every 5 s).
const RECHECK: Duration = Duration::from_secs(2);

/// Runs the Node termination controller (drain, then instance termination, then finalizer).
pub async fn run(ctx: Arc<Context>) {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    Controller::new(nodes, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(10))
        .run(
            reconcile_node,
            |_, err, _| {
                tracing::warn!(error = %err, "node termination");
                Action::requeue(Duration::from_secs(5))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// The NodeClaim finalizer: delete the Node (its own finalizer drains it), then make sure the
/// instance is terminated and gone, then let the NodeClaim go.
pub async fn finalize_node_claim(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    if !claim.finalizers().iter().any(|f| f == l::TERMINATION_FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = claim.name_any();
    let provider_id = claim.status.as_ref().and_then(|s| s.provider_id.clone());
    if let Some(pid) = &provider_id
        && let Some(node) = ctx.state.node_by_provider_id(pid)
    {
        if node.metadata.deletion_timestamp.is_none() {
            let nodes: Api<Node> = Api::all(ctx.client.clone());
            match nodes.delete(&node.name_any(), &DeleteParams::default()).await {
                Ok(_) => tracing::info!(NodeClaim = %name, Node = %node.name_any(), "deleted node"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::requeue(RECHECK));
    }
    if let Some(pid) = &provider_id
        && !ctx.cloud.delete(pid).await?
    {
        // Terminating: EC2 still lists it (shutting-down).
        return Ok(Action::requeue(RECHECK));
    }
    remove_termination_finalizer::<NodeClaim>(Api::all(ctx.client.clone()), &name, claim.finalizers()).await?;
    tracing::info!(NodeClaim = %name, "deleted nodeclaim");
    Ok(Action::await_change())
}

/// The Node finalizer: taint, drain, terminate the instance, then let the Node go.
pub async fn reconcile_node(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, Error> {
    if node.metadata.deletion_timestamp.is_none() || !node.finalizers().iter().any(|f| f == l::TERMINATION_FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = node.name_any();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    taint_disrupted(&nodes, &node).await?;
    let claim =
        node.spec.as_ref().and_then(|s| s.provider_id.as_deref()).and_then(|p| ctx.state.node_claim_by_provider_id(p));
    let grace = claim
        .as_ref()
        .and_then(|c| c.spec.termination_grace_period.as_deref())
        .and_then(|t| crate::apis::common::parse_duration(t).ok().flatten());
    let deleting_for = ctx.age(node.metadata.deletion_timestamp.as_ref());
    let force = grace.is_some_and(|g| deleting_for >= g);
    // A termination deadline already passed (a forceful interruption sets it to now): no drain.
    let remaining = if deadline_passed(claim.as_deref(), ctx.clock.timestamp()) {
        0
    } else if !force && hold::hold(&ctx, &node, claim.as_deref()) {
        // An interruption warning: the pods stay until their replacement is Ready.
        return Ok(Action::requeue(RECHECK));
    } else {
        drain::drain(&ctx, &name, force).await
    };
    if remaining > 0 {
        return Ok(Action::requeue(RECHECK));
    }
    if let Some(pid) = node.spec.as_ref().and_then(|s| s.provider_id.clone())
        && !ctx.cloud.delete(&pid).await?
    {
        return Ok(Action::requeue(RECHECK));
    }
    remove_termination_finalizer::<Node>(nodes, &name, node.finalizers()).await?;
    let pool = node.labels().get(l::NODEPOOL).cloned().unwrap_or_default();
    ctx.metrics.nodes_terminated.get_or_create(&NodePoolLabels::new(&pool)).inc();
    tracing::info!(Node = %name, "deleted node");
    Ok(Action::await_change())
}

/// Whether the claim's `karpenter.sh/nodeclaim-termination-timestamp` is not after `now`.
pub fn deadline_passed(claim: Option<&NodeClaim>, now: Timestamp) -> bool {
    claim
        .and_then(|c| c.annotations().get(l::TERMINATION_TIMESTAMP))
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_some_and(|t| t <= now)
}
