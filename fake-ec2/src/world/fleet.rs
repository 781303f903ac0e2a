//! EC2 Fleet allocation (`CreateFleet` of type `instant`): which pools to try, in which order,
//! and what each launch attempt gave, over a request already parsed and resolved.
//!
//! Strategies follow the EC2 Fleet documentation:
//! - spot `lowest-price`: cheapest pools first (`InstancePoolsToUseCount` spreads over the N cheapest);
//! - spot `capacity-optimized`: the pools with the most spare capacity first;
//! - spot `capacity-optimized-prioritized`: among pools deep enough for the request, by `Priority`;
//! - spot `price-capacity-optimized`: among pools deep enough for the request, the cheapest;
//! - spot `diversified`: spread across every pool;
//! - on-demand `lowest-price` / `prioritized` (lower `Priority` value first, unset last).
//!
//! Pools with no spare capacity go last, so an error for a pool appears only when EC2 would have
//! had to try it.

use std::collections::BTreeMap;

use super::World;
use super::instances::LaunchTemplateRef;
use super::launch::{LaunchChecks, LaunchFailure, LaunchSpec};
use super::pools::CapacityType;
use crate::clock::Millis;
use crate::rng::Streams;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    LowestPrice,
    Diversified,
    CapacityOptimized,
    CapacityOptimizedPrioritized,
    PriceCapacityOptimized,
    Prioritized,
}

/// How one capacity type is allocated (`SpotOptions` / `OnDemandOptions`).
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub strategy: Strategy,
    pub min_target: f64,
    pub single_pool: bool,
    pub pools_to_use: usize,
    pub max_total_price: Option<f64>,
}

/// One launch template config × override: a pool the fleet may launch into.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// Position in the request, for stable tie-breaks and grouping.
    pub order: usize,
    pub lt: LaunchTemplateRef,
    pub spec: LaunchSpec,
    pub zone: String,
    pub weight: f64,
    pub priority: Option<f64>,
    pub max_price: Option<f64>,
    /// The override's fields exactly as the request gave them (wire name, value), for the answer.
    #[serde(with = "crate::interned::pairs")]
    pub echo: Vec<(&'static str, String)>,
}

/// A `CreateFleet` request, parsed and resolved against the world's launch templates.
#[derive(Debug, Clone)]
pub struct FleetRequest {
    pub candidates: Vec<Candidate>,
    pub default_capacity_type: CapacityType,
    pub spot_target: f64,
    pub on_demand_target: f64,
    pub spot: PoolOptions,
    pub on_demand: PoolOptions,
    /// Tags for the instances (`TagSpecification` of type `instance`).
    pub instance_tags: BTreeMap<String, String>,
    pub interruption_behavior: String,
    pub client_token: Option<String>,
}

/// One instance the fleet launched.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Launched {
    pub cand: usize,
    pub ct: CapacityType,
    pub id: String,
}

/// One failed attempt (or a whole capacity type the fleet could not fill).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FleetError {
    pub cand: usize,
    pub ct: CapacityType,
    pub failure: LaunchFailure,
}

/// What a fleet request made: the answer `CreateFleet` renders, kept for client-token retries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fleet {
    pub id: String,
    pub candidates: Vec<Candidate>,
    pub launched: Vec<Launched>,
    pub errors: Vec<FleetError>,
}

impl Fleet {
    /// What a client-token retry needs to answer as the first request did: the candidates the
    /// answer names, each only with what it echoes (no user data, tags or network of the spec).
    pub fn for_retries(self) -> Self {
        let Self { id, candidates, mut launched, mut errors } = self;
        let named: Vec<usize> = launched.iter().map(|l| l.cand).chain(errors.iter().map(|e| e.cand)).collect();
        let mut renumbered = vec![None; candidates.len()];
        let mut kept = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            if named.contains(&i) {
                renumbered[i] = Some(kept.len());
                kept.push(c.for_retries());
            }
        }
        let renumber = |cand: &mut usize| *cand = renumbered.get(*cand).copied().flatten().unwrap_or(*cand);
        launched.iter_mut().for_each(|l| renumber(&mut l.cand));
        errors.iter_mut().for_each(|e| renumber(&mut e.cand));
        Self { id, candidates: kept, launched, errors }
    }
}

