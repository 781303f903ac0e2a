//! The `kubeconfig:<file>` backend: a cluster the user already has (any conformant Kubernetes),
//! used as it is. Attaching refuses a cluster with Nodes that are not kwok fake nodes (unless
//! allowed), notes which of the autoscaler's CRDs are missing (the environment installs them), and
//! makes sure a kwok controller plays the kubelet for fake Nodes: a probe Node shows whether one
//! does; if none, the cached kwok binary runs against the kubeconfig as a child process, with the
//! stages the local backend's kwokctl gives it. Every object a run applies is labelled
//! `spotbench.io/run=<id>` (its pod template and a NodePool's node template too, so Pods, the
//! autoscaler's NodeClaims and fake-ec2's Nodes carry it); detaching deletes all of that, the CRDs
//! and the leader Lease the run added, and stops the kwok it started.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{Backend, Cluster, ClusterError};

/// The label on everything a run creates; its value is the run's id.
pub const RUN_LABEL: &str = "spotbench.io/run";
/// The annotation fake-ec2 gives its Nodes and the only Nodes kwok is told to manage.
pub const FAKE_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// The autoscaler's leader-election Lease (ours and Karpenter's share the name).
const LEADER_LEASE: &str = "karpenter-leader-election";
const LEASE_NAMESPACES: [&str; 2] = ["default", "kube-system"];
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a kwok controller gets to make the probe Node Ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
const OWN_KWOK_TIMEOUT: Duration = Duration::from_secs(60);
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(90);

/// An existing cluster, as `--backend kubeconfig:<file>` and `--allow-real-nodes` give it.
/// The path is leaked once per command line so that [`Backend`] stays `Copy` like the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Existing {
    pub kubeconfig: &'static Path,
    pub allow_real_nodes: bool,
}

impl Existing {
    /// `<file>` of `kubeconfig:<file>`.
    pub fn parse(file: &str) -> Result<Existing, String> {
        if file.trim().is_empty() {
            return Err("kubeconfig: needs the kubeconfig file's path, e.g. kubeconfig:$HOME/.kube/config".to_owned());
        }
        let path: &'static Path = Box::leak(PathBuf::from(file).into_boxed_path());
        Ok(Existing { kubeconfig: path, allow_real_nodes: false })
    }
}

/// The names of Nodes that are not kwok fake nodes: no `kwok.x-k8s.io/node=fake` annotation
/// (how fake-ec2 registers them) and not kwok's own `type: kwok` label. In name order.
pub fn real_nodes(nodes: &[Node]) -> Vec<String> {
    let mut names: Vec<String> = nodes
        .iter()
        .filter(|n| {
            let annotated =
                n.metadata.annotations.as_ref().and_then(|a| a.get(FAKE_NODE_ANNOTATION)).map(String::as_str);
            let typed = n.metadata.labels.as_ref().and_then(|l| l.get("type")).map(String::as_str);
            annotated != Some("fake") && typed != Some("kwok")
        })
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// Why a cluster with real Nodes is refused, in one paragraph.
pub fn refusal(kubeconfig: &Path, real: &[String]) -> String {
    const SHOWN: usize = 5;
    let more = real.len().saturating_sub(SHOWN);
    let mut names = real.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if more > 0 {
        names.push_str(&format!(" and {more} more"));
    }
    format!(
        "refusing the cluster of {}: {} Node(s) are not kwok fake nodes ({names}; a fake node has the annotation \
         {FAKE_NODE_ANNOTATION}=fake). Pods the scenarios create could run on them, and an autoscaler could act on \
         them. Pass --allow-real-nodes to run there anyway.",
        kubeconfig.display(),
        real.len()
    )
}

/// Labels `obj` for run `run_id`: its own labels and, where it has one (Deployments, Jobs,
/// NodePools), its `spec.template`'s.
pub fn label(obj: &mut DynamicObject, run_id: &str) {
    obj.metadata.labels.get_or_insert_with(Default::default).insert(RUN_LABEL.to_owned(), run_id.to_owned());
    let Some(template) = obj.data.pointer_mut("/spec/template").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    let meta = template.entry("metadata").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(RUN_LABEL.to_owned(), json!(run_id));
        }
    }
}

