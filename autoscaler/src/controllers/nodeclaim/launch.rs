//! Launch (Karpenter's `lifecycle/launch.go`): create the instance through the cloud provider and
//! record it on the NodeClaim: labels of the chosen offering, providerID, image, capacity and
//! allocatable, and the Launched condition.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use serde_json::json;

use crate::apis::NodeClaim;
use crate::apis::common::{set_condition, set_condition_status};
use crate::apis::labels as l;
use crate::apis::nodeclaim::conditions as c;
use crate::cloud::CloudError;
use crate::controllers::context::Context;
use crate::controllers::error::Error;
use crate::controllers::writes::{claim_event, delete_claim, patch_claim_status};
use crate::convert;
use crate::metrics::{CloudErrorLabels, NodePoolLabels};
use crate::provider::Launched;

/// A launched instance's Node usually registers within seconds: look again soon.
const AWAIT_REGISTRATION: Duration = Duration::from_secs(2);
/// Before the class exists there is nothing to do but wait for it.
const AWAIT_NODE_CLASS: Duration = Duration::from_secs(10);

pub(super) async fn launch(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let Some(class) = ctx.state.node_class(&claim.spec.node_class_ref.name) else {
        set_launched(ctx, claim, false, "NodeClassNotFound", "the EC2NodeClass does not exist").await?;
        return Ok(Action::requeue(AWAIT_NODE_CLASS));
    };
    let pool = ctx.state.node_pool(&claim.node_pool());
    let pool_kubelet = pool.as_ref().and_then(|p| p.spec.template.spec.kubelet.as_ref());
    match ctx.cloud.create(claim, &class, pool_kubelet).await {
        Ok(launched) => {
            record_launch(ctx, claim, &launched).await?;
            Ok(Action::requeue(AWAIT_REGISTRATION))
        }
        Err(err) if err.is_insufficient_capacity() => {
            // Karpenter deletes the claim at once; the offerings are marked unavailable, so the
            // next provisioning pass picks other pools (spot → on-demand fallback emerges here).
            tracing::error!(NodeClaim = %name, error = %err, "failed launching nodeclaim: insufficient capacity, deleting");
            claim_event(
                ctx,
                claim,
                EventType::Warning,
                "InsufficientCapacityError",
                &format!("NodeClaim {name} event: {err}"),
            )
            .await;
            count_error(ctx, "Create", &err);
            delete_claim(ctx, claim, "insufficient_capacity").await?;
            Ok(Action::await_change())
        }
        Err(err) => {
            let reason = err.reason().to_owned();
            tracing::error!(NodeClaim = %name, reason = %reason, error = %err, "failed launching nodeclaim");
            claim_event(ctx, claim, EventType::Warning, "LaunchFailed", &format!("{reason}: {err}")).await;
            count_error(ctx, "Create", &err);
            set_launched(ctx, claim, false, &reason, &err.to_string()).await?;
            Ok(Action::requeue(backoff(ctx, claim)))
        }
    }
}

/// Labels first (the instance's type, zone and capacity type), then the status.
async fn record_launch(ctx: &Context, claim: &NodeClaim, launched: &Launched) -> Result<(), kube::Error> {
    let name = claim.name_any();
    let pool = claim.node_pool();
    let instance = &launched.instance;
    let mut labels = launched.labels.clone();
    labels.insert(l::INSTANCE_TYPE.to_owned(), instance.instance_type.clone());
    labels.insert(l::ZONE.to_owned(), instance.zone.clone());
    labels.insert(l::CAPACITY_TYPE.to_owned(), instance.capacity_type.as_str().to_owned());
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": labels}}))).await?;
    let mut status = claim.status.clone().unwrap_or_default();
    status.provider_id = Some(instance.provider_id.clone());
    status.image_id = Some(instance.image_id.clone());
    status.capacity = Some(convert::resources_to_k8s(&launched.capacity));
    status.allocatable = Some(convert::resources_to_k8s(&launched.allocatable));
    let now = ctx.now();
    set_condition(&mut status.conditions, c::LAUNCHED, true, c::LAUNCHED, "", claim.metadata.generation, now.clone());
    set_condition_status(
        &mut status.conditions,
        c::REGISTERED,
        "Unknown",
        "AwaitingRegistration",
        "",
        None,
        now.clone(),
    );
    set_condition_status(&mut status.conditions, c::READY, "Unknown", "AwaitingRegistration", "", None, now);
    patch_claim_status(ctx, &name, &status).await?;
    tracing::info!(
        NodeClaim = %name,
        NodePool = %pool,
        provider_id = %instance.provider_id,
        instance_type = %instance.instance_type,
        zone = %instance.zone,
        capacity_type = %instance.capacity_type.as_str(),
        allocatable = ?launched.allocatable.iter().collect::<Vec<_>>(),
        "launched nodeclaim"
    );
    ctx.metrics.nodeclaims_launched.get_or_create(&NodePoolLabels::new(&pool)).inc();
    let note = format!("Launched {} {} in {}", instance.capacity_type.as_str(), instance.instance_type, instance.zone);
    claim_event(ctx, claim, EventType::Normal, "Launched", &note).await;
    Ok(())
}

/// Retries back off with the claim's age, from 1 s to a minute (Karpenter's per-item limiter).
fn backoff(ctx: &Context, claim: &NodeClaim) -> Duration {
    let secs = ctx.age(claim.metadata.creation_timestamp.as_ref()).as_secs();
    Duration::from_secs((secs / 4).clamp(1, 60))
}

fn count_error(ctx: &Context, method: &str, err: &CloudError) {
    ctx.metrics
        .cloudprovider_errors
        .get_or_create(&CloudErrorLabels {
            controller: "nodeclaim.lifecycle".to_owned(),
            method: method.to_owned(),
            error: err.reason().to_owned(),
        })
        .inc();
}

/// Sets the Launched condition; writes only when it changed.
async fn set_launched(
    ctx: &Context,
    claim: &NodeClaim,
    ok: bool,
    reason: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let mut status = claim.status.clone().unwrap_or_default();
    let changed =
        set_condition(&mut status.conditions, c::LAUNCHED, ok, reason, message, claim.metadata.generation, ctx.now());
    if changed {
        patch_claim_status(ctx, &claim.name_any(), &status).await?;
    }
    Ok(())
}
