//! The fake cloud: the EC2 world and the services beside it (the built-in SQS, the event bus,
//! injected faults and FIS, IAM, EKS) on one clock and one seeded RNG, composed here and held by
//! the server behind one lock ([`Shared`]).
//!
//! The seams between them:
//! - the world records events and timers in its outbox; [`Cloud::settle`] routes the events
//!   through the bus (to queues) and the timers into the one schedule ([`timers::Timers`]);
//! - FIS acts on the world, the fault injector and the bus only through [`crate::faults::fis::Lab`],
//!   which [`CloudLab`] implements over the other parts;
//! - a launch asks IAM about its instance profile and the fault injector about injected capacity
//!   shortfalls ([`crate::world::LaunchChecks`], which [`Neighbours`] implements);
//! - every service reads the time from [`Cloud::clock`] and draws from its stream of
//!   [`Cloud::rng`].

mod lab;
mod neighbours;
mod shared;
pub mod snapshot;
#[cfg(test)]
pub(crate) mod tests;
pub mod timers;

use std::path::Path;

pub use lab::CloudLab;
pub use neighbours::Neighbours;
pub use shared::{CloudGuard, Shared};
use timers::{Timer, Timers};

use crate::clock::{Clock, Millis};
use crate::eks::Eks;
use crate::events::{Bus, Event};
use crate::faults::Faults;
use crate::faults::fis::template::TemplateInput;
use crate::faults::fis::{Fis, FisError, StartOptions};
use crate::iam::Iam;
use crate::rng::Streams;
use crate::sqs::Queues;
use crate::world::config::{ConfigError, WorldConfig};
use crate::world::instances::InstanceState;
use crate::world::interruption::{InterruptOptions, Interruption};
use crate::world::{LaunchFailure, LaunchSpec, World, WorldError};

#[derive(Debug)]
pub struct Cloud {
    pub seed: u64,
    /// The one clock every service runs on.
    pub clock: Clock,
    /// The one seeded RNG: a stream per subsystem.
    pub rng: Streams,
    /// The EC2 world.
    pub ec2: World,
    /// The built-in SQS.
    pub sqs: Queues,
    /// EventBridge rules and the event log.
    pub events: Bus,
    /// Injected API faults (admin API and FIS actions).
    pub faults: Faults,
    /// FIS experiment templates and experiments.
    pub fis: Fis,
    /// IAM roles and instance profiles.
    pub iam: Iam,
    /// The EKS cluster.
    pub eks: Eks,
    timers: Timers,
}

type Transition = Option<(InstanceState, InstanceState)>;

impl Cloud {
    pub fn from_file(path: &Path, seed: u64) -> Result<Self, WorldError> {
        let cfg = WorldConfig::load(path)?;
        Self::new(cfg, seed, path.parent().unwrap_or(Path::new(".")))
    }

