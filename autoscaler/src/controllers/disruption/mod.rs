//! Disruption: every poll (10 s), gather the candidates, the budgets and a snapshot of the
//! cluster, and let the pure [`decide`] pick the first decision of Karpenter's methods; check it
//! again after the validation delay (15 s) against fresh state, and carry it out: replacements
//! first (launched and initialized), then the candidates are deleted (drained by termination).
//! Budgets, `karpenter.sh/do-not-disrupt` and blocking PDBs are respected.

pub mod budgets;
pub mod candidates;
pub mod decide;
pub mod execute;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

pub use budgets::{Budgets, Reason};
pub use candidates::{Candidate, PodEvents};
pub use decide::{Decision, Settings, decide};

use super::context::Context;
use super::error::Error;
use super::snapshot::Snapshot;
use crate::apis::labels as l;
use crate::scheduling::InstanceType;

pub async fn run(ctx: Arc<Context>) {
    let mut events = PodEvents::default();
    loop {
        tokio::time::sleep(ctx.options.disruption_poll).await;
        match next_decision(&ctx, &mut events).await {
            Ok(Some(first)) => {
                // Decisions made on stale state are dropped: look again after the delay.
                tokio::time::sleep(ctx.options.consolidation_validation_delay).await;
                match next_decision(&ctx, &mut events).await {
                    Ok(Some(again)) if again.key() == first.key() => {
                        if let Err(err) = execute::execute(&ctx, &again).await {
                            tracing::error!(error = %err, reason = again.reason.as_str(), "disruption failed");
                        }
                    }
                    Ok(_) => tracing::info!(
                        reason = first.reason.as_str(),
                        "abandoning disruption decision: no longer valid"
                    ),
                    Err(err) => tracing::warn!(error = %err, "validating disruption decision"),
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "computing disruption decision"),
        }
    }
}

/// Everything [`decide`] needs, read now.
pub struct Inputs {
    pub snapshot: Snapshot,
    pub candidates: Vec<Candidate>,
    pub budgets: Budgets,
    pub settings: Settings,
}

/// Gathers the inputs and decides.
pub async fn next_decision(ctx: &Context, events: &mut PodEvents) -> Result<Option<Decision>, Error> {
    let inputs = gather(ctx, events).await?;
    Ok(decide(&inputs.snapshot, &inputs.candidates, &inputs.budgets, inputs.settings, ctx.clock.as_ref()))
}

/// Reads the candidates, the budgets and the snapshot from the caches and the cloud provider.
pub async fn gather(ctx: &Context, events: &mut PodEvents) -> Result<Inputs, Error> {
    let candidates = candidates(ctx, events).await?;
    let leaving = ctx.state.marked_for_deletion();
    let budgets = Budgets::new(&ctx.state.node_pools.state(), &ctx.state.node_claims_now(ctx.clock.now()), &leaving);
    let snapshot = Snapshot::take(ctx, &leaving).await;
    let settings = Settings { spot_to_spot: ctx.options.feature_gate("SpotToSpotConsolidation") };
    Ok(Inputs { snapshot, candidates, budgets, settings })
}

/// How long a nomination protects a node: Karpenter's twice the batch maximum.
fn nomination_window(ctx: &Context) -> Duration {
    ctx.options.batch_max_duration * 2
}

/// Initialized NodeClaims with a Node that nothing holds, sorted by name.
async fn candidates(ctx: &Context, events: &mut PodEvents) -> Result<Vec<Candidate>, Error> {
    let now = ctx.clock.now();
    ctx.state.nominations.prune(Duration::from_secs(3600), now);
    let pdbs = Api::<PodDisruptionBudget>::all(ctx.client.clone()).list(&ListParams::default()).await?.items;
    let wall = ctx.clock.timestamp();
    let mut out = Vec::new();
    let mut prices: BTreeMap<String, Vec<Arc<InstanceType>>> = BTreeMap::new();
    for claim in ctx.state.node_claims.state() {
        let Some(pid) = claim.status.as_ref().and_then(|s| s.provider_id.clone()) else { continue };
        let Some(node) = ctx.state.node_by_provider_id(&pid) else { continue };
        let Some(pool) = claim.labels().get(l::NODEPOOL).and_then(|p| ctx.state.node_pool(p)) else { continue };
        let pods = ctx.state.pods_on(&node.name_any());
        let quiet = events.quiet_for(&node.name_any(), &pods, now);
        if candidates::nominated(&claim, &node, &ctx.state.nominations, nomination_window(ctx), now, wall) {
            tracing::debug!(NodeClaim = %claim.name_any(), "not a disruption candidate: nominated for pending pods");
            continue;
        }
        if let Some(why) = candidates::blocked(&claim, &node, &pods, &pdbs) {
            tracing::debug!(NodeClaim = %claim.name_any(), reason = %why, "not a disruption candidate");
            continue;
        }
        let (it, zone, ct) = candidates::offering_labels(&node);
        let class_name = pool.spec.node_class_name().to_owned();
        if !prices.contains_key(&class_name)
            && let Some(class) = ctx.state.node_class(&class_name)
        {
            let types =
                ctx.cloud.instance_types(&class, pool.spec.template.spec.kubelet.as_ref()).await.unwrap_or_default();
            prices.insert(class_name.clone(), types);
        }
        let price = prices
            .get(&class_name)
            .and_then(|ts| ts.iter().find(|t| t.name == it))
            .and_then(|t| t.offerings.iter().find(|o| o.zone == zone && o.capacity_type.as_str() == ct))
            .map(|o| o.price)
            .unwrap_or(0.0);
        let consolidatable = match pool.spec.consolidate_after() {
            Ok(Some(after)) => quiet >= after,
            _ => false,
        };
        out.push(Candidate::new(claim, node, pool, &pods, price, consolidatable, wall));
    }
    out.sort_by_key(Candidate::name);
    Ok(out)
}
