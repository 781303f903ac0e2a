//! Disruption: every poll (10 s), try Karpenter's methods in order — emptiness, drift,
//! expiration, multi-node consolidation, single-node consolidation — take the first decision,
//! check it again after the validation delay (15 s) against fresh state, and carry it out:
//! replacements first (launched and initialized), then the candidates are deleted (drained by
//! termination). Budgets, `karpenter.sh/do-not-disrupt` and blocking PDBs are respected.

pub mod budgets;
pub mod candidates;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::events::EventType;

use super::Context;
use super::provisioner::{Snapshot, create_node_claim};
use crate::apis::labels as l;
use crate::apis::normalize::ConsolidationPolicy;
use crate::metrics::DisruptionLabels;
use crate::scheduling::{NodeClaimPlan, Requirement, SchedPod, labels as wk};
use budgets::Reason;
use candidates::{Candidate, PodEvents};

/// Karpenter considers at most this many candidates in multi-node consolidation.
const MULTI_NODE_MAX: usize = 100;
/// Spot-to-spot replacement needs this much flexibility (Karpenter's minimum).
const SPOT_TO_SPOT_MIN_TYPES: usize = 15;
/// How long replacements may take to initialize before the decision is abandoned.
const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// One decision: delete the candidates, launching `replacements` first.
#[derive(Clone, Debug)]
pub struct Decision {
    pub reason: Reason,
    pub candidates: Vec<Candidate>,
    pub replacements: Vec<NodeClaimPlan>,
    /// Hourly cost before minus after.
    pub savings: f64,
}

impl Decision {
    fn key(&self) -> (Reason, Vec<String>, usize) {
        (self.reason, self.candidates.iter().map(Candidate::name).collect(), self.replacements.len())
    }
}

