//! The provisioner: batches pending pods, runs the scheduling simulation against existing nodes,
//! in-flight NodeClaims and every NodePool's instance types, and creates the NodeClaims it asks for.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::event_gate::EventGate;
use super::nodepool;
use super::snapshot::Snapshot;
use super::writes::{event, publish_in_background};
use crate::apis::labels as l;
use crate::apis::nodeclaim::ResourceRequirements;
use crate::apis::{NodeClaim, NodeClaimSpec, NodePool};
use crate::convert;
use crate::metrics::NodeClaimLabels;
use crate::scheduling::{NodeClaimPlan, Results, SchedPod};

/// How often the provisioner looks even when nothing changed (Karpenter requeues every 10 s).
const RESYNC: Duration = Duration::from_secs(10);
/// How soon a pass that had to skip a NodePool (its instance types could not be read: an outage,
/// throttling) is tried again, doubling while it goes on, up to [`RESYNC`]: the cloud recovering
/// changes nothing in the cluster that would trigger a pass, and the pods would wait the resync.
const RETRY_SKIPPED: Duration = Duration::from_secs(1);

pub async fn run(ctx: Arc<Context>) {
    let mut triggered = ctx.state.provisioning_triggered.clone();
    let mut skipped_in_a_row = 0;
    loop {
        // Wait for a trigger, then for the batch to close; or for the resync or the retry, which
        // have no batch to wait for.
        let prompted = tokio::time::timeout(unprompted_pass_after(skipped_in_a_row), triggered.changed()).await.is_ok();
        if needing_a_place(&ctx.state.pods.state(), &ctx.state.marked_for_deletion()).next().is_none() {
            skipped_in_a_row = 0;
            continue;
        }
        if prompted {
            batch(&ctx, &mut triggered).await;
        }
        let pass = pass(&ctx).await;
        skipped_in_a_row = if pass.skipped_pools.is_empty() { 0 } else { skipped_in_a_row + 1 };
    }
}

/// The wait for the next pass when nothing triggers one, after `skipped_in_a_row` passes in a row
/// that skipped a NodePool: 1, 2, 4, 8 s, then the resync.
fn unprompted_pass_after(skipped_in_a_row: u32) -> Duration {
    match skipped_in_a_row {
        0 => RESYNC,
        n => RETRY_SKIPPED.saturating_mul(1 << (n - 1).min(4)).min(RESYNC),
    }
}

/// The pods a pass places: pending ones, and those on nodes that are going away (interruption,
/// disruption), so their replacement starts before the old node drains.
fn needing_a_place<'a>(pods: &'a [Arc<Pod>], leaving: &'a BTreeSet<String>) -> impl Iterator<Item = &'a Arc<Pod>> {
    pods.iter().filter(move |pod| {
        let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
        convert::is_provisionable(pod)
            || (leaving.contains(on) && !convert::is_terminal(pod) && !is_daemon(pod) && has_controller(pod))
    })
}

/// Karpenter's batcher: the window closes after `idle` without new pods or at `max`.
async fn batch(ctx: &Context, triggered: &mut tokio::sync::watch::Receiver<u64>) {
    let start = ctx.clock.now();
    let (idle, max) = (ctx.options.batch_idle_duration, ctx.options.batch_max_duration);
    loop {
        let left = max.saturating_sub(ctx.clock.now().saturating_duration_since(start));
        if left.is_zero() {
            return;
        }
        match tokio::time::timeout(idle.min(left), triggered.changed()).await {
            Ok(Ok(())) => continue,
            _ => return,
        }
    }
}

/// One provisioning pass. Public so tests and the disruption loop can run it directly.
pub async fn provision(ctx: &Context) -> Results {
    pass(ctx).await.results
}

/// What a pass decided, and which NodePools it could not consider.
pub(crate) struct Pass {
    pub results: Results,
    pub skipped_pools: Vec<String>,
}

