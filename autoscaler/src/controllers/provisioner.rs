//! The provisioner: batches pending pods, runs the scheduling simulation against existing nodes,
//! in-flight NodeClaims and every NodePool's instance types, and creates the NodeClaims it asks for.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::nodepool;
use super::snapshot::Snapshot;
use super::writes::publish;
use crate::apis::labels as l;
use crate::apis::nodeclaim::ResourceRequirements;
use crate::apis::{NodeClaim, NodeClaimSpec, NodePool};
use crate::convert;
use crate::metrics::NodeClaimLabels;
use crate::scheduling::{NodeClaimPlan, Results, SchedPod};

/// How often the provisioner looks even when nothing changed (Karpenter requeues every 10 s).
const RESYNC: Duration = Duration::from_secs(10);

pub async fn run(ctx: Arc<Context>) {
    let mut pods_changed = ctx.state.pods_changed.clone();
    // A NodeClaim deleted for an interruption warning is a capacity change, not a pod change:
    // its pods need their replacement counted before the termination hold's grace runs out,
    // whether or not any other pod is pending.
    let mut capacity_changed = ctx.state.capacity_changed.clone();
    loop {
        // Wait for a pod or capacity change (or the periodic resync), then for the batch to close.
        let capacity = async {
            if capacity_changed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(RESYNC, pods_changed.changed()) => {}
            () = capacity => {}
        }
        if !has_provisionable(&ctx) && !has_warned_pods(&ctx) {
            continue;
        }
        batch(&ctx, &mut pods_changed).await;
        provision(&ctx).await;
    }
}

fn has_provisionable(ctx: &Context) -> bool {
    ctx.state.pods.state().iter().any(|p| convert::is_provisionable(p))
}

/// Whether pods still run on a node whose NodeClaim an interruption warning deleted, within the
/// hold (they stay until their replacement is Ready, so none of them is pending).
fn has_warned_pods(ctx: &Context) -> bool {
    let now = ctx.clock.now();
    let warned: std::collections::BTreeSet<String> = ctx
        .state
        .node_claims
        .state()
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_some())
        .filter(|c| {
            let at = ctx.state.interrupted.last(&c.name_any());
            at.is_some_and(|at| now.saturating_duration_since(at) < super::termination::MAX_HOLD)
        })
        .filter_map(|c| c.status.as_ref()?.node_name.clone())
        .collect();
    !warned.is_empty()
        && ctx.state.pods.state().iter().any(|p| {
            let on = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
            warned.contains(on) && !convert::is_terminal(p)
        })
}

/// Karpenter's batcher: the window closes after `idle` without new pods or at `max`.
async fn batch(ctx: &Context, pods_changed: &mut tokio::sync::watch::Receiver<u64>) {
    let start = ctx.clock.now();
    let (idle, max) = (ctx.options.batch_idle_duration, ctx.options.batch_max_duration);
    loop {
        let left = max.saturating_sub(ctx.clock.now().saturating_duration_since(start));
        if left.is_zero() {
            return;
        }
        match tokio::time::timeout(idle.min(left), pods_changed.changed()).await {
            Ok(Ok(())) => continue,
            _ => return,
        }
    }
}

/// One provisioning pass. Public so tests and the disruption loop can run it directly.
pub async fn provision(ctx: &Context) -> Results {
    let all_pods = ctx.state.pods.state();
    let mut pending: Vec<SchedPod> =
        all_pods.iter().filter(|p| convert::is_provisionable(p)).map(|p| SchedPod::from_pod(p)).collect();
    // Pods on nodes that are going away need a place too (interruption, disruption): counting them
    // now lets their replacement start before the old node drains.
    let leaving = ctx.state.marked_for_deletion();
    for pod in &all_pods {
        let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
        if leaving.contains(on) && !convert::is_terminal(pod) && !is_daemon(pod) && has_controller(pod) {
            pending.push(SchedPod::from_pod(pod));
        }
    }
    if pending.is_empty() {
        return Results::default();
    }
    pending.sort_by(|a, b| a.key.cmp(&b.key));
    tracing::info!(pods = %summarize_pods(&pending), count = pending.len(), "found provisionable pod(s)");

    let snapshot = Snapshot::take(ctx, &leaving).await;
    let started = ctx.clock.now();
    let mut scheduler = snapshot.scheduler();
    let results = scheduler.solve(pending.clone());
    ctx.metrics.scheduling_duration.observe(ctx.clock.now().saturating_duration_since(started).as_secs_f64());
    #[allow(clippy::cast_possible_wrap)]
    ctx.metrics.ignored_pods.set(results.pod_errors.len() as i64);

    for (pod, reason) in &results.pod_errors {
        tracing::error!(pod = %pod, error = %reason, "could not schedule pod");
        record_pod_event(ctx, &all_pods, pod, EventType::Warning, "FailedScheduling", reason).await;
    }
    if !results.new_node_claims.is_empty() {
        let pods: usize = results.new_node_claims.iter().map(|p| p.pods.len()).sum();
        tracing::info!(nodeclaims = results.new_node_claims.len(), pods, "computed new nodeclaim(s) to fit pod(s)");
    }
    // Existing and in-flight capacity the pods were placed on must not be disrupted meanwhile.
    let now = ctx.clock.now();
    for name in results.existing.keys() {
        ctx.state.nominations.nominate(name, now);
    }
    for plan in &results.new_node_claims {
        let Some(pool) = ctx.state.node_pool(&plan.node_pool) else { continue };
        match create_node_claim(ctx, &pool, plan).await {
            Ok(claim) => {
                let name = claim.name_any();
                ctx.state.nominations.nominate(&name, now);
                for pod in &plan.pods {
                    record_pod_event(
                        ctx,
                        &all_pods,
                        pod,
                        EventType::Normal,
                        "Nominated",
                        &format!("Pod should schedule on: nodeclaim/{name}"),
                    )
                    .await;
                }
            }
            Err(err) => tracing::error!(nodepool = %plan.node_pool, error = %err, "creating nodeclaim"),
        }
    }
    let placed = pending.len().saturating_sub(results.pod_errors.len());
    ctx.metrics.pods_scheduled.inc_by(placed as u64);
    results
}

