use std::path::Path;

use super::*;

/// The default world with a manual clock, at its start time.
pub(crate) fn test_world(seed: u64) -> World {
    let text = include_str!("../../../fixtures/worlds/default.yaml").replace("mode: real", "mode: manual");
    let cfg = WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}"));
    let start = cfg.clock.start_millis();
    World::new(cfg, seed, Path::new("."), start).unwrap_or_else(|e| unreachable!("{e}"))
}

/// The default world's clock section in `mode`, with `start` set when given.
fn clock_of(mode: &str, start: Option<&str>) -> config::ClockConfig {
    let mut text =
        include_str!("../../../fixtures/worlds/default.yaml").replace("mode: real", &format!("mode: {mode}"));
    if let Some(s) = start {
        text = text.replace("  factor: 1\n", &format!("  factor: 1\n  start: \"{s}\"\n"));
    }
    WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}")).clock
}

#[test]
fn clock_starts_at_the_wall_clock_unless_fixed_or_manual() {
    let wall = chrono::Utc::now().timestamp_millis();
    for mode in ["real", "scaled"] {
        let c = clock_of(mode, None);
        assert!(!c.fixed_start());
        assert!((c.start_millis() - wall).abs() < 60_000, "{mode} starts at the wall clock");
    }
    let manual = clock_of("manual", None);
    assert!(manual.fixed_start());
    assert_eq!(crate::clock::iso(manual.start_millis()), "2026-01-01T00:00:00.000Z");
    let fixed = clock_of("real", Some("2025-06-01T12:00:00Z"));
    assert!(fixed.fixed_start());
    assert_eq!(crate::clock::iso(fixed.start_millis()), "2025-06-01T12:00:00.000Z");
    let now = clock_of("manual", Some("now"));
    assert!(!now.fixed_start() && (now.start_millis() - wall).abs() < 60_000);
    let bad =
        include_str!("../../../fixtures/worlds/default.yaml").replace("  factor: 1\n", "  factor: 1\n  start: soon\n");
    assert!(WorldConfig::parse(&bad, "default.yaml").is_err());
}

fn on_demand_spec() -> LaunchSpec {
    LaunchSpec {
        instance_type: "m5.large".into(),
        subnet_id: "subnet-0a1a1a1a1a1a1a1a1".into(),
        image_id: "ami-0a0b0c0d0e0f10111".into(),
        reservation_id: "r-1".into(),
        ..Default::default()
    }
}

#[test]
fn discard_undoes_only_the_failed_launches_and_leaves_older_history() {
    let mut w = test_world(1);
    let mut rng = crate::rng::Streams::new(1);
    let now = w.started_at;
    let spec = on_demand_spec();
    let mut launch = |w: &mut World| w.launch(&spec, now, &mut rng, &mut ()).unwrap_or_else(|e| unreachable!("{e:?}"));
    let kept = launch(&mut w);
    w.terminate(&kept, "User initiated", now);
    let pool = w.pool_of("m5.large", "us-west-2a").unwrap_or_default();
    let used_before = w.pools.used(pools::CapacityType::OnDemand, pool);
    let log_before = w.state_changes.clone();
    w.take_outbox();
    let undone: Vec<String> = (0..5).map(|_| launch(&mut w)).collect();
    let also_kept = launch(&mut w);
    assert_eq!(w.state_changes.len(), log_before.len() + 6);

    w.discard(&undone);
    for id in &undone {
        assert!(w.instance(id).is_none(), "{id} discarded");
    }
    assert!(w.instance(&kept).is_some() && w.instance(&also_kept).is_some());
    let mut expected = log_before;
    expected.extend(w.state_changes.back().cloned());
    assert_eq!(w.state_changes, expected, "older history and the later launch stay, in order");
    assert_eq!(w.state_changes.back().map(|c| c.instance_id.as_str()), Some(also_kept.as_str()));
    assert_eq!(w.pools.used(pools::CapacityType::OnDemand, pool), used_before + 1, "only also_kept holds capacity");
    let outbox = w.take_outbox();
    assert!(outbox.timers.iter().all(|(_, t)| !matches!(t, Timer::FinishBoot(x) if undone.contains(x))));
    assert!(outbox.events.iter().all(|(_, k)| k.instance_id().is_none_or(|id| !undone.iter().any(|u| u == id))));
    assert_eq!(outbox.timers.len(), 1, "also_kept's boot");
    // Nothing twice, nothing unknown.
    w.discard(&undone);
    w.discard(&["i-0nope".to_owned()]);
    assert_eq!(w.state_changes.len(), expected.len());
}
