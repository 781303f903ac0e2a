//! The cloud's parts other than FIS, borrowed together: where the world's outbox is routed
//! ([`CloudLab::settle`]) and what FIS acts on ([`Lab`]).

use serde_json::Value;

use super::timers::{Timer, Timers};
use crate::clock::Millis;
use crate::events::{Bus, Event, Kind, Origin, event_id};
use crate::faults::Faults;
use crate::faults::fis::Lab;
use crate::faults::injection::Fault;
use crate::rng::Streams;
use crate::sqs::Queues;
use crate::world::World;
use crate::world::instances::InstanceState;
use crate::world::interruption::{InterruptOptions, Interruption};
use crate::world::launch::LaunchFailure;

pub struct CloudLab<'a> {
    pub(super) world: &'a mut World,
    pub(super) faults: &'a mut Faults,
    pub(super) bus: &'a mut Bus,
    pub(super) queues: &'a mut Queues,
    pub(super) rng: &'a mut Streams,
    pub(super) timers: &'a mut Timers,
}

impl CloudLab<'_> {
    /// Routes what the world's operations asked for since the last call: timers into the one
    /// schedule, events (in the order they happened) through the bus to their queues.
    pub fn settle(&mut self) {
        if !self.world.has_outbox() {
            return;
        }
        let out = self.world.take_outbox();
        for (at, t) in out.timers {
            self.timers.schedule(at, Timer::Ec2(t));
        }
        for (at, kind) in out.events {
            self.publish_event(at, kind, None);
        }
    }

    /// Gives an event its id (from the `events` stream) and publishes it through the bus.
    pub fn publish_event(&mut self, at: Millis, kind: Kind, note: Option<&Value>) -> Event {
        let id = event_id(&mut self.rng.events);
        let cfg = &self.world.cfg;
        let event = Event::build(kind, id, at, Origin { account: &cfg.account_id, region: &cfg.region });
        self.bus.publish_noted(&event, at, self.queues, &mut self.rng.sqs, note);
        event
    }
}

/// FIS's actions go through the world's public operations; each is settled at once, so the
/// events they cause come before whatever the experiment reports next.
impl Lab for CloudLab<'_> {
    fn world(&self) -> &World {
        self.world
    }

    fn rng(&mut self) -> &mut Streams {
        self.rng
    }

    fn interrupt(&mut self, id: &str, opts: InterruptOptions, at: Millis) -> Result<Interruption, String> {
        let r = self.world.interrupt(id, opts, at);
        self.settle();
        r
    }

    fn stop(&mut self, id: &str, at: Millis) -> Option<(InstanceState, InstanceState)> {
        let r = self.world.stop(id, at);
        self.settle();
        r
    }

    fn terminate(&mut self, id: &str, at: Millis) -> Option<(InstanceState, InstanceState)> {
        let r = self.world.terminate(id, "User initiated", at);
        self.settle();
        r
    }

    fn start(&mut self, id: &str, at: Millis) -> Result<Option<(InstanceState, InstanceState)>, LaunchFailure> {
        let r = self.world.start(id, at);
        self.settle();
        r
    }

    fn add_fault(&mut self, fault: Fault) -> Fault {
        self.faults.add(fault)
    }

    fn remove_faults(&mut self, source: &str) {
        self.faults.remove_source(source);
    }

    fn publish(&mut self, at: Millis, kind: Kind, note: Option<Value>) {
        self.settle();
        self.publish_event(at, kind, note.as_ref());
    }

    fn wake(&mut self, at: Millis, experiment_id: &str) {
        self.settle();
        self.timers.schedule(at, Timer::Experiment(experiment_id.to_owned()));
    }
}