fn is_daemon(pod: &Pod) -> bool {
    pod.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet")
}

/// Only a pod with a controller is recreated elsewhere; a bare pod just goes with its node.
fn has_controller(pod: &Pod) -> bool {
    pod.metadata.owner_references.iter().flatten().any(|o| o.controller == Some(true))
}

fn summarize_pods(pods: &[SchedPod]) -> String {
    let shown: Vec<&str> = pods.iter().take(5).map(|p| p.key.as_str()).collect();
    if pods.len() > 5 { format!("{} and {} other(s)", shown.join(", "), pods.len() - 5) } else { shown.join(", ") }
}

/// Creates the NodeClaim for a plan, as Karpenter writes it: labels from the pool's template and
/// the plan's single-valued requirements, the pool's taints, the requirements narrowed to the
/// chosen instance types, and the requests it was sized for.
pub(crate) async fn create_node_claim(
    ctx: &Context,
    pool: &NodePool,
    plan: &NodeClaimPlan,
) -> Result<NodeClaim, kube::Error> {
    let pool_name = pool.name_any();
    let template = &pool.spec.template;
    let mut labels = template.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(l::NODEPOOL.to_owned(), pool_name.clone());
    // Single-valued requirements become labels (a topology decision, e.g. the zone, pins them).
    for (k, v) in plan.labels.iter().map(|(k, v)| (k.clone(), v.clone())).chain(plan.requirements.labels()) {
        if k != l::INSTANCE_TYPE && k != l::HOSTNAME {
            labels.entry(k).or_insert(v);
        }
    }
    let mut annotations = template.metadata.as_ref().map(|m| m.annotations.clone()).unwrap_or_default();
    annotations.insert(l::NODEPOOL_HASH.to_owned(), nodepool::hash(pool));
    annotations.insert(l::NODEPOOL_HASH_VERSION.to_owned(), nodepool::HASH_VERSION.to_owned());
    let mut requirements = plan.requirements.clone();
    requirements.remove(l::HOSTNAME);
    let claim = NodeClaim {
        metadata: ObjectMeta {
            generate_name: Some(format!("{pool_name}-")),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: pool.controller_owner_ref(&()).map(|mut o| {
                o.controller = None;
                o.block_owner_deletion = Some(true);
                vec![o]
            }),
            finalizers: Some(vec![l::TERMINATION_FINALIZER.to_owned()]),
            ..Default::default()
        },
        spec: NodeClaimSpec {
            requirements: convert::requirements_to_crd(&requirements),
            node_class_ref: template.spec.node_class_ref.clone(),
            taints: template.spec.taints.clone(),
            startup_taints: template.spec.startup_taints.clone(),
            resources: Some(ResourceRequirements { requests: Some(convert::resources_to_k8s(&plan.requests)) }),
            expire_after: template
                .spec
                .expire_after
                .clone()
                .or_else(|| pool.spec.disruption.as_ref().and_then(|d| d.expire_after.clone())),
            termination_grace_period: template.spec.termination_grace_period.clone(),
        },
        status: None,
    };
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let created = api.create(&PostParams::default(), &claim).await?;
    let types: Vec<&str> = plan.instance_types.iter().map(|t| t.name.as_str()).collect();
    tracing::info!(
        NodePool = %pool_name,
        NodeClaim = %created.name_any(),
        requests = ?plan.requests.iter().collect::<Vec<_>>(),
        instance_types = %convert::summarize_types(types),
        pods = plan.pods.len(),
        "created nodeclaim"
    );
    ctx.metrics.nodeclaims_created.get_or_create(&NodeClaimLabels::new(&pool_name, "provisioning", "")).inc();
    Ok(created)
}

async fn record_pod_event(ctx: &Context, pods: &[Arc<Pod>], key: &str, type_: EventType, reason: &str, note: &str) {
    let Some(pod) = pods.iter().find(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()) == key)
    else {
        return;
    };
    publish(ctx, &pod.object_ref(&()), type_, reason, "Provisioning", note).await;
}
