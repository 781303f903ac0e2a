//! Capacity pools per (instance type, zone, capacity type) and the spot price process.
//!
//! Spot prices are a pure function of (seed, pool, tick): a price path never depends on the order
//! of requests, and any window of history can be computed without having lived through it, so
//! the history before the world's start exists from the first request. A pool is known by its
//! (type, zone) names, so adding types to a catalog leaves the other pools' prices as they were.
//! Ticks count from the world's start (its epoch), so the same seed gives the same market whether
//! the world starts at a fixed time or at the wall clock's now.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{PoolsConfig, SpotPoolsConfig};
use crate::clock::Millis;
use crate::rng::{hash_str, mix, unit};

/// Shared with the autoscaler and the harness; fake-ec2 has capacity only for spot and on-demand.
pub use wellknown::CapacityType;

/// Index of a (type, zone) pool: `type_index * zones + zone_index`.
pub type PoolId = usize;

/// What a state file keeps of [`Pools`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolsState {
    capacity: BTreeMap<CapacityType, Vec<u32>>,
    used: BTreeMap<CapacityType, Vec<u32>>,
    manual_prices: Vec<BTreeMap<Millis, f64>>,
    epoch_tick: i64,
}

#[derive(Debug, Clone)]
pub struct Pools {
    seed: u64,
    zones: usize,
    spot: SpotPoolsConfig,
    /// Per pool: [`pool_key`] of its (type, zone), what its random draws hash.
    keys: Vec<u64>,
    /// Per pool: long-run spot discount off on-demand.
    discount: Vec<f64>,
    on_demand_price: Vec<f64>,
    capacity: BTreeMap<CapacityType, Vec<u32>>,
    used: BTreeMap<CapacityType, Vec<u32>>,
    /// Spot prices set through the admin API, by time.
    manual_prices: Vec<BTreeMap<Millis, f64>>,
    /// The tick the world started in: draws are keyed by ticks since then.
    epoch_tick: i64,
}

/// Every this many ticks a price change is forced, so the price in effect is found in bounded time.
const FORCED_CHANGE_EVERY: i64 = 48;

impl Pools {
    pub fn new(seed: u64, type_names: &[(&str, f64)], zone_names: &[&str], cfg: &PoolsConfig) -> Self {
        let zones = zone_names.len();
        let n = type_names.len() * zones;
        let mut discount = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        let mut on_demand_price = Vec::with_capacity(n);
        let mut spot_cap = vec![cfg.spot.capacity; n];
        let mut od_cap = vec![cfg.on_demand.capacity; n];
        for (ti, (tname, od)) in type_names.iter().enumerate() {
            for (zi, zname) in zone_names.iter().enumerate() {
                let u = unit(&[seed, hash_str("discount"), hash_str(tname), hash_str(zname)]);
                let mut d = cfg.spot.discount_min + u * (cfg.spot.discount_max - cfg.spot.discount_min);
                let id = ti * zones + zi;
                for o in &cfg.overrides {
                    let matches =
                        (o.instance_type == "*" || o.instance_type == *tname) && (o.zone == "*" || o.zone == *zname);
                    if !matches {
                        continue;
                    }
                    if o.capacity_type == "spot" {
                        if let Some(c) = o.capacity {
                            spot_cap[id] = c;
                        }
                        if let Some(fixed) = o.discount {
                            d = fixed;
                        }
                    } else if let Some(c) = o.capacity {
                        od_cap[id] = c;
                    }
                }
                discount.push(d);
                keys.push(pool_key(tname, zname));
                on_demand_price.push(*od);
            }
        }
        let capacity = BTreeMap::from([(CapacityType::Spot, spot_cap), (CapacityType::OnDemand, od_cap)]);
        let used = BTreeMap::from([(CapacityType::Spot, vec![0; n]), (CapacityType::OnDemand, vec![0; n])]);
        Self {
            seed,
            zones,
            spot: cfg.spot.clone(),
            keys,
            discount,
            on_demand_price,
            capacity,
            used,
            manual_prices: vec![BTreeMap::new(); n],
            epoch_tick: 0,
        }
    }

    /// What changes in the pools as the world runs (capacity, usage, admin-set prices, epoch),
    /// for a state file.
    pub fn snapshot(&self) -> PoolsState {
        PoolsState {
            capacity: self.capacity.clone(),
            used: self.used.clone(),
            manual_prices: self.manual_prices.clone(),
            epoch_tick: self.epoch_tick,
        }
    }

