use std::path::Path;

use super::*;

/// The default world with a manual clock, at its start time.
pub(crate) fn test_world(seed: u64) -> World {
    let text = include_str!("../../../fixtures/worlds/default.yaml").replace("mode: real", "mode: manual");
    let cfg = WorldConfig::parse(&text, "default.yaml").unwrap_or_else(|e| unreachable!("{e}"));
    let start = cfg.clock.start_millis();
    World::new(cfg, seed, Path::new("."), start).unwrap_or_else(|e| unreachable!("{e}"))
}
