//! Liveness (Karpenter's `lifecycle/liveness.go`): a NodeClaim that does not launch within the
//! launch timeout, or whose Node does not register within the registration timeout, is deleted
//! so the provisioner can try again elsewhere.

use kube::ResourceExt;

use crate::apis::NodeClaim;
use crate::apis::nodeclaim::conditions as c;
use crate::controllers::context::Context;
use crate::controllers::writes::delete_claim;

/// The metric reason for claims given up here.
const REASON: &str = "liveness";

/// Deletes the claim if it has been waiting to launch longer than the launch timeout.
pub(super) async fn launch_timed_out(ctx: &Context, claim: &NodeClaim) -> Result<bool, kube::Error> {
    let timeout = ctx.options.launch_timeout;
    if ctx.age(claim.metadata.creation_timestamp.as_ref()) <= timeout {
        return Ok(false);
    }
    tracing::warn!(NodeClaim = %claim.name_any(), timeout = ?timeout, "launch timed out, deleting nodeclaim");
    delete_claim(ctx, claim, REASON).await?;
    Ok(true)
}

/// Deletes the claim if its Node has not registered within the registration timeout of launch.
pub(super) async fn registration_timed_out(ctx: &Context, claim: &NodeClaim) -> Result<bool, kube::Error> {
    let timeout = ctx.options.registration_timeout;
    let conditions = claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let launched_at = conditions.iter().find(|x| x.type_ == c::LAUNCHED).map(|x| &x.last_transition_time);
    if ctx.age(launched_at) <= timeout {
        return Ok(false);
    }
    tracing::warn!(NodeClaim = %claim.name_any(), timeout = ?timeout, "node did not register in time, deleting nodeclaim");
    delete_claim(ctx, claim, REASON).await?;
    Ok(true)
}