/// One object a run applied.
#[derive(Clone, Debug)]
struct Created {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
}

/// What a run added to an existing cluster, to take away again.
#[derive(Debug)]
pub struct Attached {
    pub run_id: String,
    /// The autoscaler's CRDs that were not there before (the environment installs them).
    crds_added: Vec<String>,
    /// Leader Leases (namespace) there before.
    leases_before: BTreeSet<String>,
    created: Mutex<Vec<Created>>,
    /// The kwok controller this run started, when the cluster had none.
    kwok: Mutex<Option<Child>>,
}

impl Attached {
    /// Labels an object about to be applied and remembers it for deletion.
    pub fn mark(&self, obj: &mut DynamicObject, resource: &ApiResource, namespace: Option<&str>) {
        label(obj, &self.run_id);
        let name = obj.metadata.name.clone().unwrap_or_default();
        let mut created = self.created.lock().unwrap_or_else(PoisonError::into_inner);
        let c = Created { resource: resource.clone(), namespace: namespace.map(str::to_owned), name };
        created.retain(|o| !(o.resource == c.resource && o.namespace == c.namespace && o.name == c.name));
        created.push(c);
    }

    /// Whether this run started its own kwok controller.
    pub fn runs_kwok(&self) -> bool {
        self.kwok.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }
}

/// Runs `f` to completion on a runtime of its own, on a thread of its own: attaching and detaching
/// are called from synchronous code (`Cluster::up`, `Drop`) that may be inside a runtime already.
fn block_on<T: Send>(f: impl std::future::Future<Output = T> + Send) -> std::io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)))
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the kubeconfig backend's thread panicked")))
    })
}

fn failed(kubeconfig: &Path, message: impl std::fmt::Display) -> ClusterError {
    ClusterError::Existing { kubeconfig: kubeconfig.display().to_string(), message: message.to_string() }
}

pub fn up(repo_root: &Path, existing: Existing) -> Result<Cluster, ClusterError> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_id = format!(
        "{}-{}-{}",
        chrono::Utc::now().format("%Y%m%dt%H%M%S"),
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let attached = block_on(attach(repo_root, existing, run_id)).map_err(|e| failed(existing.kubeconfig, e))??;
    let name = current_context(existing.kubeconfig).unwrap_or_else(|| "existing".to_owned());
    tracing::info!(cluster = %name, run = %attached.run_id, own_kwok = attached.runs_kwok(), "attached to an existing cluster");
    Ok(Cluster {
        name,
        backend: Backend::Kubeconfig(existing),
        kubeconfig: existing.kubeconfig.to_path_buf(),
        repo_root: repo_root.to_path_buf(),
        keep: false,
        attached: Some(Box::new(attached)),
    })
}

fn current_context(kubeconfig: &Path) -> Option<String> {
    kube::config::Kubeconfig::read_from(kubeconfig).ok()?.current_context
}

async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

async fn attach(repo_root: &Path, existing: Existing, run_id: String) -> Result<Attached, ClusterError> {
    let err = |e: anyhow::Error| failed(existing.kubeconfig, format!("{e:#}"));
    let kube = client(existing.kubeconfig).await.map_err(err)?;
    let nodes = Api::<Node>::all(kube.clone()).list(&ListParams::default()).await.map_err(|e| err(e.into()))?;
    let real = real_nodes(&nodes.items);
    if !real.is_empty() && !existing.allow_real_nodes {
        return Err(failed(existing.kubeconfig, refusal(existing.kubeconfig, &real)));
    }
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let mut crds_added = Vec::new();
    for (_, crd) in autoscaler::apis::crdgen::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        if crds.get_opt(&name).await.map_err(|e| err(e.into()))?.is_none() {
            crds_added.push(name);
        }
    }
    let mut leases_before = BTreeSet::new();
    for ns in LEASE_NAMESPACES {
        if Api::<Lease>::namespaced(kube.clone(), ns).get_opt(LEADER_LEASE).await.map_err(|e| err(e.into()))?.is_some()
        {
            leases_before.insert(ns.to_owned());
        }
    }
    let kwok = ensure_kwok(repo_root, &kube, existing.kubeconfig, &run_id).await.map_err(err)?;
    Ok(Attached { run_id, crds_added, leases_before, created: Mutex::new(Vec::new()), kwok: Mutex::new(kwok) })
}

