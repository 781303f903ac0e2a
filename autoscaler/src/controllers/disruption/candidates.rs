//! Disruption candidates: initialized NodeClaims whose Node may be disrupted, with what Karpenter
//! needs to choose among them (pods to move, price, drift, expiry, consolidatable since when).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

use crate::apis::common::{is_true, parse_duration};
use crate::apis::labels as l;
use crate::apis::nodeclaim::conditions as c;
use crate::apis::{NodeClaim, NodePool};
use crate::controllers::nodepool;
use crate::controllers::state::Nominations;
use crate::convert;
use crate::scheduling::{LabelSelector, Requirements};

#[derive(Clone, Debug)]
pub struct Candidate {
    pub claim: Arc<NodeClaim>,
    pub node: Arc<Node>,
    pub pool: Arc<NodePool>,
    /// Pods that must find a new home (controller-owned, not daemons, not terminal).
    pub pods: Vec<Arc<Pod>>,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
    pub price: f64,
    pub drifted: Option<String>,
    pub expired: bool,
    /// consolidateAfter has passed since the last pod event on the node.
    pub consolidatable: bool,
}

impl Candidate {
    /// A candidate as the controller gathers it: its offering from the Node's labels, the pods to
    /// move out of `pods_on_node`, drift and expiry read from the objects at `now`.
    pub fn new(
        claim: Arc<NodeClaim>,
        node: Arc<Node>,
        pool: Arc<NodePool>,
        pods_on_node: &[Arc<Pod>],
        price: f64,
        consolidatable: bool,
        now: k8s_openapi::jiff::Timestamp,
    ) -> Candidate {
        let (instance_type, zone, capacity_type) = offering_labels(&node);
        Candidate {
            drifted: drift(&claim, &node, &pool),
            expired: expired(&claim, now),
            pods: reschedulable(pods_on_node),
            claim,
            node,
            pool,
            instance_type,
            zone,
            capacity_type,
            price,
            consolidatable,
        }
    }

    pub fn name(&self) -> String {
        self.claim.name_any()
    }

    pub fn node_name(&self) -> String {
        self.node.name_any()
    }

    pub fn pool_name(&self) -> String {
        self.pool.name_any()
    }

    /// Karpenter's disruption cost, simplified: fewer pods to move first, then pricier nodes.
    pub fn cost_key(&self) -> (usize, i64) {
        (self.pods.len(), -(self.price * 1e6) as i64)
    }
}

/// The node's instance type, zone and capacity type (its well-known labels; "" when missing).
pub fn offering_labels(node: &Node) -> (String, String, String) {
    let labels = node.labels();
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    (get(l::INSTANCE_TYPE), get(l::ZONE), get(l::CAPACITY_TYPE))
}

/// Whether pending pods were recently meant for this node: nominated within `window`, or
/// nominated while it was coming up and initialized less than `window` ago (the scheduler may
/// not have bound them yet).
pub fn nominated(
    claim: &NodeClaim,
    node: &Node,
    nominations: &Nominations,
    window: Duration,
    now: Instant,
    wall: k8s_openapi::jiff::Timestamp,
) -> bool {
    let last = [claim.name_any(), node.name_any()].iter().filter_map(|n| nominations.last(n)).max();
    let Some(last) = last else { return false };
    if now.saturating_duration_since(last) < window {
        return true;
    }
    let conditions = claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let initialized_at = conditions
        .iter()
        .find(|cond| cond.type_ == c::INITIALIZED && cond.status == "True")
        .map(|cond| cond.last_transition_time.0);
    initialized_at.is_some_and(|at| wall.duration_since(at).as_secs_f64() < window.as_secs_f64())
}

/// Why a node cannot be a candidate at all (or None when it can).
pub fn blocked(claim: &NodeClaim, node: &Node, pods: &[Arc<Pod>], pdbs: &[PodDisruptionBudget]) -> Option<String> {
    let conditions = claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    if claim.metadata.deletion_timestamp.is_some() || node.metadata.deletion_timestamp.is_some() {
        return Some("already deleting".to_owned());
    }
    if !is_true(conditions, c::INITIALIZED) {
        return Some("not initialized".to_owned());
    }
    let annotated =
        |a: &std::collections::BTreeMap<String, String>| a.get(l::DO_NOT_DISRUPT).is_some_and(|v| v == "true");
    if annotated(claim.annotations()) || annotated(node.annotations()) {
        return Some(format!("node has {}", l::DO_NOT_DISRUPT));
    }
    for pod in pods.iter().filter(|p| !convert::is_terminal(p)) {
        if annotated(pod.annotations()) {
            return Some(format!(
                "pod {}/{} has {}",
                pod.namespace().unwrap_or_default(),
                pod.name_any(),
                l::DO_NOT_DISRUPT
            ));
        }
        if let Some(pdb) = blocking_pdb(pod, pdbs) {
            return Some(format!("pdb {pdb} prevents pod evictions"));
        }
    }
    None
}

/// A PodDisruptionBudget selecting the pod that allows no disruption now.
fn blocking_pdb(pod: &Pod, pdbs: &[PodDisruptionBudget]) -> Option<String> {
    let ns = pod.namespace().unwrap_or_default();
    let labels = pod.labels();
    pdbs.iter()
        .filter(|p| p.namespace().unwrap_or_default() == ns)
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| LabelSelector::from_k8s(sel).matches(labels))
        })
        .find(|p| p.status.as_ref().is_some_and(|s| s.disruptions_allowed == 0))
        .map(|p| format!("{ns}/{}", p.name_any()))
}

