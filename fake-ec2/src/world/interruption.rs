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
use super::clock::Millis;
use super::instances::Timer;
use super::pools::{CapacityType, PoolId};
use super::rng::{hash_str, unit};
use crate::events::{Event, Kind};

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
    /// Starts the interruption sequence for a spot instance that is pending or running.
    pub fn interrupt(&mut self, id: &str, opts: InterruptOptions) -> Result<Interruption, String> {
        self.flush_events();
        let now = self.now();
        self.interrupt_at(id, opts, now)
    }

    /// [`World::interrupt`] as of world time `now` (a timer's due time).
    pub(crate) fn interrupt_at(
        &mut self,
        id: &str,
        opts: InterruptOptions,
        now: Millis,
    ) -> Result<Interruption, String> {
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

    /// Publishes an AWS Health scheduled change for instances and lists it in their
    /// DescribeInstanceStatus events.
    pub fn health_event(
        &mut self,
        ids: &[String],
        event_type_code: &str,
        start_in_seconds: i64,
        duration_seconds: Option<i64>,
    ) -> Result<Event, String> {
        self.flush_events();
        if ids.is_empty() {
            return Err("instance_ids must name at least one instance".into());
        }
        if let Some(missing) = ids.iter().find(|id| self.instance(id).is_none()) {
            return Err(format!("no instance {missing}"));
        }
        let now = self.now();
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
        Ok(self.emit(
            now,
            Kind::Health {
                event_type_code: event_type_code.to_owned(),
                instance_ids: ids.to_vec(),
                start,
                end,
                description,
            },
        ))
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
    pub fn reclaim_over_capacity(&mut self) -> Vec<Interruption> {
        self.flush_events();
        let now = self.now();
        self.reclaim_over_capacity_at(now)
    }

    fn reclaim_over_capacity_at(&mut self, now: Millis) -> Vec<Interruption> {
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
            candidates.shuffle(&mut self.rng.market);
            victims.extend(candidates.into_iter().take(excess as usize));
        }
        victims.iter().filter_map(|id| self.interrupt_at(id, InterruptOptions::default(), now).ok()).collect()
    }

    /// One draw of the seeded capacity process: each pool holding spot instances may lose
    /// capacity (a pure function of seed, pool and tick), and the market reclaims the excess.
    pub(super) fn market_tick(&mut self, at: Millis) {
        let Some(r) = self.cfg.pools.spot.reclaim.clone() else {
            return;
        };
        let tick = (at / (r.tick_seconds * 1000)) as u64;
        let pools: std::collections::BTreeSet<PoolId> = self
            .instances
            .values()
            .filter(|i| i.capacity_type == CapacityType::Spot && i.state.holds_capacity())
            .map(|i| i.pool)
            .collect();
        for pool in pools {
            if unit(&[self.seed, hash_str("reclaim"), pool as u64, tick]) >= r.probability {
                continue;
            }
            let used = self.pools.used(CapacityType::Spot, pool);
            let share = unit(&[self.seed, hash_str("reclaim-share"), pool as u64, tick]);
            let take = ((f64::from(used) * r.max_share * share).ceil() as u32).clamp(1, used.max(1));
            let before = self.pools.capacity(CapacityType::Spot, pool);
            self.pools.set_capacity(CapacityType::Spot, pool, used.saturating_sub(take).min(before));
            self.schedule(at + r.recover_seconds * 1000, Timer::RestoreCapacity(pool, before));
        }
        self.reclaim_over_capacity_at(at);
        self.schedule(at + r.tick_seconds * 1000, Timer::MarketTick);
    }
}

#[cfg(test)]
mod tests {
    use super::super::LaunchSpec;
    use super::super::instances::InstanceState;
    use super::super::tests::test_world;
    use super::*;

    fn spot(w: &mut World, behavior: &str) -> String {
        let spec = LaunchSpec {
            instance_type: "m5.large".into(),
            subnet_id: "subnet-0a1a1a1a1a1a1a1a1".into(),
            image_id: "ami-0a0b0c0d0e0f10111".into(),
            capacity_type: Some(CapacityType::Spot),
            interruption_behavior: Some(behavior.into()),
            reservation_id: "r-1".into(),
            ..Default::default()
        };
        w.launch(&spec).unwrap_or_default()
    }