/// A kwok controller for fake Nodes: the cluster's own when a probe Node goes Ready under it,
/// else the cached kwok binary as a child process (returned).
async fn ensure_kwok(
    repo_root: &Path,
    kube: &kube::Client,
    kubeconfig: &Path,
    run_id: &str,
) -> anyhow::Result<Option<Child>> {
    let nodes: Api<Node> = Api::all(kube.clone());
    let probe = probe_name(run_id);
    nodes.create(&PostParams::default(), &probe_node(&probe, run_id)?).await?;
    let result: anyhow::Result<Option<Child>> = async {
        if wait_ready(&nodes, &probe, PROBE_TIMEOUT).await {
            return Ok(None);
        }
        let mut child = start_kwok(repo_root, kubeconfig, run_id)?;
        if wait_ready(&nodes, &probe, OWN_KWOK_TIMEOUT).await {
            return Ok(Some(child));
        }
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!(
            "no kwok controller made the probe Node {probe} Ready, not even the one started here (its log: {})",
            kwok_dir(run_id).join("kwok.log").display()
        )
    }
    .await;
    let _ = nodes.delete(&probe, &DeleteParams::default()).await;
    result
}

fn probe_name(run_id: &str) -> String {
    format!("spotbench-kwok-probe-{run_id}")
}

fn probe_node(name: &str, run_id: &str) -> anyhow::Result<Node> {
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake"},
            "labels": {RUN_LABEL: run_id, "type": "kwok", "kubernetes.io/hostname": name},
        },
        // Nothing may be scheduled onto the probe while it exists.
        "spec": {"taints": [{"key": "spotbench.io/probe", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "1"}, "capacity": {"cpu": "1", "memory": "1Gi", "pods": "1"}},
    }))?)
}

