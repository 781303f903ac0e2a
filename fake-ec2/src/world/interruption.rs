//! Spot interruptions on the world clock, as FIS `aws:ec2:send-spot-instance-interruptions` and
//! the spot market run them (peers.md §5):
//!
//! - t0: optional `EC2 Instance Rebalance Recommendation`;
//! - t0 + D − notice (D defaults to the notice, 2 minutes): `EC2 Spot Instance Interruption Warning`
//!   with the instance's interruption behaviour as `instance-action`;
//! - t0 + D: the stop (hibernate is treated as stop) or terminate, whose state changes publish
//!   their own `EC2 Instance State-change Notification`s.
//!
//! Also AWS Health scheduled changes, and the market reclaiming spot capacity a pool no longer has.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use serde::Serialize;

use super::World;
use super::instances::Timer;
use super::pools::{CapacityType, PoolId};
use crate::clock::Millis;
use crate::events::Kind;
use crate::rng::Streams;
use crate::rng::{hash_str, unit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptOptions {
    /// Send a rebalance recommendation at t0 first.
    pub rebalance_first: bool,
    /// Seconds between the warning and the reclaim (EC2: 120).
    pub notice_seconds: i64,
    /// Seconds from t0 to the reclaim (FIS `durationBeforeInterruption`); the notice when absent.
    pub duration_seconds: Option<i64>,
}

impl Default for InterruptOptions {
    fn default() -> Self {
        Self { rebalance_first: true, notice_seconds: 120, duration_seconds: None }
    }
}

/// An interruption under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interruption {
    pub instance_id: String,
    /// terminate | stop | hibernate
    pub action: String,
    pub warning_at: Millis,
    pub reclaim_at: Millis,
}

/// The EC2 scheduled-event code (DescribeInstanceStatus) for an AWS Health event type code.
pub fn scheduled_event_code(health_code: &str) -> &'static str {
    if health_code.contains("RETIREMENT") {
        "instance-retirement"
    } else if health_code.contains("SYSTEM_REBOOT") {
        "system-reboot"
    } else if health_code.contains("REBOOT") {
        "instance-reboot"
    } else if health_code.contains("STOP") {
        "instance-stop"
    } else {
        "system-maintenance"
    }
}

impl World {
    /// Starts, at `now`, the interruption sequence for a spot instance that is pending or running.
    pub fn interrupt(&mut self, id: &str, opts: InterruptOptions, now: Millis) -> Result<Interruption, String> {
        let inst = self.instance(id).ok_or_else(|| format!("no instance {id}"))?;
        if inst.capacity_type != CapacityType::Spot {
            return Err(format!("{id} is not a spot instance"));
        }
        if !inst.state.holds_capacity() {
            return Err(format!("{id} is {}", inst.state.name()));
        }
        if inst.interruption_at.is_some() {
            return Err(format!("{id} is already being interrupted"));
        }
        let action = inst.interruption_behavior.clone();
        let notice = opts.notice_seconds.max(0) * 1000;
        let duration = opts.duration_seconds.map_or(notice, |d| d.max(0) * 1000).max(notice);
        let (warning_at, reclaim_at) = (now + duration - notice, now + duration);
        if let Some(i) = self.instance_mut(id) {
            i.interruption_at = Some(reclaim_at);
        }
        if opts.rebalance_first {
            self.emit(now, Kind::Rebalance { instance_id: id.to_owned() });
        }
        if warning_at <= now {
            self.interruption_warning(id, now);
        } else {
            self.schedule(warning_at, Timer::InterruptionWarning(id.to_owned()));
        }
        self.schedule(reclaim_at, Timer::Reclaim(id.to_owned()));
        Ok(Interruption { instance_id: id.to_owned(), action, warning_at, reclaim_at })
    }

    pub(super) fn interruption_warning(&mut self, id: &str, at: Millis) {
        let Some(i) = self.instance(id).filter(|i| i.state.holds_capacity() && i.interruption_at.is_some()) else {
            return;
        };
        let action = i.interruption_behavior.clone();
        self.emit(at, Kind::SpotInterruption { instance_id: id.to_owned(), action });
    }

    pub(super) fn reclaim(&mut self, id: &str, at: Millis) {
        let Some(i) = self.instance_mut(id) else {
            return;
        };
        let (state, behavior) = (i.state, i.interruption_behavior.clone());
        i.interruption_at = None;
        if !state.holds_capacity() {
            return;
        }
        if behavior == "stop" || behavior == "hibernate" {
            self.stop_as(
                id,
                at,
                "Service initiated",
                "Server.SpotInstanceShutdown",
                "Server.SpotInstanceShutdown: Spot instance shutdown",
            );
        } else {
            self.terminate_as(
                id,
                at,
                "Service initiated",
                "Server.SpotInstanceTermination",
                "Server.SpotInstanceTermination: Spot instance termination",
            );
        }
    }

