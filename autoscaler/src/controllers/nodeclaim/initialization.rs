//! Initialization (Karpenter's `lifecycle/initialization.go`): the claim is initialized once its
//! Node is Ready and its startup and known ephemeral taints are gone; the Node gets
//! `karpenter.sh/initialized`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use super::registration::sync_node;
use crate::apis::common::set_condition;
use crate::apis::labels as l;
use crate::apis::nodeclaim::conditions as c;
use crate::apis::{NodeClaim, NodeClaimStatus};
use crate::controllers::context::Context;
use crate::controllers::error::Error;
use crate::controllers::writes::patch_claim_status;
use crate::convert;
use crate::metrics::NodePoolLabels;

/// While the Node comes up, look every 2 s.
const AWAIT_READY: Duration = Duration::from_secs(2);
/// Once initialized there is nothing to wait for; a periodic look costs little.
const INITIALIZED_RECHECK: Duration = Duration::from_secs(60);

pub(super) async fn initialize(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let node_name = claim.status.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let Some(node) = nodes.get_opt(&node_name).await? else {
        return Ok(Action::requeue(AWAIT_READY));
    };
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|x| x.type_ == "Ready" && x.status == "True"));
    let node_taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let startup_left =
        claim.spec.startup_taints.iter().any(|t| node_taints.iter().any(|n| n.key == t.key && n.effect == t.effect));
    // Karpenter's `KnownEphemeralTaintsExist`: a Ready node whose `not-ready` taint the node
    // lifecycle controller has not lifted yet cannot take the pods. Initialized, the simulation
    // would count that taint and make another NodeClaim for the pods waiting on it.
    let ephemeral_left = node_taints.iter().any(|t| convert::is_known_ephemeral_taint(&t.key, &t.effect));
    if !ready || startup_left || ephemeral_left {
        // A label or taint may have been lost while the node registered: keep it in sync.
        if !node.labels().contains_key(l::REGISTERED) || node_taints.iter().any(|t| t.key == l::UNREGISTERED_TAINT) {
            sync_node(ctx, claim, &node).await?;
        }
        return Ok(Action::requeue(AWAIT_READY));
    }
    nodes
        .patch(
            &node_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {l::INITIALIZED: "true"}}})),
        )
        .await?;
    let mut status: NodeClaimStatus = claim.status.clone().unwrap_or_default();
    let now = ctx.now();
    set_condition(&mut status.conditions, c::INITIALIZED, true, c::INITIALIZED, "", None, now.clone());
    set_condition(&mut status.conditions, c::READY, true, c::READY, "", None, now);
    patch_claim_status(ctx, &name, &status).await?;
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
    tracing::info!(NodeClaim = %name, Node = %node_name, allocatable = ?alloc.iter().map(|(k, v)| format!("{k}={}", v.0)).collect::<Vec<_>>(), "initialized nodeclaim");
    ctx.metrics.nodeclaims_initialized.get_or_create(&NodePoolLabels::new(&claim.node_pool())).inc();
    Ok(Action::requeue(INITIALIZED_RECHECK))
}
