//! The cluster as the controllers see it: reflector caches of the kinds they read, fed by watches,
//! and notifications when pods or capacity change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::apis::labels as l;
use crate::apis::{EC2NodeClass, NodeClaim, NodePool};

/// Caches of every kind the controllers read, kept current by watches.
#[derive(Clone)]
pub struct ClusterState {
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub node_claims: Store<NodeClaim>,
    pub node_pools: Store<NodePool>,
    pub node_classes: Store<EC2NodeClass>,
    pub daemon_sets: Store<DaemonSet>,
    /// Bumped when a pod is touched that is provisionable, a Node or NodeClaim that is being
    /// deleted or disrupted (its pods will need a place), or a NodePool or EC2NodeClass: the
    /// provisioner's batcher listens.
    /// Karpenter triggers its batcher on the same events only; bound pods changing status (a
    /// thousand of them while new nodes fill) must not hold the batch window open.
    pub provisioning_triggered: watch::Receiver<u64>,
    /// Bumped on node, NodeClaim, NodePool, EC2NodeClass or DaemonSet changes.
    pub capacity_changed: watch::Receiver<u64>,
    pub nominations: Nominations,
    /// NodeClaims deleted for a two-minute interruption warning, and when (the same record of
    /// name and time): termination holds their drain until the replacement is Ready.
    pub interrupted: Nominations,
    /// NodeClaims this process created that the watch has not delivered yet.
    pub created: CreatedClaims,
}

/// How long a created NodeClaim the watch never delivers is counted anyway (a watch that was
/// down meanwhile relists, and a claim deleted by then is not in the list to clear it).
const CREATED_UNSEEN_FOR_AT_MOST: Duration = Duration::from_secs(30);

/// NodeClaims this process created that the NodeClaim watch has not delivered yet, by name.
/// Karpenter puts a claim it creates into its cluster state at once (`UpdateNodeClaim` right
/// after the create) for the same reason: a provisioning pass that runs before the watch event
/// arrives must count the claim, or it makes another one for the same pods.
#[derive(Clone, Default)]
pub struct CreatedClaims(Arc<std::sync::Mutex<ByName>>);

/// Claim name -> the claim as created, and when.
type ByName = BTreeMap<String, (Arc<NodeClaim>, Instant)>;

impl CreatedClaims {
    /// Counts `claim` (as the create returned it) until `cache` has it.
    pub fn record(&self, claim: &NodeClaim, cache: &Store<NodeClaim>, now: Instant) {
        // Under the lock, so a watch event that lands meanwhile either is seen here or clears it.
        let mut created = self.lock();
        if !cached(cache, claim) {
            created.insert(claim.name_any(), (Arc::new(claim.clone()), now));
        }
    }

    /// The watch delivered (or deleted) the claim, or this process deleted it: the cache speaks
    /// for it from now on.
    pub fn seen(&self, claim: &NodeClaim) {
        let mut created = self.lock();
        if created.get(&claim.name_any()).is_some_and(|(c, _)| c.metadata.uid == claim.metadata.uid) {
            created.remove(&claim.name_any());
        }
    }

