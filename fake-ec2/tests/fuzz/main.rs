//! Property tests ("fuzzing on stable Rust", proptest) for every parser fake-ec2 feeds with outside
//! input. Invariant: no panic, and every refusal is a 4xx in the refusing service's own error format.
//!
//! `cargo test` runs a short deterministic pass ([`QUICK_CASES`] per property) and replays the seed
//! corpus in `fake-ec2/fuzz-corpus/`; `make fuzz` sets `FUZZ_SECONDS` and every property then runs
//! random rounds until its share of that budget is spent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod corpus;
mod ec2;
mod parsers;
mod services;
mod wire;

use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Cases per property in a plain `cargo test` (kept small: the whole file runs in seconds).
const QUICK_CASES: u32 = 48;
/// Cases per round under `make fuzz`.
const ROUND_CASES: u32 = 256;
/// How many properties share `FUZZ_SECONDS` (the `#[test]`s below that call [`fuzz`]).
const PROPERTIES: u32 = 14;

/// The time one property may take under `make fuzz`, or `None` for the quick pass.
fn budget() -> Option<Duration> {
    let secs: f64 = std::env::var("FUZZ_SECONDS").ok()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs / f64::from(PROPERTIES)))
}

/// Runs `check` on values of `strategy`: once with a fixed seed (quick pass), or round after
/// round with fresh seeds until the budget is spent. A failure panics with the shrunk input.
pub fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let Some(budget) = budget() else {
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

#[test]
fn ec2_query_every_action_with_junk_params() {
    ec2::every_action_with_junk_params();
}

#[test]
fn ec2_query_raw_form_bytes() {
    ec2::raw_form_bytes();
}

#[test]
fn sqs_json_bodies() {
    services::sqs_json();
}

#[test]
fn sqs_query_forms() {
    services::sqs_query();
}

#[test]
fn fis_rest_requests() {
    services::fis();
}

#[test]
fn pricing_json_bodies() {
    services::pricing();
}

#[test]
fn ssm_json_bodies() {
    services::ssm();
}

#[test]
fn eks_rest_requests() {
    services::eks();
}

#[test]
fn iam_and_sts_query_forms() {
    services::iam_sts();
}

#[test]
fn sigv4_authorization_headers() {
    services::sigv4();
}

#[test]
fn world_yaml() {
    parsers::world_yaml();
}

#[test]
fn user_data_of_every_family() {
    parsers::user_data();
}

#[test]
fn eventbridge_patterns() {
    parsers::event_patterns();
}

#[test]
fn raw_requests_of_any_shape() {
    services::any_shape();
}

#[test]
fn seed_corpus_replays_clean() {
    corpus::replay_all();
}
