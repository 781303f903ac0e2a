//! Registration (Karpenter's `lifecycle/registration.go`): once a Node with the claim's
//! providerID appears, give it the claim's labels, taints, owner and the termination finalizer,
//! lift `karpenter.sh/unregistered`, record the node name, and name the instance after the Node.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::liveness;
use crate::apis::NodeClaim;
use crate::apis::common::{set_condition, set_condition_status};
use crate::apis::labels as l;
use crate::apis::nodeclaim::conditions as c;
use crate::controllers::context::Context;
use crate::controllers::error::Error;
use crate::controllers::writes::patch_claim_status;
use crate::metrics::NodePoolLabels;

/// Until the Node appears (the kubelet registers within seconds of boot), look every 2 s.
const AWAIT_NODE: Duration = Duration::from_secs(2);

pub(super) async fn register(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let mut status = claim.status.clone().unwrap_or_default();
    let Some(provider_id) = status.provider_id.clone() else {
        return Err(Error::MissingProviderId(name));
    };
    let Some(node) = ctx.state.node_by_provider_id(&provider_id) else {
        if liveness::registration_timed_out(ctx, claim).await? {
            return Ok(Action::await_change());
        }
        return Ok(Action::requeue(AWAIT_NODE));
    };
    let node_name = node.name_any();
    sync_node(ctx, claim, &node).await?;
    status.node_name = Some(node_name.clone());
    let now = ctx.now();
    set_condition(&mut status.conditions, c::REGISTERED, true, c::REGISTERED, "", None, now.clone());
    set_condition_status(&mut status.conditions, c::INITIALIZED, "Unknown", "AwaitingInitialization", "", None, now);
    patch_claim_status(ctx, &name, &status).await?;
    let pool = claim.node_pool();
    tracing::info!(NodeClaim = %name, Node = %node_name, provider_id = %provider_id, "registered nodeclaim");
    ctx.metrics.nodeclaims_registered.get_or_create(&NodePoolLabels::new(&pool)).inc();
    ctx.metrics.nodes_created.get_or_create(&NodePoolLabels::new(&pool)).inc();
    // Karpenter's tagging controller: name the instance after its Node.
    if let Some(id) = crate::cloud::instance_id_from_provider_id(&provider_id) {
        let tags =
            BTreeMap::from([("Name".to_owned(), node_name), ("karpenter.sh/nodeclaim".to_owned(), name.clone())]);
        if let Err(err) = ctx.cloud.tag(id, &tags).await {
            tracing::warn!(NodeClaim = %name, error = %err, "tagging instance");
        }
    }
    Ok(Action::requeue(AWAIT_NODE))
}

/// Puts the NodeClaim's labels, taints and the termination finalizer on the Node, and removes the
/// `karpenter.sh/unregistered` taint it registered with.
pub(super) async fn sync_node(ctx: &Context, claim: &NodeClaim, node: &Node) -> Result<(), kube::Error> {
    let mut labels = claim.labels().clone();
    labels.insert(l::REGISTERED.to_owned(), "true".to_owned());
    let mut taints: Vec<_> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != l::UNREGISTERED_TAINT)
        .collect();
    for t in claim.spec.taints.iter() {
        if !taints.iter().any(|x| x.key == t.key && x.effect == t.effect) {
            taints.push(t.clone());
        }
    }
    let mut finalizers = node.finalizers().to_vec();
    if !finalizers.iter().any(|f| f == l::TERMINATION_FINALIZER) {
        finalizers.push(l::TERMINATION_FINALIZER.to_owned());
    }
    let owner = claim.controller_owner_ref(&()).map(|mut o| {
        o.controller = None;
        o.block_owner_deletion = Some(true);
        o
    });
    let patch = json!({
        "metadata": {
            "labels": labels,
            "finalizers": finalizers,
            "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
            "resourceVersion": node.resource_version(),
        },
        "spec": {"taints": taints},
    });
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    nodes.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}
