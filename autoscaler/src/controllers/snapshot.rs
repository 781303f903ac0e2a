//! The scheduling simulation's view of the cluster, read from the caches and the cloud provider:
//! NodePools with their instance types, the nodes and in-flight NodeClaims pods can go to, the
//! bound pods and the daemonsets. The provisioner solves over it once; disruption asks it again
//! and again "could these nodes go?" without reading anything twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;

use super::context::Context;
use super::nodepool;
use crate::apis::nodeclaim::conditions as c;
use crate::apis::{NodeClaim, NodePool};
use crate::convert;
use crate::scheduling::{
    ExistingNode, InstanceType, Requirement, Requirements, Resources, SchedNodePool, SchedPod, ScheduledPodInfo,
    Scheduler, SchedulerOptions,
};

/// Somewhere pods can go: a Node, or a NodeClaim whose Node has not reported allocatable yet.
#[derive(Clone, Debug)]
pub struct SnapshotNode {
    pub node: ExistingNode,
    /// The NodeClaim behind it, when Karpenter manages it (a Node is not named after its claim).
    pub claim: Option<String>,
}

impl SnapshotNode {
    /// Whether `names` (NodeClaim or Node names) name this node.
    fn named_in(&self, names: &BTreeSet<String>) -> bool {
        names.contains(&self.node.name) || self.claim.as_ref().is_some_and(|c| names.contains(c))
    }
}

/// Everything the simulation needs.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub pools: Vec<SchedNodePool>,
    pub nodes: Vec<SnapshotNode>,
    pub scheduled: Vec<ScheduledPodInfo>,
    pub daemonsets: Vec<SchedPod>,
    /// NodePools left out because their instance types could not be read (the cloud failed, or
    /// the NodeClass cannot resolve yet): nothing in the cluster changes when that clears.
    pub skipped_pools: Vec<String>,
}

impl Snapshot {
    /// The scheduling simulation over this snapshot, as it is.
    pub fn scheduler(self) -> Scheduler {
        let existing = self.nodes.into_iter().map(|n| n.node).collect();
        Scheduler::new(self.pools, existing, self.scheduled, self.daemonsets, SchedulerOptions::default())
    }

    /// The simulation with the nodes `leaving` names (NodeClaim or Node names) marked for
    /// deletion as well: what disruption asks before taking nodes away.
    pub fn scheduler_without(&self, leaving: &BTreeSet<String>) -> Scheduler {
        let existing = self
            .nodes
            .iter()
            .map(|n| {
                let mut node = n.node.clone();
                node.marked_for_deletion |= n.named_in(leaving);
                node
            })
            .collect();
        Scheduler::new(
            self.pools.clone(),
            existing,
            self.scheduled.clone(),
            self.daemonsets.clone(),
            SchedulerOptions::default(),
        )
    }

    /// Reads the snapshot; nodes and claims `leaving` names are marked for deletion.
    pub async fn take(ctx: &Context, leaving: &BTreeSet<String>) -> Snapshot {
        let pods = ctx.state.pods.state();
        let daemonsets = daemonset_pods(ctx);
        let (pools, all_types, skipped_pools) = pools(ctx).await;
        let nodes = nodes(ctx, &pods, &daemonsets, &all_types, leaving);
        Snapshot { pools, nodes, scheduled: bound_pods(&pods), daemonsets, skipped_pools }
    }
}

/// The pods bound to a node (terminal ones aside), as topology and affinity count them.
pub fn bound_pods(pods: &[Arc<Pod>]) -> Vec<ScheduledPodInfo> {
    pods.iter()
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
        .collect()
}

/// The pods the DaemonSets would run, from their templates.
fn daemonset_pods(ctx: &Context) -> Vec<SchedPod> {
    ctx.state
        .daemon_sets
        .state()
        .iter()
        .filter_map(|ds| {
            let template = ds.spec.as_ref()?.template.clone();
            let pod = Pod { metadata: template.metadata.unwrap_or_default(), spec: template.spec, status: None };
            Some(SchedPod::from_pod(&pod))
        })
        .collect()
}

/// Pools in name order, each with its node class's instance types; every type by name; and the
/// pools skipped because their instance types could not be read.
async fn pools(ctx: &Context) -> (Vec<SchedNodePool>, BTreeMap<String, Arc<InstanceType>>, Vec<String>) {
    let mut pool_objs: Vec<Arc<NodePool>> = ctx.state.node_pools.state();
    pool_objs.sort_by_key(|p| p.name_any());
    let mut pools = Vec::new();
    let mut skipped = Vec::new();
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
                skipped.push(pool.name_any());
                continue;
            }
        };
        for t in &types {
            all_types.entry(t.name.clone()).or_insert_with(|| t.clone());
        }
        let usage = nodepool::usage(ctx, &pool.name_any());
        match convert::node_pool(&pool, types, &usage) {
            Ok(p) => pools.push(p),
            Err(err) => tracing::error!(error = %err, "invalid nodepool"),
        }
    }
    (pools, all_types, skipped)
}

/// Karpenter's NodeClaims (registered or in flight), then the Nodes it does not manage.
fn nodes(
    ctx: &Context,
    pods: &[Arc<Pod>],
    daemonsets: &[SchedPod],
    all_types: &BTreeMap<String, Arc<InstanceType>>,
    leaving: &BTreeSet<String>,
) -> Vec<SnapshotNode> {
    let used = convert::requests_by_node(pods);
    let mut out = Vec::new();
    let mut claimed_nodes = BTreeSet::new();
    for claim in ctx.state.node_claims_now(ctx.clock.now()) {
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
                    c::INITIALIZED,
                );
                let marked = marked || leaving.contains(&node_name) || node.metadata.deletion_timestamp.is_some();
                let mut existing = convert::existing_node(&node, used.get(&node_name), initialized, marked);
                if !initialized {
                    // Karpenter counts on a managed node's startup taints going, as on its ephemeral ones.
                    let startup = &claim.spec.startup_taints;
                    existing
                        .taints
                        .retain(|t| !startup.iter().any(|s| s.key == t.key && s.effect == t.effect.as_str()));
                }
                out.push(SnapshotNode { node: existing, claim: Some(name) });
            }
            None => {
                let overhead = daemon_overhead(daemonsets, &claim);
                if let Some(n) = convert::in_flight_node_claim(&claim, all_types, &overhead, marked) {
                    out.push(SnapshotNode { node: n, claim: Some(name) });
                }
            }
        }
    }
    // Nodes Karpenter does not manage still take pods.
    for node in ctx.state.nodes.state().iter().filter(|n| !claimed_nodes.contains(&n.name_any())) {
        let name = node.name_any();
        let unschedulable = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        let existing = convert::existing_node(node, used.get(&name), true, unschedulable || leaving.contains(&name));
        out.push(SnapshotNode { node: existing, claim: None });
    }
    out
}

fn reports_allocatable(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_some_and(|a| a.contains_key("cpu"))
}

/// Requests of the daemonsets that will run on a claim's node (they tolerate its taints and
/// select its labels).
pub fn daemon_overhead(daemonsets: &[SchedPod], claim: &NodeClaim) -> Resources {
    let mut total = Resources::new();
    let taints = convert::taints(&claim.spec.taints);
    let mut reqs = convert::requirements(&claim.spec.requirements).unwrap_or_default();
    for (k, v) in claim.labels() {
        reqs.add(k, Requirement::in_values([v.clone()]));
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
