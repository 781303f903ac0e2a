//! The EC2 world on the cloud's clock: lifecycles, quotas, interruptions and the market, with their
//! events routed through the bus.

use std::path::Path;

use super::Cloud;
use crate::world::LaunchSpec;
use crate::world::config::{ReclaimConfig, WorldConfig};
use crate::world::instances::InstanceState;
use crate::world::interruption::InterruptOptions;
use crate::world::pools::CapacityType;

pub(crate) fn test_cloud(seed: u64) -> Cloud {
    let text = include_str!("../../../fixtures/worlds/default.yaml").replace("mode: real", "mode: manual");
    let cfg = WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}"));
    Cloud::new(cfg, seed, Path::new(".")).unwrap_or_else(|e| unreachable!("{e}"))
}

fn spec(t: &str, ct: CapacityType) -> LaunchSpec {
    LaunchSpec {
        instance_type: t.into(),
        subnet_id: "subnet-0a1a1a1a1a1a1a1a1".into(),
        image_id: "ami-0a0b0c0d0e0f10111".into(),
        capacity_type: Some(ct),
        reservation_id: "r-1".into(),
        ..Default::default()
    }
}

#[test]
fn instance_boots_then_terminates_then_disappears_on_the_clock() {
    let mut w = test_cloud(1);
    let id = w.launch(&spec("m5.large", CapacityType::OnDemand)).unwrap_or_default();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Pending));
    w.clock.advance(14_999);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Pending));
    w.clock.advance(1);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Running));
    assert_eq!(w.terminate(&id, "User initiated"), Some((InstanceState::Running, InstanceState::ShuttingDown)));
    w.clock.advance(10_000);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Terminated));
    w.clock.advance(3_600_000);
    w.sync();
    assert!(w.ec2.instance(&id).is_none());
    let states: Vec<_> = w.ec2.state_changes.iter().map(|c| c.to).collect();
    assert_eq!(
        states,
        [InstanceState::Pending, InstanceState::Running, InstanceState::ShuttingDown, InstanceState::Terminated]
    );
}

#[test]
fn exhausted_pool_gives_insufficient_capacity_and_frees_on_terminate() {
    let mut w = test_cloud(2);
    let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap_or_default();
    w.ec2.pools.set_capacity(CapacityType::Spot, pool, 1);
    let first = w.launch(&spec("m5.large", CapacityType::Spot)).unwrap_or_default();
    let err = w.launch(&spec("m5.large", CapacityType::Spot)).err().map(|e| e.code);
    assert_eq!(err, Some("InsufficientInstanceCapacity"));
    // On-demand is a separate pool.
    assert!(w.launch(&spec("m5.large", CapacityType::OnDemand)).is_ok());
    w.terminate(&first, "User initiated");
    assert!(w.launch(&spec("m5.large", CapacityType::Spot)).is_ok());
}

#[test]
fn quotas_refuse_with_ec2_codes() {
    let mut w = test_cloud(3);
    w.ec2.cfg.quotas.spot_vcpus = Some(4);
    w.ec2.cfg.quotas.on_demand_vcpus = Some(2);
    assert!(w.launch(&spec("m5.large", CapacityType::Spot)).is_ok());
    assert!(w.launch(&spec("m5.large", CapacityType::Spot)).is_ok());
    assert_eq!(
        w.launch(&spec("m5.large", CapacityType::Spot)).err().map(|e| e.code),
        Some("MaxSpotInstanceCountExceeded")
    );
    assert!(w.launch(&spec("m5.large", CapacityType::OnDemand)).is_ok());
    assert_eq!(w.launch(&spec("m5.large", CapacityType::OnDemand)).err().map(|e| e.code), Some("VcpuLimitExceeded"));
    assert_eq!(w.ec2.quota_usage(), (4, 2, 2));
}

#[test]
fn unknown_type_and_arch_mismatch_are_refused() {
    let mut w = test_cloud(4);
    assert_eq!(w.launch(&spec("x9.large", CapacityType::Spot)).err().map(|e| e.code), Some("Unsupported"));
    assert_eq!(w.launch(&spec("m7g.large", CapacityType::Spot)).err().map(|e| e.code), Some("InvalidParameterValue"));
}

#[test]
fn stop_and_start_release_and_retake_capacity() {
    let mut w = test_cloud(5);
    let id = w.launch(&spec("c5.large", CapacityType::OnDemand)).unwrap_or_default();
    w.clock.advance(15_000);
    w.sync();
    w.stop(&id);
    w.clock.advance(10_000);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Stopped));
    assert_eq!(w.ec2.quota_usage().2, 0);
    assert!(matches!(w.start(&id), Ok(Some((InstanceState::Stopped, InstanceState::Pending)))));
    assert_eq!(w.ec2.quota_usage().2, 2);
}

#[test]
fn same_seed_same_ids() {
    let ids = |seed| {
        let mut w = test_cloud(seed);
        (0..5).map(|_| w.launch(&spec("m5.large", CapacityType::Spot)).unwrap_or_default()).collect::<Vec<_>>()
    };
    assert_eq!(ids(9), ids(9));
    assert_ne!(ids(9), ids(10));
}