    /// Those `cache` does not have yet, forgetting the rest.
    fn unseen(&self, cache: &Store<NodeClaim>, now: Instant) -> Vec<Arc<NodeClaim>> {
        let mut created = self.lock();
        created
            .retain(|_, (c, at)| now.saturating_duration_since(*at) < CREATED_UNSEEN_FOR_AT_MOST && !cached(cache, c));
        created.values().map(|(c, _)| c.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ByName> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn cached(cache: &Store<NodeClaim>, claim: &NodeClaim) -> bool {
    cache.get(&ObjectRef::from_obj(claim)).is_some_and(|c| c.metadata.uid == claim.metadata.uid)
}

/// Nodes and NodeClaims the provisioner counted on for pending pods, and when (Karpenter's
/// nomination). Disruption leaves them alone for a while, so a node that just came up for pods
/// the scheduler has not bound yet is not taken for empty.
#[derive(Clone, Default)]
pub struct Nominations(Arc<std::sync::Mutex<BTreeMap<String, Instant>>>);

impl Nominations {
    /// Records that pending pods are meant for `name` (a NodeClaim or Node name), at `now`.
    pub fn nominate(&self, name: &str, now: Instant) {
        self.lock().insert(name.to_owned(), now);
    }

    /// Names nominated at or after `at`, sorted.
    pub fn since(&self, at: Instant) -> Vec<String> {
        self.lock().iter().filter(|(_, t)| **t >= at).map(|(n, _)| n.clone()).collect()
    }

    /// When `name` was last nominated, if ever.
    pub fn last(&self, name: &str) -> Option<Instant> {
        self.lock().get(name).copied()
    }

    /// Forgets nominations older than `age` at `now` (called by whoever reads them, so the map
    /// stays small).
    pub fn prune(&self, age: Duration, now: Instant) {
        self.lock().retain(|_, at| now.saturating_duration_since(*at) < age);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClusterState {
    /// Starts the watches (tasks on the current runtime) and waits until every cache has listed
    /// once, so nothing decides on an empty view.
    pub async fn start(client: Client) -> ClusterState {
        let (trigger_tx, provisioning_triggered) = watch::channel(0u64);
        let (capacity_tx, capacity_changed) = watch::channel(0u64);
        let (trigger, capacity) = (Arc::new(trigger_tx), Arc::new(capacity_tx));
        let pods =
            spawn_reflector(Api::<Pod>::all(client.clone()), vec![(trigger.clone(), crate::convert::is_provisionable)]);
        let nodes = spawn_reflector(
            Api::<Node>::all(client.clone()),
            vec![(capacity.clone(), always), (trigger.clone(), node_leaving)],
        );
        let created = CreatedClaims::default();
        let node_claims = spawn_reflector_seeing(
            Api::<NodeClaim>::all(client.clone()),
            vec![
                (capacity.clone(), always),
                (trigger.clone(), |c: &NodeClaim| c.metadata.deletion_timestamp.is_some()),
            ],
            {
                let created = created.clone();
                move |c: &NodeClaim| created.seen(c)
            },
        );
        // A NodePool or EC2NodeClass that changes (becomes ready, say) can change what pending pods get.
        let node_pools = spawn_reflector(
            Api::<NodePool>::all(client.clone()),
            vec![(capacity.clone(), always), (trigger.clone(), always)],
        );
        let node_classes = spawn_reflector(
            Api::<EC2NodeClass>::all(client.clone()),
            vec![(capacity.clone(), always), (trigger.clone(), always)],
        );
        let daemon_sets = spawn_reflector(Api::<DaemonSet>::all(client), vec![(capacity.clone(), always)]);
        let state = ClusterState {
            pods,
            nodes,
            node_claims,
            node_pools,
            node_classes,
            daemon_sets,
            provisioning_triggered,
            capacity_changed,
            nominations: Nominations::default(),
            interrupted: Nominations::default(),
            created,
        };
        state.wait_synced().await;
        state
    }

    /// Caches that no watch fills: always empty (benchmarks and tests without a cluster).
    pub fn detached() -> ClusterState {
        let (_, provisioning_triggered) = watch::channel(0u64);
        let (_, capacity_changed) = watch::channel(0u64);
        ClusterState {
            pods: reflector::store().0,
            nodes: reflector::store().0,
            node_claims: reflector::store().0,
            node_pools: reflector::store().0,
            node_classes: reflector::store().0,
            daemon_sets: reflector::store().0,
            provisioning_triggered,
            capacity_changed,
            nominations: Nominations::default(),
            interrupted: Nominations::default(),
            created: CreatedClaims::default(),
        }
    }

    async fn wait_synced(&self) {
        // Each store resolves once its first list completed; a watch that cannot list (e.g. a
        // missing CRD) keeps retrying with backoff, so say so instead of waiting silently.
        tokio::join!(
            wait_ready(&self.pods, "pods"),
            wait_ready(&self.nodes, "nodes"),
            wait_ready(&self.node_claims, "nodeclaims"),
            wait_ready(&self.node_pools, "nodepools"),
            wait_ready(&self.node_classes, "ec2nodeclasses"),
            wait_ready(&self.daemon_sets, "daemonsets"),
        );
    }

    pub fn node_by_provider_id(&self, provider_id: &str) -> Option<Arc<Node>> {
        self.nodes
            .state()
            .into_iter()
            .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
    }

    pub fn node_claim_by_provider_id(&self, provider_id: &str) -> Option<Arc<NodeClaim>> {
        self.node_claims
            .state()
            .into_iter()
            .find(|c| c.status.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
    }

    pub fn node_claim_by_instance_id(&self, instance_id: &str) -> Option<Arc<NodeClaim>> {
        self.node_claims.state().into_iter().find(|c| {
            c.status
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .and_then(crate::cloud::instance_id_from_provider_id)
                == Some(instance_id)
        })
    }

    /// Every NodeClaim: the cache's, and those this process created that the watch has not
    /// delivered yet (what capacity decisions must count).
    pub fn node_claims_now(&self, now: Instant) -> Vec<Arc<NodeClaim>> {
        let mut claims = self.node_claims.state();
        claims.extend(self.created.unseen(&self.node_claims, now));
        claims
    }

    pub fn node_pool(&self, name: &str) -> Option<Arc<NodePool>> {
        self.node_pools.state().into_iter().find(|p| p.metadata.name.as_deref() == Some(name))
    }

    pub fn node_class(&self, name: &str) -> Option<Arc<EC2NodeClass>> {
        self.node_classes.state().into_iter().find(|c| c.metadata.name.as_deref() == Some(name))
    }

    /// Names of Nodes and NodeClaims that are going away: deleting, or tainted as disrupted.
    /// Their pods count as pending so replacements start before the drain.
    pub fn marked_for_deletion(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for claim in self.node_claims.state() {
            if claim.metadata.deletion_timestamp.is_some() {
                out.insert(claim.name_any());
                if let Some(node) = claim.status.as_ref().and_then(|s| s.node_name.clone()) {
                    out.insert(node);
                }
            }
        }
        for node in self.nodes.state() {
            if node_leaving(&node) {
                out.insert(node.name_any());
            }
        }
        out
    }

    /// Pods bound to a node, by node name.
    pub fn pods_on(&self, node_name: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name))
            .collect()
    }
}

async fn wait_ready<K>(store: &Store<K>, what: &str)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), store.wait_until_ready()).await {
            Ok(_) => return,
            Err(_) => tracing::warn!(kind = what, "still waiting for the first list (is the CRD installed?)"),
        }
    }
}

