//! NodePool status: resources of its nodes (counted against limits), readiness, and the template
//! hash NodeClaims are stamped with (drift detection compares against it).

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::context::Context;
use crate::apis::common::{is_true, set_condition};
use crate::apis::labels as l;
use crate::apis::{NodePool, NodePoolStatus};
use crate::convert;
use crate::metrics::ResourceLabels;
use crate::scheduling::Resources;

/// Bumped when what the hash covers changes, so old claims are not all seen as drifted.
pub const HASH_VERSION: &str = "v3";

/// Hash of the fields that make a node different when they change (labels, annotations, taints,
/// startup taints, expireAfter, terminationGracePeriod, nodeClassRef), not requirements: those
/// drift by comparing values, as Karpenter does.
pub fn hash(pool: &NodePool) -> String {
    let t = &pool.spec.template;
    let v = json!({
        "metadata": t.metadata,
        "taints": t.spec.taints,
        "startupTaints": t.spec.startup_taints,
        "expireAfter": t.spec.expire_after,
        "terminationGracePeriod": t.spec.termination_grace_period,
        "nodeClassRef": t.spec.node_class_ref.name,
    });
    let digest = Sha256::digest(v.to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Resources of the pool's nodes: launched claims' capacity, plus `nodes` (claims just created
/// count too, so two passes in a row cannot both spend the same headroom).
pub fn usage(ctx: &Context, pool: &str) -> Resources {
    let mut total = Resources::new();
    let mut nodes = 0i64;
    for claim in ctx.state.node_claims_now(ctx.clock.now()) {
        if claim.labels().get(l::NODEPOOL).map(String::as_str) != Some(pool) {
            continue;
        }
        nodes += 1;
        let capacity = claim
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .or_else(|| claim.spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
        if let Some(cap) = capacity.and_then(|c| Resources::from_k8s(c).ok()) {
            total.add(&cap);
        }
    }
    total.set("nodes", nodes * 1000);
    total
}

pub async fn run(ctx: Arc<Context>) {
    let mut changed = ctx.state.capacity_changed.clone();
    loop {
        for pool in ctx.state.node_pools.state() {
            if let Err(err) = update(&ctx, &pool).await {
                tracing::debug!(NodePool = %pool.name_any(), error = %err, "updating nodepool status");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), changed.changed()).await;
        // Coalesce bursts of changes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One pass over one NodePool: metrics, and its status when it changed.
pub async fn update(ctx: &Context, pool: &NodePool) -> Result<(), kube::Error> {
    let name = pool.name_any();
    let usage = usage(ctx, &name);
    for (resource, milli) in usage.iter() {
        ctx.metrics
            .nodepool_usage
            .get_or_create(&ResourceLabels { nodepool: name.clone(), resource_type: resource.to_owned() })
            .set(milli as f64 / 1000.0);
    }
    if let Some(limits) = pool.spec.limits.as_ref().and_then(|l| Resources::from_k8s(l).ok()) {
        for (resource, milli) in limits.iter() {
            ctx.metrics
                .nodepool_limit
                .get_or_create(&ResourceLabels { nodepool: name.clone(), resource_type: resource.to_owned() })
                .set(milli as f64 / 1000.0);
        }
    }
    let mut status: NodePoolStatus = pool.status.clone().unwrap_or_default();
    let before = status.clone();
    status.resources = Some(convert::resources_to_k8s(&usage));
    let class = ctx.state.node_class(pool.spec.node_class_name());
    let class_ready = class
        .as_ref()
        .is_some_and(|c| is_true(c.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]), "Ready"));
    let now = ctx.now();
    set_condition(
        &mut status.conditions,
        "NodeClassReady",
        class_ready,
        if class_ready { "NodeClassReady" } else { "NodeClassNotReady" },
        if class.is_none() { "EC2NodeClass not found" } else { "" },
        pool.metadata.generation,
        now.clone(),
    );
    set_condition(
        &mut status.conditions,
        "ValidationSucceeded",
        true,
        "ValidationSucceeded",
        "",
        pool.metadata.generation,
        now.clone(),
    );
    set_condition(
        &mut status.conditions,
        "Ready",
        class_ready,
        if class_ready { "Ready" } else { "NodeClassNotReady" },
        "",
        pool.metadata.generation,
        now,
    );
    status.node_class_observed_generation = class.and_then(|c| c.metadata.generation);
    if status == before {
        return Ok(());
    }
    let api: Api<NodePool> = Api::all(ctx.client.clone());
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(())
}