    /// Schedules an AWS Health scheduled change for instances at `now` and lists it in their
    /// DescribeInstanceStatus events; returns the Health event for the caller to publish.
    pub fn health_event(
        &mut self,
        ids: &[String],
        event_type_code: &str,
        start_in_seconds: i64,
        duration_seconds: Option<i64>,
        now: Millis,
    ) -> Result<Kind, String> {
        if ids.is_empty() {
            return Err("instance_ids must name at least one instance".into());
        }
        if let Some(missing) = ids.iter().find(|id| self.instance(id).is_none()) {
            return Err(format!("no instance {missing}"));
        }
        let start = now + start_in_seconds.max(0) * 1000;
        let end = duration_seconds.map(|d| start + d.max(0) * 1000);
        let description = format!(
            "EC2 has detected degradation of the underlying hardware hosting your Amazon EC2 instance(s) and has scheduled {} on or after {}.",
            scheduled_event_code(event_type_code),
            crate::events::health_time(start)
        );
        let code = scheduled_event_code(event_type_code);
        for id in ids {
            if let Some(i) = self.instance_mut(id) {
                i.scheduled_events.push((code.to_owned(), description.clone(), start));
            }
            if matches!(code, "instance-stop" | "instance-retirement") {
                self.schedule(start, Timer::ScheduledChange(id.clone(), code.to_owned()));
            }
        }
        Ok(Kind::Health {
            event_type_code: event_type_code.to_owned(),
            instance_ids: ids.to_vec(),
            start,
            end,
            description,
        })
    }

    /// A scheduled change reaching its start: `instance-stop` stops the instance and
    /// `instance-retirement` terminates it (reboots and maintenance change nothing here).
    pub(super) fn scheduled_change(&mut self, id: &str, code: &str, at: Millis) {
        // Server.ScheduledStop is EC2's state reason for scheduled retirement; EC2 documents no
        // separate code for a terminating retirement, so both use it.
        match code {
            "instance-stop" => {
                self.stop_as(
                    id,
                    at,
                    "Service initiated",
                    "Server.ScheduledStop",
                    "Server.ScheduledStop: Stopped due to scheduled retirement",
                );
            }
            "instance-retirement" => {
                self.terminate_as(
                    id,
                    at,
                    "Service initiated",
                    "Server.ScheduledStop",
                    "Server.ScheduledStop: Terminated due to scheduled retirement",
                );
            }
            _ => {}
        }
    }

    /// Reclaims spot capacity the pools no longer have: in every spot pool holding more pending or
    /// running instances than its capacity, the seed picks that many victims not yet being
    /// interrupted, and each goes through the full interruption sequence. Returns them.
    pub fn reclaim_over_capacity(&mut self, now: Millis, rng: &mut Streams) -> Vec<Interruption> {
        let mut by_pool: BTreeMap<PoolId, (Vec<String>, u32)> = BTreeMap::new();
        for i in self.instances.values() {
            if i.capacity_type != CapacityType::Spot || !i.state.holds_capacity() {
                continue;
            }
            let e = by_pool.entry(i.pool).or_default();
            if i.interruption_at.is_some() {
                e.1 += 1;
            } else {
                e.0.push(i.id.clone());
            }
        }
        let mut victims = Vec::new();
        for (pool, (mut candidates, interrupting)) in by_pool {
            let used = candidates.len() as u32 + interrupting;
            let excess =
                used.saturating_sub(self.pools.capacity(CapacityType::Spot, pool)).saturating_sub(interrupting);
            if excess == 0 {
                continue;
            }
            candidates.shuffle(&mut rng.market);
            victims.extend(candidates.into_iter().take(excess as usize));
        }
        victims.iter().filter_map(|id| self.interrupt(id, InterruptOptions::default(), now).ok()).collect()
    }

    /// One draw of the seeded capacity process: each pool holding spot instances may lose
    /// capacity (a pure function of seed, pool and tick), and the market reclaims the excess.
    pub(super) fn market_tick(&mut self, at: Millis, rng: &mut Streams) {
        let Some(r) = self.cfg.pools.spot.reclaim.clone() else {
            return;
        };
        let tick = ((at - self.started_at) / (r.tick_seconds * 1000)) as u64;
        let pools: std::collections::BTreeSet<PoolId> = self
            .instances
            .values()
            .filter(|i| i.capacity_type == CapacityType::Spot && i.state.holds_capacity())
            .map(|i| i.pool)
            .collect();
        for pool in pools {
            if unit(&[self.seed, hash_str("reclaim"), self.pools.key(pool), tick]) >= r.probability {
                continue;
            }
            let used = self.pools.used(CapacityType::Spot, pool);
            let share = unit(&[self.seed, hash_str("reclaim-share"), self.pools.key(pool), tick]);
            let take = ((f64::from(used) * r.max_share * share).ceil() as u32).clamp(1, used.max(1));
            let before = self.pools.capacity(CapacityType::Spot, pool);
            self.pools.set_capacity(CapacityType::Spot, pool, used.saturating_sub(take).min(before));
            self.schedule(at + r.recover_seconds * 1000, Timer::RestoreCapacity(pool, before));
        }
        self.reclaim_over_capacity(at, rng);
        self.schedule(at + r.tick_seconds * 1000, Timer::MarketTick);
    }
}
