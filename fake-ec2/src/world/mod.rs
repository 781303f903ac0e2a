//! The fake cloud's state: a pure state machine driven by requests and one clock.

pub mod catalog;
pub mod clock;
pub mod config;
pub mod instances;
pub mod interruption;
pub mod launch_templates;
pub mod network;
pub mod pools;
pub mod rng;
pub mod throttle;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use catalog::Catalog;
use clock::{Clock, Millis};
use config::WorldConfig;
use instances::{Instance, InstanceState, StateChange, Timer};
use launch_templates::LaunchTemplate;
use network::{Image, SecurityGroup, Subnet};
use pools::{CapacityType, Pools};
use rng::Streams;
use throttle::Throttle;

/// How many state changes the world keeps for the admin API.
const STATE_CHANGE_LOG: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("failed to load the instance-type catalog")]
    Catalog(#[from] catalog::CatalogError),
}

/// Why one instance could not be launched: an EC2 error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchFailure {
    pub code: &'static str,
    pub message: String,
}

/// What to launch, fully resolved (launch template, overrides and request merged).
#[derive(Debug, Clone, Default)]
pub struct LaunchSpec {
    pub instance_type: String,
    pub subnet_id: String,
    pub image_id: String,
    pub capacity_type: Option<CapacityType>,
    pub security_group_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub user_data: Option<String>,
    pub iam_instance_profile: Option<String>,
    pub metadata_options: Option<instances::MetadataOptions>,
    pub root_volume: Option<(String, i64, String)>,
    pub launch_template: Option<instances::LaunchTemplateRef>,
    pub key_name: Option<String>,
    pub client_token: Option<String>,
    pub fleet_id: Option<String>,
    pub interruption_behavior: Option<String>,
    pub reservation_id: String,
    pub ami_launch_index: u32,
}

#[derive(Debug)]
pub struct World {
    pub cfg: WorldConfig,
    pub seed: u64,
    pub clock: Clock,
    pub rng: Streams,
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
    /// Responses already given for a `ClientToken`, keyed `Action/token` (idempotent retries).
    pub client_tokens: BTreeMap<String, String>,
    pub throttle: Throttle,
    timers: BTreeMap<(Millis, u64), Timer>,
    timer_seq: u64,
    pub state_changes: VecDeque<StateChange>,
    /// The built-in SQS: queues on this world's clock.
    pub sqs: crate::sqs::Queues,
    /// EventBridge rules and the event log.
    pub events: crate::events::Bus,
    /// Events of launches in the request under way: published at the next `sync`, so a launch an
    /// all-or-nothing request takes back ([`World::discard`]) never announces itself.
    outbox: Vec<(Millis, crate::events::Kind)>,
    /// Injected EC2 API faults (admin API and FIS actions).
    pub faults: crate::faults::Faults,
    /// FIS experiment templates and experiments.
    pub fis: crate::faults::fis::Fis,
    /// Running totals for quotas.
    spot_vcpus: u32,
    spot_instances: u32,
    on_demand_vcpus: u32,
}

