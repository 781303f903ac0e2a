//! What the simulation takes and gives: NodePools, existing nodes, bound pods, options, and the
//! NodeClaims to create.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::scheduling::instance_type::InstanceType;
use crate::scheduling::pod::{AffinityTerm, SchedPod, Taint};
use crate::scheduling::requirements::{Requirements, labels};
use crate::scheduling::resources::Resources;

/// A NodePool as the simulation needs it.
#[derive(Clone, Debug, Default)]
pub struct SchedNodePool {
    pub name: String,
    pub weight: i32,
    /// Template requirements and template labels (as `In [value]`).
    pub requirements: Requirements,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Not considered for toleration: they go away once the node is initialised.
    pub startup_taints: Vec<Taint>,
    /// Limits minus current usage; None = unlimited. A `nodes` entry limits the node count.
    pub remaining: Option<Resources>,
    pub instance_types: Vec<Arc<InstanceType>>,
}

/// A Node, or an in-flight NodeClaim not registered yet.
#[derive(Clone, Debug, Default)]
pub struct ExistingNode {
    pub name: String,
    /// Labels of the Node (or requirements and labels of the NodeClaim).
    pub requirements: Requirements,
    pub taints: Vec<Taint>,
    /// Allocatable minus what pods (daemonsets included) already request there.
    pub available: Resources,
    pub initialized: bool,
    pub marked_for_deletion: bool,
}

/// A pod already bound to a node: counted for topology and pod (anti-)affinity.
#[derive(Clone, Debug, Default)]
pub struct ScheduledPodInfo {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub node_name: String,
    /// Its required anti-affinity terms, which repel the pods they select.
    pub anti_affinity: Vec<AffinityTerm>,
}

impl ExistingNode {
    /// From a Node: its labels, its taints, allocatable minus `requested` (what the pods bound there,
    /// daemonsets included, request). Initialised per the `karpenter.sh/initialized` label (nodes
    /// Karpenter does not manage have none and count as initialised); a Node being deleted is
    /// marked for deletion.
    pub fn from_node(node: &k8s_openapi::api::core::v1::Node, requested: &Resources) -> ExistingNode {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| Resources::from_k8s(a).ok())
            .unwrap_or_default();
        let managed = labels.contains_key(labels::NODE_POOL);
        ExistingNode {
            name: node.metadata.name.clone().unwrap_or_default(),
            initialized: !managed || labels.get("karpenter.sh/initialized").is_some_and(|v| v == "true"),
            requirements: Requirements::from_labels(&labels),
            taints: node.spec.iter().flat_map(|s| s.taints.iter().flatten()).map(Taint::from_k8s).collect(),
            available: allocatable.minus(requested),
            marked_for_deletion: node.metadata.deletion_timestamp.is_some(),
        }
    }
}

impl ScheduledPodInfo {
    /// From a bound, non-terminal pod; None for pods without a node or already finished.
    pub fn from_pod(pod: &k8s_openapi::api::core::v1::Pod) -> Option<ScheduledPodInfo> {
        let node_name = pod.spec.as_ref()?.node_name.clone()?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) || pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let sched = SchedPod::from_pod(pod);
        Some(ScheduledPodInfo {
            namespace: sched.namespace,
            labels: sched.labels,
            node_name,
            anti_affinity: sched.pod_anti_affinity,
        })
    }
}

#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Instance types kept per NodeClaim (cheapest first).
    pub max_instance_types: usize,
    /// Treat preferences as requirements first and relax them one by one (Karpenter's default).
    pub respect_preferences: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { max_instance_types: 60, respect_preferences: true }
    }
}

/// One NodeClaim to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeClaimPlan {
    pub node_pool: String,
    /// Narrowed requirements: the pool's requirements and labels, the pods' requirements, topology
    /// choices, and `node.kubernetes.io/instance-type In [instance_types]`.
    pub requirements: Requirements,
    /// Types that fit every pod plus daemonsets, cheapest compatible available offering first.
    pub instance_types: Vec<Arc<InstanceType>>,
    /// Pod keys ("namespace/name").
    pub pods: Vec<String>,
    /// Pod requests plus daemonset overhead.
    pub requests: Resources,
    /// Placeholder hostname, unique per plan within a solve.
    pub hostname: String,
    /// Labels to put on the NodeClaim: the pool's template labels, `karpenter.sh/nodepool`, and a
    /// value for every custom (not well-known) key the requirements constrain.
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    pub new_node_claims: Vec<NodeClaimPlan>,
    /// Node name → pod keys placed there.
    pub existing: BTreeMap<String, Vec<String>>,
    /// Pod key → why it could not be placed.
    pub pod_errors: BTreeMap<String, String>,
}
