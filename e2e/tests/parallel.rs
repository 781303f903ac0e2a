//! `e2e run --jobs 2` on local clusters: two clusters started at once get disjoint ports, and two
//! short scenarios run side by side both pass, with the JUnit XML listing them in the order given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use e2e::cluster::{Backend, Cluster, repo_root};
use e2e::scenario::cli::{self, RunArgs};
use e2e::scenario::runner::RunOptions;

/// One test at a time: each starts two clusters already.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The ports `cluster.sh` wrote into a local cluster's kwokctl config (`<workdir>/configs/<name>.yaml`).
fn leased_ports(cluster: &Cluster) -> BTreeSet<u16> {
    let workdir = cluster.kubeconfig.parent().and_then(Path::parent).and_then(Path::parent).unwrap();
    let config = std::fs::read_to_string(workdir.join("configs").join(format!("{}.yaml", cluster.name))).unwrap();
    config.lines().filter_map(|l| l.trim().split_once("Port: ")).map(|(_, port)| port.parse().unwrap()).collect()
}

#[test]
fn two_clusters_started_at_once_get_disjoint_ports() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = repo_root();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Cluster::up(Backend::Local, &root, None).expect("first cluster"));
        let b = s.spawn(|| Cluster::up(Backend::Local, &root, None).expect("second cluster"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.name, b.name);
    let (pa, pb) = (leased_ports(&a), leased_ports(&b));
    assert_eq!((pa.len(), pb.len()), (6, 6), "every component's port is chosen: {pa:?} {pb:?}");
    assert!(pa.is_disjoint(&pb), "{pa:?} and {pb:?} overlap");
    let (ua, ub) = (a.server_url().unwrap(), b.server_url().unwrap());
    assert_ne!(ua, ub);
    for (cluster, ports) in [(&a, &pa), (&b, &pb)] {
        let url = cluster.server_url().unwrap();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert!(ports.contains(&port), "{url} is on a leased port {ports:?}");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for cluster in [&a, &b] {
            let client = cluster.client().await.unwrap();
            client.apiserver_version().await.unwrap_or_else(|e| panic!("{} does not answer: {e}", cluster.name));
        }
    });
}

#[test]
fn two_scenarios_with_two_jobs_both_pass_and_junit_keeps_their_order() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = repo_root();
    let dir = std::env::temp_dir().join(format!("spotbench-parallel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    // The two fastest scenarios (about 12 s each alone); the second named finishes first as often as not.
    let names = ["zone-spread-min-domains".to_owned(), "spot-scale-up".to_owned()];
    let run = RunArgs {
        junit: Some(junit.clone()),
        report_dir: Some(dir.clone()),
        jobs: 2,
        opts: RunOptions { backend: Backend::Local, ..RunOptions::default() },
        ..RunArgs::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = Instant::now();
    let ok = rt.block_on(cli::run(&root, &names, run)).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(ok, "a scenario failed:\n{xml}");
    assert!(xml.contains("tests=\"2\" failures=\"0\" skipped=\"0\""), "{xml}");
    let at = |name: &str| xml.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no {name} in\n{xml}"));
    assert!(at("zone-spread-min-domains") < at("spot-scale-up"), "JUnit order is not the order given:\n{xml}");
    // They ran side by side: one after another, the run would take at least the sum of their times.
    let sum: f64 = xml
        .lines()
        .filter(|l| l.contains("<testcase "))
        .filter_map(|l| l.split("time=\"").nth(1)?.split('"').next()?.parse::<f64>().ok())
        .sum();
    assert!(elapsed < sum, "the run took {elapsed:.1}s, the scenarios {sum:.1}s together: not side by side");
    for name in &names {
        assert!(dir.join(format!("{name}.html")).exists(), "no report for {name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
