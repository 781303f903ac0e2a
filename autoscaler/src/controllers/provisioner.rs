//! The provisioner: batches pending pods, runs the scheduling simulation against existing nodes,
//! in-flight NodeClaims and every NodePool's instance types, and creates the NodeClaims it asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::Context;
use super::convert;
use crate::apis::labels as l;
use crate::apis::nodeclaim::ResourceRequirements;
use crate::apis::{NodeClaim, NodeClaimSpec, NodePool};
use crate::metrics::NodeClaimLabels;
use crate::scheduling::{
    InstanceType, NodeClaimPlan, Results, SchedNodePool, SchedPod, ScheduledPodInfo, Scheduler, SchedulerOptions,
};

/// How often the provisioner looks even when nothing changed (Karpenter requeues every 10 s).
const RESYNC: Duration = Duration::from_secs(10);

pub async fn run(ctx: Arc<Context>) {
    let mut pods_changed = ctx.state.pods_changed.clone();
    loop {
        // Wait for a pod change (or the periodic resync), then for the batch to close.
        let _ = tokio::time::timeout(RESYNC, pods_changed.changed()).await;
        if !has_provisionable(&ctx) {
            continue;
        }
        batch(&ctx, &mut pods_changed).await;
        if let Err(err) = provision(&ctx).await {
            tracing::error!(error = %err, "provisioning failed");
        }
    }
}

fn has_provisionable(ctx: &Context) -> bool {
    ctx.state.pods.state().iter().any(|p| convert::is_provisionable(p))
}

