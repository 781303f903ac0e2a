//! NodeClaim lifecycle: launch the instance, register its Node, mark it initialized, and give up
//! on claims that do not launch or register in time (karpenter.md §8 timeouts).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, convert};
use crate::apis::common::{is_true, set_condition, set_condition_status};
use crate::apis::labels as l;
use crate::apis::nodeclaim::conditions as c;
use crate::apis::{NodeClaim, NodeClaimStatus};
use crate::metrics::{NodeClaimLabels, NodePoolLabels};

const WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

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

async fn reconcile(claim: Arc<NodeClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    if claim.metadata.deletion_timestamp.is_some() {
        return super::termination::finalize_node_claim(&ctx, &claim).await;
    }
    let conditions = claim.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    if !is_true(&conditions, c::LAUNCHED) {
        return launch(&ctx, &claim).await;
    }
    if !is_true(&conditions, c::REGISTERED) {
        return register(&ctx, &claim).await;
    }
    if !is_true(&conditions, c::INITIALIZED) {
        return initialize(&ctx, &claim).await;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn age(t: Option<&Time>) -> Duration {
    t.map(|t| Duration::from_secs(Timestamp::now().as_second().saturating_sub(t.0.as_second()).max(0) as u64))
        .unwrap_or_default()
}

fn pool_of(claim: &NodeClaim) -> String {
    claim.labels().get(l::NODEPOOL).cloned().unwrap_or_default()
}

async fn launch(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let pool = pool_of(claim);
    if age(claim.metadata.creation_timestamp.as_ref()) > ctx.options.launch_timeout {
        tracing::warn!(NodeClaim = %name, timeout = ?ctx.options.launch_timeout, "launch timed out, deleting nodeclaim");
        delete_claim(ctx, claim, "liveness").await?;
        return Ok(Action::await_change());
    }
    let Some(class) = ctx.state.node_class(&claim.spec.node_class_ref.name) else {
        set_launched(ctx, claim, false, "NodeClassNotFound", "the EC2NodeClass does not exist").await?;
        return Ok(Action::requeue(Duration::from_secs(10)));
    };
    let pool_obj = ctx.state.node_pool(&pool);
    let pool_kubelet = pool_obj.as_ref().and_then(|p| p.spec.template.spec.kubelet.as_ref());
    match ctx.cloud.create(claim, &class, pool_kubelet).await {
        Ok(launched) => {
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
            set_condition(&mut status.conditions, c::LAUNCHED, true, c::LAUNCHED, "", claim.metadata.generation, now());
            set_condition_status(
                &mut status.conditions,
                c::REGISTERED,
                "Unknown",
                "AwaitingRegistration",
                "",
                None,
                now(),
            );
            set_condition_status(&mut status.conditions, c::READY, "Unknown", "AwaitingRegistration", "", None, now());
            patch_status(ctx, &name, &status).await?;
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
            event(
                ctx,
                claim,
                EventType::Normal,
                "Launched",
                &format!(
                    "Launched {} {} in {}",
                    instance.capacity_type.as_str(),
                    instance.instance_type,
                    instance.zone
                ),
            )
            .await;
            Ok(Action::requeue(WAIT))
        }
        Err(err) if err.is_insufficient_capacity() => {
            // Karpenter deletes the claim at once; the offerings are marked unavailable, so the
            // next provisioning pass picks other pools (spot → on-demand fallback emerges here).
            tracing::error!(NodeClaim = %name, error = %err, "failed launching nodeclaim: insufficient capacity, deleting");
            event(
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
            event(ctx, claim, EventType::Warning, "LaunchFailed", &format!("{reason}: {err}")).await;
            count_error(ctx, "Create", &err);
            set_launched(ctx, claim, false, &reason, &err.to_string()).await?;
            Ok(Action::requeue(backoff(claim)))
        }
    }
}

/// Retries back off with the claim's age, from 1 s to a minute (Karpenter's per-item limiter).
fn backoff(claim: &NodeClaim) -> Duration {
    let secs = age(claim.metadata.creation_timestamp.as_ref()).as_secs();
    Duration::from_secs((secs / 4).clamp(1, 60))
}

fn count_error(ctx: &Context, method: &str, err: &crate::cloud::CloudError) {
    ctx.metrics
        .cloudprovider_errors
        .get_or_create(&crate::metrics::CloudErrorLabels {
            controller: "nodeclaim.lifecycle".to_owned(),
            method: method.to_owned(),
            error: err.reason().to_owned(),
        })
        .inc();
}

async fn set_launched(ctx: &Context, claim: &NodeClaim, ok: bool, reason: &str, message: &str) -> Result<(), Error> {
    let mut status = claim.status.clone().unwrap_or_default();
    let changed =
        set_condition(&mut status.conditions, c::LAUNCHED, ok, reason, message, claim.metadata.generation, now());
    if changed {
        patch_status(ctx, &claim.name_any(), &status).await?;
    }
    Ok(())
}

async fn register(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let status = claim.status.clone().unwrap_or_default();
    let Some(provider_id) = status.provider_id.clone() else {
        return Err(Error::Other(format!("nodeclaim {name} launched without a providerID")));
    };
    let Some(node) = ctx.state.node_by_provider_id(&provider_id) else {
        let launched_at = status.conditions.iter().find(|x| x.type_ == c::LAUNCHED).map(|x| &x.last_transition_time);
        if age(launched_at) > ctx.options.registration_timeout {
            tracing::warn!(NodeClaim = %name, timeout = ?ctx.options.registration_timeout, "node did not register in time, deleting nodeclaim");
            delete_claim(ctx, claim, "liveness").await?;
            return Ok(Action::await_change());
        }
        return Ok(Action::requeue(WAIT));
    };
    let node_name = node.name_any();
    sync_node(ctx, claim, &node).await?;
    let mut status = status;
    status.node_name = Some(node_name.clone());
    set_condition(&mut status.conditions, c::REGISTERED, true, c::REGISTERED, "", None, now());
    set_condition_status(&mut status.conditions, c::INITIALIZED, "Unknown", "AwaitingInitialization", "", None, now());
    patch_status(ctx, &name, &status).await?;
    let pool = pool_of(claim);
    tracing::info!(NodeClaim = %name, Node = %node_name, provider_id = %provider_id, "registered nodeclaim");
    ctx.metrics.nodeclaims_registered.get_or_create(&NodePoolLabels::new(&pool)).inc();
    ctx.metrics.nodes_created.get_or_create(&NodePoolLabels::new(&pool)).inc();
    // Karpenter's tagging controller: name the instance after its Node.
    if let Some(id) = crate::cloud::instance_id_from_provider_id(&provider_id) {
        let tags = BTreeMap::from([
            ("Name".to_owned(), node_name.clone()),
            ("karpenter.sh/nodeclaim".to_owned(), name.clone()),
        ]);
        if let Err(err) = ctx.cloud.tag(id, &tags).await {
            tracing::warn!(NodeClaim = %name, error = %err, "tagging instance");
        }
    }
    Ok(Action::requeue(WAIT))
}

/// Puts the NodeClaim's labels, taints and the termination finalizer on the Node, and removes the
/// `karpenter.sh/unregistered` taint it registered with.
async fn sync_node(ctx: &Context, claim: &NodeClaim, node: &Node) -> Result<(), Error> {
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

async fn initialize(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    let name = claim.name_any();
    let node_name = claim.status.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let Some(node) = nodes.get_opt(&node_name).await? else {
        return Ok(Action::requeue(WAIT));
    };
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|x| x.type_ == "Ready" && x.status == "True"));
    let node_taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let startup_left =
        claim.spec.startup_taints.iter().any(|t| node_taints.iter().any(|n| n.key == t.key && n.effect == t.effect));
    if !ready || startup_left {
        // A label or taint may have been lost while the node registered: keep it in sync.
        if !node.labels().contains_key(l::REGISTERED) || node_taints.iter().any(|t| t.key == l::UNREGISTERED_TAINT) {
            sync_node(ctx, claim, &node).await?;
        }
        return Ok(Action::requeue(WAIT));
    }
    nodes
        .patch(
            &node_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {l::INITIALIZED: "true"}}})),
        )
        .await?;
    let mut status: NodeClaimStatus = claim.status.clone().unwrap_or_default();
    set_condition(&mut status.conditions, c::INITIALIZED, true, c::INITIALIZED, "", None, now());
    set_condition(&mut status.conditions, c::READY, true, c::READY, "", None, now());
    patch_status(ctx, &name, &status).await?;
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
    tracing::info!(NodeClaim = %name, Node = %node_name, allocatable = ?alloc.iter().map(|(k, v)| format!("{k}={}", v.0)).collect::<Vec<_>>(), "initialized nodeclaim");
    ctx.metrics.nodeclaims_initialized.get_or_create(&NodePoolLabels::new(&pool_of(claim))).inc();
    Ok(Action::requeue(Duration::from_secs(60)))
}

pub async fn patch_status(ctx: &Context, name: &str, status: &NodeClaimStatus) -> Result<(), Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(())
}

pub async fn delete_claim(ctx: &Context, claim: &NodeClaim, reason: &str) -> Result<(), Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    match api.delete(&claim.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let ct = claim.labels().get(l::CAPACITY_TYPE).cloned().unwrap_or_default();
    ctx.metrics.nodeclaims_terminated.get_or_create(&NodeClaimLabels::new(&pool_of(claim), reason, &ct)).inc();
    Ok(())
}

pub async fn event(ctx: &Context, claim: &NodeClaim, type_: EventType, reason: &str, note: &str) {
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: reason.to_owned(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&ev, &claim.object_ref(&())).await {
        tracing::debug!(error = %err, "publishing nodeclaim event");
    }
}
