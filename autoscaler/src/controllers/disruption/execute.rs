//! Carrying a decision out: replacements first (created, then awaited until initialized), then
//! the candidates are tainted and deleted; their finalizers drain them.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;

use super::candidates::Candidate;
use super::decide::Decision;
use crate::apis::common::is_true;
use crate::apis::nodeclaim::conditions as c;
use crate::controllers::context::Context;
use crate::controllers::error::Error;
use crate::controllers::provisioner::create_node_claim;
use crate::controllers::writes::{claim_event, delete_claim, taint_disrupted};
use crate::metrics::DisruptionLabels;

/// How long replacements may take to initialize before the decision is abandoned.
const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `execute` waits for the informer cache to show its deletions.
const CACHE_CATCH_UP: Duration = Duration::from_secs(30);

pub async fn execute(ctx: &Context, d: &Decision) -> Result<(), Error> {
    let names: Vec<String> =
        d.candidates.iter().map(|c| format!("nodeclaim/{} node/{}", c.name(), c.node_name())).collect();
    tracing::info!(
        reason = d.reason.as_str(),
        decision = if d.replacements.is_empty() { "delete" } else { "replace" },
        disrupted_node_count = d.candidates.len(),
        replacement_node_count = d.replacements.len(),
        candidates = %names.join(", "),
        savings_per_hour = %format!("{:.4}", d.savings),
        "disrupting node(s)"
    );
    // Replacements first; the candidates keep serving until they are initialized.
    let mut created = Vec::new();
    for plan in &d.replacements {
        let Some(pool) = ctx.state.node_pool(&plan.node_pool) else {
            return Err(Error::NodePoolNotFound(plan.node_pool.clone()));
        };
        created.push(create_node_claim(ctx, &pool, plan).await?.name_any());
    }
    for cand in &d.candidates {
        taint_disrupted(&Api::all(ctx.client.clone()), &cand.node).await?;
        let how = if created.is_empty() { "delete" } else { "replace" };
        let note = format!("Disrupting NodeClaim: {} ({how})", d.reason.as_str());
        claim_event(ctx, &cand.claim, EventType::Normal, "DisruptionLaunching", &note).await;
    }
    if !created.is_empty() {
        await_initialized(ctx, &created).await?;
    }
    for cand in &d.candidates {
        let note = format!("Disrupting NodeClaim: {}", d.reason.as_str());
        claim_event(ctx, &cand.claim, EventType::Normal, "DisruptionTerminating", &note).await;
        delete_claim(ctx, &cand.claim, &d.reason.as_str().to_lowercase()).await?;
        ctx.metrics
            .nodeclaims_disrupted
            .get_or_create(&DisruptionLabels { nodepool: cand.pool_name(), reason: d.reason.as_str().to_owned() })
            .inc();
    }
    // The next decision counts these against the budgets: wait until the cache shows them leaving.
    let deleted: BTreeSet<String> = d.candidates.iter().map(Candidate::name).collect();
    let start = ctx.clock.now();
    while ctx.clock.now().saturating_duration_since(start) < CACHE_CATCH_UP {
        let pending = ctx
            .state
            .node_claims
            .state()
            .iter()
            .any(|c| deleted.contains(&c.name_any()) && c.metadata.deletion_timestamp.is_none());
        if !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits (polling the cache) until every named NodeClaim is initialized.
async fn await_initialized(ctx: &Context, created: &[String]) -> Result<(), Error> {
    let start = ctx.clock.now();
    loop {
        let ready: BTreeSet<String> = ctx
            .state
            .node_claims
            .state()
            .iter()
            .filter(|cl| is_true(cl.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]), c::INITIALIZED))
            .map(|cl| cl.name_any())
            .collect();
        if created.iter().all(|n| ready.contains(n)) {
            return Ok(());
        }
        if ctx.clock.now().saturating_duration_since(start) > REPLACEMENT_TIMEOUT {
            return Err(Error::ReplacementsNotInitialized { names: created.to_vec(), timeout: REPLACEMENT_TIMEOUT });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
