//! Property tests ("fuzzing on stable Rust", proptest) for every parser fake-ec2 feeds with outside
//! input. Invariant: no panic, and every refusal is a 4xx in the refusing service's own error format.
//!
//! `cargo test` runs a short deterministic pass ([`testkit::fuzz::QUICK_CASES`] per property) and replays the seed
//! corpus in `fake-ec2/fuzz-corpus/`; `make fuzz` sets `FUZZ_SECONDS` and every property then runs
//! random rounds until its share of that budget is spent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod corpus;
mod ec2;
mod parsers;
mod services;
mod wire;

use proptest::strategy::Strategy;
use proptest::test_runner::TestCaseError;

/// How many properties share `FUZZ_SECONDS` (the `#[test]`s below that call [`fuzz`]).
const PROPERTIES: u32 = 14;

/// Runs one property ([`testkit::fuzz::run`]: a fixed-seed pass, or its share of `FUZZ_SECONDS`).
pub fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    testkit::fuzz::run(name, PROPERTIES, strategy, check);
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
