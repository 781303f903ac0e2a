//! The core scenarios with upstream Karpenter as the autoscaler under test (`--autoscaler
//! karpenter`): each must pass, with its documented differences (`karpenter: {because: ...}`
//! overrides). Only the core five run here, to keep `make test` within CI's time (161 s for the
//! five on 2 CPUs, 74 s of it consolidation), and the four chaos scenarios (fake-ec2 restarted
//! with and without its state, the API server restarted, AWS blackholed: 20 to 51 s each);
//! `make e2e AUTOSCALER=karpenter` runs all of them. One at a time, as in scenarios.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use e2e::cluster::{Backend, repo_root};
use e2e::env::AutoscalerKind;
use e2e::scenario::load::load_file;
use e2e::scenario::runner::{self, RunOptions, Status};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run_with_karpenter(file: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = repo_root().join("fixtures/scenarios").join(file);
    let scenario = load_file(&repo_root(), &path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = RunOptions { backend: Backend::Local, autoscaler: AutoscalerKind::Karpenter, sqs: None };
    let outcome = rt.block_on(runner::run_with(&scenario, opts)).unwrap();
    println!("{} with karpenter: {:?} in {:.0}s", scenario.name, outcome.status, outcome.wall.as_secs_f64());
    match &outcome.status {
        Status::Skipped(why) => println!("{}: skipped: {why}", scenario.name),
        Status::Failed(why) => panic!("scenario {} failed with karpenter: {why}", scenario.name),
        Status::Passed => {}
    }
}

#[test]
fn spot_scale_up() {
    run_with_karpenter("spot-scale-up.yaml");
}

#[test]
fn spot_ice_fallback() {
    run_with_karpenter("spot-ice-fallback.yaml");
}

#[test]
fn spot_interruption_replaced() {
    run_with_karpenter("spot-interruption-replaced.yaml");
}

#[test]
fn fis_50_percent() {
    run_with_karpenter("fis-50-percent.yaml");
}

#[test]
fn consolidation() {
    run_with_karpenter("consolidation.yaml");
}

// The chaos scenarios: Karpenter against a fake-ec2 that restarts or is cut off, and an API
// server that restarts.

#[test]
fn fake_ec2_restart_keeps_state() {
    run_with_karpenter("fake-ec2-restart-keeps-state.yaml");
}

#[test]
fn fake_ec2_restart_loses_state() {
    run_with_karpenter("fake-ec2-restart-loses-state.yaml");
}

#[test]
fn apiserver_restart() {
    run_with_karpenter("apiserver-restart.yaml");
}

#[test]
fn aws_blackhole() {
    run_with_karpenter("aws-blackhole.yaml");
}