pub(crate) async fn pass(ctx: &Context) -> Pass {
    let all_pods = ctx.state.pods.state();
    let leaving = ctx.state.marked_for_deletion();
    let mut pending: Vec<SchedPod> = needing_a_place(&all_pods, &leaving).map(|p| SchedPod::from_pod(p)).collect();
    if pending.is_empty() {
        return Pass { results: Results::default(), skipped_pools: Vec::new() };
    }
    pending.sort_by(|a, b| a.key.cmp(&b.key));
    tracing::info!(pods = %summarize_pods(&pending), count = pending.len(), "found provisionable pod(s)");

    let snapshot = Snapshot::take(ctx, &leaving).await;
    let skipped_pools = snapshot.skipped_pools.clone();
    let started = ctx.clock.now();
    let mut scheduler = snapshot.scheduler();
    let results = scheduler.solve(pending.clone());
    ctx.metrics.scheduling_duration.observe(ctx.clock.now().saturating_duration_since(started).as_secs_f64());
    #[allow(clippy::cast_possible_wrap)]
    ctx.metrics.ignored_pods.set(results.pod_errors.len() as i64);

    // Pod events go out after the pass's NodeClaims exist, from a task of their own.
    let by_key: HashMap<String, &Arc<Pod>> =
        all_pods.iter().map(|p| (format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), p)).collect();
    let mut events = Vec::new();
    let now = ctx.clock.now();
    for (pod, reason) in &results.pod_errors {
        tracing::error!(pod = %pod, error = %reason, "could not schedule pod");
        let admit = |gate: &mut EventGate, uid: &str| gate.admit_failed_scheduling(uid, now);
        events.extend(pod_event(ctx, &by_key, pod, admit, EventType::Warning, "FailedScheduling", reason));
    }
    if !results.new_node_claims.is_empty() {
        let pods: usize = results.new_node_claims.iter().map(|p| p.pods.len()).sum();
        tracing::info!(nodeclaims = results.new_node_claims.len(), pods, "computed new nodeclaim(s) to fit pod(s)");
    }
    // Existing and in-flight capacity the pods were placed on must not be disrupted meanwhile.
    for name in results.existing.keys() {
        ctx.state.nominations.nominate(name, now);
    }
    for plan in &results.new_node_claims {
        let Some(pool) = ctx.state.node_pool(&plan.node_pool) else { continue };
        match create_node_claim(ctx, &pool, plan).await {
            Ok(claim) => {
                let name = claim.name_any();
                ctx.state.nominations.nominate(&name, now);
                let note = format!("Pod should schedule on: nodeclaim/{name}");
                for pod in &plan.pods {
                    let admit = |gate: &mut EventGate, uid: &str| gate.admit_nominated(uid, now);
                    events.extend(pod_event(ctx, &by_key, pod, admit, EventType::Normal, "Nominated", &note));
                }
            }
            Err(err) => tracing::error!(nodepool = %plan.node_pool, error = %err, "creating nodeclaim"),
        }
    }
    publish_in_background(ctx, events);
    let placed = pending.len().saturating_sub(results.pod_errors.len());
    ctx.metrics.pods_scheduled.inc_by(placed as u64);
    Pass { results, skipped_pools }
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
    ctx.state.created.record(&created, &ctx.state.node_claims, ctx.clock.now());
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

/// An event about the pod `namespace/name`, if it is still known and the event gate lets it out
/// (Karpenter's dedupe and rate limit; a pod without a uid, which only a test builds, is keyed by
/// its name). The action is "Provisioning".
fn pod_event(
    ctx: &Context,
    pods: &HashMap<String, &Arc<Pod>>,
    key: &str,
    admit: impl FnOnce(&mut EventGate, &str) -> bool,
    type_: EventType,
    reason: &str,
    note: &str,
) -> Option<(ObjectReference, Event)> {
    let pod = pods.get(key)?;
    let uid = pod.metadata.uid.as_deref().unwrap_or(key);
    if !admit(&mut ctx.event_gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner), uid) {
        return None;
    }
    let ev = event(type_, reason, "Provisioning", note);
    Some((pod.object_ref(&()), ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_that_skipped_a_node_pool_is_retried_soon_then_less_often() {
        let waits: Vec<u64> = (0..7).map(|n| unprompted_pass_after(n).as_secs()).collect();
        assert_eq!(waits, [10, 1, 2, 4, 8, 10, 10]);
    }
}
