//! Instance lifecycles on the clock: state changes (with capacity, quota and event bookkeeping),
//! terminate, stop and start, and the EC2 timers that finish them.

use super::World;
use super::instances::{InstanceState, StateChange, Timer};
use super::launch::LaunchFailure;
use super::pools::CapacityType;
use crate::clock::{self, Millis};
use crate::events::Kind;
use crate::rng::Streams;

/// The state reason (code, message) EC2 gives an instance its owner stopped or terminated.
const USER_SHUTDOWN: (&str, &str) =
    ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown");

impl World {
    /// Applies one EC2 timer that is due at `at` (`rng` for the market's draws).
    pub fn fire(&mut self, at: Millis, timer: Timer, rng: &mut Streams) {
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
            Timer::MarketTick => self.market_tick(at, rng),
            Timer::RestoreCapacity(pool, cap) => {
                if self.pools.capacity(CapacityType::Spot, pool) < cap {
                    self.pools.set_capacity(CapacityType::Spot, pool, cap);
                }
            }
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
        self.emit(at, Kind::StateChange { instance_id: id.to_owned(), state: to.name().to_owned() });
    }

    /// Moves `id` to `to` at `now`, noting why as EC2 shows it: the transition reason with its
    /// time, and the state reason (code, message).
    fn begin_transition(
        &mut self,
        id: &str,
        to: InstanceState,
        now: Millis,
        reason: &str,
        (code, message): (&str, &str),
    ) -> Option<&mut super::instances::Instance> {
        self.set_state(id, to, now);
        let i = self.instance_mut(id)?;
        i.state_transition_reason = format!("{reason} ({})", clock::to_datetime(now).format("%Y-%m-%d %H:%M:%S GMT"));
        i.state_reason = Some((code.into(), message.into()));
        Some(i)
    }

    /// Starts termination; returns (previous, current) state. Idempotent for terminated instances.
    pub fn terminate(&mut self, id: &str, reason: &str, now: Millis) -> Option<(InstanceState, InstanceState)> {
        self.terminate_as(id, now, reason, USER_SHUTDOWN.0, USER_SHUTDOWN.1)
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
        if prev.is_terminating_or_terminated() {
            return Some((prev, prev));
        }
        self.begin_transition(id, InstanceState::ShuttingDown, now, reason, (code, message));
        let d = self.cfg.lifecycle.shutdown_seconds * 1000;
        self.schedule(now + d, Timer::FinishShutdown(id.to_owned()));
        Some((prev, InstanceState::ShuttingDown))
    }

    pub fn stop(&mut self, id: &str, now: Millis) -> Option<(InstanceState, InstanceState)> {
        self.stop_as(id, now, "User initiated", USER_SHUTDOWN.0, USER_SHUTDOWN.1)
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
        if let Some(i) = self.begin_transition(id, InstanceState::Stopping, now, reason, (code, message)) {
            i.running_since = None;
        }
        let d = self.cfg.lifecycle.stop_seconds * 1000;
        self.schedule(now + d, Timer::FinishStop(id.to_owned()));
        Some((prev, InstanceState::Stopping))
    }

    /// Starts a stopped instance at `now`, if its pool and quota still have room.
    pub fn start(&mut self, id: &str, now: Millis) -> Result<Option<(InstanceState, InstanceState)>, LaunchFailure> {
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
