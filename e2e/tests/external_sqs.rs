//! The interruption scenarios with the interruption queue on an external SQS (issue 17): fake-ec2's
//! EventBridge rules deliver to a queue on moto_server or LocalStack, and the autoscaler under test
//! reads it there. moto_server runs here; LocalStack goes through the same code path where a Docker
//! engine answers, and elsewhere prints one line, `not run: no Docker engine (...)`, and returns
//! (cargo's harness has no "skipped": set SPOTBENCH_REQUIRE_EXTERNAL_SQS=1 to make a missing
//! engine fail instead, as the CI recipe does). One scenario at a time, as in scenarios.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::Mutex;

use e2e::cluster::{Backend, repo_root};
use e2e::env::AutoscalerKind;
use e2e::external_sqs::{QueueHost, SqsKind};
use e2e::scenario::load::load_file;
use e2e::scenario::runner::{self, Outcome, RunOptions, Status};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs a scenario file with its interruption queue on `sqs`; None when this machine cannot host
/// that queue (after one line saying why).
fn run_with_queue_on(file: &str, sqs: SqsKind, autoscaler: AutoscalerKind) -> Option<Outcome> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(reason) = QueueHost::from(sqs).unavailable() {
        assert!(
            std::env::var_os("SPOTBENCH_REQUIRE_EXTERNAL_SQS").is_none(),
            "{reason}, and SPOTBENCH_REQUIRE_EXTERNAL_SQS is set"
        );
        // Straight to stderr, past the harness's capture: the line shows in every run.
        let _ = writeln!(std::io::stderr(), "not run: {reason}");
        return None;
    }
    let scenario = load_file(&repo_root(), &repo_root().join("fixtures/scenarios").join(file)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = RunOptions { backend: Backend::Local, autoscaler, sqs: Some(sqs) };
    let outcome = rt.block_on(runner::run_with(&scenario, opts)).unwrap();
    assert_eq!(outcome.status, Status::Passed, "{} with {autoscaler}, queue on {sqs:?}", scenario.name);
    Some(outcome)
}

/// Every interruption message crossed the external queue: fake-ec2's forwarder delivered them
/// there (none failed), the autoscaler consumed them all from it, fake-ec2's own queue got none
/// and nobody asked fake-ec2's SQS for anything.
fn went_through_the_external_queue(o: &Outcome) {
    let q = o.external_queue.as_ref().expect("the run reports its external queue");
    assert!(q.forwarded.delivered >= 1, "at least the spot warning was delivered: {q:?}");
    assert_eq!((q.forwarded.queued, q.forwarded.failed), (q.forwarded.delivered, 0), "{q:?}");
    assert_eq!(q.left, Some(0), "the autoscaler received and deleted every message: {q:?}");
    assert_eq!(o.messages.sent(), 0, "fake-ec2's built-in queue got messages: {:?}", o.messages);
    let asked: Vec<_> = o.aws_calls.iter().filter(|c| c.service == "sqs").collect();
    assert!(asked.is_empty(), "fake-ec2's SQS was called: {asked:?}");
}

#[test]
fn spot_interruption_replaced_with_the_queue_on_moto_server() {
    if let Some(o) = run_with_queue_on("spot-interruption-replaced.yaml", SqsKind::Moto, AutoscalerKind::Spotbench) {
        went_through_the_external_queue(&o);
    }
}

#[test]
fn spot_interruption_replaced_with_the_queue_on_localstack() {
    if let Some(o) =
        run_with_queue_on("spot-interruption-replaced.yaml", SqsKind::LocalStack, AutoscalerKind::Spotbench)
    {
        went_through_the_external_queue(&o);
    }
}

#[test]
fn fis_50_percent_with_the_queue_on_moto_server() {
    if let Some(o) = run_with_queue_on("fis-50-percent.yaml", SqsKind::Moto, AutoscalerKind::Spotbench) {
        went_through_the_external_queue(&o);
    }
}

#[test]
fn karpenter_reads_the_interruption_queue_on_moto_server() {
    if let Some(o) = run_with_queue_on("spot-interruption-replaced.yaml", SqsKind::Moto, AutoscalerKind::Karpenter) {
        went_through_the_external_queue(&o);
    }
}
