//! Writes several controllers make the same way: a NodeClaim's status and deletion, events, the
//! disrupted taint, and letting the termination finalizer go.

use k8s_openapi::api::core::v1::{Node, ObjectReference, Taint};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use crate::apis::labels as l;
use crate::apis::{NodeClaim, NodeClaimStatus};
use crate::metrics::NodeClaimLabels;

/// Replaces the NodeClaim's status (a merge patch of the whole status).
pub async fn patch_claim_status(ctx: &Context, name: &str, status: &NodeClaimStatus) -> Result<(), kube::Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(())
}

/// Deletes the NodeClaim (its finalizer then tears the node down) and counts it under `reason`.
/// Already gone is fine.
pub async fn delete_claim(ctx: &Context, claim: &NodeClaim, reason: &str) -> Result<(), kube::Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    // Deleting or gone: no longer capacity the simulation may count on, whatever the watch says yet.
    match api.delete(&claim.name_any(), &DeleteParams::default()).await {
        Ok(_) => ctx.state.created.seen(claim),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            ctx.state.created.seen(claim);
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    let ct = claim.labels().get(l::CAPACITY_TYPE).cloned().unwrap_or_default();
    ctx.metrics.nodeclaims_terminated.get_or_create(&NodeClaimLabels::new(&claim.node_pool(), reason, &ct)).inc();
    Ok(())
}

/// Publishes an event on the NodeClaim; the action is the reason, as Karpenter's are.
pub async fn claim_event(ctx: &Context, claim: &NodeClaim, type_: EventType, reason: &str, note: &str) {
    publish(ctx, &claim.object_ref(&()), type_, reason, reason, note).await;
}

/// An event as the API server takes it (notes over 1 kB are refused, so the note is cut there).
pub fn event(type_: EventType, reason: &str, action: &str, note: &str) -> Event {
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_owned(),
        secondary: None,
    }
}

/// How many events a background batch sends at once.
const EVENT_CONCURRENCY: usize = 8;

/// Publishes events from a task of their own, a few at a time, and returns at once: a pass that
/// nominates a thousand pods must not wait for a thousand API writes before its next NodeClaim
/// (Karpenter's recorder queues them the same way). Failures are logged, as in [`publish`].
pub fn publish_in_background(ctx: &Context, events: Vec<(ObjectReference, Event)>) {
    use futures::StreamExt;
    if events.is_empty() {
        return;
    }
    let recorder = ctx.recorder.clone();
    tokio::spawn(async move {
        futures::stream::iter(events)
            .for_each_concurrent(EVENT_CONCURRENCY, |(regarding, ev)| {
                let recorder = recorder.clone();
                async move {
                    if let Err(err) = recorder.publish(&ev, &regarding).await {
                        tracing::debug!(error = %err, reason = %ev.reason, "publishing event");
                    }
                }
            })
            .await;
    });
}

/// Publishes one event. A failure is logged, never returned: events are advisory.
pub async fn publish(
    ctx: &Context,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let ev = event(type_, reason, action, note);
    if let Err(err) = ctx.recorder.publish(&ev, regarding).await {
        tracing::debug!(error = %err, reason, kind = regarding.kind.as_deref().unwrap_or_default(), "publishing event");
    }
}

/// Taints a node `karpenter.sh/disrupted:NoSchedule` (termination and disruption both do).
pub async fn taint_disrupted(nodes: &Api<Node>, node: &Node) -> Result<(), kube::Error> {
    let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    if taints.iter().any(|t| t.key == l::DISRUPTED_TAINT) {
        return Ok(());
    }
    taints.push(Taint {
        key: l::DISRUPTED_TAINT.to_owned(),
        effect: "NoSchedule".to_owned(),
        value: None,
        time_added: None,
    });
    let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "spec": {"taints": taints}});
    nodes.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    tracing::info!(Node = %node.name_any(), "tainted node");
    Ok(())
}

/// Removes `karpenter.sh/termination` from the object's finalizers, keeping the others.
pub async fn remove_termination_finalizer<K>(api: Api<K>, name: &str, finalizers: &[String]) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let kept: Vec<&String> = finalizers.iter().filter(|f| f.as_str() != l::TERMINATION_FINALIZER).collect();
    match api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": kept}}))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
