//! Pure conversions between the Kubernetes objects and the scheduling simulation's model (the
//! layer between `apis` and `scheduling` that the cloud provider and the controllers both use).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::apis::common::NodeSelectorRequirementWithMinValues;
use crate::apis::labels as l;
use crate::apis::{NodeClaim, NodePool};
use crate::scheduling::{
    ExistingNode, InstanceType, Operator, Requirement, Requirements, Resources, SchedNodePool, SchedPod, Taint,
    TaintEffect,
};

/// Taints a node carries only while it starts up or while Karpenter registers it (Karpenter's
/// `KnownEphemeralTaints`, matched on key and effect as `MatchTaint` does, and the Node Readiness
/// Controller's `readiness.k8s.io/` family): the simulation ignores them on nodes that are not
/// initialized yet, and a NodeClaim is not initialized while its Node still has one.
const EPHEMERAL_TAINTS: [(&str, &str); 5] = [
    ("node.kubernetes.io/not-ready", "NoSchedule"),
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoSchedule"),
    ("node.cloudprovider.kubernetes.io/uninitialized", "NoSchedule"),
    (l::UNREGISTERED_TAINT, "NoExecute"),
];
const EPHEMERAL_TAINT_PREFIXES: [&str; 1] = ["readiness.k8s.io/"];

/// Whether a taint `key:effect` is one of Karpenter's known ephemeral taints.
pub fn is_known_ephemeral_taint(key: &str, effect: &str) -> bool {
    EPHEMERAL_TAINTS.iter().any(|(k, e)| *k == key && *e == effect)
        || EPHEMERAL_TAINT_PREFIXES.iter().any(|p| key.starts_with(p))
}

fn ephemeral(t: &Taint) -> bool {
    is_known_ephemeral_taint(&t.key, t.effect.as_str())
}

/// Requirements from the CRD's list. Invalid operators are reported, not dropped silently.
pub fn requirements(list: &[NodeSelectorRequirementWithMinValues]) -> Result<Requirements, String> {
    let mut out = Requirements::new();
    for r in list {
        let op = Operator::parse(&r.operator)?;
        let min = r.min_values.and_then(|m| usize::try_from(m).ok());
        out.add(&r.key, Requirement::new(op, r.values.iter().cloned()).with_min_values(min));
    }
    Ok(out)
}

/// The CRD's list from requirements, keys sorted, so NodeClaims read the same for the same plan.
pub fn requirements_to_crd(reqs: &Requirements) -> Vec<NodeSelectorRequirementWithMinValues> {
    let mut out = Vec::new();
    for (key, req) in reqs.iter() {
        for (op, values) in req.to_terms() {
            out.push(NodeSelectorRequirementWithMinValues {
                key: key.clone(),
                operator: op.as_str().to_owned(),
                values,
                min_values: req.min_values.and_then(|m| i64::try_from(m).ok()),
            });
        }
    }
    out
}

pub fn taints(list: &[k8s_openapi::api::core::v1::Taint]) -> Vec<Taint> {
    list.iter().map(Taint::from_k8s).collect()
}

pub fn taint_to_k8s(t: &Taint) -> k8s_openapi::api::core::v1::Taint {
    k8s_openapi::api::core::v1::Taint {
        key: t.key.clone(),
        value: (!t.value.is_empty()).then(|| t.value.clone()),
        effect: t.effect.as_str().to_owned(),
        time_added: None,
    }
}