    fn kinds(w: &World) -> Vec<String> {
        w.events
            .log_since(0)
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                let d = &v["event"]["detail"];
                format!(
                    "{} {} {}",
                    v["event"]["time"].as_str().unwrap_or_default(),
                    v["event"]["detail-type"].as_str().unwrap_or_default(),
                    d["state"].as_str().or(d["instance-action"].as_str()).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn interruption_runs_on_the_clock() {
        let mut w = test_world(1);
        let id = spot(&mut w, "terminate");
        w.clock.advance(15_000);
        w.sync();
        let i = w.interrupt(&id, InterruptOptions::default());
        assert!(i.is_ok(), "{i:?}");
        assert!(w.interrupt(&id, InterruptOptions::default()).is_err(), "once");
        w.clock.advance(119_000);
        w.sync();
        assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Running));
        w.clock.advance(1_000);
        w.sync();
        assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::ShuttingDown));
        assert_eq!(
            w.instance(&id).and_then(|i| i.state_reason.clone()).map(|r| r.0).as_deref(),
            Some("Server.SpotInstanceTermination")
        );
        w.clock.advance(10_000);
        w.sync();
        assert_eq!(
            kinds(&w),
            [
                "2026-01-01T00:00:00Z EC2 Instance State-change Notification pending",
                "2026-01-01T00:00:15Z EC2 Instance State-change Notification running",
                "2026-01-01T00:00:15Z EC2 Instance Rebalance Recommendation ",
                "2026-01-01T00:00:15Z EC2 Spot Instance Interruption Warning terminate",
                "2026-01-01T00:02:15Z EC2 Instance State-change Notification shutting-down",
                "2026-01-01T00:02:25Z EC2 Instance State-change Notification terminated",
            ]
        );
    }

    #[test]
    fn longer_duration_delays_the_warning_and_stop_behaviour_stops() {
        let mut w = test_world(1);
        let id = spot(&mut w, "hibernate");
        w.sync();
        let opts = InterruptOptions { rebalance_first: false, notice_seconds: 120, duration_seconds: Some(300) };
        let i = w.interrupt(&id, opts).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(i.reclaim_at - i.warning_at, 120_000);
        w.clock.advance(400_000);
        w.sync();
        assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Stopped));
        assert_eq!(
            kinds(&w),
            [
                "2026-01-01T00:00:00Z EC2 Instance State-change Notification pending",
                "2026-01-01T00:00:15Z EC2 Instance State-change Notification running",
                "2026-01-01T00:03:00Z EC2 Spot Instance Interruption Warning hibernate",
                "2026-01-01T00:05:00Z EC2 Instance State-change Notification stopping",
                "2026-01-01T00:05:10Z EC2 Instance State-change Notification stopped",
            ]
        );
    }

    #[test]
    fn on_demand_and_gone_instances_are_not_interrupted() {
        let mut w = test_world(1);
        assert!(w.interrupt("i-0nope", InterruptOptions::default()).is_err());
        let id = spot(&mut w, "terminate");
        w.terminate(&id, "User initiated");
        assert!(w.interrupt(&id, InterruptOptions::default()).is_err());
    }

    #[test]
    fn discarded_launches_publish_nothing() {
        let mut w = test_world(1);
        let id = spot(&mut w, "terminate");
        w.discard(&id);
        w.sync();
        assert_eq!(w.events.published(), 0);
    }

    #[test]
    fn lowering_capacity_reclaims_seeded_victims() {
        let pick = |seed| {
            let mut w = test_world(seed);
            let ids: Vec<String> = (0..6).map(|_| spot(&mut w, "terminate")).collect();
            let pool = w.pool_of("m5.large", "us-west-2a").unwrap_or_default();
            w.pools.set_capacity(CapacityType::Spot, pool, 4);
            let v: Vec<String> = w.reclaim_over_capacity().into_iter().map(|i| i.instance_id).collect();
            assert_eq!(v.len(), 2);
            assert!(w.reclaim_over_capacity().is_empty(), "victims already under way count");
            v.iter().map(|id| ids.iter().position(|x| x == id).unwrap_or(99)).collect::<Vec<_>>()
        };
        assert_eq!(pick(3), pick(3));
        assert!((1..20).any(|s| pick(s) != pick(3)), "the seed decides");
    }

    #[test]
    fn the_capacity_process_reclaims_on_the_clock_by_the_seed() {
        let run = |seed| {
            let text = include_str!("../../../fixtures/worlds/default.yaml").replace("mode: real", "mode: manual");
            let mut cfg =
                super::super::WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}"));
            cfg.pools.spot.reclaim = Some(super::super::config::ReclaimConfig {
                tick_seconds: 60,
                probability: 1.0,
                max_share: 0.5,
                recover_seconds: 600,
            });
            let mut w = World::new(cfg, seed, std::path::Path::new(".")).unwrap_or_else(|e| unreachable!("{e}"));
            let ids: Vec<String> = (0..4).map(|_| spot(&mut w, "terminate")).collect();
            let pool = w.pool_of("m5.large", "us-west-2a").unwrap_or_default();
            w.clock.advance(60_000);
            w.sync();
            let cap = w.pools.capacity(CapacityType::Spot, pool);
            assert!(cap < 4, "capacity dropped: {cap}");
            let warned: Vec<usize> = w
                .instances
                .values()
                .filter(|i| i.interruption_at == Some(180_000 + 1_767_225_600_000))
                .map(|i| ids.iter().position(|x| *x == i.id).unwrap_or(99))
                .collect();
            assert_eq!(warned.len(), 4 - cap as usize);
            w.clock.advance(600_000);
            w.sync();
            assert_eq!(w.pools.capacity(CapacityType::Spot, pool), 200, "capacity comes back");
            (warned, w.events.log_since(0).map(str::to_owned).collect::<Vec<_>>())
        };
        assert_eq!(run(5), run(5));
    }

    #[test]
    fn health_event_lists_a_scheduled_event() {
        let mut w = test_world(1);
        let id = spot(&mut w, "terminate");
        let e = w.health_event(std::slice::from_ref(&id), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", 3600, None);
        assert!(e.is_ok());
        assert_eq!(w.instance(&id).map(|i| i.scheduled_events[0].0.clone()).as_deref(), Some("instance-retirement"));
        assert!(w.health_event(&["i-0nope".into()], "X", 0, None).is_err());
    }

    #[test]
    fn scheduled_changes_retire_instances_at_their_start() {
        let mut w = test_world(1);
        let (retire, stop, reboot) = (spot(&mut w, "terminate"), spot(&mut w, "terminate"), spot(&mut w, "terminate"));
        w.clock.advance(15_000);
        w.sync();
        let ok = [
            w.health_event(std::slice::from_ref(&retire), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", 600, None),
            w.health_event(std::slice::from_ref(&stop), "AWS_EC2_INSTANCE_STOP_SCHEDULED", 600, None),
            w.health_event(std::slice::from_ref(&reboot), "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", 600, None),
        ];
        assert!(ok.iter().all(Result::is_ok));
        w.clock.advance(599_000);
        w.sync();
        let state = |w: &World, id: &str| w.instance(id).map(|i| i.state);
        assert_eq!(state(&w, &retire), Some(InstanceState::Running));
        w.clock.advance(1_000);
        w.sync();
        assert_eq!(state(&w, &retire), Some(InstanceState::ShuttingDown));
        assert_eq!(state(&w, &stop), Some(InstanceState::Stopping));
        assert_eq!(state(&w, &reboot), Some(InstanceState::Running));
        assert_eq!(
            w.instance(&stop).and_then(|i| i.state_reason.clone()).map(|r| r.0).as_deref(),
            Some("Server.ScheduledStop")
        );
    }
}
