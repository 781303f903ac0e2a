use std::path::Path;

use super::*;

pub(crate) fn test_world(seed: u64) -> World {
    let text = include_str!("../../../fixtures/worlds/default.yaml").replace("mode: real", "mode: manual");
    let cfg = WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}"));
    World::new(cfg, seed, Path::new(".")).unwrap_or_else(|e| unreachable!("{e}"))
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
    let mut w = test_world(1);
    let id = w.launch(&spec("m5.large", CapacityType::OnDemand)).unwrap_or_default();
    assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Pending));
    w.clock.advance(14_999);
    w.sync();
    assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Pending));
    w.clock.advance(1);
    w.sync();
    assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Running));
    assert_eq!(w.terminate(&id, "User initiated"), Some((InstanceState::Running, InstanceState::ShuttingDown)));
    w.clock.advance(10_000);
    w.sync();
    assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Terminated));
    w.clock.advance(3_600_000);
    w.sync();
    assert!(w.instance(&id).is_none());
    let states: Vec<_> = w.state_changes.iter().map(|c| c.to).collect();
    assert_eq!(
        states,
        [InstanceState::Pending, InstanceState::Running, InstanceState::ShuttingDown, InstanceState::Terminated]
    );
}

#[test]
fn exhausted_pool_gives_insufficient_capacity_and_frees_on_terminate() {
    let mut w = test_world(2);
    let pool = w.pool_of("m5.large", "us-west-2a").unwrap_or_default();
    w.pools.set_capacity(CapacityType::Spot, pool, 1);
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
    let mut w = test_world(3);
    w.cfg.quotas.spot_vcpus = Some(4);
    w.cfg.quotas.on_demand_vcpus = Some(2);
    assert!(w.launch(&spec("m5.large", CapacityType::Spot)).is_ok());
    assert!(w.launch(&spec("m5.large", CapacityType::Spot)).is_ok());
    assert_eq!(
        w.launch(&spec("m5.large", CapacityType::Spot)).err().map(|e| e.code),
        Some("MaxSpotInstanceCountExceeded")
    );
    assert!(w.launch(&spec("m5.large", CapacityType::OnDemand)).is_ok());
    assert_eq!(w.launch(&spec("m5.large", CapacityType::OnDemand)).err().map(|e| e.code), Some("VcpuLimitExceeded"));
    assert_eq!(w.quota_usage(), (4, 2, 2));
}

#[test]
fn unknown_type_and_arch_mismatch_are_refused() {
    let mut w = test_world(4);
    assert_eq!(w.launch(&spec("x9.large", CapacityType::Spot)).err().map(|e| e.code), Some("Unsupported"));
    assert_eq!(w.launch(&spec("m7g.large", CapacityType::Spot)).err().map(|e| e.code), Some("InvalidParameterValue"));
}

#[test]
fn stop_and_start_release_and_retake_capacity() {
    let mut w = test_world(5);
    let id = w.launch(&spec("c5.large", CapacityType::OnDemand)).unwrap_or_default();
    w.clock.advance(15_000);
    w.sync();
    w.stop(&id);
    w.clock.advance(10_000);
    w.sync();
    assert_eq!(w.instance(&id).map(|i| i.state), Some(InstanceState::Stopped));
    assert_eq!(w.quota_usage().2, 0);
    assert!(matches!(w.start(&id), Ok(Some((InstanceState::Stopped, InstanceState::Pending)))));
    assert_eq!(w.quota_usage().2, 2);
}

#[test]
fn same_seed_same_ids() {
    let ids = |seed| {
        let mut w = test_world(seed);
        (0..5).map(|_| w.launch(&spec("m5.large", CapacityType::Spot)).unwrap_or_default()).collect::<Vec<_>>()
    };
    assert_eq!(ids(9), ids(9));
    assert_ne!(ids(9), ids(10));
}
