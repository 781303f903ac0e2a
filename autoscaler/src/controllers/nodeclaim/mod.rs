//! The NodeClaim lifecycle (Karpenter's `nodeclaim/lifecycle`): launch the instance, register its
//! Node, mark it initialized, and give up on claims that do not launch or register in time. A
//! deleted NodeClaim goes to its finalizer in [`super::termination`].

mod initialization;
mod launch;
mod liveness;
mod registration;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::context::Context;
use super::error::Error;
use super::termination;
use crate::apis::NodeClaim;
use crate::apis::common::is_true;
use crate::apis::nodeclaim::conditions as c;

/// How often an initialized claim is looked at again without a change.
const IDLE: Duration = Duration::from_secs(60);

pub async fn run(ctx: Arc<Context>) {
    let claims: Api<NodeClaim> = Api::all(ctx.client.clone());
    Controller::new(claims, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(10))
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "nodeclaim reconcile");
            }
        })
        .await;
}

fn error_policy(_claim: Arc<NodeClaim>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "nodeclaim lifecycle");
    Action::requeue(Duration::from_secs(5))
}

/// One step of the lifecycle: the first condition that is not true yet decides what to do.
pub async fn reconcile(claim: Arc<NodeClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    if claim.metadata.deletion_timestamp.is_some() {
        return termination::finalize_node_claim(&ctx, &claim).await;
    }
    let conditions = claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    if !is_true(conditions, c::LAUNCHED) {
        if liveness::launch_timed_out(&ctx, &claim).await? {
            return Ok(Action::await_change());
        }
        return launch::launch(&ctx, &claim).await;
    }
    if !is_true(conditions, c::REGISTERED) {
        return registration::register(&ctx, &claim).await;
    }
    if !is_true(conditions, c::INITIALIZED) {
        return initialization::initialize(&ctx, &claim).await;
    }
    Ok(Action::requeue(IDLE))
}
