//! What a state file keeps of the EC2 world: everything requests and timers change (instances,
//! launch templates, RunInstances and CreateFleet client tokens, pools' capacity and usage, subnets' addresses,
//! tags, throttle buckets, quotas set through the admin API). The rest (catalog, zones, images,
//! groups) comes from the world file again.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::World;
use super::config::QuotasConfig;
use super::fleet::Fleet;
use super::instances::{Instance, StateChange};
use super::launch_templates::LaunchTemplate;
use super::network::SubnetState;
use super::pools::PoolsState;
use super::quotas::QuotaUsage;
use super::throttle::ThrottleState;
use super::tokens::ClientTokens;
use crate::clock::Millis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldState {
    started_at: Millis,
    /// By launch order.
    instances: Vec<Instance>,
    next_seq: u64,
    launch_templates: BTreeMap<String, LaunchTemplate>,
    fleet_tokens: ClientTokens<Fleet>,
    #[serde(default)]
    run_tokens: ClientTokens<Vec<String>>,
    pools: PoolsState,
    subnets: Vec<SubnetState>,
    security_group_tags: BTreeMap<String, BTreeMap<String, String>>,
    image_tags: BTreeMap<String, BTreeMap<String, String>>,
    throttle: ThrottleState,
    state_changes: VecDeque<StateChange>,
    usage: QuotaUsage,
    quotas: QuotasConfig,
}

impl WorldState {
    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }
}

impl World {
    pub fn snapshot(&self) -> WorldState {
        WorldState {
            started_at: self.started_at,
            instances: self.instances.values().cloned().collect(),
            next_seq: self.next_seq,
            launch_templates: self.launch_templates.clone(),
            fleet_tokens: self.fleet_tokens.clone(),
            run_tokens: self.run_tokens.clone(),
            pools: self.pools.snapshot(),
            subnets: self.subnets.iter().map(super::network::Subnet::snapshot).collect(),
            security_group_tags: self.security_groups.iter().map(|g| (g.cfg.id.clone(), g.tags.clone())).collect(),
            image_tags: self.images.iter().map(|i| (i.cfg.id.clone(), i.tags.clone())).collect(),
            throttle: self.throttle.snapshot(),
            state_changes: self.state_changes.clone(),
            usage: self.usage,
            quotas: self.cfg.quotas.clone(),
        }
    }

    /// Puts back a [`WorldState`] over a world freshly built from the same world file. Anything
    /// the state names that this world does not have (a subnet, an instance type) is an error.
    pub fn restore(&mut self, s: WorldState, now: Millis) -> Result<(), String> {
        self.pools.restore(s.pools)?;
        self.started_at = s.started_at;
        self.instances.clear();
        self.instance_index.clear();
        for mut i in s.instances {
            i.pool = self.pool_of(&i.instance_type, &i.zone).ok_or_else(|| {
                format!("instance {}: this world has no pool {} in {}", i.id, i.instance_type, i.zone)
            })?;
            self.instance_index.insert(i.id.clone(), i.seq);
            self.instances.insert(i.seq, i);
        }
        self.next_seq = s.next_seq;
        self.launch_templates = s.launch_templates;
        self.fleet_tokens = s.fleet_tokens;
        self.run_tokens = s.run_tokens;
        for sub in s.subnets {
            let subnet = self.subnets.iter_mut().find(|x| x.id() == sub.id);
            subnet.ok_or_else(|| format!("this world has no subnet {}", sub.id))?.restore(sub);
        }
        for g in &mut self.security_groups {
            g.tags = s.security_group_tags.get(&g.cfg.id).cloned().unwrap_or_default();
        }
        for i in &mut self.images {
            i.tags = s.image_tags.get(&i.cfg.id).cloned().unwrap_or_default();
        }
        self.throttle.restore(s.throttle, now);
        self.state_changes = s.state_changes;
        self.usage = s.usage;
        self.cfg.quotas = s.quotas;
        // What the fresh world asked for at its start (the first market tick) is in the restored
        // schedule already.
        self.outbox = super::Outbox::default();
        Ok(())
    }
}
