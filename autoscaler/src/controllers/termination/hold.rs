//! Replacement first for a node with a two-minute warning: a spot (or capacity reservation)
//! interruption gives 120 s before the reclaim, and a replacement is Ready well within that, so
//! the node keeps its pods until the capacity the provisioner counted on for them is Ready, then
//! drains (the PodDisruptionBudget pacing the moves onto Ready capacity). Karpenter cordons and
//! drains at once (CordonAndDrain), and the pods it evicts first stay Pending until the
//! replacement it launches in parallel is up; this is where the two differ, on purpose.
//!
//! The hold is bounded: at most [`MAX_HOLD`] after the warning was handled (leaving most of the
//! notice for the drain), never once the node is not Ready (the instance is going or gone), and
//! only [`PROVISIONING_GRACE`] when the provisioner has not yet counted on anything for the pods.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use crate::apis::NodeClaim;
use crate::apis::common::is_true;
use crate::apis::nodeclaim::conditions as c;
use crate::controllers::context::Context;

/// The longest a warned node keeps its pods: half the two-minute notice.
pub const MAX_HOLD: Duration = Duration::from_secs(60);
/// How long to wait for the provisioner's first pass over the node's pods.
pub const PROVISIONING_GRACE: Duration = Duration::from_secs(5);

/// Whether to hold the drain, `since_warning` after the warning was handled, given the
/// readiness of each node or NodeClaim the provisioner counted on since then (pure).
pub fn should_hold(since_warning: Duration, node_ready: bool, counted_on: &[bool]) -> bool {
    if since_warning >= MAX_HOLD || !node_ready {
        return false;
    }
    if counted_on.is_empty() {
        return since_warning < PROVISIONING_GRACE;
    }
    counted_on.iter().any(|ready| !ready)
}

/// Whether `node`, whose NodeClaim `claim` an interruption warning deleted, should keep its
/// pods for now.
pub(super) fn hold(ctx: &Context, node: &Node, claim: Option<&NodeClaim>) -> bool {
    let Some(warned) = claim.and_then(|c| ctx.state.interrupted.last(&c.name_any())) else { return false };
    let now = ctx.clock.now();
    let counted_on: Vec<bool> =
        ctx.state.nominations.since(warned).iter().map(|name| capacity_ready(ctx, name)).collect();
    should_hold(now.saturating_duration_since(warned), node_ready(node), &counted_on)
}

/// A NodeClaim is ready once Initialized; a Node once Ready; a name that went is not waited for.
fn capacity_ready(ctx: &Context, name: &str) -> bool {
    if let Some(claim) = ctx.state.node_claims.state().iter().find(|c| c.name_any() == name) {
        return claim.metadata.deletion_timestamp.is_some()
            || is_true(claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]), c::INITIALIZED);
    }
    ctx.state.nodes.state().iter().find(|n| n.name_any() == name).is_none_or(|n| node_ready(n))
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warned_node_keeps_its_pods_until_the_capacity_for_them_is_ready_within_bounds() {
        let s = Duration::from_secs;
        // The provisioner has not counted on anything yet: a short grace.
        assert!(should_hold(s(1), true, &[]));
        assert!(!should_hold(s(6), true, &[]));
        // A replacement in flight: hold; Ready: drain.
        assert!(should_hold(s(30), true, &[true, false]));
        assert!(!should_hold(s(30), true, &[true, true]));
        // Never past the bound, never for a node that is not Ready.
        assert!(!should_hold(MAX_HOLD, true, &[false]));
        assert!(!should_hold(s(10), false, &[false]));
    }
}
