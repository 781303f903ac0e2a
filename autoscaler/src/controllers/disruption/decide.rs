//! The disruption decision, pure: from a snapshot of the cluster, the candidates and the budgets,
//! Karpenter's methods in order — emptiness, drift, expiration, multi-node consolidation,
//! single-node consolidation — and the first decision one of them makes. No I/O, no waiting: the
//! controller gathers the inputs, and the consolidation benchmark calls this same function.

use std::collections::BTreeSet;

use super::budgets::{Budgets, Reason};
use super::candidates::Candidate;
use crate::apis::normalize::ConsolidationPolicy;
use crate::clock::Clock;
use crate::controllers::snapshot::Snapshot;
use crate::scheduling::{NodeClaimPlan, Requirement, SchedPod, labels as wk};

/// Karpenter considers at most this many candidates in multi-node consolidation.
pub const MULTI_NODE_MAX: usize = 100;
/// Spot-to-spot replacement needs this much flexibility (Karpenter's minimum).
const SPOT_TO_SPOT_MIN_TYPES: usize = 15;

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
    /// What makes two decisions the same one (the validation pass compares them).
    pub fn key(&self) -> (Reason, Vec<String>, usize) {
        (self.reason, self.candidates.iter().map(Candidate::name).collect(), self.replacements.len())
    }
}

/// Feature gates that shape decisions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// `SpotToSpotConsolidation`: spot nodes may be replaced by cheaper spot nodes.
    pub spot_to_spot: bool,
}

/// The first decision any method makes now, or None. `candidates` come sorted by name; the
/// budgets are read at the clock's time.
pub fn decide(
    snapshot: &Snapshot,
    candidates: &[Candidate],
    budgets: &Budgets,
    settings: Settings,
    clock: &dyn Clock,
) -> Option<Decision> {
    let allowance = budgets.at(clock.utc_now());
    // Emptiness: every empty, consolidatable node the budgets allow, in one decision.
    let mut empty: Vec<Candidate> = Vec::new();
    let mut left = allowance.clone();
    for c in candidates.iter().filter(|c| c.pods.is_empty() && c.consolidatable) {
        if left.take(&c.pool_name(), Reason::Empty) {
            empty.push(c.clone());
        }
    }
    if !empty.is_empty() {
        let savings = empty.iter().map(|c| c.price).sum();
        return Some(Decision { reason: Reason::Empty, candidates: empty, replacements: vec![], savings });
    }
    // Drift, then expiration: replace one node at a time, replacements first.
    fn drifted(c: &Candidate) -> bool {
        c.drifted.is_some()
    }
    fn expired(c: &Candidate) -> bool {
        c.expired
    }
    for (reason, pick) in [(Reason::Drifted, drifted as fn(&Candidate) -> bool), (Reason::Expired, expired)] {
        for c in candidates.iter().filter(|c| pick(c)) {
            // Karpenter v1 does not budget expiration; drift is budgeted.
            if reason == Reason::Drifted && !allowance.clone().take(&c.pool_name(), reason) {
                continue;
            }
            if let Some(plans) = simulate(snapshot, std::slice::from_ref(c)) {
                let cost: f64 = plans.iter().map(plan_price).sum();
                return Some(Decision {
                    reason,
                    candidates: vec![c.clone()],
                    replacements: plans,
                    savings: c.price - cost,
                });
            }
        }
    }
    // Consolidation: only pools that allow underutilized consolidation, consolidatable nodes.
    let mut under: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.consolidatable && c.pool.spec.consolidation_policy() == ConsolidationPolicy::WhenEmptyOrUnderutilized
        })
        .collect();
    under.sort_by_key(|c| c.cost_key());
    let mut within = Vec::new();
    let mut left = allowance;
    for c in under {
        if left.take(&c.pool_name(), Reason::Underutilized) {
            within.push(c.clone());
        }
    }
    // Multi-node: the largest prefix that fits elsewhere with at most one cheaper replacement.
    let mut n = within.len().min(MULTI_NODE_MAX);
    while n >= 2 {
        if let Some(d) = consolidate(snapshot, &within[..n], settings) {
            return Some(d);
        }
        n /= 2;
    }
    // Single-node.
    within.iter().find_map(|c| consolidate(snapshot, std::slice::from_ref(c), settings))
}

/// Delete the candidates if their pods fit elsewhere; replace them with one cheaper node if not.
fn consolidate(snapshot: &Snapshot, cands: &[Candidate], settings: Settings) -> Option<Decision> {
    let mut plans = simulate(snapshot, cands)?;
    let before: f64 = cands.iter().map(|c| c.price).sum();
    if plans.is_empty() {
        return Some(Decision {
            reason: Reason::Underutilized,
            candidates: cands.to_vec(),
            replacements: vec![],
            savings: before,
        });
    }
    if plans.len() > 1 {
        return None;
    }
    let all_spot = cands.iter().all(|c| c.capacity_type == "spot");
    if all_spot && !settings.spot_to_spot {
        return None;
    }
    // Keep only replacement types that are cheaper than what goes away.
    let plan = &mut plans[0];
    plan.instance_types.retain(|t| t.cheapest_available(&plan.requirements).is_some_and(|o| o.price < before));
    if plan.instance_types.is_empty() || (all_spot && plan.instance_types.len() < SPOT_TO_SPOT_MIN_TYPES) {
        return None;
    }
    plan.requirements
        .set(wk::INSTANCE_TYPE, Requirement::in_values(plan.instance_types.iter().map(|t| t.name.clone())));
    let after = plan_price(plan);
    Some(Decision {
        reason: Reason::Underutilized,
        candidates: cands.to_vec(),
        replacements: plans,
        savings: before - after,
    })
}

/// Schedules the candidates' pods as if the candidates were gone. None when some pod would have
/// nowhere to go; otherwise the new NodeClaims needed (possibly none).
fn simulate(snapshot: &Snapshot, cands: &[Candidate]) -> Option<Vec<NodeClaimPlan>> {
    let pods: Vec<SchedPod> = cands.iter().flat_map(|c| c.pods.iter().map(|p| SchedPod::from_pod(p))).collect();
    if pods.is_empty() {
        return Some(vec![]);
    }
    let leaving: BTreeSet<String> = cands.iter().flat_map(|c| [c.name(), c.node_name()]).collect();
    let results = snapshot.scheduler_without(&leaving).solve(pods);
    if !results.pod_errors.is_empty() {
        return None;
    }
    Some(results.new_node_claims)
}

fn plan_price(plan: &NodeClaimPlan) -> f64 {
    plan.instance_types
        .iter()
        .filter_map(|t| t.cheapest_available(&plan.requirements).map(|o| o.price))
        .fold(f64::INFINITY, f64::min)
}