/// Karpenter's batcher: the window closes after `idle` without new pods or at `max`.
async fn batch(ctx: &Context, pods_changed: &mut tokio::sync::watch::Receiver<u64>) {
    let start = Instant::now();
    let (idle, max) = (ctx.options.batch_idle_duration, ctx.options.batch_max_duration);
    loop {
        let left = max.saturating_sub(start.elapsed());
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
pub async fn provision(ctx: &Context) -> anyhow::Result<Results> {
    let all_pods = ctx.state.pods.state();
    let mut pending: Vec<SchedPod> =
        all_pods.iter().filter(|p| convert::is_provisionable(p)).map(|p| SchedPod::from_pod(p)).collect();
    // Pods on nodes that are going away need a place too (interruption, disruption): counting them
    // now lets their replacement start before the old node drains.
    let leaving = super::nodes_marked_for_deletion(ctx);
    for pod in &all_pods {
        let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
        if leaving.contains(on) && !convert::is_terminal(pod) && !is_daemon(pod) && has_controller(pod) {
            pending.push(SchedPod::from_pod(pod));
        }
    }
    if pending.is_empty() {
        return Ok(Results::default());
    }
    pending.sort_by(|a, b| a.key.cmp(&b.key));
    tracing::info!(pods = %summarize_pods(&pending), count = pending.len(), "found provisionable pod(s)");

    let snapshot = Snapshot::take(ctx, &leaving).await?;
    let started = Instant::now();
    let mut scheduler = snapshot.scheduler();
    let results = scheduler.solve(pending.clone());
    ctx.metrics.scheduling_duration.observe(started.elapsed().as_secs_f64());
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
    for name in results.existing.keys() {
        ctx.state.nominations.nominate(name);
    }
    for plan in &results.new_node_claims {
        let Some(pool) = ctx.state.node_pool(&plan.node_pool) else { continue };
        match create_node_claim(ctx, &pool, plan).await {
            Ok(claim) => {
                let name = claim.name_any();
                ctx.state.nominations.nominate(&name);
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
    Ok(results)
}

fn reports_allocatable(node: &k8s_openapi::api::core::v1::Node) -> bool {
    node.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_some_and(|a| a.contains_key("cpu"))
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

/// Everything the simulation needs, read from the caches and the cloud provider.
pub(crate) struct Snapshot {
    pub pools: Vec<SchedNodePool>,
    pub existing: Vec<crate::scheduling::ExistingNode>,
    pub scheduled: Vec<ScheduledPodInfo>,
    pub daemonsets: Vec<SchedPod>,
}

impl Snapshot {
    /// The scheduling simulation over this snapshot (provisioning and disruption alike).
    pub(crate) fn scheduler(self) -> Scheduler {
        Scheduler::new(self.pools, self.existing, self.scheduled, self.daemonsets, SchedulerOptions::default())
    }

    pub(crate) async fn take(ctx: &Context, leaving: &BTreeSet<String>) -> anyhow::Result<Snapshot> {
        let pods = ctx.state.pods.state();
        let used = convert::requests_by_node(&pods);
        let daemonsets: Vec<SchedPod> = ctx
            .state
            .daemon_sets
            .state()
            .iter()
            .filter_map(|ds| {
                let template = ds.spec.as_ref()?.template.clone();
                let pod = Pod { metadata: template.metadata.unwrap_or_default(), spec: template.spec, status: None };
                Some(SchedPod::from_pod(&pod))
            })
            .collect();

        // Pools in name order; each gets its node class's instance types.
        let mut pool_objs: Vec<Arc<NodePool>> = ctx.state.node_pools.state();
        pool_objs.sort_by_key(|p| p.name_any());
        let mut pools = Vec::new();
        let mut all_types: BTreeMap<String, Arc<InstanceType>> = BTreeMap::new();
        for pool in pool_objs {
            if pool.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(class) = ctx.state.node_class(pool.spec.node_class_name()) else {
                tracing::warn!(nodepool = %pool.name_any(), nodeclass = %pool.spec.node_class_name(), "nodepool's nodeclass not found");
                continue;
            };
            let types = match ctx.cloud.instance_types(&class, pool.spec.template.spec.kubelet.as_ref()).await {
                Ok(t) => t,
                Err(err) => {
                    tracing::warn!(nodepool = %pool.name_any(), error = %err, "nodeclass not ready, skipping nodepool");
                    continue;
                }
            };
            for t in &types {
                all_types.entry(t.name.clone()).or_insert_with(|| t.clone());
            }
            let usage = super::nodepool::usage(ctx, &pool.name_any());
            match convert::node_pool(&pool, types, &usage) {
                Ok(p) => pools.push(p),
                Err(err) => tracing::error!(error = %err, "invalid nodepool"),
            }
        }

        let mut existing = Vec::new();
        let mut claimed_nodes = BTreeSet::new();
        let nodes = ctx.state.nodes.state();
        for claim in ctx.state.node_claims.state() {
            let name = claim.name_any();
            let provider_id = claim.status.as_ref().and_then(|s| s.provider_id.clone());
            let node = provider_id.as_deref().and_then(|id| ctx.state.node_by_provider_id(id));
            let marked = claim.metadata.deletion_timestamp.is_some() || leaving.contains(&name);
            // A Node registers before its kubelet reports allocatable: until then it offers what
            // its NodeClaim does, or the pods meant for it would look unschedulable and get
            // another NodeClaim.
            if let Some(node) = &node {
                claimed_nodes.insert(node.name_any());
            }
            match node.filter(|n| reports_allocatable(n)) {
                Some(node) => {
                    let node_name = node.name_any();
                    let initialized = crate::apis::common::is_true(
                        claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]),
                        crate::apis::nodeclaim::conditions::INITIALIZED,
                    );
                    let marked = marked || leaving.contains(&node_name) || node.metadata.deletion_timestamp.is_some();
                    existing.push(convert::existing_node(&node, used.get(&node_name), initialized, marked));
                }
                None => {
                    let overhead = super::daemon_overhead(&daemonsets, &claim);
                    if let Some(n) = convert::in_flight_node_claim(&claim, &all_types, &overhead, marked) {
                        existing.push(n);
                    }
                }
            }
        }
        // Nodes Karpenter does not manage still take pods.
        for node in nodes.iter().filter(|n| !claimed_nodes.contains(&n.name_any())) {
            let name = node.name_any();
            let unschedulable = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
            existing.push(convert::existing_node(
                node,
                used.get(&name),
                true,
                unschedulable || leaving.contains(&name),
            ));
        }
        let scheduled = pods
            .iter()
            .filter(|p| !convert::is_terminal(p))
            .filter_map(|p| {
                let node_name = p.spec.as_ref()?.node_name.clone()?;
                let sp = SchedPod::from_pod(p);
                Some(ScheduledPodInfo {
                    namespace: sp.namespace,
                    labels: sp.labels,
                    node_name,
                    anti_affinity: sp.pod_anti_affinity,
                })
            })
            .collect();
        Ok(Snapshot { pools, existing, scheduled, daemonsets })
    }
}

/// Creates the NodeClaim for a plan, as Karpenter writes it: labels from the pool's template and
/// the plan's single-valued requirements, the pool's taints, the requirements narrowed to the
/// chosen instance types, and the requests it was sized for.
pub(crate) async fn create_node_claim(
    ctx: &Context,
    pool: &NodePool,
    plan: &NodeClaimPlan,
) -> anyhow::Result<NodeClaim> {
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
    annotations.insert(l::NODEPOOL_HASH.to_owned(), super::nodepool::hash(pool));
    annotations.insert(l::NODEPOOL_HASH_VERSION.to_owned(), super::nodepool::HASH_VERSION.to_owned());
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
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Provisioning".to_owned(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &pod.object_ref(&())).await {
        tracing::debug!(error = %err, "publishing pod event");
    }
}
