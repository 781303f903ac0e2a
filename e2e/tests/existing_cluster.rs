//! `--backend kubeconfig:<file>` against a cluster started outside the harness (`cluster.sh up`,
//! what `make cluster-up` runs), standing in for one the user already has: a Node that is not a
//! kwok fake node gets the cluster refused; without one, spot-scale-up passes there, with the
//! harness's own kwok (the cluster's was stopped first, as a cluster without kwok would be), and
//! afterwards nothing the run created remains: no labelled object, the same Nodes, Pods, Leases,
//! namespaces and CRDs as before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::cluster::kubeconfig::{Existing, RUN_LABEL};
use e2e::cluster::{Backend, Cluster, repo_root};
use e2e::scenario::cli::{self, RunArgs};
use e2e::scenario::runner::RunOptions;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

/// A cluster the harness did not start: `cluster.sh up` by hand, `cluster.sh down` when dropped.
struct Outside {
    name: String,
    kubeconfig: PathBuf,
}

impl Outside {
    fn up() -> Outside {
        let out = Command::new("bash").arg(repo_root().join("e2e/k8s/cluster.sh")).arg("up").output().unwrap();
        assert!(out.status.success(), "cluster.sh up: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kubeconfig = PathBuf::from(stdout.lines().find_map(|l| l.strip_prefix("export KUBECONFIG=")).unwrap());
        let name = kubeconfig.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        Outside { name, kubeconfig }
    }

    /// Stops the cluster's kwok controller, as if the cluster never had one.
    fn stop_kwok(&self) {
        let pid_file = self.kubeconfig.parent().unwrap().join("pids/kwok-controller.pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
        assert!(Command::new("kill").arg(&pid).status().unwrap().success());
        let gone = Command::new("timeout").args(["15", "tail", &format!("--pid={pid}"), "-f", "/dev/null"]).status();
        assert!(gone.unwrap().success(), "kwok-controller {pid} did not exit");
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo_root().join("e2e/k8s/cluster.sh")).args(["down", &self.name]).output();
    }
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap()).unwrap()
}

async fn names<K>(api: Api<K>, selector: Option<&str>) -> BTreeSet<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let lp = match selector {
        Some(s) => ListParams::default().labels(s),
        None => ListParams::default(),
    };
    api.list(&lp)
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| {
            format!("{}/{}", o.meta().namespace.clone().unwrap_or_default(), o.meta().name.clone().unwrap_or_default())
        })
        .collect()
}

/// What a run could leave behind, by kind.
async fn snapshot(kube: &kube::Client) -> Vec<(&'static str, BTreeSet<String>)> {
    let mut leases = BTreeSet::new();
    for ns in ["default", "kube-system", "kube-node-lease"] {
        leases.extend(names(Api::<Lease>::namespaced(kube.clone(), ns), None).await);
    }
    vec![
        ("CRDs", names(Api::<CustomResourceDefinition>::all(kube.clone()), None).await),
        ("Nodes", names(Api::<Node>::all(kube.clone()), None).await),
        ("Pods", names(Api::<Pod>::all(kube.clone()), None).await),
        ("Deployments", names(Api::<Deployment>::all(kube.clone()), None).await),
        ("Namespaces", names(Api::<Namespace>::all(kube.clone()), None).await),
        ("Leases", leases),
        ("labelled Nodes", names(Api::<Node>::all(kube.clone()), Some(RUN_LABEL)).await),
        ("labelled Pods", names(Api::<Pod>::all(kube.clone()), Some(RUN_LABEL)).await),
        ("labelled Deployments", names(Api::<Deployment>::all(kube.clone()), Some(RUN_LABEL)).await),
    ]
}

#[test]
fn spot_scale_up_on_an_existing_cluster_passes_and_leaves_nothing_behind() {
    let outside = Outside::up();
    outside.stop_kwok();
    let existing = Existing::parse(&outside.kubeconfig.display().to_string()).unwrap();
    let root = repo_root();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let kube = rt.block_on(client(&outside.kubeconfig));
    // The controller-manager and the scheduler take their leader Leases a few seconds after the
    // cluster is up: only once they hold them is the cluster's own state settled for the snapshot.
    let system_leases: Api<Lease> = Api::namespaced(kube.clone(), "kube-system");
    let api = &system_leases;
    rt.block_on(e2e::env::wait_for("the control plane's leader Leases", Duration::from_secs(60), move || async move {
        let names = names(api.clone(), None).await;
        ["kube-system/kube-controller-manager", "kube-system/kube-scheduler"]
            .iter()
            .all(|l| names.contains(*l))
            .then_some(())
    }))
    .unwrap();
    let before = rt.block_on(snapshot(&kube));
    assert!(before.iter().all(|(what, set)| !what.starts_with("labelled") || set.is_empty()));

    // A Node kwok does not play: refused, unless allowed.
    let nodes: Api<Node> = Api::all(kube.clone());
    let real: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "worker-1"}})).unwrap();
    rt.block_on(nodes.create(&PostParams::default(), &real)).unwrap();
    let err =
        Cluster::up(Backend::Kubeconfig(existing), &root, None).expect_err("a cluster with a real Node is refused");
    let msg = err.to_string();
    assert!(
        msg.contains("1 Node(s) are not kwok fake nodes (worker-1;") && msg.contains("--allow-real-nodes"),
        "{msg}"
    );
    rt.block_on(nodes.delete("worker-1", &DeleteParams::default())).unwrap();
    let api = &nodes;
    rt.block_on(e2e::env::wait_for("worker-1 deleted", Duration::from_secs(30), move || async move {
        api.get_opt("worker-1").await.unwrap().is_none().then_some(())
    }))
    .unwrap();

    let dir = std::env::temp_dir().join(format!("spotbench-existing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = RunArgs {
        junit: Some(dir.join("junit.xml")),
        report_dir: Some(dir.clone()),
        jobs: 1,
        opts: RunOptions { backend: Backend::Kubeconfig(existing), ..RunOptions::default() },
        ..RunArgs::default()
    };
    let ok = rt.block_on(cli::run(&root, &["spot-scale-up".to_owned()], run)).unwrap();
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(ok && junit.contains("tests=\"1\" failures=\"0\" skipped=\"0\""), "{junit}");

    let after = rt.block_on(snapshot(&kube));
    for ((what, was), (_, is)) in before.iter().zip(&after) {
        let added: Vec<&String> = is.difference(was).collect();
        let removed: Vec<&String> = was.difference(is).collect();
        assert!(added.is_empty() && removed.is_empty(), "{what}: left behind {added:?}, gone {removed:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
