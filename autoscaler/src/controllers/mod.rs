//! The controllers, each a loop or a kube-runtime Controller over shared [`ClusterState`].
//!
//! Layering, so no module reaches back up: `context`, `error`, `state` and `writes` are the
//! ground every controller stands on; `snapshot` builds the scheduling simulation's input from the
//! caches (provisioner and disruption both use it); `termination` owns both finalizers, and the
//! NodeClaim lifecycle hands deleted claims to it. This file only declares and starts them.

pub mod context;
pub mod disruption;
pub mod error;
pub mod event_gate;
pub mod garbage_collection;
pub mod instance_status;
pub mod interruption;
pub mod nodeclaim;
pub mod nodeclass;
pub mod nodepool;
pub mod provisioner;
pub mod snapshot;
pub mod state;
pub mod termination;
pub mod writes;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use context::Context;
pub use error::Error;
pub use state::ClusterState;

/// Runs every controller until one of them stops (none should).
pub async fn run_all(ctx: Arc<Context>) {
    tokio::select! {
        () = provisioner::run(ctx.clone()) => {},
        () = nodeclaim::run(ctx.clone()) => {},
        () = termination::run(ctx.clone()) => {},
        () = nodepool::run(ctx.clone()) => {},
        () = nodeclass::run(ctx.clone()) => {},
        () = garbage_collection::run(ctx.clone()) => {},
        () = disruption::run(ctx.clone()) => {},
        () = interruption::run(ctx.clone()) => {},
        () = instance_status::run(ctx.clone()) => {},
    }
}