impl Candidate {
    fn for_retries(&self) -> Self {
        let spec = LaunchSpec { instance_type: self.spec.instance_type.clone(), ..LaunchSpec::default() };
        Self { spec, lt: self.lt.clone(), zone: self.zone.clone(), echo: self.echo.clone(), ..*self }
    }
}

impl World {
    /// Allocates a fleet at `now`: on-demand first, then spot, each as its options say; a
    /// capacity type that falls short of its minimum launches nothing (all or nothing).
    pub fn create_fleet(
        &mut self,
        req: FleetRequest,
        now: Millis,
        rng: &mut Streams,
        checks: &mut dyn LaunchChecks,
    ) -> Fleet {
        let fleet_id = format!("fleet-{}", rng.request_id());
        let base = LaunchSpec {
            tags: req.instance_tags.clone(),
            fleet_id: Some(fleet_id.clone()),
            reservation_id: rng.hex_id("r", 17),
            interruption_behavior: Some(req.interruption_behavior.clone()),
            client_token: req.client_token.clone(),
            ..Default::default()
        };
        let mut fill = Fill { cands: &req.candidates, base: &base, now, launched: Vec::new(), errors: Vec::new() };
        for (ct, target, opts) in [
            (CapacityType::OnDemand, req.on_demand_target, &req.on_demand),
            (CapacityType::Spot, req.spot_target, &req.spot),
        ] {
            let before = fill.launched.len();
            let done = fill.run(self, ct, target, opts, rng, checks);
            if done < opts.min_target {
                // All or nothing below the minimum: undo what this capacity type launched.
                let undone: Vec<String> = fill.launched.drain(before..).map(|l| l.id).collect();
                self.discard(&undone);
                fill.errors.push(FleetError {
                    cand: req.candidates.first().map_or(0, |c| c.order),
                    ct,
                    failure: LaunchFailure {
                        code: "UnfulfillableCapacity",
                        message: format!("Unable to fulfill capacity due to your request configuration. Minimum target capacity {} could not be reached.", opts.min_target),
                    },
                });
            }
        }
        let Fill { launched, mut errors, .. } = fill;
        if launched.is_empty() && errors.is_empty() {
            errors.push(FleetError {
                cand: 0,
                ct: req.default_capacity_type,
                failure: LaunchFailure {
                    code: "UnfulfillableCapacity",
                    message: "Unable to fulfill capacity due to your request configuration.".into(),
                },
            });
        }
        Fleet { id: fleet_id, candidates: req.candidates, launched, errors }
    }

    fn price(&self, c: &Candidate, ct: CapacityType, now: Millis) -> f64 {
        let Some(pool) = self.pool_of(&c.spec.instance_type, &c.zone) else {
            return f64::MAX;
        };
        match ct {
            CapacityType::Spot => self.pools.spot_price_at(pool, now).1,
            // Capacity reservations are billed at the on-demand rate.
            CapacityType::OnDemand | CapacityType::Reserved => self.pools.on_demand_price(pool),
        }
    }

    fn available(&self, c: &Candidate, ct: CapacityType) -> u32 {
        self.pool_of(&c.spec.instance_type, &c.zone).map_or(0, |pool| self.pools.available(ct, pool))
    }

    /// The order in which pools are tried for `demand` units.
    fn order(&self, cands: &[Candidate], ct: CapacityType, strategy: Strategy, demand: f64, now: Millis) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..cands.len()).collect();
        let price = |i: &usize| self.price(&cands[*i], ct, now);
        let available = |i: &usize| self.available(&cands[*i], ct);
        let by_price = |a: &usize, b: &usize| price(a).total_cmp(&price(b)).then(a.cmp(b));
        let by_depth = |a: &usize, b: &usize| available(b).cmp(&available(a)).then(a.cmp(b));
        let by_priority = |a: &usize, b: &usize| {
            let pa = cands[*a].priority.unwrap_or(f64::MAX);
            let pb = cands[*b].priority.unwrap_or(f64::MAX);
            pa.total_cmp(&pb).then(a.cmp(b))
        };
        // A pool is deep when it can hold the whole request on its own.
        let deep = |i: &usize| f64::from(available(i)) * cands[*i].weight >= demand;
        match strategy {
            Strategy::LowestPrice => idx.sort_by(by_price),
            Strategy::Diversified => {}
            Strategy::CapacityOptimized => idx.sort_by(by_depth),
            Strategy::Prioritized => idx.sort_by(|a, b| by_priority(a, b).then_with(|| by_price(a, b))),
            Strategy::CapacityOptimizedPrioritized | Strategy::PriceCapacityOptimized => {
                let (mut deep_pools, mut rest): (Vec<usize>, Vec<usize>) = idx.into_iter().partition(deep);
                if strategy == Strategy::PriceCapacityOptimized {
                    deep_pools.sort_by(by_price);
                } else {
                    deep_pools.sort_by(by_priority);
                }
                rest.sort_by(by_depth);
                deep_pools.extend(rest);
                idx = deep_pools;
            }
        }
        // Empty pools last: EC2 only runs into them when nothing better is left.
        idx.sort_by_key(|i| available(i) == 0);
        idx
    }
}