    /// Puts back what [`Pools::snapshot`] kept, when it fits this world's pools.
    pub fn restore(&mut self, s: PoolsState) -> Result<(), String> {
        let n = self.len();
        let fits = |m: &BTreeMap<CapacityType, Vec<u32>>| m.values().all(|v| v.len() == n) && m.len() == 2;
        if !fits(&s.capacity) || !fits(&s.used) || s.manual_prices.len() != n {
            return Err(format!("the state's pools do not match the world's {n} pools"));
        }
        self.capacity = s.capacity;
        self.used = s.used;
        self.manual_prices = s.manual_prices;
        self.epoch_tick = s.epoch_tick;
        Ok(())
    }

    /// Keys the price process to a world that starts at `start`.
    pub fn with_epoch(mut self, start: Millis) -> Self {
        self.epoch_tick = start.div_euclid(self.tick_ms().max(1));
        self
    }

    pub fn id(&self, type_index: usize, zone_index: usize) -> PoolId {
        type_index * self.zones + zone_index
    }

    pub fn len(&self) -> usize {
        self.discount.len()
    }

    pub fn is_empty(&self) -> bool {
        self.discount.is_empty()
    }

    pub fn capacity(&self, ct: CapacityType, pool: PoolId) -> u32 {
        self.capacity.get(&ct).and_then(|v| v.get(pool)).copied().unwrap_or(0)
    }

    pub fn set_capacity(&mut self, ct: CapacityType, pool: PoolId, cap: u32) {
        if let Some(c) = self.capacity.get_mut(&ct).and_then(|v| v.get_mut(pool)) {
            *c = cap;
        }
    }

    pub fn used(&self, ct: CapacityType, pool: PoolId) -> u32 {
        self.used.get(&ct).and_then(|v| v.get(pool)).copied().unwrap_or(0)
    }

    pub fn available(&self, ct: CapacityType, pool: PoolId) -> u32 {
        self.capacity(ct, pool).saturating_sub(self.used(ct, pool))
    }

    pub fn take(&mut self, ct: CapacityType, pool: PoolId) {
        if let Some(u) = self.used.get_mut(&ct).and_then(|v| v.get_mut(pool)) {
            *u += 1;
        }
    }

    pub fn give_back(&mut self, ct: CapacityType, pool: PoolId) {
        if let Some(u) = self.used.get_mut(&ct).and_then(|v| v.get_mut(pool)) {
            *u = u.saturating_sub(1);
        }
    }

    pub fn on_demand_price(&self, pool: PoolId) -> f64 {
        self.on_demand_price.get(pool).copied().unwrap_or(0.0)
    }

    pub fn spot_config(&self) -> &SpotPoolsConfig {
        &self.spot
    }

    /// What the pool's random draws hash: its (type, zone) names, not its index.
    pub fn key(&self, pool: PoolId) -> u64 {
        self.keys.get(pool).copied().unwrap_or_default()
    }

    fn tick_ms(&self) -> Millis {
        self.spot.price_tick_seconds * 1000
    }

    /// Whether the generated price changes at tick `j`, and when within the tick.
    fn change_at(&self, pool: PoolId, j: i64) -> Option<Millis> {
        let k = (j - self.epoch_tick) as u64;
        let forced = j.rem_euclid(FORCED_CHANGE_EVERY) == 0;
        let changes =
            forced || unit(&[self.seed, hash_str("change"), self.key(pool), k]) < self.spot.change_probability;
        changes.then(|| {
            let jitter = unit(&[self.seed, hash_str("jitter"), self.key(pool), k]);
            // Whole seconds, as EC2's history shows them.
            j * self.tick_ms() + ((jitter * 0.9 * self.tick_ms() as f64) as Millis / 1000) * 1000
        })
    }

    fn generated_value(&self, pool: PoolId, j: i64) -> f64 {
        let od = self.on_demand_price(pool);
        let mean = od * (1.0 - self.discount[pool]);
        // Two draws averaged: moves cluster near the mean, with the odd spike.
        let k = (j - self.epoch_tick) as u64;
        let a = unit(&[self.seed, hash_str("price"), self.key(pool), k]);
        let b = unit(&[self.seed, hash_str("price2"), self.key(pool), k]);
        let noise = (a + b) - 1.0;
        round_price((mean * (1.0 + self.spot.volatility * 2.0 * noise)).clamp(od * 0.1, od))
    }

    /// The generated change in effect at `t`: (time it took effect, price).
    fn generated_at(&self, pool: PoolId, t: Millis) -> (Millis, f64) {
        let mut j = t.div_euclid(self.tick_ms());
        loop {
            if let Some(at) = self.change_at(pool, j).filter(|at| *at <= t) {
                return (at, self.generated_value(pool, j));
            }
            j -= 1;
        }
    }