/// A NodePool as the simulation sees it: template requirements plus its labels, taints, limits
/// left, and the instance types its EC2NodeClass offers.
pub fn node_pool(
    pool: &NodePool,
    instance_types: Vec<Arc<InstanceType>>,
    usage: &Resources,
) -> Result<SchedNodePool, String> {
    let name = pool.metadata.name.clone().unwrap_or_default();
    let spec = &pool.spec.template.spec;
    let labels = pool.spec.template.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
    let mut reqs = requirements(&spec.requirements).map_err(|e| format!("nodepool {name:?}: {e}"))?;
    for (k, v) in &labels {
        reqs.add(k, Requirement::in_values([v.clone()]));
    }
    reqs.add(l::NODEPOOL, Requirement::in_values([name.clone()]));
    let remaining = match &pool.spec.limits {
        Some(limits) => {
            // Only what the limits name is limited; usage of anything else does not count.
            let limits = Resources::from_k8s(limits).map_err(|e| format!("nodepool {name:?} limits: {e}"))?;
            let mut left = Resources::new();
            for (resource, limit) in limits.iter() {
                left.set(resource, limit - usage.get(resource));
            }
            Some(left)
        }
        None => None,
    };
    Ok(SchedNodePool {
        name,
        weight: pool.spec.weight(),
        requirements: reqs,
        labels,
        taints: taints(&spec.taints),
        startup_taints: taints(&spec.startup_taints),
        remaining,
        instance_types,
    })
}

/// Sums requests of the pods bound to each node (terminal pods excluded).
pub fn requests_by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Resources> {
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for pod in pods {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else { continue };
        if is_terminal(pod) {
            continue;
        }
        out.entry(node).or_default().add(&SchedPod::from_pod(pod).requests);
    }
    out
}

pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Karpenter's `IsProvisionable`: not bound, not terminal or terminating, marked Unschedulable by
/// the kube-scheduler, and not a DaemonSet's pod (those follow nodes, they do not ask for them).
pub fn is_provisionable(pod: &Pod) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let unschedulable = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    });
    let daemon = pod.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet");
    !bound && unschedulable && !daemon && !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// A registered Node: its labels are all there is; ephemeral taints are ignored until initialized.
pub fn existing_node(node: &Node, used: Option<&Resources>, initialized: bool, marked: bool) -> ExistingNode {
    let name = node.metadata.name.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let mut available = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| Resources::from_k8s(a).ok())
        .unwrap_or_default();
    if let Some(used) = used {
        available.sub(used);
    }
    let mut node_taints = taints(node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or(&[]));
    if !initialized {
        node_taints.retain(|t| !ephemeral(t));
    }
    ExistingNode {
        name,
        requirements: Requirements::from_labels(&labels),
        taints: node_taints,
        available,
        initialized,
        marked_for_deletion: marked,
    }
}

/// An in-flight NodeClaim (no Node yet): its requirements and labels, and what it will offer.
/// Before launch the type is not known, so it offers the least any of its candidate types does;
/// every candidate was chosen because it fits the pods the claim was made for.
pub fn in_flight_node_claim(
    claim: &NodeClaim,
    types: &BTreeMap<String, Arc<InstanceType>>,
    daemon_overhead: &Resources,
    marked: bool,
) -> Option<ExistingNode> {
    let name = claim.metadata.name.clone()?;
    let mut reqs = requirements(&claim.spec.requirements).ok()?;
    for (k, v) in claim.metadata.labels.iter().flatten() {
        reqs.add(k, Requirement::in_values([v.clone()]));
    }
    let mut available = match claim.status.as_ref().and_then(|s| s.allocatable.as_ref()) {
        Some(alloc) => Resources::from_k8s(alloc).ok()?,
        None => {
            let candidates = reqs.get(crate::scheduling::labels::INSTANCE_TYPE).clone();
            let mut least: Option<Resources> = None;
            for (name, it) in types {
                if !candidates.has(name) {
                    continue;
                }
                let alloc = it.allocatable();
                least = Some(match least {
                    None => alloc,
                    Some(prev) => prev.min(&alloc),
                });
            }
            least?
        }
    };
    available.sub(daemon_overhead);
    let mut claim_taints = taints(&claim.spec.taints);
    claim_taints.retain(|t| !ephemeral(t));
    Some(ExistingNode {
        name,
        requirements: reqs,
        taints: claim_taints,
        available,
        initialized: false,
        marked_for_deletion: marked,
    })
}

/// Resources as a Kubernetes list: cpu in millicores, memory and storage in bytes, counts plain.
pub fn resources_to_k8s(r: &Resources) -> BTreeMap<String, Quantity> {
    r.iter()
        .map(|(name, milli)| {
            // Every resource is held in milli-units: whole units print plain, the rest with `m`.
            let q = if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{milli}m") };
            (name.to_owned(), Quantity(q))
        })
        .collect()
}