/// A Node being deleted or tainted `karpenter.sh/disrupted`: its pods need a place elsewhere.
fn node_leaving(node: &Node) -> bool {
    let disrupted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == l::DISRUPTED_TAINT));
    node.metadata.deletion_timestamp.is_some() || disrupted
}

/// Every object counts.
fn always<K>(_: &K) -> bool {
    true
}

/// Whom a watch tells when it touches an object, and for which objects.
type Notify<K> = Vec<(Arc<watch::Sender<u64>>, fn(&K) -> bool)>;

fn spawn_reflector<K>(api: Api<K>, notify: Notify<K>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    spawn_reflector_seeing(api, notify, |_: &K| {})
}

/// [`spawn_reflector`], also telling `seen` of every object the watch touches, once the cache has it.
fn spawn_reflector_seeing<K>(api: Api<K>, notify: Notify<K>, seen: impl Fn(&K) + Send + 'static) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default()).default_backoff().reflect(writer).touched_objects();
    tokio::spawn(drive(stream, notify, seen));
    reader
}

async fn drive<K, S>(stream: S, notify: Notify<K>, seen: impl Fn(&K))
where
    S: Stream<Item = Result<K, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(obj) => {
                seen(&obj);
                for (sender, wanted) in &notify {
                    if wanted(&obj) {
                        sender.send_modify(|generation| *generation += 1);
                    }
                }
            }
            Err(err) => tracing::debug!(error = %err, "watch error (retrying with backoff)"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claim(name: &str, uid: &str) -> NodeClaim {
        serde_json::from_value(serde_json::json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": name, "uid": uid},
            "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": []}}))
        .unwrap()
    }

    fn names(claims: &[Arc<NodeClaim>]) -> Vec<String> {
        claims.iter().map(|c| c.name_any()).collect()
    }

    #[test]
    fn a_created_claim_counts_until_the_watch_or_a_delete_speaks_for_it() {
        let (cache, mut writer) = reflector::store::<NodeClaim>();
        let created = CreatedClaims::default();
        let t0 = Instant::now();
        let (a, b) = (claim("a", "uid-a"), claim("b", "uid-b"));
        created.record(&a, &cache, t0);
        created.record(&b, &cache, t0);
        assert_eq!(names(&created.unseen(&cache, t0)), ["a", "b"]);

        // The watch delivers `a`: the cache has it (and it is counted once, from there).
        writer.apply_watcher_event(&watcher::Event::Apply(a.clone()));
        created.seen(&a);
        assert_eq!(names(&created.unseen(&cache, t0)), ["b"]);
        // `b` is deleted by this process before the watch had it: it counts no more.
        created.seen(&b);
        assert!(created.unseen(&cache, t0).is_empty());

        // A claim the cache already had when the create returned is not recorded twice.
        created.record(&a, &cache, t0);
        assert!(created.unseen(&cache, t0).is_empty());
        // One the watch never delivers is counted for a while only.
        let c = claim("c", "uid-c");
        created.record(&c, &cache, t0);
        assert_eq!(names(&created.unseen(&cache, t0 + Duration::from_secs(29))), ["c"]);
        assert!(created.unseen(&cache, t0 + CREATED_UNSEEN_FOR_AT_MOST).is_empty());
    }
}
