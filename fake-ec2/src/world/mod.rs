//! The EC2 world: EC2's state as a pure state machine (catalog, pools, instances, launch
//! templates, network, quotas, throttling, EC2 lifecycle timers, client tokens).
//!
//! The world owns no clock, no random streams and no other service: every operation takes the
//! time it happens at (`now`) and, where it draws ids or picks victims, the cloud's seeded
//! [`Streams`]. What it asks of its surroundings (events to publish, timers to set) it records in
//! its [`Outbox`], which the cloud ([`crate::cloud::Cloud`]) takes after every operation.

pub mod catalog;
pub mod config;
pub mod fleet;
pub mod instances;
pub mod interruption;
pub mod launch;
pub mod launch_templates;
mod lifecycle;
pub mod network;
pub mod pools;
mod quotas;
pub mod snapshot;
pub mod throttle;
pub mod tokens;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use catalog::Catalog;
use config::WorldConfig;
use instances::{Instance, StateChange, Timer};
pub use launch::{LaunchChecks, LaunchFailure, LaunchSpec, ProfileCheck};
use launch_templates::LaunchTemplate;
use network::{Image, SecurityGroup, Subnet};
use pools::Pools;
use quotas::QuotaUsage;
use throttle::Throttle;
use tokens::ClientTokens;

use crate::clock::Millis;
use crate::events::Kind;

/// How many state changes the world keeps for the admin API.
const STATE_CHANGE_LOG: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("failed to load the instance-type catalog")]
    Catalog(#[from] catalog::CatalogError),
}

/// What the world asks of its surroundings during an operation: events to publish and timers to
/// set, each in the order the world produced them.
#[derive(Debug, Default)]
pub struct Outbox {
    pub events: Vec<(Millis, Kind)>,
    pub timers: Vec<(Millis, Timer)>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.timers.is_empty()
    }
}

#[derive(Debug)]
pub struct World {
    pub cfg: WorldConfig,
    pub seed: u64,
    /// World time at the start: seeded processes count from here, so a wall-clock start changes
    /// no decision.
    pub started_at: Millis,
    pub catalog: Catalog,
    pub pools: Pools,
    pub subnets: Vec<Subnet>,
    pub security_groups: Vec<SecurityGroup>,
    pub images: Vec<Image>,
    /// By launch order.
    pub instances: BTreeMap<u64, Instance>,
    pub instance_index: HashMap<String, u64>,
    next_seq: u64,
    pub launch_templates: BTreeMap<String, LaunchTemplate>,
    /// Fleets a `CreateFleet` with a `ClientToken` made, by token (idempotent retries), kept
    /// only as far as their answer needs ([`fleet::Fleet::for_retries`]).
    pub fleet_tokens: ClientTokens<fleet::Fleet>,
    /// Instances a `RunInstances` with a `ClientToken` launched, by token, in launch order.
    pub run_tokens: ClientTokens<Vec<String>>,
    pub throttle: Throttle,
    pub state_changes: VecDeque<StateChange>,
    /// Running totals for quotas.
    usage: QuotaUsage,
    outbox: Outbox,
}

impl World {
    /// A world as the world file describes it, at world time `start`.
    pub fn new(cfg: WorldConfig, seed: u64, base_dir: &Path, start: Millis) -> Result<Self, WorldError> {
        let catalog = Catalog::load(&cfg.catalog, base_dir)?;
        let types: Vec<(&str, f64)> = catalog.all().iter().map(|t| (t.name.as_str(), t.on_demand_price)).collect();
        let zones: Vec<&str> = cfg.zones.iter().map(|z| z.name.as_str()).collect();
        let pools = Pools::new(seed, &types, &zones, &cfg.pools).with_epoch(start);
        let subnets = cfg
            .subnets
            .iter()
            .map(|s| {
                let zone_id = cfg.zones.iter().find(|z| z.name == s.zone).map(|z| z.id.clone()).unwrap_or_default();
                Subnet::new(s.clone(), zone_id)
            })
            .collect();
        let security_groups =
            cfg.security_groups.iter().map(|g| SecurityGroup { tags: g.tags.clone(), cfg: g.clone() }).collect();
        let images = cfg.images.iter().map(|i| Image { tags: i.tags.clone(), cfg: i.clone() }).collect();
        let throttle = Throttle::new(&cfg.throttling, start);
        let reclaim_tick = cfg.pools.spot.reclaim.as_ref().map(|r| r.tick_seconds * 1000);
        let mut w = Self {
            seed,
            started_at: start,
            catalog,
            pools,
            subnets,
            security_groups,
            images,
            instances: BTreeMap::new(),
            instance_index: HashMap::new(),
            next_seq: 0,
            launch_templates: BTreeMap::new(),
            fleet_tokens: ClientTokens::default(),
            run_tokens: ClientTokens::default(),
            throttle,
            state_changes: VecDeque::new(),
            usage: QuotaUsage::default(),
            outbox: Outbox::default(),
            cfg,
        };
        if let Some(tick) = reclaim_tick {
            w.schedule(start + tick, Timer::MarketTick);
        }
        Ok(w)
    }

    pub fn region(&self) -> &str {
        &self.cfg.region
    }

    pub fn zone_index(&self, zone: &str) -> Option<usize> {
        self.cfg.zones.iter().position(|z| z.name == zone)
    }

    pub fn zone_id(&self, zone: &str) -> Option<&str> {
        self.cfg.zones.iter().find(|z| z.name == zone).map(|z| z.id.as_str())
    }

    pub fn pool_of(&self, instance_type: &str, zone: &str) -> Option<pools::PoolId> {
        Some(self.pools.id(self.catalog.index_of(instance_type)?, self.zone_index(zone)?))
    }

    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.id() == id)
    }

    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instance_index.get(id).and_then(|seq| self.instances.get(seq))
    }

    pub fn instance_mut(&mut self, id: &str) -> Option<&mut Instance> {
        let seq = *self.instance_index.get(id)?;
        self.instances.get_mut(&seq)
    }

    /// The world's zones other than `zone`, as EC2 lists them in capacity error messages.
    fn other_zones(&self, zone: &str) -> String {
        self.cfg.zones.iter().filter(|z| z.name != zone).map(|z| z.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Asks for `t` to fire at `at`.
    fn schedule(&mut self, at: Millis, t: Timer) {
        self.outbox.timers.push((at, t));
    }

    /// Records an event that happens at `at` (now, or a timer's due time) for the bus.
    fn emit(&mut self, at: Millis, kind: Kind) {
        self.outbox.events.push((at, kind));
    }

    /// Takes what the operations since the last call asked for.
    pub fn take_outbox(&mut self) -> Outbox {
        std::mem::take(&mut self.outbox)
    }

    /// Whether anything waits in the outbox.
    pub fn has_outbox(&self) -> bool {
        !self.outbox.is_empty()
    }

    fn record(&mut self, c: StateChange) {
        if self.state_changes.len() >= STATE_CHANGE_LOG {
            self.state_changes.pop_front();
        }
        self.state_changes.push_back(c);
    }
}

#[cfg(test)]
pub(crate) mod tests;
