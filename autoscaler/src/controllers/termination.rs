//! Termination: the finalizers on NodeClaims and Nodes. A deleted NodeClaim deletes its Node; a
//! deleted Node is tainted, drained through the Eviction API (PodDisruptionBudgets respected, in
//! Karpenter's order) and its instance terminated; finalizers go only once EC2 reports it gone.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use super::lifecycle::Error;
use super::{Context, convert};
use crate::apis::NodeClaim;
use crate::apis::labels as l;
use crate::metrics::NodePoolLabels;

const RECHECK: Duration = Duration::from_secs(2);

/// Runs the Node termination controller (drain, then instance termination, then finalizer).
pub async fn run(ctx: Arc<Context>) {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    Controller::new(nodes, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(10))
        .run(
            reconcile_node,
            |_, err, _| {
                tracing::warn!(error = %err, "node termination");
                Action::requeue(Duration::from_secs(5))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// The NodeClaim finalizer: delete the Node (its own finalizer drains it), then make sure the
/// instance is terminated and gone, then let the NodeClaim go.
pub async fn finalize_node_claim(ctx: &Context, claim: &NodeClaim) -> Result<Action, Error> {
    if !claim.finalizers().iter().any(|f| f == l::TERMINATION_FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = claim.name_any();
    let provider_id = claim.status.as_ref().and_then(|s| s.provider_id.clone());
    if let Some(pid) = &provider_id
        && let Some(node) = ctx.state.node_by_provider_id(pid)
    {
        if node.metadata.deletion_timestamp.is_none() {
            let nodes: Api<Node> = Api::all(ctx.client.clone());
            match nodes.delete(&node.name_any(), &DeleteParams::default()).await {
                Ok(_) => tracing::info!(NodeClaim = %name, Node = %node.name_any(), "deleted node"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::requeue(RECHECK));
    }
    if let Some(pid) = &provider_id
        && !ctx.cloud.delete(pid).await.map_err(|e| Error::Other(e.to_string()))?
    {
        // Terminating: EC2 still lists it (shutting-down). Karpenter rechecks every 5 s.
        return Ok(Action::requeue(RECHECK));
    }
    remove_finalizer::<NodeClaim>(Api::all(ctx.client.clone()), &name, claim.finalizers()).await?;
    tracing::info!(NodeClaim = %name, "deleted nodeclaim");
    Ok(Action::await_change())
}

async fn reconcile_node(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, Error> {
    if node.metadata.deletion_timestamp.is_none() || !node.finalizers().iter().any(|f| f == l::TERMINATION_FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = node.name_any();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    taint_disrupted(&nodes, &node).await?;
    let claim =
        node.spec.as_ref().and_then(|s| s.provider_id.as_deref()).and_then(|p| ctx.state.node_claim_by_provider_id(p));
    let grace = claim
        .as_ref()
        .and_then(|c| c.spec.termination_grace_period.as_deref())
        .and_then(|t| crate::apis::common::parse_duration(t).ok().flatten());
    let deleting_for = node
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| {
            Duration::from_secs(
                k8s_openapi::jiff::Timestamp::now().as_second().saturating_sub(t.0.as_second()).max(0) as u64
            )
        })
        .unwrap_or_default();
    let force = grace.is_some_and(|g| deleting_for >= g);
    // A termination deadline already passed (a forceful interruption sets it to now): no drain.
    let remaining = if deadline_passed(claim.as_deref()) { 0 } else { drain(&ctx, &name, force).await? };
    if remaining > 0 {
        return Ok(Action::requeue(RECHECK));
    }
    if let Some(pid) = node.spec.as_ref().and_then(|s| s.provider_id.clone())
        && !ctx.cloud.delete(&pid).await.map_err(|e| Error::Other(e.to_string()))?
    {
        return Ok(Action::requeue(RECHECK));
    }
    remove_finalizer::<Node>(nodes, &name, node.finalizers()).await?;
    let pool = node.labels().get(l::NODEPOOL).cloned().unwrap_or_default();
    ctx.metrics.nodes_terminated.get_or_create(&NodePoolLabels::new(&pool)).inc();
    tracing::info!(Node = %name, "deleted node");
    Ok(Action::await_change())
}

/// Whether the claim's `karpenter.sh/nodeclaim-termination-timestamp` is in the past.
pub fn deadline_passed(claim: Option<&NodeClaim>) -> bool {
    claim
        .and_then(|c| c.annotations().get(l::TERMINATION_TIMESTAMP))
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .is_some_and(|t| t <= k8s_openapi::jiff::Timestamp::now())
}

/// Taints a node `karpenter.sh/disrupted:NoSchedule` (termination and disruption both do).
pub(crate) async fn taint_disrupted(nodes: &Api<Node>, node: &Node) -> Result<(), Error> {
    let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    if taints.iter().any(|t| t.key == l::DISRUPTED_TAINT) {
        return Ok(());
    }
    taints.push(Taint {
        key: l::DISRUPTED_TAINT.to_owned(),
        effect: "NoSchedule".to_owned(),
        value: None,
        time_added: None,
    });
    let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "spec": {"taints": taints}});
    nodes.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    tracing::info!(Node = %node.name_any(), "tainted node");
    Ok(())
}

/// Drain order (Karpenter's): non-critical non-daemon, non-critical daemon, critical non-daemon,
/// critical daemon. Only the first group with pods is evicted in a pass. Returns pods left.
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

async fn drain(ctx: &Context, node_name: &str, force: bool) -> Result<usize, Error> {
    let pods = ctx.state.pods_on(node_name);
    let groups = drain_groups(&pods);
    let remaining: usize = groups.iter().map(Vec::len).sum();
    let Some(group) = groups.iter().find(|g| !g.is_empty()) else { return Ok(0) };
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
    Ok(remaining)
}

async fn remove_finalizer<K>(api: Api<K>, name: &str, finalizers: &[String]) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let kept: Vec<&String> = finalizers.iter().filter(|f| f.as_str() != l::TERMINATION_FINALIZER).collect();
    match api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": kept}}))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
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