impl World {
    pub fn from_file(path: &Path, seed: u64) -> Result<Self, WorldError> {
        let cfg = WorldConfig::load(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::new(cfg, seed, base)
    }

    pub fn new(cfg: WorldConfig, seed: u64, base_dir: &Path) -> Result<Self, WorldError> {
        let catalog = Catalog::load(&cfg.catalog, base_dir)?;
        let types: Vec<(&str, f64)> = catalog.all().iter().map(|t| (t.name.as_str(), t.on_demand_price)).collect();
        let zones: Vec<&str> = cfg.zones.iter().map(|z| z.name.as_str()).collect();
        let pools = Pools::new(seed, &types, &zones, &cfg.pools);
        let start = if cfg.clock.start == "now" {
            chrono::Utc::now().timestamp_millis()
        } else {
            chrono::DateTime::parse_from_rfc3339(&cfg.clock.start).map(|t| t.timestamp_millis()).unwrap_or(0)
        };
        let clock = Clock::new(cfg.clock.mode, cfg.clock.factor, start);
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
            clock,
            rng: Streams::new(seed),
            catalog,
            pools,
            subnets,
            security_groups,
            images,
            instances: BTreeMap::new(),
            instance_index: HashMap::new(),
            next_seq: 0,
            launch_templates: BTreeMap::new(),
            client_tokens: BTreeMap::new(),
            throttle,
            timers: BTreeMap::new(),
            timer_seq: 0,
            state_changes: VecDeque::new(),
            spot_vcpus: 0,
            spot_instances: 0,
            on_demand_vcpus: 0,
            events: crate::events::Bus::new(&cfg.rules)
                .map_err(|message| config::ConfigError::Invalid { path: "rules".into(), message })?,
            outbox: Vec::new(),
            faults: crate::faults::Faults::default(),
            fis: crate::faults::fis::Fis::default(),
            sqs: crate::sqs::Queues::from_config(&cfg.region, &cfg.account_id, &cfg.queues, start)
                .map_err(|message| config::ConfigError::Invalid { path: "queues".into(), message })?,
            cfg,
        };
        if let Some(tick) = reclaim_tick {
            w.schedule(start + tick, Timer::MarketTick);
        }
        Ok(w)
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
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

    /// Earliest pending timer, for the background driver.
    pub fn next_timer_at(&self) -> Option<Millis> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    pub(crate) fn schedule(&mut self, at: Millis, t: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), t);
    }

    /// Publishes an event that happens at `at` (now, or a timer's due time) through the bus.
    pub fn emit(&mut self, at: Millis, kind: crate::events::Kind) -> crate::events::Event {
        self.emit_noted(at, kind, None)
    }

    /// [`World::emit`], with a note for the event log line only (never part of the event).
    pub fn emit_noted(
        &mut self,
        at: Millis,
        kind: crate::events::Kind,
        note: Option<serde_json::Value>,
    ) -> crate::events::Event {
        let id = crate::events::event_id(&mut self.rng.events);
        let origin = crate::events::Origin { account: &self.cfg.account_id, region: &self.cfg.region };
        let event = crate::events::Event::build(kind, id, at, origin);
        self.events.publish_noted(&event, at, &mut self.sqs, &mut self.rng.sqs, note.as_ref());
        event
    }

    /// Publishes the events launches left for the end of their request.
    pub fn flush_events(&mut self) {
        for (at, kind) in std::mem::take(&mut self.outbox) {
            self.emit(at, kind);
        }
    }

    /// Applies every timer due by the clock's current time, in time order.
    pub fn sync(&mut self) {
        self.flush_events();
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            let (at, _) = *entry.key();
            if at > now {
                break;
            }
            let timer = entry.remove();
            self.fire(at, timer);
        }
        self.faults.prune(now);
    }

    fn fire(&mut self, at: Millis, timer: Timer) {
        match timer {
            Timer::FinishBoot(id) => {
                if self.instance(&id).is_some_and(|i| i.state == InstanceState::Pending) {
                    self.set_state(&id, InstanceState::Running, at);
                    if let Some(i) = self.instance_mut(&id) {
                        i.running_since = Some(at);
                        i.state_reason = None;
                    }
                }
            }
            Timer::FinishShutdown(id) => {
                if self.instance(&id).is_some_and(|i| i.state == InstanceState::ShuttingDown) {
                    self.set_state(&id, InstanceState::Terminated, at);
                    let release = self.instance_mut(&id).map(|i| {
                        i.terminated_at = Some(at);
                        (i.subnet_id.clone(), i.private_ip)
                    });
                    if let Some((subnet, ip)) = release
                        && let Some(s) = self.subnets.iter_mut().find(|s| s.id() == subnet)
                    {
                        s.release_ip(ip);
                    }
                    let visible = self.cfg.lifecycle.terminated_visible_seconds * 1000;
                    self.schedule(at + visible, Timer::Expunge(id));
                }
            }
            Timer::FinishStop(id) => {
                if self.instance(&id).is_some_and(|i| i.state == InstanceState::Stopping) {
                    self.set_state(&id, InstanceState::Stopped, at);
                }
            }
            Timer::Expunge(id) => {
                if let Some(seq) = self.instance_index.remove(&id) {
                    self.instances.remove(&seq);
                }
            }
            Timer::InterruptionWarning(id) => self.interruption_warning(&id, at),
            Timer::Reclaim(id) => self.reclaim(&id, at),
            Timer::MarketTick => self.market_tick(at),
            Timer::RestoreCapacity(pool, cap) => {
                if self.pools.capacity(CapacityType::Spot, pool) < cap {
                    self.pools.set_capacity(CapacityType::Spot, pool, cap);
                }
            }
            Timer::Experiment(id) => self.experiment_step(&id, at),
            Timer::ScheduledChange(id, code) => self.scheduled_change(&id, &code, at),
        }
    }

    /// Moves an instance to a new state, keeping capacity and quota counters in step.
    fn set_state(&mut self, id: &str, to: InstanceState, at: Millis) {
        let Some(seq) = self.instance_index.get(id).copied() else {
            return;
        };
        let Some(inst) = self.instances.get_mut(&seq) else {
            return;
        };
        let from = inst.state;
        if from == to {
            return;
        }
        inst.state = to;
        let (ct, pool) = (inst.capacity_type, inst.pool);
        let vcpus = self.catalog.get(&inst.instance_type).map_or(0, |t| t.vcpu);
        if from.holds_capacity() && !to.holds_capacity() {
            self.pools.give_back(ct, pool);
            self.count_quota(ct, vcpus, false);
        } else if !from.holds_capacity() && to.holds_capacity() {
            self.pools.take(ct, pool);
            self.count_quota(ct, vcpus, true);
        }
        self.record(StateChange { at, instance_id: id.to_owned(), from: Some(from), to });
        self.emit(at, crate::events::Kind::StateChange { instance_id: id.to_owned(), state: to.name().to_owned() });
    }

    fn record(&mut self, c: StateChange) {
        if self.state_changes.len() >= STATE_CHANGE_LOG {
            self.state_changes.pop_front();
        }
        self.state_changes.push_back(c);
    }

    fn count_quota(&mut self, ct: CapacityType, vcpus: u32, add: bool) {
        let (v, n) = match ct {
            CapacityType::Spot => (&mut self.spot_vcpus, Some(&mut self.spot_instances)),
            CapacityType::OnDemand => (&mut self.on_demand_vcpus, None),
        };
        if add {
            *v += vcpus;
            if let Some(n) = n {
                *n += 1;
            }
        } else {
            *v = v.saturating_sub(vcpus);
            if let Some(n) = n {
                *n = n.saturating_sub(1);
            }
        }
    }

    pub fn quota_usage(&self) -> (u32, u32, u32) {
        (self.spot_vcpus, self.spot_instances, self.on_demand_vcpus)
    }

    /// Checks whether one more instance of `vcpus` fits the account quotas.
    pub fn check_quota(&self, ct: CapacityType, vcpus: u32) -> Result<(), LaunchFailure> {
        let q = &self.cfg.quotas;
        match ct {
            CapacityType::Spot => {
                let over_vcpus = q.spot_vcpus.is_some_and(|l| self.spot_vcpus + vcpus > l);
                let over_count = q.spot_instances.is_some_and(|l| self.spot_instances + 1 > l);
                if over_vcpus || over_count {
                    return Err(LaunchFailure {
                        code: "MaxSpotInstanceCountExceeded",
                        message: "Max spot instance count exceeded".into(),
                    });
                }
            }
            CapacityType::OnDemand => {
                if let Some(l) = q.on_demand_vcpus.filter(|l| self.on_demand_vcpus + vcpus > *l) {
                    return Err(LaunchFailure {
                        code: "VcpuLimitExceeded",
                        message: format!(
                            "You have requested more vCPU capacity than your current vCPU limit of {l} allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The world's zones other than `zone`, as EC2 lists them in capacity error messages.
    fn other_zones(&self, zone: &str) -> String {
        self.cfg.zones.iter().filter(|z| z.name != zone).map(|z| z.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Why `spec` cannot be launched right now, if it cannot: the checks EC2 makes, in its order.
    pub fn check_launch(&self, spec: &LaunchSpec) -> Result<(), LaunchFailure> {
        let ct = spec.capacity_type.unwrap_or(CapacityType::OnDemand);
        let subnet = self.subnet(&spec.subnet_id).ok_or_else(|| LaunchFailure {
            code: "InvalidSubnetID.NotFound",
            message: format!("The subnet ID '{}' does not exist", spec.subnet_id),
        })?;
        let zone = subnet.cfg.zone.clone();
        let itype =
            self.catalog.get(&spec.instance_type).filter(|_| self.catalog.offered_in(&spec.instance_type, &zone));
        let Some(itype) = itype else {
            if !catalog::is_ec2_type(&spec.instance_type) {
                return Err(LaunchFailure {
                    code: "InvalidParameterValue",
                    message: format!("Invalid value '{}' for InstanceType.", spec.instance_type),
                });
            }
            return Err(LaunchFailure {
                code: "Unsupported",
                message: format!(
                    "Your requested instance type ({}) is not supported in your requested Availability Zone ({zone}). Please retry your request by not specifying an Availability Zone or choosing {}.",
                    spec.instance_type,
                    self.other_zones(&zone)
                ),
            });
        };
        if let Some(img) = self.images.iter().find(|i| i.cfg.id == spec.image_id)
            && img.cfg.architecture != itype.architecture
        {
            return Err(LaunchFailure {
                code: "InvalidParameterValue",
                message: format!(
                    "The architecture '{}' of the specified instance type does not match the architecture '{}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.",
                    itype.architecture, img.cfg.architecture
                ),
            });
        }
        self.check_quota(ct, itype.vcpu)?;
        let pool = self.pool_of(&spec.instance_type, &zone).unwrap_or_default();
        if self.pools.available(ct, pool) == 0 {
            return Err(LaunchFailure {
                code: "InsufficientInstanceCapacity",
                message: match ct {
                    CapacityType::Spot => format!(
                        "We currently do not have sufficient {} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.",
                        spec.instance_type, spec.instance_type
                    ),
                    CapacityType::OnDemand => format!(
                        "We currently do not have sufficient {} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing {}.",
                        spec.instance_type,
                        spec.instance_type,
                        self.other_zones(&zone)
                    ),
                },
            });
        }
        if subnet.available_ips() == 0 {
            return Err(LaunchFailure {
                code: "InsufficientFreeAddressesInSubnet",
                message: format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                    spec.subnet_id
                ),
            });
        }
        Ok(())
    }

    /// Launches one instance in `pending`; it becomes `running` after the boot delay.
    pub fn launch(&mut self, spec: &LaunchSpec) -> Result<String, LaunchFailure> {
        self.check_launch(spec)?;
        let now = self.now();
        self.injected_ice(spec, now)?;
        let ct = spec.capacity_type.unwrap_or(CapacityType::OnDemand);
        let (zone, zone_id, vpc_id) = {
            let s = self
                .subnet(&spec.subnet_id)
                .ok_or_else(|| LaunchFailure { code: "InvalidSubnetID.NotFound", message: String::new() })?;
            (s.cfg.zone.clone(), s.zone_id.clone(), self.cfg.vpc.id.clone())
        };
        let ip = self
            .subnets
            .iter_mut()
            .find(|s| s.id() == spec.subnet_id)
            .and_then(Subnet::allocate_ip)
            .ok_or_else(|| LaunchFailure { code: "InsufficientFreeAddressesInSubnet", message: String::new() })?;
        let itype = self
            .catalog
            .get(&spec.instance_type)
            .cloned()
            .ok_or_else(|| LaunchFailure { code: "Unsupported", message: String::new() })?;
        let pool = self.pool_of(&spec.instance_type, &zone).unwrap_or_default();
        let id = self.rng.hex_id("i", 17);
        let spot_request = (ct == CapacityType::Spot).then(|| self.rng.alnum_id("sir", 8));
        let volume_id = self.rng.hex_id("vol", 17);
        let eni_id = self.rng.hex_id("eni", 17);
        let security_groups = spec
            .security_group_ids
            .iter()
            .map(|g| {
                let name = self
                    .security_groups
                    .iter()
                    .find(|s| &s.cfg.id == g)
                    .map(|s| s.cfg.name.clone())
                    .unwrap_or_default();
                (g.clone(), name)
            })
            .collect();
        let (root_dev, size, vtype) = spec.root_volume.clone().unwrap_or(("/dev/xvda".into(), 20, "gp3".into()));
        let mut tags = spec.tags.clone();
        if let Some(f) = &spec.fleet_id {
            tags.insert("aws:ec2:fleet-id".into(), f.clone());
        }
        if let Some(lt) = &spec.launch_template {
            tags.insert("aws:ec2launchtemplate:id".into(), lt.id.clone());
            tags.insert("aws:ec2launchtemplate:version".into(), lt.version.to_string());
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let inst = Instance {
            id: id.clone(),
            seq,
            reservation_id: spec.reservation_id.clone(),
            instance_type: spec.instance_type.clone(),
            zone: zone.clone(),
            zone_id,
            pool,
            subnet_id: spec.subnet_id.clone(),
            vpc_id,
            image_id: spec.image_id.clone(),
            architecture: itype.architecture.clone(),
            private_ip: ip,
            private_dns_name: network::private_dns_name(ip, &self.cfg.region),
            state: InstanceState::Pending,
            state_transition_reason: String::new(),
            state_reason: Some(("pending".into(), "pending".into())),
            launch_time: now,
            capacity_type: ct,
            spot_instance_request_id: spot_request,
            interruption_behavior: spec.interruption_behavior.clone().unwrap_or_else(|| "terminate".into()),
            security_groups,
            tags,
            user_data: spec.user_data.clone(),
            iam_instance_profile: spec.iam_instance_profile.clone(),
            metadata_options: spec.metadata_options.clone().unwrap_or_default(),
            block_devices: vec![instances::BlockDevice {
                device_name: root_dev,
                volume_id,
                volume_size_gib: size,
                volume_type: vtype,
                delete_on_termination: true,
            }],
            network_interface_id: eni_id,
            launch_template: spec.launch_template.clone(),
            key_name: spec.key_name.clone(),
            client_token: spec.client_token.clone(),
            fleet_id: spec.fleet_id.clone(),
            ami_launch_index: spec.ami_launch_index,
            instance_impaired_since: None,
            system_impaired_since: None,
            scheduled_events: Vec::new(),
            running_since: None,
            terminated_at: None,
            interruption_at: None,
        };
        self.instances.insert(seq, inst);
        self.instance_index.insert(id.clone(), seq);
        self.pools.take(ct, pool);
        self.count_quota(ct, itype.vcpu, true);
        self.record(StateChange { at: now, instance_id: id.clone(), from: None, to: InstanceState::Pending });
        self.outbox.push((
            now,
            crate::events::Kind::StateChange {
                instance_id: id.clone(),
                state: InstanceState::Pending.name().to_owned(),
            },
        ));
        let boot = self.cfg.lifecycle.boot_seconds * 1000;
        self.schedule(now + boot, Timer::FinishBoot(id.clone()));
        Ok(id)
    }

    /// Removes an instance that a failed all-or-nothing launch created: as if it never was.
    pub fn discard(&mut self, id: &str) {
        let Some(seq) = self.instance_index.remove(id) else {
            return;
        };
        let Some(inst) = self.instances.remove(&seq) else {
            return;
        };
        if inst.state.holds_capacity() {
            self.pools.give_back(inst.capacity_type, inst.pool);
            let vcpus = self.catalog.get(&inst.instance_type).map_or(0, |t| t.vcpu);
            self.count_quota(inst.capacity_type, vcpus, false);
        }
        if let Some(s) = self.subnets.iter_mut().find(|s| s.id() == inst.subnet_id) {
            s.release_ip(inst.private_ip);
        }
        self.timers.retain(|_, t| !matches!(t, Timer::FinishBoot(x) if x == id));
        self.state_changes.retain(|c| c.instance_id != id);
        self.outbox.retain(|(_, k)| k.instance_id() != Some(id));
    }

    /// Starts termination; returns (previous, current) state. Idempotent for terminated instances.
    pub fn terminate(&mut self, id: &str, reason: &str) -> Option<(InstanceState, InstanceState)> {
        let now = self.now();
        self.terminate_as(
            id,
            now,
            reason,
            "Client.UserInitiatedShutdown",
            "Client.UserInitiatedShutdown: User initiated shutdown",
        )
    }

    /// Starts termination at `at` with a given transition reason and state reason (code, message).
    pub fn terminate_as(
        &mut self,
        id: &str,
        now: Millis,
        reason: &str,
        code: &str,
        message: &str,
    ) -> Option<(InstanceState, InstanceState)> {
        let prev = self.instance(id)?.state;
        if matches!(prev, InstanceState::ShuttingDown | InstanceState::Terminated) {
            return Some((prev, prev));
        }
        self.set_state(id, InstanceState::ShuttingDown, now);
        if let Some(i) = self.instance_mut(id) {
            i.state_transition_reason =
                format!("{reason} ({})", clock::to_datetime(now).format("%Y-%m-%d %H:%M:%S GMT"));
            i.state_reason = Some((code.into(), message.into()));
        }
        let d = self.cfg.lifecycle.shutdown_seconds * 1000;
        self.schedule(now + d, Timer::FinishShutdown(id.to_owned()));
        Some((prev, InstanceState::ShuttingDown))
    }

    pub fn stop(&mut self, id: &str) -> Option<(InstanceState, InstanceState)> {
        let now = self.now();
        self.stop_as(
            id,
            now,
            "User initiated",
            "Client.UserInitiatedShutdown",
            "Client.UserInitiatedShutdown: User initiated shutdown",
        )
    }

    /// Starts a stop at `now` with a given transition reason and state reason (code, message).
    pub fn stop_as(
        &mut self,
        id: &str,
        now: Millis,
        reason: &str,
        code: &str,
        message: &str,
    ) -> Option<(InstanceState, InstanceState)> {
        let prev = self.instance(id)?.state;
        if prev != InstanceState::Running && prev != InstanceState::Pending {
            return Some((prev, prev));
        }
        self.set_state(id, InstanceState::Stopping, now);
        if let Some(i) = self.instance_mut(id) {
            i.state_transition_reason =
                format!("{reason} ({})", clock::to_datetime(now).format("%Y-%m-%d %H:%M:%S GMT"));
            i.state_reason = Some((code.into(), message.into()));
            i.running_since = None;
        }
        let d = self.cfg.lifecycle.stop_seconds * 1000;
        self.schedule(now + d, Timer::FinishStop(id.to_owned()));
        Some((prev, InstanceState::Stopping))
    }

    /// An injected capacity shortfall (admin fault or FIS action) for this launch's zone, if one
    /// fires now.
    fn injected_ice(&mut self, spec: &LaunchSpec, now: Millis) -> Result<(), LaunchFailure> {
        let Some(s) = self.subnet(&spec.subnet_id) else {
            return Ok(());
        };
        let (zone, zone_id) = (s.cfg.zone.clone(), s.zone_id.clone());
        if !self.faults.ice(&zone, &zone_id, now, &mut self.rng.faults) {
            return Ok(());
        }
        Err(LaunchFailure {
            code: "InsufficientInstanceCapacity",
            message: format!(
                "We currently do not have sufficient {} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing {}.",
                spec.instance_type,
                spec.instance_type,
                self.other_zones(&zone)
            ),
        })
    }

    /// Starts a stopped instance, if its pool and quota still have room.
    pub fn start(&mut self, id: &str) -> Result<Option<(InstanceState, InstanceState)>, LaunchFailure> {
        let now = self.now();
        self.start_at(id, now)
    }

    /// [`World::start`] as of world time `now` (a timer's due time).
    pub fn start_at(&mut self, id: &str, now: Millis) -> Result<Option<(InstanceState, InstanceState)>, LaunchFailure> {
        let Some(inst) = self.instance(id) else {
            return Ok(None);
        };
        let prev = inst.state;
        if prev != InstanceState::Stopped {
            return Ok(Some((prev, prev)));
        }
        let (ct, pool, itype) = (inst.capacity_type, inst.pool, inst.instance_type.clone());
        let vcpus = self.catalog.get(&itype).map_or(0, |t| t.vcpu);
        self.check_quota(ct, vcpus)?;
        if self.pools.available(ct, pool) == 0 {
            return Err(LaunchFailure {
                code: "InsufficientInstanceCapacity",
                message: format!("Insufficient capacity to start instance {id} of type {itype}."),
            });
        }
        self.set_state(id, InstanceState::Pending, now);
        if let Some(i) = self.instance_mut(id) {
            i.state_reason = None;
            i.state_transition_reason = String::new();
        }
        let boot = self.cfg.lifecycle.boot_seconds * 1000;
        self.schedule(now + boot, Timer::FinishBoot(id.to_owned()));
        Ok(Some((prev, InstanceState::Pending)))
    }
}

#[cfg(test)]
pub(crate) mod tests;