/// "m5.large, m5a.large, c5.xlarge and 57 other(s)", as Karpenter logs instance-type lists.
pub fn summarize_types<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.len() <= 5 {
        return names.join(", ");
    }
    format!("{} and {} other(s)", names[..5].join(", "), names.len() - 5)
}

/// Whether a taint with this effect keeps pods off.
pub fn blocks_scheduling(t: &Taint) -> bool {
    matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_node_not_initialized_offers_itself_without_its_known_ephemeral_taints() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
            {"key": "readiness.k8s.io/network", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}))
        .unwrap();
        let keys = |n: &ExistingNode| n.taints.iter().map(ToString::to_string).collect::<Vec<_>>();
        // Karpenter matches key and effect: unreachable:NoExecute is not among its ephemeral taints.
        assert_eq!(
            keys(&existing_node(&node, None, false, false)),
            ["node.kubernetes.io/unreachable:NoExecute", "dedicated=gpu:NoSchedule"]
        );
        assert_eq!(existing_node(&node, None, true, false).taints.len(), 4, "initialized: every taint counts");
        assert!(is_known_ephemeral_taint("karpenter.sh/unregistered", "NoExecute"));
        assert!(!is_known_ephemeral_taint("karpenter.sh/unregistered", "NoSchedule"));
    }

    #[test]
    fn provisionable_pods_are_unbound_unschedulable_and_not_daemons() {
        let pending = json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"containers": []},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
        assert!(is_provisionable(&pod(pending.clone())));
        let mut bound = pending.clone();
        bound["spec"]["nodeName"] = json!("n1");
        assert!(!is_provisionable(&pod(bound)));
        let mut daemon = pending.clone();
        daemon["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u"}]);
        assert!(!is_provisionable(&pod(daemon)));
        let not_yet_tried =
            json!({"metadata": {"name": "a"}, "spec": {"containers": []}, "status": {"phase": "Pending"}});
        assert!(!is_provisionable(&pod(not_yet_tried)));
        let mut deleting = pending;
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!is_provisionable(&pod(deleting)));
    }

    #[test]
    fn requirements_round_trip_through_the_crd_list() {
        let crd = vec![
            NodeSelectorRequirementWithMinValues {
                key: "karpenter.sh/capacity-type".into(),
                operator: "In".into(),
                values: vec!["spot".into(), "on-demand".into()],
                min_values: None,
            },
            NodeSelectorRequirementWithMinValues {
                key: "karpenter.k8s.aws/instance-family".into(),
                operator: "In".into(),
                values: vec!["m5".into(), "c5".into(), "r5".into()],
                min_values: Some(2),
            },
            NodeSelectorRequirementWithMinValues {
                key: "karpenter.k8s.aws/instance-generation".into(),
                operator: "Gt".into(),
                values: vec!["4".into()],
                min_values: None,
            },
        ];
        let reqs = requirements(&crd).unwrap();
        let back = requirements(&requirements_to_crd(&reqs)).unwrap();
        assert_eq!(reqs, back);
        assert!(
            requirements(&[NodeSelectorRequirementWithMinValues {
                key: "k".into(),
                operator: "Maybe".into(),
                ..Default::default()
            }])
            .is_err()
        );
    }

    #[test]
    fn quantities_print_like_kubernetes() {
        let r = Resources::parse([("cpu", "1930m"), ("memory", "512Mi"), ("pods", "29")]).unwrap();
        let k = resources_to_k8s(&r);
        assert_eq!(k["cpu"].0, "1930m");
        assert_eq!(k["memory"].0, "536870912");
        assert_eq!(k["pods"].0, "29");
    }

    #[test]
    fn type_lists_are_summarised() {
        assert_eq!(summarize_types(["a", "b"]), "a, b");
        assert_eq!(summarize_types(["a", "b", "c", "d", "e", "f", "g"]), "a, b, c, d, e and 2 other(s)");
    }
}