/// One fleet's launches under way.
struct Fill<'a> {
    cands: &'a [Candidate],
    base: &'a LaunchSpec,
    now: Millis,
    launched: Vec<Launched>,
    errors: Vec<FleetError>,
}

impl Fill<'_> {
    /// Launches up to `target` units of one capacity type; returns the units launched.
    fn run(
        &mut self,
        w: &mut World,
        ct: CapacityType,
        target: f64,
        opts: &PoolOptions,
        rng: &mut Streams,
        checks: &mut dyn LaunchChecks,
    ) -> f64 {
        if target <= 0.0 {
            return 0.0;
        }
        let cands = self.cands;
        let queue = w.order(cands, ct, opts.strategy, target, self.now);
        let width = match opts.strategy {
            _ if opts.single_pool => 1,
            Strategy::Diversified => queue.len(),
            Strategy::LowestPrice => opts.pools_to_use,
            _ => 1,
        };
        let mut active: Vec<usize> = queue.iter().take(width).copied().collect();
        let mut waiting = queue.iter().skip(width).copied();
        let mut done = 0.0;
        let mut cost = 0.0;
        let mut used_pool: Option<usize> = None;
        let mut turn = 0;
        while done < target && !active.is_empty() {
            let slot = turn % active.len();
            let ci = active[slot];
            let c = &cands[ci];
            let unit_price = w.price(c, ct, self.now);
            let mut spec = c.spec.clone();
            spec.capacity_type = Some(ct);
            spec.tags.extend(self.base.tags.clone());
            spec.fleet_id.clone_from(&self.base.fleet_id);
            spec.reservation_id.clone_from(&self.base.reservation_id);
            spec.interruption_behavior.clone_from(&self.base.interruption_behavior);
            let outcome = if ct == CapacityType::Spot && c.max_price.is_some_and(|m| m < unit_price) {
                Err(LaunchFailure {
                    code: "SpotMaxPriceTooLow",
                    message: format!(
                        "Your Spot request price of {} is lower than the minimum required Spot request fulfillment price of {unit_price}.",
                        c.max_price.unwrap_or_default()
                    ),
                })
            } else if opts.max_total_price.is_some_and(|m| cost + unit_price > m) {
                // The fleet stops launching once the next instance would pass the cost ceiling.
                break;
            } else {
                w.launch(&spec, self.now, rng, checks)
            };
            match outcome {
                Ok(id) => {
                    self.launched.push(Launched { cand: ci, ct, id });
                    done += c.weight;
                    cost += unit_price;
                    used_pool = Some(ci);
                    turn += 1;
                }
                Err(failure) => {
                    let account_wide = matches!(failure.code, "MaxSpotInstanceCountExceeded" | "VcpuLimitExceeded");
                    self.errors.push(FleetError { cand: ci, ct, failure: failure.clone() });
                    if account_wide {
                        // The quota refuses every pool of this capacity type alike.
                        for other in
                            active.iter().chain(waiting.clone().collect::<Vec<_>>().iter()).filter(|o| **o != ci)
                        {
                            self.errors.push(FleetError { cand: *other, ct, failure: failure.clone() });
                        }
                        break;
                    }
                    active.remove(slot);
                    if opts.single_pool && used_pool.is_some() {
                        break;
                    }
                    if let Some(next) = waiting.next() {
                        active.push(next);
                    }
                }
            }
        }
        done
    }
}