/// Pods that need a new node if this one goes.
pub fn reschedulable(pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| !convert::is_terminal(p))
        .filter(|p| !p.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet"))
        .filter(|p| !p.annotations().contains_key("kubernetes.io/config.mirror"))
        .cloned()
        .collect()
}

/// Why the claim no longer matches its NodePool: the template hash changed, or the node's labels
/// fall outside the pool's requirements now.
pub fn drift(claim: &NodeClaim, node: &Node, pool: &NodePool) -> Option<String> {
    let stamped = claim.annotations().get(l::NODEPOOL_HASH);
    let version = claim.annotations().get(l::NODEPOOL_HASH_VERSION);
    if version.map(String::as_str) == Some(nodepool::HASH_VERSION)
        && let Some(h) = stamped
        && *h != nodepool::hash(pool)
    {
        return Some("NodePoolDrifted".to_owned());
    }
    let reqs: Requirements = convert::requirements(&pool.spec.template.spec.requirements).ok()?;
    let labels = node.labels();
    for (key, req) in reqs.iter() {
        if let Some(v) = labels.get(key)
            && !req.has(v)
        {
            return Some("RequirementsDrifted".to_owned());
        }
    }
    None
}

pub fn expired(claim: &NodeClaim, now: k8s_openapi::jiff::Timestamp) -> bool {
    let Some(after) = claim.spec.expire_after.as_deref().and_then(|t| parse_duration(t).ok()).flatten() else {
        return false;
    };
    let Some(created) = claim.metadata.creation_timestamp.as_ref() else { return false };
    now.as_second() - created.0.as_second() >= i64::try_from(after.as_secs()).unwrap_or(i64::MAX)
}

/// When the set of pods on each node last changed, as this process saw it (Karpenter's
/// `lastPodEventTime`). A restart starts the clocks again, which only delays consolidation.
#[derive(Default)]
pub struct PodEvents {
    seen: BTreeMap<String, (Vec<String>, Instant)>,
}

impl PodEvents {
    /// Records the node's current pods at `now`; returns how long they have been unchanged.
    pub fn quiet_for(&mut self, node: &str, pods: &[Arc<Pod>], now: Instant) -> Duration {
        let mut keys: Vec<String> =
            pods.iter().map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())).collect();
        keys.sort();
        let entry = self.seen.entry(node.to_owned()).or_insert_with(|| (keys.clone(), now));
        if entry.0 != keys {
            *entry = (keys, now);
        }
        now.saturating_duration_since(entry.1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn claim(v: serde_json::Value) -> NodeClaim {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn expiry_counts_from_creation() {
        let c = claim(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeClassRef": {"name": "d"}, "requirements": [], "expireAfter": "1h"}}));
        let at = |s: &str| s.parse::<k8s_openapi::jiff::Timestamp>().unwrap();
        assert!(!expired(&c, at("2026-01-01T00:59:00Z")));
        assert!(expired(&c, at("2026-01-01T01:00:00Z")));
        let never = claim(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeClassRef": {"name": "d"}, "requirements": [], "expireAfter": "Never"}}));
        assert!(!expired(&never, at("2030-01-01T00:00:00Z")));
    }

    #[test]
    fn requirement_changes_drift_nodes_outside_them() {
        let pool: NodePool = serde_json::from_value(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "p"},
            "spec": {"template": {"spec": {"nodeClassRef": {"name": "d"},
              "requirements": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["m6i"]}]}}}}))
        .unwrap();
        let c = claim(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "a"},
            "spec": {"nodeClassRef": {"name": "d"}, "requirements": []}}));
        let node = |family: &str| -> Node {
            serde_json::from_value(
                json!({"metadata": {"name": "n", "labels": {"karpenter.k8s.aws/instance-family": family}}}),
            )
            .unwrap()
        };
        assert_eq!(drift(&c, &node("m5"), &pool).as_deref(), Some("RequirementsDrifted"));
        assert_eq!(drift(&c, &node("m6i"), &pool), None);
    }

    #[test]
    fn do_not_disrupt_and_blocking_pdbs_hold_a_node() {
        let c = claim(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "a"},
            "spec": {"nodeClassRef": {"name": "d"}, "requirements": []},
            "status": {"conditions": [{"type": "Initialized", "status": "True", "reason": "x", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}));
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap();
        let pod = |ann: bool| -> Arc<Pod> {
            let mut v = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"}}, "spec": {"containers": []}});
            if ann {
                v["metadata"]["annotations"] = json!({"karpenter.sh/do-not-disrupt": "true"});
            }
            Arc::new(serde_json::from_value(v).unwrap())
        };
        assert_eq!(blocked(&c, &node, &[pod(false)], &[]), None);
        assert!(blocked(&c, &node, &[pod(true)], &[]).unwrap().contains("do-not-disrupt"));
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "pdb", "namespace": "d"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}}, "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}))
        .unwrap();
        assert!(blocked(&c, &node, &[pod(false)], &[pdb]).unwrap().contains("pdb d/pdb"));
    }
}
