//! Garbage collection: instances tagged for this cluster that no NodeClaim owns are terminated
//! (after 30 s, so a launch in flight is not mistaken for a leak), and NodeClaims whose instance
//! is gone are deleted. Karpenter runs it every 10 s for the first 20 runs, then every 2 minutes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;

use super::context::Context;
use super::error::Error;
use super::writes::delete_claim;
use crate::apis::common::is_true;
use crate::apis::nodeclaim::conditions as c;

const LEAK_AGE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

pub async fn run(ctx: Arc<Context>) {
    let mut runs = 0u32;
    loop {
        if let Err(err) = collect(&ctx).await {
            tracing::warn!(error = %err, "garbage collection");
        }
        runs += 1;
        let every = if runs < 20 { Duration::from_secs(10) } else { Duration::from_secs(120) };
        tokio::time::sleep(every).await;
    }
}

pub async fn collect(ctx: &Context) -> Result<(), Error> {
    let instances = ctx.cloud.list().await?;
    let claims = ctx.state.node_claims.state();
    let claimed: BTreeSet<String> = claims
        .iter()
        .filter_map(|c| c.status.as_ref().and_then(|s| s.provider_id.as_deref()))
        .filter_map(crate::cloud::instance_id_from_provider_id)
        .map(str::to_owned)
        .collect();
    // Also claims that launched but have not written their providerID yet: their tag names them.
    // Only those: an instance tagged for a claim that recorded another instance is a leak (a
    // launch retried before the first one's status reached the cache).
    let claim_names: BTreeSet<String> = claims
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.provider_id.as_ref()).is_none())
        .map(|c| c.name_any())
        .collect();
    let now = ctx.clock.utc_now();
    let mut leaked = Vec::new();
    for inst in &instances {
        if claimed.contains(&inst.id) || inst.state == "shutting-down" {
            continue;
        }
        if inst.tags.get("karpenter.sh/nodeclaim").is_some_and(|n| claim_names.contains(n)) {
            continue;
        }
        if inst.launch_time.is_some_and(|t| now - t < LEAK_AGE) {
            continue;
        }
        leaked.push(inst.id.clone());
    }
    if !leaked.is_empty() {
        tracing::info!(instances = ?leaked, "garbage collecting leaked instances");
        ctx.cloud.terminate(&leaked).await?;
    }
    // Registered claims whose instance disappeared (terminated outside Karpenter).
    let live: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    for claim in claims {
        let conditions = claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
        let Some(id) = claim
            .status
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(crate::cloud::instance_id_from_provider_id)
        else {
            continue;
        };
        if claim.metadata.deletion_timestamp.is_none() && is_true(conditions, c::LAUNCHED) && !live.contains(id) {
            // Double-check one by one: the list may be filtered by tags someone removed.
            if ctx.cloud.get_instance(id).await.is_err_and(|e| e.is_not_found()) {
                tracing::info!(NodeClaim = %claim.name_any(), instance = %id, "garbage collecting nodeclaim whose instance is gone");
                delete_claim(ctx, &claim, "garbage_collected").await?;
            }
        }
    }
    Ok(())
}
