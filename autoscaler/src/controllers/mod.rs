//! The controllers, each a loop or a kube-runtime Controller over shared [`ClusterState`].

pub mod convert;
pub mod disruption;
pub mod garbage_collection;
pub mod instance_status;
pub mod interruption;
pub mod lifecycle;
pub mod nodeclass;
pub mod nodepool;
pub mod provisioner;
pub mod state;
pub mod termination;

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::Client;
use kube::ResourceExt;
use kube::runtime::events::Recorder;

pub use state::ClusterState;

use crate::apis::NodeClaim;
use crate::apis::labels as l;
use crate::metrics::Metrics;
use crate::options::Options;
use crate::provider::CloudProvider;
use crate::scheduling::{Requirements, Resources, SchedPod};

/// What every controller shares.
pub struct Context {
    pub client: Client,
    pub state: ClusterState,
    pub cloud: Arc<CloudProvider>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub options: Options,
    /// For the interruption queue.
    pub sqs: aws_sdk_sqs::Client,
}

/// Runs every controller until one of them stops (none should).
pub async fn run_all(ctx: Arc<Context>) {
    tokio::select! {
        () = provisioner::run(ctx.clone()) => {},
        () = lifecycle::run(ctx.clone()) => {},
        () = termination::run(ctx.clone()) => {},
        () = nodepool::run(ctx.clone()) => {},
        () = nodeclass::run(ctx.clone()) => {},
        () = garbage_collection::run(ctx.clone()) => {},
        () = disruption::run(ctx.clone()) => {},
        () = interruption::run(ctx.clone()) => {},
        () = instance_status::run(ctx.clone()) => {},
    }
}

/// Names of Nodes and NodeClaims that are going away: deleting, or tainted as disrupted. Their
/// pods count as pending so replacements start before the drain.
pub fn nodes_marked_for_deletion(ctx: &Context) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for claim in ctx.state.node_claims.state() {
        if claim.metadata.deletion_timestamp.is_some() {
            out.insert(claim.name_any());
            if let Some(node) = claim.status.as_ref().and_then(|s| s.node_name.clone()) {
                out.insert(node);
            }
        }
    }
    for node in ctx.state.nodes.state() {
        let disrupted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == l::DISRUPTED_TAINT));
        if node.metadata.deletion_timestamp.is_some() || disrupted {
            out.insert(node.name_any());
        }
    }
    out
}

/// Requests of the daemonsets that will run on a claim's node (they tolerate its taints and
/// select its labels).
pub fn daemon_overhead(daemonsets: &[SchedPod], claim: &NodeClaim) -> Resources {
    let mut total = Resources::new();
    let taints = convert::taints(&claim.spec.taints);
    let mut reqs = convert::requirements(&claim.spec.requirements).unwrap_or_default();
    for (k, v) in claim.labels() {
        reqs.add(k, crate::scheduling::Requirement::in_values([v.clone()]));
    }
    for ds in daemonsets {
        if crate::scheduling::tolerates(&ds.tolerations, &taints).is_err() {
            continue;
        }
        let selector = Requirements::from_labels(&ds.node_selector);
        if reqs.compatible(&selector).is_err() {
            continue;
        }
        total.add(&ds.requests);
    }
    total
}
