//! Property-test support ("fuzzing on stable Rust", proptest) shared by the crates that fuzz
//! their parsers: a runner that does a short fixed-seed pass under `cargo test` and spends a time
//! budget under `make fuzz` (`FUZZ_SECONDS`), and near-miss YAML made by editing a valid file line
//! by line (deleted, duplicated, changed, inserted and truncated lines).
#![allow(clippy::panic)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Cases per property in a plain `cargo test` (kept small: a file of properties runs in seconds).
pub const QUICK_CASES: u32 = 48;
/// Cases per round under `make fuzz`.
const ROUND_CASES: u32 = 256;

/// The time one of `properties` may take under `make fuzz`, or `None` for the quick pass.
fn budget(properties: u32) -> Option<Duration> {
    let secs: f64 = std::env::var("FUZZ_SECONDS").ok()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs / f64::from(properties.max(1))))
}

/// Runs `check` on values of `strategy`: once with a fixed seed (quick pass), or round after
/// round with fresh seeds until its share of `FUZZ_SECONDS` (split among `properties`) is spent.
/// A failure panics with the shrunk input.
pub fn run<S>(name: &str, properties: u32, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let Some(budget) = budget(properties) else {
        let config = Config { cases: QUICK_CASES, failure_persistence: None, ..Config::default() };
        let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        report(name, TestRunner::new_with_rng(config, rng).run(&strategy, &check));
        return;
    };
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < budget {
        let config = Config { cases: ROUND_CASES, failure_persistence: None, ..Config::default() };
        report(name, TestRunner::new(config).run(&strategy, &check));
        rounds += 1;
    }
    eprintln!("fuzz {name}: {} cases in {:.1?}", u64::from(rounds) * u64::from(ROUND_CASES), start.elapsed());
}

fn report<T: std::fmt::Debug>(name: &str, outcome: Result<(), TestError<T>>) {
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => panic!("fuzz {name}: {why}\nminimal input: {input:#?}"),
        Err(TestError::Abort(why)) => panic!("fuzz {name} aborted: {why}"),
    }
}

/// Near misses of `base`: one to three line edits of it, and now and then any string at all.
pub fn yaml_near(base: String) -> impl Strategy<Value = String> {
    let (lines, bytes) = (base.lines().count().max(1), base.len().max(1));
    prop_oneof![
        6 => prop::collection::vec(edit(lines, bytes), 1..4).prop_map(move |e| apply(&base, &e)),
        1 => any::<String>(),
    ]
}

/// One edit of a YAML text, line by line.
#[derive(Debug, Clone)]
pub enum Edit {
    Delete(usize),
    Duplicate(usize),
    /// Replaces what follows the first `:` of a line.
    Value(usize, String),
    Insert(usize, String),
    Truncate(usize),
}

fn yaml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            " -1",
            " 0",
            " 1e400",
            " 18446744073709551616",
            " ~",
            " []",
            " {}",
            " [1, 2",
            " \"",
            " 'x",
            " &a *a",
            " !!binary x",
            " yes",
            " 2026-13-01T00:00:00Z",
            " us-west-2z",
            " m5.large",
            " 0.0.0.0/33",
            " 10.0.0.0/8",
            " real",
            " scaled",
            " manual",
            " off",
            " strict",
            " NaN",
            " -.inf",
            "",
            " |\n  x",
            " *undefined",
            " spotbench",
            " karpenter",
            " moto",
            " refuse",
            " hang",
            " -5",
        ])
        .prop_map(str::to_owned),
        " [ -~]{0,16}",
    ]
}

fn edit(lines: usize, bytes: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..lines).prop_map(Edit::Delete),
        (0..lines).prop_map(Edit::Duplicate),
        (0..lines, yaml_value()).prop_map(|(l, v)| Edit::Value(l, v)),
        (0..lines, "[ -~]{0,24}").prop_map(|(l, t)| Edit::Insert(l, t)),
        (0..bytes).prop_map(Edit::Truncate),
    ]
}

/// `base` with the edits applied in order (line numbers wrap, so every edit lands somewhere).
pub fn apply(base: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
    for e in edits {
        let n = lines.len().max(1);
        match e {
            Edit::Delete(l) if !lines.is_empty() => {
                lines.remove(l % n);
            }
            Edit::Duplicate(l) if !lines.is_empty() => {
                let line = lines[l % n].clone();
                lines.insert(l % n, line);
            }
            Edit::Value(l, v) if !lines.is_empty() => {
                let line = &mut lines[l % n];
                if let Some((k, _)) = line.split_once(':') {
                    *line = format!("{k}:{v}");
                }
            }
            Edit::Insert(l, t) => lines.insert(l % (lines.len() + 1), t.clone()),
            Edit::Truncate(at) => {
                let mut text = lines.join("\n");
                let mut at = (*at).min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
                lines = text.lines().map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}