    /// The cloud a world file describes; `base_dir` resolves the files it names.
    pub fn new(cfg: WorldConfig, seed: u64, base_dir: &Path) -> Result<Self, WorldError> {
        let start = cfg.clock.start_millis();
        let invalid = |path: &str| {
            let path = path.to_owned();
            move |message| ConfigError::Invalid { path, message }
        };
        let events = Bus::new(&cfg.rules).map_err(invalid("rules"))?;
        let sqs = Queues::from_config(&cfg.region, &cfg.account_id, &cfg.queues, start).map_err(invalid("queues"))?;
        let clock = Clock::new(cfg.clock.mode, cfg.clock.factor, start);
        let mut rng = Streams::new(seed);
        let iam = Iam::new(cfg.iam.as_ref(), &cfg.account_id, start, &mut rng).map_err(invalid("iam"))?;
        let eks = Eks::new(cfg.cluster.as_ref(), &cfg.region, &cfg.account_id, &eks_network(&cfg));
        let ec2 = World::new(cfg, seed, base_dir, start)?;
        let mut cloud = Self {
            seed,
            clock,
            rng,
            ec2,
            sqs,
            events,
            faults: Faults::default(),
            fis: Fis::default(),
            iam,
            eks,
            timers: Timers::default(),
        };
        cloud.settle();
        Ok(cloud)
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn region(&self) -> &str {
        self.ec2.region()
    }

    pub fn account_id(&self) -> &str {
        &self.ec2.cfg.account_id
    }

    /// Earliest pending timer of any service, for the background clock driver.
    pub fn next_timer_at(&self) -> Option<Millis> {
        self.timers.next_at()
    }

    /// The parts FIS acts on, with FIS itself beside them.
    pub fn lab(&mut self) -> (&mut Fis, CloudLab<'_>) {
        let Self { ec2, faults, events, sqs, rng, timers, fis, .. } = self;
        (fis, CloudLab { world: ec2, faults, bus: events, queues: sqs, rng, timers })
    }

    /// Routes what the world has asked for since the last call (see [`CloudLab::settle`]).
    pub fn settle(&mut self) {
        self.lab().1.settle();
    }

    /// Applies every timer due by the clock's current time, in time order, across services.
    pub fn sync(&mut self) {
        self.settle();
        let now = self.now();
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Ec2(t) => {
                    self.ec2.fire(at, t, &mut self.rng);
                    self.settle();
                }
                Timer::Experiment(id) => {
                    let (fis, mut lab) = self.lab();
                    fis.step(&id, at, &mut lab);
                }
            }
        }
        self.faults.prune(now);
    }

    /// Moves world time forward and applies what became due.
    pub fn advance(&mut self, by: Millis) {
        self.clock.advance(by);
        self.sync();
    }

    /// Runs one world operation now and routes what it asked for.
    fn on_world<T>(&mut self, op: impl FnOnce(&mut World, Millis, &mut Streams, &mut Neighbours<'_>) -> T) -> T {
        self.settle();
        let now = self.now();
        let mut neighbours = Neighbours { faults: &mut self.faults, iam: &self.iam, clock: &self.clock };
        let out = op(&mut self.ec2, now, &mut self.rng, &mut neighbours);
        self.settle();
        out
    }

    /// Launches one instance now (instance profile and injected capacity shortfalls checked).
    pub fn launch(&mut self, spec: &LaunchSpec) -> Result<String, LaunchFailure> {
        self.on_world(|w, now, rng, neighbours| w.launch(spec, now, rng, neighbours))
    }

    pub fn terminate(&mut self, id: &str, reason: &str) -> Transition {
        self.on_world(|w, now, _, _| w.terminate(id, reason, now))
    }

    pub fn stop(&mut self, id: &str) -> Transition {
        self.on_world(|w, now, _, _| w.stop(id, now))
    }

    pub fn start(&mut self, id: &str) -> Result<Transition, LaunchFailure> {
        self.on_world(|w, now, _, _| w.start(id, now))
    }

    /// Starts the spot interruption sequence for an instance now.
    pub fn interrupt(&mut self, id: &str, opts: InterruptOptions) -> Result<Interruption, String> {
        self.on_world(|w, now, _, _| w.interrupt(id, opts, now))
    }

    /// Reclaims spot capacity the pools no longer have (see [`World::reclaim_over_capacity`]).
    pub fn reclaim_over_capacity(&mut self) -> Vec<Interruption> {
        self.on_world(|w, now, rng, _| w.reclaim_over_capacity(now, rng))
    }

    /// Publishes an AWS Health scheduled change for instances; returns the event.
    pub fn health_event(
        &mut self,
        ids: &[String],
        event_type_code: &str,
        start_in_seconds: i64,
        duration_seconds: Option<i64>,
    ) -> Result<Event, String> {
        let (now, kind) = self.on_world(|w, now, _, _| {
            (now, w.health_event(ids, event_type_code, start_in_seconds, duration_seconds, now))
        });
        Ok(self.lab().1.publish_event(now, kind?, None))
    }

    /// `CreateExperimentTemplate`.
    pub fn create_experiment_template(&mut self, input: TemplateInput) -> Result<String, FisError> {
        let now = self.now();
        let (fis, mut lab) = self.lab();
        fis.create_template(input, now, &mut lab)
    }

    /// `StartExperiment`.
    pub fn start_experiment(&mut self, template_id: &str, start: StartOptions<'_>) -> Result<String, FisError> {
        self.settle();
        let now = self.now();
        let (fis, mut lab) = self.lab();
        fis.start_experiment(template_id, start, now, &mut lab)
    }

    /// `StopExperiment`.
    pub fn stop_experiment(&mut self, id: &str) -> Result<(), FisError> {
        self.settle();
        let now = self.now();
        let (fis, mut lab) = self.lab();
        fis.stop_experiment(id, now, &mut lab)
    }
}

/// The cluster's network as the world file has it.
fn eks_network(cfg: &WorldConfig) -> crate::eks::Network {
    crate::eks::Network {
        vpc_id: cfg.vpc.id.clone(),
        subnet_ids: cfg.subnets.iter().map(|s| s.id.clone()).collect(),
        security_groups: cfg.security_groups.iter().map(|g| (g.id.clone(), g.tags.clone())).collect(),
    }
}