async fn wait_ready(nodes: &Api<Node>, name: &str, timeout: Duration) -> bool {
    crate::env::wait_for(&format!("Node {name} Ready"), timeout, move || async move {
        let node = nodes.get_opt(name).await.ok()??;
        let conditions = node.status?.conditions?;
        conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await
    .is_ok()
}

fn kwok_dir(run_id: &str) -> PathBuf {
    super::cache_dir().join("k8s/kubeconfig-runs").join(run_id)
}

/// The version line `KEY=value` of e2e/k8s/versions.env.
fn version(repo_root: &Path, key: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(repo_root.join("e2e/k8s/versions.env"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(|v| v.trim().to_owned()))
        .ok_or_else(|| anyhow::anyhow!("no {key} in e2e/k8s/versions.env"))
}

/// The stages kwokctl gives the local backend's kwok (its defaults: node-initialize, the node
/// heartbeat with a Lease, pod ready/complete/delete), read from the kwok module that
/// `make k8s-bins` built the binaries from.
fn kwok_stages(repo_root: &Path) -> anyhow::Result<String> {
    let module =
        super::cache_dir().join("k8s/gomod/sigs.k8s.io").join(format!("kwok@{}", version(repo_root, "KWOK_VERSION")?));
    let files = [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
        "pod/fast/pod-delete.yaml",
    ];
    let docs = files
        .iter()
        .map(|f| {
            let path = module.join("kustomize/stage").join(f);
            std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading kwok's stage {} ({e}; run make k8s-bins)", path.display()))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    Ok(docs.join("\n---\n"))
}

/// The cached kwok binary against `kubeconfig`, with kwokctl's flags for the local backend.
fn start_kwok(repo_root: &Path, kubeconfig: &Path, run_id: &str) -> anyhow::Result<Child> {
    let out = Command::new("bash").arg(repo_root.join("e2e/k8s/build.sh")).stderr(Stdio::inherit()).output()?;
    let bin = String::from_utf8_lossy(&out.stdout).lines().last().map(str::trim).unwrap_or_default().to_owned();
    anyhow::ensure!(out.status.success() && !bin.is_empty(), "e2e/k8s/build.sh did not name the binaries' directory");
    let dir = kwok_dir(run_id);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("kwok.yaml");
    std::fs::write(&config, kwok_stages(repo_root)?)?;
    let log = std::fs::File::create(dir.join("kwok.log"))?;
    let child = Command::new(Path::new(&bin).join("kwok"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--config={}", config.display()))
        .args(["--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake"])
        .arg("--node-lease-duration-seconds=200")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    tracing::info!(pid = child.id(), log = %dir.join("kwok.log").display(), "started kwok for the existing cluster");
    Ok(child)
}

/// Deletes what the run created (see the module's doc) and stops the kwok it started.
pub fn detach(kubeconfig: &Path, attached: &Attached) -> Result<(), ClusterError> {
    let leftovers = block_on(clean_up(kubeconfig, attached))
        .map_err(|e| failed(kubeconfig, e))?
        .map_err(|e| failed(kubeconfig, format!("{e:#}")));
    if let Some(mut child) = attached.kwok.lock().unwrap_or_else(PoisonError::into_inner).take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let leftovers = leftovers?;
    if leftovers.is_empty() {
        // Its kwok's config and log, kept only when something went wrong.
        let _ = std::fs::remove_dir_all(kwok_dir(&attached.run_id));
        Ok(())
    } else {
        Err(ClusterError::Existing {
            kubeconfig: kubeconfig.display().to_string(),
            message: format!("left behind after {CLEANUP_TIMEOUT:?}: {}", leftovers.join(", ")),
        })
    }
}

/// Deletes everything of the run; what still exists after [`CLEANUP_TIMEOUT`], named.
async fn clean_up(kubeconfig: &Path, attached: &Attached) -> anyhow::Result<Vec<String>> {
    let kube = client(kubeconfig).await?;
    let selector = format!("{RUN_LABEL}={}", attached.run_id);
    let created = attached.created.lock().unwrap_or_else(PoisonError::into_inner).clone();
    // Last applied first: workloads before the NodePool they ran on. No finalizer is kept: the
    // controllers that would finish them (the autoscaler) are stopped.
    for c in created.iter().rev() {
        delete(&dynamic_api(&kube, c), &c.name).await;
    }
    // Nodes seen (the probe's first), for their heartbeat Leases.
    let nodes = Mutex::new(BTreeSet::from([probe_name(&attached.run_id)]));
    let (k, c, s, n) = (&kube, created.as_slice(), selector.as_str(), &nodes);
    // Swept until nothing is left: a ReplicaSet not yet collected may make another Pod, kwok's
    // last heartbeat may write a Lease again.
    let gone = crate::env::wait_for("the run's objects deleted", CLEANUP_TIMEOUT, move || async move {
        sweep(k, s, n).await;
        remaining(k, c, s, n).await.is_empty().then_some(())
    })
    .await;
    let mut leftovers = if gone.is_ok() { Vec::new() } else { remaining(&kube, &created, &selector, &nodes).await };
    // A CRD goes once the API server has deleted every object of it (its own finalizer).
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    for name in &attached.crds_added {
        let _ = crds.delete(name, &DeleteParams::default()).await;
    }
    let (api, added) = (&crds, attached.crds_added.as_slice());
    let crds_left = move || async move {
        let mut left = Vec::new();
        for name in added {
            if api.get_opt(name).await.ok().flatten().is_some() {
                left.push(format!("CustomResourceDefinition {name}"));
            }
        }
        left
    };
    let crds_gone = crate::env::wait_for("the CRDs the run added deleted", CLEANUP_TIMEOUT, move || async move {
        crds_left().await.is_empty().then_some(())
    })
    .await;
    if crds_gone.is_err() {
        leftovers.extend(crds_left().await);
    }
    for ns in LEASE_NAMESPACES.iter().filter(|ns| !attached.leases_before.contains(**ns)) {
        let _ = Api::<Lease>::namespaced(kube.clone(), ns).delete(LEADER_LEASE, &DeleteParams::default()).await;
    }
    Ok(leftovers)
}

/// Deletes what others made from the run's objects: Pods, NodeClaims (the autoscaler's), Nodes
/// (fake-ec2's) and the Nodes' heartbeat Leases (kwok sets the Node as their owner, but the
/// garbage collector takes its time).
async fn sweep(kube: &kube::Client, selector: &str, nodes: &Mutex<BTreeSet<String>>) {
    let pods = |ns: Option<&str>| Api::<Pod>::namespaced(kube.clone(), ns.unwrap_or("default"));
    delete_labelled(kube, selector, pods).await;
    delete_labelled(kube, selector, |_| Api::<autoscaler::apis::NodeClaim>::all(kube.clone())).await;
    let seen = labelled::<Node>(kube, selector).await;
    delete_labelled(kube, selector, |_| Api::<Node>::all(kube.clone())).await;
    let names: Vec<String> = {
        let mut all = nodes.lock().unwrap_or_else(PoisonError::into_inner);
        all.extend(seen.into_iter().map(|(_, name)| name));
        all.iter().cloned().collect()
    };
    let leases: Api<Lease> = Api::namespaced(kube.clone(), NODE_LEASE_NAMESPACE);
    for name in names {
        if leases.get_opt(&name).await.ok().flatten().is_some() {
            let _ = leases.delete(&name, &DeleteParams::default()).await;
        }
    }
}

fn dynamic_api(kube: &kube::Client, c: &Created) -> Api<DynamicObject> {
    match &c.namespace {
        Some(ns) => Api::namespaced_with(kube.clone(), ns, &c.resource),
        None => Api::all_with(kube.clone(), &c.resource),
    }
}

/// Drops the object's finalizers, then deletes it at once (no grace period).
async fn delete<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let _ = api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await;
    let _ = api.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::background() }).await;
}

/// The objects of kind `K` carrying `selector`, as `Kind namespace/name` (none when the kind is
/// not served, e.g. NodeClaims once their CRD is gone).
async fn labelled<K>(kube: &kube::Client, selector: &str) -> Vec<(Option<String>, String)>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all(kube.clone());
    let items = api.list(&ListParams::default().labels(selector)).await.map(|l| l.items).unwrap_or_default();
    items.iter().map(|o| (o.meta().namespace.clone(), o.meta().name.clone().unwrap_or_default())).collect()
}

/// Deletes the objects of kind `K` carrying `selector`; `api` gives the API of a namespace (None:
/// cluster-scoped).
async fn delete_labelled<K>(kube: &kube::Client, selector: &str, api: impl Fn(Option<&str>) -> Api<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for (ns, name) in labelled::<K>(kube, selector).await {
        delete(&api(ns.as_deref()), &name).await;
    }
}

/// What of the run still exists, as `Kind namespace/name`.
async fn remaining(
    kube: &kube::Client,
    created: &[Created],
    selector: &str,
    nodes: &Mutex<BTreeSet<String>>,
) -> Vec<String> {
    let show = |kind: &str, ns: &Option<String>, name: &str| match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let mut left = Vec::new();
    for c in created {
        if dynamic_api(kube, c).get_opt(&c.name).await.ok().flatten().is_some() {
            left.push(show(&c.resource.kind, &c.namespace, &c.name));
        }
    }
    for (ns, name) in labelled::<Pod>(kube, selector).await {
        left.push(show("Pod", &ns, &name));
    }
    for (ns, name) in labelled::<autoscaler::apis::NodeClaim>(kube, selector).await {
        left.push(show("NodeClaim", &ns, &name));
    }
    for (ns, name) in labelled::<Node>(kube, selector).await {
        left.push(show("Node", &ns, &name));
    }
    let names: Vec<String> = nodes.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
    let leases: Api<Lease> = Api::namespaced(kube.clone(), NODE_LEASE_NAMESPACE);
    for name in names {
        if leases.get_opt(&name).await.ok().flatten().is_some() {
            left.push(format!("Lease {NODE_LEASE_NAMESPACE}/{name}"));
        }
    }
    left
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn node(name: &str, annotation: Option<&str>, kwok_type: bool) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.to_owned());
        if let Some(a) = annotation {
            n.metadata.annotations = Some([(FAKE_NODE_ANNOTATION.to_owned(), a.to_owned())].into());
        }
        if kwok_type {
            n.metadata.labels = Some([("type".to_owned(), "kwok".to_owned())].into());
        }
        n
    }

    #[test]
    fn kubeconfig_backends_parse_with_their_file() {
        let b = Backend::parse("kubeconfig:/tmp/kc.yaml").unwrap();
        let Backend::Kubeconfig(e) = b else { panic!("{b:?}") };
        assert_eq!(e.kubeconfig, Path::new("/tmp/kc.yaml"));
        assert!(!e.allow_real_nodes);
        assert!(b.with_real_nodes_allowed(true).to_string().starts_with("kubeconfig:/tmp/kc.yaml"));
        assert_eq!(Backend::parse("local").unwrap(), Backend::Local);
        assert_eq!(Backend::parse("kind").unwrap(), Backend::Kind);
        assert!(Backend::parse("kubeconfig:").unwrap_err().contains("needs the kubeconfig file"));
        let e = Backend::parse("kubeconfig").unwrap_err();
        assert!(e.contains("local, kind or kubeconfig:<file>"), "{e}");
    }

    #[test]
    fn only_nodes_kwok_plays_are_fake() {
        let nodes = [
            node("ip-10-0-1-1", Some("fake"), false),
            node("kwok-node", None, true),
            node("worker-b", None, false),
            node("worker-a", Some("real"), false),
        ];
        assert_eq!(real_nodes(&nodes), ["worker-a", "worker-b"]);
        assert!(real_nodes(&nodes[..2]).is_empty());
    }

    #[test]
    fn the_refusal_names_the_nodes_and_the_way_out() {
        let real: Vec<String> = (1..=7).map(|i| format!("worker-{i}")).collect();
        let m = refusal(Path::new("/home/me/.kube/config"), &real);
        assert!(
            m.starts_with("refusing the cluster of /home/me/.kube/config: 7 Node(s) are not kwok fake nodes"),
            "{m}"
        );
        assert!(m.contains("worker-1, worker-2, worker-3, worker-4, worker-5 and 2 more"), "{m}");
        assert!(
            m.contains("kwok.x-k8s.io/node=fake") && m.ends_with("Pass --allow-real-nodes to run there anyway."),
            "{m}"
        );
    }

    #[test]
    fn labels_reach_the_object_and_its_template() {
        let mut deployment: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "inflate"},
            "spec": {"template": {"metadata": {"labels": {"app": "inflate"}}, "spec": {}}},
        }))
        .unwrap();
        label(&mut deployment, "r1");
        assert_eq!(deployment.metadata.labels.as_ref().unwrap()[RUN_LABEL], "r1");
        assert_eq!(
            deployment.data["spec"]["template"]["metadata"]["labels"],
            json!({"app": "inflate", RUN_LABEL: "r1"})
        );
        let mut nodepool: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "spot"},
            "spec": {"template": {"spec": {"nodeClassRef": {"name": "default"}}}},
        }))
        .unwrap();
        label(&mut nodepool, "r1");
        assert_eq!(nodepool.data["spec"]["template"]["metadata"]["labels"], json!({RUN_LABEL: "r1"}));
        let mut class: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}),
        )
        .unwrap();
        label(&mut class, "r1");
        assert_eq!(class.metadata.labels.unwrap()[RUN_LABEL], "r1");
        assert!(class.data.pointer("/spec").is_none());
    }
}
