//! Draining a node: evict its pods through the Eviction API in Karpenter's order, one group per
//! pass, so PodDisruptionBudgets decide the pace.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, EvictParams};

use crate::apis::labels as l;
use crate::controllers::context::Context;
use crate::convert;

/// Drain order (Karpenter's): non-critical non-daemon, non-critical daemon, critical non-daemon,
/// critical daemon. Only the first group with pods is evicted in a pass.
pub fn drain_groups(pods: &[Arc<Pod>]) -> [Vec<Arc<Pod>>; 4] {
    let mut groups: [Vec<Arc<Pod>>; 4] = Default::default();
    for pod in pods {
        if convert::is_terminal(pod) || tolerates_disruption(pod) || is_mirror(pod) {
            continue;
        }
        let critical = matches!(
            pod.spec.as_ref().and_then(|s| s.priority_class_name.as_deref()),
            Some("system-cluster-critical" | "system-node-critical")
        );
        let daemon = pod.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet");
        groups[usize::from(critical) * 2 + usize::from(daemon)].push(pod.clone());
    }
    groups
}

/// Pods that tolerate the disrupted taint would land right back; Karpenter leaves them.
fn tolerates_disruption(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_ref()).is_some_and(|ts| {
        ts.iter().any(|t| {
            (t.key.as_deref() == Some(l::DISRUPTED_TAINT)
                || (t.key.is_none() && t.operator.as_deref() == Some("Exists")))
                && t.effect.as_deref().is_none_or(|e| e == "NoSchedule")
        })
    })
}

fn is_mirror(pod: &Pod) -> bool {
    pod.annotations().contains_key("kubernetes.io/config.mirror")
}

/// One drain pass: evicts (or, with `force`, deletes) the first group that has pods. Returns how
/// many pods are left to go. Eviction failures are logged; the next pass tries again.
pub(super) async fn drain(ctx: &Context, node_name: &str, force: bool) -> usize {
    let pods = ctx.state.pods_on(node_name);
    let groups = drain_groups(&pods);
    let remaining: usize = groups.iter().map(Vec::len).sum();
    let Some(group) = groups.iter().find(|g| !g.is_empty()) else { return 0 };
    for pod in group {
        if pod.metadata.deletion_timestamp.is_some() && !force {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
        let name = pod.name_any();
        let result = if force {
            // terminationGracePeriod elapsed: pods go even if a PDB objects, as Karpenter does.
            api.delete(&name, &DeleteParams::default()).await.map(|_| ())
        } else {
            api.evict(&name, &EvictParams::default()).await.map(|_| ())
        };
        match result {
            Ok(()) => {
                tracing::info!(Pod = %format!("{}/{name}", pod.namespace().unwrap_or_default()), Node = %node_name, "evicted pod")
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            // 429: a PodDisruptionBudget does not allow it now; try again next pass.
            Err(kube::Error::Api(e)) if e.code == 429 => {
                tracing::debug!(Pod = %name, Node = %node_name, "eviction blocked by a PodDisruptionBudget")
            }
            Err(e) => tracing::warn!(Pod = %name, error = %e, "evicting pod"),
        }
    }
    remaining
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn pod(name: &str, critical: bool, daemon: bool) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "namespace": "d"}, "spec": {"containers": []}});
        if critical {
            v["spec"]["priorityClassName"] = json!("system-node-critical");
        }
        if daemon {
            v["metadata"]["ownerReferences"] =
                json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u"}]);
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn drains_in_karpenters_order() {
        let pods = vec![pod("cd", true, true), pod("c", true, false), pod("d", false, true), pod("p", false, false)];
        let groups = drain_groups(&pods);
        let names: Vec<Vec<String>> = groups.iter().map(|g| g.iter().map(|p| p.name_any()).collect()).collect();
        assert_eq!(names, [vec!["p"], vec!["d"], vec!["c"], vec!["cd"]]);
    }

    #[test]
    fn pods_tolerating_the_disrupted_taint_are_left() {
        let mut v = serde_json::to_value(&*pod("t", false, false)).unwrap();
        v["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        let tolerant: Pod = serde_json::from_value(v).unwrap();
        let groups = drain_groups(&[Arc::new(tolerant)]);
        assert!(groups.iter().all(Vec::is_empty));
    }
}