pub async fn run(ctx: Arc<Context>) {
    let mut events = PodEvents::default();
    loop {
        tokio::time::sleep(ctx.options.disruption_poll).await;
        match decide(&ctx, &mut events).await {
            Ok(Some(first)) => {
                // Decisions made on stale state are dropped: look again after the delay.
                tokio::time::sleep(ctx.options.consolidation_validation_delay).await;
                match decide(&ctx, &mut events).await {
                    Ok(Some(again)) if again.key() == first.key() => {
                        if let Err(err) = execute(&ctx, &again).await {
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

/// The first decision any method makes now, or None.
pub async fn decide(ctx: &Context, events: &mut PodEvents) -> anyhow::Result<Option<Decision>> {
    let all = candidates(ctx, events).await?;
    let budget = Budgets::new(ctx);
    // Emptiness: every empty, consolidatable node the budgets allow, in one decision.
    let mut empty: Vec<Candidate> = Vec::new();
    let mut left = budget.clone();
    for c in all.iter().filter(|c| c.pods.is_empty() && c.consolidatable) {
        if left.take(&c.pool_name(), Reason::Empty) {
            empty.push(c.clone());
        }
    }
    if !empty.is_empty() {
        let savings = empty.iter().map(|c| c.price).sum();
        return Ok(Some(Decision { reason: Reason::Empty, candidates: empty, replacements: vec![], savings }));
    }
    // Drift, then expiration: replace one node at a time, replacements first.
    fn drifted(c: &Candidate) -> bool {
        c.drifted.is_some()
    }
    fn expired(c: &Candidate) -> bool {
        c.expired
    }
    for (reason, pick) in [(Reason::Drifted, drifted as fn(&Candidate) -> bool), (Reason::Expired, expired)] {
        for c in all.iter().filter(|c| pick(c)) {
            // Karpenter v1 does not budget expiration; drift is budgeted.
            if reason == Reason::Drifted && !budget.clone().take(&c.pool_name(), reason) {
                continue;
            }
            if let Some(plans) = simulate(ctx, std::slice::from_ref(c)).await? {
                let cost: f64 = plans.iter().map(plan_price).sum();
                return Ok(Some(Decision {
                    reason,
                    candidates: vec![c.clone()],
                    replacements: plans,
                    savings: c.price - cost,
                }));
            }
        }
    }
    // Consolidation: only pools that allow underutilized consolidation, consolidatable nodes.
    let mut under: Vec<Candidate> = all
        .into_iter()
        .filter(|c| {
            c.consolidatable && c.pool.spec.consolidation_policy() == ConsolidationPolicy::WhenEmptyOrUnderutilized
        })
        .collect();
    under.sort_by_key(Candidate::cost_key);
    let mut within = Vec::new();
    let mut left = budget.clone();
    for c in under {
        if left.take(&c.pool_name(), Reason::Underutilized) {
            within.push(c);
        }
    }
    // Multi-node: the largest prefix that fits elsewhere with at most one cheaper replacement.
    let mut n = within.len().min(MULTI_NODE_MAX);
    while n >= 2 {
        if let Some(d) = consolidate(ctx, &within[..n]).await? {
            return Ok(Some(d));
        }
        n /= 2;
    }
    // Single-node.
    for c in &within {
        if let Some(d) = consolidate(ctx, std::slice::from_ref(c)).await? {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// Delete the candidates if their pods fit elsewhere; replace them with one cheaper node if not.
async fn consolidate(ctx: &Context, cands: &[Candidate]) -> anyhow::Result<Option<Decision>> {
    let Some(mut plans) = simulate(ctx, cands).await? else { return Ok(None) };
    let before: f64 = cands.iter().map(|c| c.price).sum();
    if plans.is_empty() {
        return Ok(Some(Decision {
            reason: Reason::Underutilized,
            candidates: cands.to_vec(),
            replacements: vec![],
            savings: before,
        }));
    }
    if plans.len() > 1 {
        return Ok(None);
    }
    let all_spot = cands.iter().all(|c| c.capacity_type == "spot");
    if all_spot && !ctx.options.feature_gate("SpotToSpotConsolidation") {
        return Ok(None);
    }
    // Keep only replacement types that are cheaper than what goes away.
    let plan = &mut plans[0];
    plan.instance_types.retain(|t| t.cheapest_available(&plan.requirements).is_some_and(|o| o.price < before));
    if plan.instance_types.is_empty() || (all_spot && plan.instance_types.len() < SPOT_TO_SPOT_MIN_TYPES) {
        return Ok(None);
    }
    plan.requirements
        .set(wk::INSTANCE_TYPE, Requirement::in_values(plan.instance_types.iter().map(|t| t.name.clone())));
    let after = plan_price(plan);
    Ok(Some(Decision {
        reason: Reason::Underutilized,
        candidates: cands.to_vec(),
        replacements: plans,
        savings: before - after,
    }))
}

/// Schedules the candidates' pods as if the candidates were gone. None when some pod would have
/// nowhere to go; otherwise the new NodeClaims needed (possibly none).
async fn simulate(ctx: &Context, cands: &[Candidate]) -> anyhow::Result<Option<Vec<NodeClaimPlan>>> {
    let mut leaving = super::nodes_marked_for_deletion(ctx);
    for c in cands {
        leaving.insert(c.name());
        leaving.insert(c.node_name());
    }
    let snapshot = Snapshot::take(ctx, &leaving).await?;
    let pods: Vec<SchedPod> = cands.iter().flat_map(|c| c.pods.iter().map(|p| SchedPod::from_pod(p))).collect();
    if pods.is_empty() {
        return Ok(Some(vec![]));
    }
    let results = snapshot.scheduler().solve(pods);
    if !results.pod_errors.is_empty() {
        return Ok(None);
    }
    Ok(Some(results.new_node_claims))
}

fn plan_price(plan: &NodeClaimPlan) -> f64 {
    plan.instance_types
        .iter()
        .filter_map(|t| t.cheapest_available(&plan.requirements).map(|o| o.price))
        .fold(f64::INFINITY, f64::min)
}

/// How long a nomination protects a node: Karpenter's twice the batch maximum.
fn nomination_window(ctx: &Context) -> Duration {
    ctx.options.batch_max_duration * 2
}

async fn candidates(ctx: &Context, events: &mut PodEvents) -> anyhow::Result<Vec<Candidate>> {
    ctx.state.nominations.prune(Duration::from_secs(3600));
    let pdbs = Api::<PodDisruptionBudget>::all(ctx.client.clone()).list(&ListParams::default()).await?.items;
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut out = Vec::new();
    let mut prices: BTreeMap<String, Vec<Arc<crate::scheduling::InstanceType>>> = BTreeMap::new();
    for claim in ctx.state.node_claims.state() {
        let Some(pid) = claim.status.as_ref().and_then(|s| s.provider_id.clone()) else { continue };
        let Some(node) = ctx.state.node_by_provider_id(&pid) else { continue };
        let Some(pool) = claim.labels().get(l::NODEPOOL).and_then(|p| ctx.state.node_pool(p)) else { continue };
        let pods = ctx.state.pods_on(&node.name_any());
        let quiet = events.quiet_for(&node.name_any(), &pods);
        if candidates::nominated(&claim, &node, &ctx.state.nominations, nomination_window(ctx), now) {
            tracing::debug!(NodeClaim = %claim.name_any(), "not a disruption candidate: nominated for pending pods");
            continue;
        }
        if let Some(why) = candidates::blocked(&claim, &node, &pods, &pdbs) {
            tracing::debug!(NodeClaim = %claim.name_any(), reason = %why, "not a disruption candidate");
            continue;
        }
        let labels = node.labels();
        let (it, zone, ct) = (
            labels.get(l::INSTANCE_TYPE).cloned().unwrap_or_default(),
            labels.get(l::ZONE).cloned().unwrap_or_default(),
            labels.get(l::CAPACITY_TYPE).cloned().unwrap_or_default(),
        );
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
        out.push(Candidate {
            drifted: candidates::drift(&claim, &node, &pool),
            expired: candidates::expired(&claim, now),
            pods: candidates::reschedulable(&pods),
            claim,
            node,
            pool,
            instance_type: it,
            zone,
            capacity_type: ct,
            price,
            consolidatable,
        });
    }
    out.sort_by_key(Candidate::name);
    Ok(out)
}

/// Per-pool disruptions still allowed now, by reason.
#[derive(Clone)]
struct Budgets {
    left: BTreeMap<(String, Reason), usize>,
}

impl Budgets {
    fn new(ctx: &Context) -> Budgets {
        let now = chrono::Utc::now();
        let claims = ctx.state.node_claims.state();
        let leaving = super::nodes_marked_for_deletion(ctx);
        let mut left = BTreeMap::new();
        for pool in ctx.state.node_pools.state() {
            let name = pool.name_any();
            let mine: Vec<_> = claims.iter().filter(|c| c.labels().get(l::NODEPOOL) == Some(&name)).collect();
            // A claim is disrupting once it is deleting or its node is tainted (node names are
            // not claim names: the taint comes before the delete).
            let disrupting = mine
                .iter()
                .filter(|c| {
                    leaving.contains(&c.name_any())
                        || c.status.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| leaving.contains(n))
                })
                .count();
            for reason in [Reason::Empty, Reason::Drifted, Reason::Expired, Reason::Underutilized] {
                let allowed = budgets::allowed(&pool.spec.budgets(), reason, mine.len(), now).unwrap_or_else(|e| {
                    tracing::warn!(NodePool = %name, error = %e, "invalid disruption budget; allowing none");
                    0
                });
                left.insert((name.clone(), reason), allowed.saturating_sub(disrupting));
            }
        }
        Budgets { left }
    }

    fn take(&mut self, pool: &str, reason: Reason) -> bool {
        match self.left.get_mut(&(pool.to_owned(), reason)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

async fn execute(ctx: &Context, d: &Decision) -> anyhow::Result<()> {
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
            anyhow::bail!("nodepool {} vanished", plan.node_pool)
        };
        created.push(create_node_claim(ctx, &pool, plan).await?.name_any());
    }
    for c in &d.candidates {
        super::termination::taint_disrupted(&Api::all(ctx.client.clone()), &c.node).await?;
        super::lifecycle::event(
            ctx,
            &c.claim,
            EventType::Normal,
            "DisruptionLaunching",
            &format!(
                "Disrupting NodeClaim: {} ({})",
                d.reason.as_str(),
                if created.is_empty() { "delete" } else { "replace" }
            ),
        )
        .await;
    }
    if !created.is_empty() {
        let start = Instant::now();
        loop {
            let ready: BTreeSet<String> = ctx
                .state
                .node_claims
                .state()
                .iter()
                .filter(|c| {
                    crate::apis::common::is_true(
                        c.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]),
                        "Initialized",
                    )
                })
                .map(|c| c.name_any())
                .collect();
            if created.iter().all(|n| ready.contains(n)) {
                break;
            }
            if start.elapsed() > REPLACEMENT_TIMEOUT {
                anyhow::bail!(
                    "replacement nodeclaim(s) {created:?} did not initialize in {REPLACEMENT_TIMEOUT:?}; candidates left tainted"
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for c in &d.candidates {
        super::lifecycle::event(
            ctx,
            &c.claim,
            EventType::Normal,
            "DisruptionTerminating",
            &format!("Disrupting NodeClaim: {}", d.reason.as_str()),
        )
        .await;
        super::lifecycle::delete_claim(ctx, &c.claim, &d.reason.as_str().to_lowercase()).await?;
        ctx.metrics
            .nodeclaims_disrupted
            .get_or_create(&DisruptionLabels { nodepool: c.pool_name(), reason: d.reason.as_str().to_owned() })
            .inc();
    }
    // The next decision counts these against the budgets: wait until the cache shows them leaving.
    let deleted: BTreeSet<String> = d.candidates.iter().map(Candidate::name).collect();
    let start = Instant::now();
    while start.elapsed() < CACHE_CATCH_UP {
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

/// How long `execute` waits for the informer cache to show its deletions.
const CACHE_CATCH_UP: Duration = Duration::from_secs(30);
