//! Scenario YAML is outside input too (users write their own): near misses of every scenario in
//! fixtures/scenarios (lines deleted, duplicated, changed, inserted, cut) and arbitrary strings
//! must load or be refused with an error naming the file, never panic; what loads must describe
//! every step. `cargo test` runs a short fixed-seed pass; `make fuzz` spends `FUZZ_SECONDS`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use e2e::cluster::repo_root;
use e2e::scenario::describe::describe;
use e2e::scenario::load::{LoadError, parse, scenarios_dir};
use proptest::prelude::*;

#[test]
fn scenario_yaml_near_misses_load_or_are_refused_with_an_error() {
    let root = repo_root();
    let mut files: Vec<_> = std::fs::read_dir(scenarios_dir(&root)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 10, "the scenarios to start from: {files:?}");
    let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let input = prop::sample::select(texts).prop_flat_map(testkit::fuzz::yaml_near);
    testkit::fuzz::run("scenario yaml", 1, input, |text| {
        match parse(&root, "fuzz.yaml", &text) {
            Ok(scenario) => {
                for step in scenario.plain_steps() {
                    prop_assert!(!describe(step).is_empty());
                }
            }
            Err(e @ LoadError::Invalid { .. }) => {
                let shown = e.to_string();
                prop_assert!(shown.starts_with("fuzz.yaml: ") && shown.contains("fix: "), "{shown}");
            }
            Err(other) => prop_assert!(other.to_string().contains("fuzz.yaml"), "{other}"),
        }
        Ok(())
    });
}
