//! Garbage collection: instances tagged for this cluster that no NodeClaim owns are terminated
//! (after 30 s, so a launch in flight is not mistaken for a leak), and NodeClaims whose instance
//! is gone are deleted. Karpenter runs it every 10 s for the first 20 runs, then every 2 minutes.
//!
//! Termination cannot be taken back, so the cache alone never decides it: right after an API
//! server restart the NodeClaim watch relists and the cache can lack a claim that exists, and the
//! 30 s age compares EC2's clock with ours. Instances the cache finds unowned are checked against
//! a fresh list of NodeClaims from the API server first.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;

use super::context::Context;
use super::error::Error;
use super::writes::delete_claim;
use crate::apis::NodeClaim;
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
    let now = ctx.clock.utc_now();
    let mut leaked = unowned(&instances, claims.iter().map(|c| &**c), now);
    if !leaked.is_empty() {
        let api: kube::Api<NodeClaim> = kube::Api::all(ctx.client.clone());
        let fresh = api.list(&kube::api::ListParams::default()).await?;
        let confirmed = unowned(&instances, fresh.items.iter(), now);
        leaked.retain(|id| confirmed.contains(id));
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

/// Instances of `instances` that none of `claims` owns (by providerID, or by the nodeclaim tag of a
/// claim that has not recorded its instance yet), not already shutting down, and launched at
/// least [`LEAK_AGE`] before `now`.
fn unowned<'a>(
    instances: &[crate::cloud::Instance],
    claims: impl Iterator<Item = &'a NodeClaim>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let (mut claimed, mut claim_names) = (BTreeSet::new(), BTreeSet::new());
    for c in claims {
        match c.status.as_ref().and_then(|s| s.provider_id.as_deref()) {
            Some(pid) => claimed.extend(crate::cloud::instance_id_from_provider_id(pid).map(str::to_owned)),
            // Claims that launched but have not written their providerID yet: their tag names
            // them. Only those: an instance tagged for a claim that recorded another instance is
            // a leak (a launch retried before the first one's status reached the cache).
            None => {
                claim_names.insert(c.name_any());
            }
        }
    }
    instances
        .iter()
        .filter(|inst| !claimed.contains(&inst.id) && inst.state != "shutting-down")
        .filter(|inst| inst.tags.get("karpenter.sh/nodeclaim").is_none_or(|n| !claim_names.contains(n)))
        .filter(|inst| inst.launch_time.is_none_or(|t| now - t >= LEAK_AGE))
        .map(|inst| inst.id.clone())
        .collect()
}
