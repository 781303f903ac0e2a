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