    /// The spot price in effect at `t`, and since when.
    pub fn spot_price_at(&self, pool: PoolId, t: Millis) -> (Millis, f64) {
        let generated = self.generated_at(pool, t);
        match self.manual_prices.get(pool).and_then(|m| m.range(..=t).next_back()) {
            Some((at, p)) if *at >= generated.0 => (*at, *p),
            _ => generated,
        }
    }

    pub fn set_spot_price(&mut self, pool: PoolId, at: Millis, price: f64) {
        if let Some(m) = self.manual_prices.get_mut(pool) {
            m.insert(at, round_price(price));
        }
    }

    /// Price changes of a pool in `[from, to]`, newest first, plus the change in effect at `from`.
    pub fn spot_history(&self, pool: PoolId, from: Millis, to: Millis) -> Vec<(Millis, f64)> {
        let mut out = Vec::new();
        let mut t = to;
        loop {
            let (at, price) = self.spot_price_at(pool, t);
            out.push((at, price));
            if at <= from {
                break;
            }
            t = at - 1;
        }
        out
    }
}

fn round_price(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

/// A stable key for the pool, for logs and the admin API.
pub fn pool_key(instance_type: &str, zone: &str) -> u64 {
    mix(&[hash_str(instance_type), hash_str(zone)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(seed: u64) -> Pools {
        Pools::new(seed, &[("m5.large", 0.096), ("c5.large", 0.085)], &["a", "b"], &PoolsConfig::default())
    }

    #[test]
    fn spot_prices_are_a_pure_function_of_seed_pool_and_time() {
        let p = pools(1);
        let t = 1_767_225_600_000;
        assert_eq!(p.spot_price_at(0, t), pools(1).spot_price_at(0, t));
        let prices: Vec<_> = (0..200).map(|h| p.spot_price_at(0, t + h * 3_600_000).1).collect();
        let distinct: std::collections::BTreeSet<_> = prices.iter().map(|p| (p * 1e4) as i64).collect();
        assert!(distinct.len() > 10, "prices should move: {distinct:?}");
        assert!(prices.iter().all(|x| *x > 0.0 && *x <= 0.096));
        let seeds_differ =
            (0..20).any(|h| pools(2).spot_price_at(0, t + h * 3_600_000) != p.spot_price_at(0, t + h * 3_600_000));
        assert!(seeds_differ);
    }

    #[test]
    fn history_is_newest_first_and_covers_the_window() {
        let p = pools(3);
        let to = 1_767_225_600_000;
        let from = to - 3 * 86_400_000;
        let h = p.spot_history(1, from, to);
        assert!(h.windows(2).all(|w| w[0].0 > w[1].0));
        assert!(h.last().is_some_and(|(at, _)| *at <= from));
        assert!(h.first().is_some_and(|(at, _)| *at <= to));
        assert_eq!(h.first().map(|x| x.1), Some(p.spot_price_at(1, to).1));
    }

    #[test]
    fn a_pools_prices_do_not_depend_on_the_other_types() {
        let t = 1_767_225_600_000;
        let wide = Pools::new(
            6,
            &[("c5.large", 0.085), ("m5.large", 0.096), ("m5.metal", 4.608)],
            &["a", "b"],
            &PoolsConfig::default(),
        );
        let narrow = pools(6);
        for h in 0..48 {
            let at = t - h * 3_600_000;
            // m5.large in zone b: pool 3 of the wide set, pool 1 of the narrow one.
            assert_eq!(wide.spot_price_at(3, at), narrow.spot_price_at(1, at));
        }
    }

    #[test]
    fn manual_price_wins_from_its_time() {
        let mut p = pools(4);
        let t = 1_767_225_600_000;
        p.set_spot_price(0, t, 0.5);
        assert_eq!(p.spot_price_at(0, t + 1).1, 0.5);
        assert_ne!(p.spot_price_at(0, t - 1).1, 0.5);
    }

    #[test]
    fn capacity_is_taken_and_given_back() {
        let mut p = pools(5);
        let cap = p.capacity(CapacityType::Spot, 0);
        p.take(CapacityType::Spot, 0);
        assert_eq!(p.available(CapacityType::Spot, 0), cap - 1);
        p.give_back(CapacityType::Spot, 0);
        p.give_back(CapacityType::Spot, 0);
        assert_eq!(p.available(CapacityType::Spot, 0), cap);
    }
}