fn spot_spec(behavior: &str) -> LaunchSpec {
    LaunchSpec {
        instance_type: "m5.large".into(),
        subnet_id: "subnet-0a1a1a1a1a1a1a1a1".into(),
        image_id: "ami-0a0b0c0d0e0f10111".into(),
        capacity_type: Some(CapacityType::Spot),
        interruption_behavior: Some(behavior.into()),
        reservation_id: "r-1".into(),
        ..Default::default()
    }
}

fn spot(w: &mut Cloud, behavior: &str) -> String {
    w.launch(&spot_spec(behavior)).unwrap_or_default()
}

fn kinds(w: &Cloud) -> Vec<String> {
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
    let mut w = test_cloud(1);
    let id = spot(&mut w, "terminate");
    w.clock.advance(15_000);
    w.sync();
    let i = w.interrupt(&id, InterruptOptions::default());
    assert!(i.is_ok(), "{i:?}");
    assert!(w.interrupt(&id, InterruptOptions::default()).is_err(), "once");
    w.clock.advance(119_000);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Running));
    w.clock.advance(1_000);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::ShuttingDown));
    assert_eq!(
        w.ec2.instance(&id).and_then(|i| i.state_reason.clone()).map(|r| r.0).as_deref(),
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
    let mut w = test_cloud(1);
    let id = spot(&mut w, "hibernate");
    w.sync();
    let opts = InterruptOptions { rebalance_first: false, notice_seconds: 120, duration_seconds: Some(300) };
    let i = w.interrupt(&id, opts).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(i.reclaim_at - i.warning_at, 120_000);
    w.clock.advance(400_000);
    w.sync();
    assert_eq!(w.ec2.instance(&id).map(|i| i.state), Some(InstanceState::Stopped));
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
    let mut w = test_cloud(1);
    assert!(w.interrupt("i-0nope", InterruptOptions::default()).is_err());
    let id = spot(&mut w, "terminate");
    w.terminate(&id, "User initiated");
    assert!(w.interrupt(&id, InterruptOptions::default()).is_err());
}

#[test]
fn discarded_launches_publish_nothing() {
    let mut w = test_cloud(1);
    let (now, spec) = (w.now(), spot_spec("terminate"));
    let id = w.ec2.launch(&spec, now, &mut w.rng, &mut ()).unwrap_or_default();
    w.ec2.discard(std::slice::from_ref(&id));
    w.sync();
    assert_eq!(w.events.published(), 0);
}

#[test]
fn lowering_capacity_reclaims_seeded_victims() {
    let pick = |seed| {
        let mut w = test_cloud(seed);
        let ids: Vec<String> = (0..6).map(|_| spot(&mut w, "terminate")).collect();
        let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap_or_default();
        w.ec2.pools.set_capacity(CapacityType::Spot, pool, 4);
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
        let mut cfg = WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}"));
        cfg.pools.spot.reclaim =
            Some(ReclaimConfig { tick_seconds: 60, probability: 1.0, max_share: 0.5, recover_seconds: 600 });
        let mut w = Cloud::new(cfg, seed, std::path::Path::new(".")).unwrap_or_else(|e| unreachable!("{e}"));
        let ids: Vec<String> = (0..4).map(|_| spot(&mut w, "terminate")).collect();
        let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap_or_default();
        w.clock.advance(60_000);
        w.sync();
        let cap = w.ec2.pools.capacity(CapacityType::Spot, pool);
        assert!(cap < 4, "capacity dropped: {cap}");
        let warned: Vec<usize> = w
            .ec2
            .instances
            .values()
            .filter(|i| i.interruption_at == Some(180_000 + 1_767_225_600_000))
            .map(|i| ids.iter().position(|x| *x == i.id).unwrap_or(99))
            .collect();
        assert_eq!(warned.len(), 4 - cap as usize);
        w.clock.advance(600_000);
        w.sync();
        assert_eq!(w.ec2.pools.capacity(CapacityType::Spot, pool), 200, "capacity comes back");
        (warned, w.events.log_since(0).map(str::to_owned).collect::<Vec<_>>())
    };
    assert_eq!(run(5), run(5));
}

#[test]
fn health_event_lists_a_scheduled_event() {
    let mut w = test_cloud(1);
    let id = spot(&mut w, "terminate");
    let e = w.health_event(std::slice::from_ref(&id), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", 3600, None);
    assert!(e.is_ok());
    assert_eq!(w.ec2.instance(&id).map(|i| i.scheduled_events[0].0.clone()).as_deref(), Some("instance-retirement"));
    assert!(w.health_event(&["i-0nope".into()], "X", 0, None).is_err());
}

#[test]
fn scheduled_changes_retire_instances_at_their_start() {
    let mut w = test_cloud(1);
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
    let state = |w: &Cloud, id: &str| w.ec2.instance(id).map(|i| i.state);
    assert_eq!(state(&w, &retire), Some(InstanceState::Running));
    w.clock.advance(1_000);
    w.sync();
    assert_eq!(state(&w, &retire), Some(InstanceState::ShuttingDown));
    assert_eq!(state(&w, &stop), Some(InstanceState::Stopping));
    assert_eq!(state(&w, &reboot), Some(InstanceState::Running));
    assert_eq!(
        w.ec2.instance(&stop).and_then(|i| i.state_reason.clone()).map(|r| r.0).as_deref(),
        Some("Server.ScheduledStop")
    );
}
