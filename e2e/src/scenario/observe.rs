//! Watching a run from the side: every NodeClaim ever seen (a watch, so claims that live a moment,
//! like a failed spot launch, are not missed) and the moments of its life, fake-ec2's event log
//! (interruption warnings, rebalance recommendations, reclaims, FIS experiments, instances gone),
//! and a sample of nodes, pods, PDBs and fleet cost each second, for the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use autoscaler::apis::common::is_true;
use autoscaler::apis::{NodeClaim, labels as l};
use fake_ec2::server::AppState;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

use super::messages::{MessageCounts, MessageTracker, QueueNow};
use super::world_events::{self, What, WorldEvent};
use crate::report::timeline::{ClaimSeen, InstanceSeen};
use crate::report::view::{CapacityType, Lane, Marker, MarkerKind, Sample, Samples};
use crate::under_test::Restarts;
use crate::watched::Watched;
use autoscaler::cloud::instance::instance_id_from_provider_id;

/// How often a settling observation lists the NodeClaims again.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// What the side tasks saw, shared with the runner.
#[derive(Debug, Default)]
pub struct Observed {
    /// NodeClaims by uid.
    pub claims: BTreeMap<String, ClaimSeen>,
    /// Samples, markers and PDB violations; the lanes are put in by [`Observer::finish`].
    pub samples: Samples,
    /// PDBs seen satisfied at least once: only from then on does falling short count as a
    /// violation (not while the workload is still coming up).
    pub pdbs_armed: BTreeSet<String>,
    /// NodeClaim lives by uid.
    lanes: BTreeMap<String, Lane>,
    /// Instance id -> world seconds it began shutting down (or stopping), and was gone.
    instance_ends: BTreeMap<String, (Option<f64>, Option<f64>)>,
    /// Event log lines read (their sequence number).
    events_read: u64,
    /// The interruption queue's messages.
    messages: MessageTracker,
    /// Supervised restarts of the autoscaler already marked.
    restarts_marked: u32,
}

#[derive(Clone)]
pub struct Observer {
    inner: Arc<Mutex<Observed>>,
    fake: AppState,
    restarts: Restarts,
    start_ms: i64,
    started: Instant,
}

/// What fake-ec2 knows about a claim's instance.
struct InstanceFacts {
    placement: String,
    capacity_type: String,
    instance_type: String,
    zone: String,
    launched_ms: i64,
}

impl Observer {
    /// Watches `fake`'s world; `restarts` counts the autoscaler's supervised restarts, each marked.
    pub fn new(fake: AppState, restarts: Restarts) -> Observer {
        let start_ms = fake.cloud().now();
        Observer { inner: Arc::default(), fake, restarts, start_ms, started: Instant::now() }
    }

    /// The interruption queue's messages: sent, and received by the autoscaler.
    pub fn messages(&self) -> MessageCounts {
        self.read_events();
        self.lock().messages.counts()
    }

    /// fake-ec2's world was replaced (a restart): its event log starts over, or where its state
    /// file had it; read from there on.
    pub fn world_replaced(&self) {
        let published = self.fake.cloud().events.published();
        let mut o = self.lock();
        o.events_read = o.events_read.min(published);
    }

    /// Marks supervised restarts of the autoscaler not marked yet.
    fn mark_restarts(&self) {
        let now = self.restarts.count();
        let marked = std::mem::replace(&mut self.lock().restarts_marked, now);
        for _ in marked..now {
            self.mark(MarkerKind::Autoscaler, "autoscaler restarted by its supervisor (crash or failed start)".into());
        }
    }

    /// Looks at the queues messages went to: which were received.
    fn follow_messages(&self) {
        let queues = self.lock().messages.queues();
        let w = self.fake.cloud();
        let now_ms = w.now();
        let seen: Vec<(String, QueueNow, i64)> = queues
            .into_iter()
            .filter_map(|name| {
                let q = w.sqs.get(&name).ok()?;
                let now: QueueNow = q.messages().map(|m| (m.id.clone(), m.receive_count > 0)).collect();
                let retention_ms = q.settings.message_retention_period.saturating_mul(1000);
                Some((name, now, retention_ms))
            })
            .collect();
        drop(w);
        let mut o = self.lock();
        for (name, now, retention_ms) in seen {
            o.messages.observe(&name, &now, now_ms, retention_ms);
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Observed> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// World seconds since the run started.
    pub fn world_seconds(&self) -> f64 {
        self.seconds(self.fake.cloud().now())
    }

    fn seconds(&self, world_ms: i64) -> f64 {
        (world_ms - self.start_ms) as f64 / 1000.0
    }

    pub fn mark(&self, kind: MarkerKind, label: String) {
        let t = self.world_seconds();
        self.lock().samples.markers.push(Marker { t, kind, label, instance_id: None });
    }

    /// Everything observed, with the NodeClaims' lives as lanes: the event log read and the
    /// cluster sampled once more, so the report ends in the state the run ended in.
    pub async fn finish(&self, kube: &kube::Client) -> Samples {
        self.read_events();
        self.follow_messages();
        self.mark_restarts();
        // Once, at the end: a fresh list rather than a watch's view.
        let nodes = Api::<Node>::all(kube.clone()).list(&ListParams::default()).await;
        let pods = Api::<Pod>::all(kube.clone()).list(&ListParams::default()).await;
        if let (Ok(nodes), Ok(pods)) = (nodes, pods) {
            let (nodes, pods): (Vec<_>, Vec<_>) =
                (nodes.items.into_iter().map(Arc::new).collect(), pods.items.into_iter().map(Arc::new).collect());
            if let Some(s) = self.take_sample(kube, &nodes, &pods).await {
                self.lock().samples.samples.push(s);
            }
        }
        let o = self.lock();
        let mut samples = o.samples.clone();
        samples.lanes = o
            .lanes
            .values()
            .map(|lane| {
                let mut lane = lane.clone();
                if let Some((terminating, terminated)) = lane.instance_id.as_ref().and_then(|i| o.instance_ends.get(i))
                {
                    lane.terminating = *terminating;
                    lane.terminated = terminated.or(lane.terminated);
                }
                lane
            })
            .collect();
        samples
    }

    /// Reads fake-ec2's event log since the last call into markers and instance ends.
    fn read_events(&self) {
        let since = self.lock().events_read;
        let (read, events) = {
            let w = self.fake.cloud();
            let events: Vec<(WorldEvent, Option<String>)> = w
                .events
                .log_since(since)
                .filter_map(world_events::parse)
                .map(|e| {
                    // The state reason tells EC2's reclaim from a termination someone asked for.
                    let reason = match &e.what {
                        What::State { instance_id, .. } => {
                            w.ec2.instance(instance_id).and_then(|i| i.state_reason.as_ref()).map(|r| r.0.clone())
                        }
                        _ => None,
                    };
                    (e, reason)
                })
                .collect();
            (w.events.published(), events)
        };
        let mut o = self.lock();
        o.events_read = read;
        for (e, reason) in events {
            for (queue, id) in &e.deliveries {
                o.messages.sent(e.what.kind(), queue, id, e.at_ms);
            }
            let t = self.seconds(e.at_ms);
            let marker = |kind, label: String, instance_id: Option<String>| Marker { t, kind, label, instance_id };
            let m = match e.what {
                What::State { instance_id, state } => {
                    let ends = o.instance_ends.entry(instance_id.clone()).or_default();
                    match state.as_str() {
                        "shutting-down" | "stopping" => {
                            ends.0.get_or_insert(t);
                            reason.filter(|r| r.starts_with("Server.SpotInstance")).map(|_| {
                                let how = if state == "stopping" { "reclaim (stop)" } else { "reclaim" };
                                marker(MarkerKind::Reclaim, how.to_owned(), Some(instance_id))
                            })
                        }
                        "terminated" | "stopped" => {
                            ends.1.get_or_insert(t);
                            None
                        }
                        _ => None,
                    }
                }
                What::Rebalance { instance_id } => Some(marker(
                    MarkerKind::RebalanceRecommendation,
                    "rebalance recommendation".to_owned(),
                    Some(instance_id),
                )),
                What::Warning { instance_id, action, reservation } => {
                    let what = if reservation { "reservation interruption" } else { "interruption warning" };
                    Some(marker(MarkerKind::InterruptionWarning, format!("{what} ({action})"), Some(instance_id)))
                }
                What::Health { code, instance_ids } => {
                    let one = (instance_ids.len() == 1).then(|| instance_ids[0].clone());
                    Some(marker(MarkerKind::HealthEvent, format!("AWS Health {code}"), one))
                }
                What::Fis { experiment_id, status } => {
                    matches!(status.as_str(), "running" | "completed" | "stopped" | "failed")
                        .then(|| marker(MarkerKind::FisExperiment, format!("FIS {experiment_id} {status}"), None))
                }
            };
            o.samples.markers.extend(m);
        }
    }

    /// Every fake-ec2 instance ever launched, in launch order.
    pub fn instances(&self) -> Vec<InstanceSeen> {
        let w = self.fake.cloud();
        w.ec2
            .instances
            .values()
            .map(|i| InstanceSeen {
                seq: i.seq,
                id: i.id.clone(),
                key: format!("{} {} {}", i.capacity_type.as_str(), i.zone, i.instance_type),
                gone: i.state.is_terminating_or_terminated(),
            })
            .collect()
    }

    /// Lists NodeClaims now (so an observation never lags the watch), then returns every claim
    /// seen, with placements filled in from fake-ec2.
    pub async fn refresh_claims(&self, kube: &kube::Client) -> BTreeMap<String, ClaimSeen> {
        if let Ok(list) = Api::<NodeClaim>::all(kube.clone()).list(&ListParams::default()).await {
            for c in &list.items {
                self.record(c, false);
            }
        }
        self.claims()
    }

    /// [`Observer::refresh_claims`], once no claim is caught between its launch and its status: an
    /// autoscaler creates the instance (CreateFleet) and only then writes the NodeClaim's provider
    /// id, so a step whose condition fake-ec2 satisfied can end in between. Waits for that write,
    /// at most `timeout`, so a step's record does not depend on which of the two was seen first.
    pub async fn settled_claims(&self, kube: &kube::Client, timeout: Duration) -> BTreeMap<String, ClaimSeen> {
        let deadline = Instant::now() + timeout;
        loop {
            let claims = self.refresh_claims(kube).await;
            if !self.launch_unrecorded(&claims) || Instant::now() >= deadline {
                return claims;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// Whether a live instance tagged with a NodeClaim's name belongs to a claim that has not
    /// recorded it yet.
    fn launch_unrecorded(&self, claims: &BTreeMap<String, ClaimSeen>) -> bool {
        let w = self.fake.cloud();
        w.ec2.instances.values().filter(|i| !i.state.is_terminating_or_terminated()).any(|i| {
            i.tags
                .get(autoscaler::cloud::fleet::TAG_NODECLAIM)
                .is_some_and(|name| claims.values().any(|c| &c.name == name && !c.deleted && c.instance_id.is_none()))
        })
    }

    /// The claims, with placements filled in from fake-ec2 for any launched since last seen.
    pub fn claims(&self) -> BTreeMap<String, ClaimSeen> {
        let mut claims = self.lock().claims.clone();
        let w = self.fake.cloud();
        for c in claims.values_mut().filter(|c| c.placement.is_none()) {
            if let Some(i) = c.instance_id.as_deref().and_then(|id| w.ec2.instance(id)) {
                c.placement = Some(format!("{} {} {}", i.capacity_type.as_str(), i.zone, i.instance_type));
            }
        }
        claims
    }

    fn record(&self, claim: &NodeClaim, deleted: bool) {
        let Some(uid) = claim.metadata.uid.clone() else { return };
        let status = claim.status.as_ref();
        let instance_id =
            status.and_then(|s| s.provider_id.as_deref()).and_then(instance_id_from_provider_id).map(str::to_owned);
        let (now, facts) = {
            let w = self.fake.cloud();
            let facts = instance_id.as_deref().and_then(|id| w.ec2.instance(id)).map(|i| InstanceFacts {
                placement: format!("{} {} {}", i.capacity_type.as_str(), i.zone, i.instance_type),
                capacity_type: i.capacity_type.as_str().to_owned(),
                instance_type: i.instance_type.clone(),
                zone: i.zone.clone(),
                launched_ms: i.launch_time,
            });
            (self.seconds(w.now()), facts)
        };
        let label = |k: &str| claim.metadata.labels.as_ref().and_then(|m| m.get(k)).cloned();
        let name = claim.metadata.name.clone().unwrap_or_default();
        let nodepool = label(l::NODEPOOL).unwrap_or_default();
        let mut o = self.lock();
        let seen = o.claims.entry(uid.clone()).or_default();
        seen.name = name.clone();
        seen.nodepool = nodepool.clone();
        if instance_id.is_some() {
            seen.instance_id = instance_id.clone();
        }
        if let Some(f) = &facts {
            seen.placement = Some(f.placement.clone());
        }
        if let Some(n) = status.and_then(|s| s.node_name.clone()) {
            seen.node_name = Some(n);
        }
        // Deleting counts as deleted: when the claim object finally goes (finalizers, EC2's
        // shutdown) races the observation; the deletion request itself does not.
        seen.deleted |= deleted || claim.metadata.deletion_timestamp.is_some();

        let lane =
            o.lanes.entry(uid).or_insert_with(|| Lane { nodeclaim: name, nodepool, created: now, ..Lane::default() });
        match facts {
            Some(f) => {
                lane.capacity_type = CapacityType::parse(&f.capacity_type);
                lane.instance_type = Some(f.instance_type);
                lane.zone = Some(f.zone);
                lane.instance_id = instance_id;
                lane.launched.get_or_insert(self.seconds(f.launched_ms));
            }
            None => {
                // Before the instance is known, what the claim's labels say.
                if let Some(ct) = label(l::CAPACITY_TYPE) {
                    lane.capacity_type = CapacityType::parse(&ct);
                }
                lane.instance_type = lane.instance_type.take().or_else(|| label(l::INSTANCE_TYPE));
                lane.zone = lane.zone.take().or_else(|| label(l::ZONE));
            }
        }
        let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
        if is_true(conditions, "Registered") {
            lane.registered.get_or_insert(now);
        }
        if is_true(conditions, "Ready") || is_true(conditions, "Initialized") {
            lane.ready.get_or_insert(now);
        }
        if let Some(c) = conditions.iter().find(|c| c.type_ == "DisruptionReason" && c.status == "True") {
            disrupt(lane, now, if c.reason.is_empty() { &c.message } else { &c.reason });
        }
        if deleted || claim.metadata.deletion_timestamp.is_some() {
            disrupt(lane, now, "deleted");
        }
        if deleted {
            gone(lane, now);
        }
    }

    /// Claims not in a fresh list are gone.
    fn forget_missing(&self, live: &BTreeSet<String>) {
        let now = self.world_seconds();
        let mut o = self.lock();
        for (uid, c) in o.claims.iter_mut() {
            c.deleted |= !live.contains(uid);
        }
        for (_, lane) in o.lanes.iter_mut().filter(|(uid, _)| !live.contains(*uid)) {
            disrupt(lane, now, "deleted");
            gone(lane, now);
        }
    }

    /// Watches NodeClaims until aborted; relists (and marks missing claims deleted) when the watch ends.
    pub async fn watch_claims(self, kube: kube::Client) {
        let api: Api<NodeClaim> = Api::all(kube);
        loop {
            let Ok(list) = api.list(&ListParams::default()).await else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let live: BTreeSet<String> = list.items.iter().filter_map(|c| c.metadata.uid.clone()).collect();
            self.forget_missing(&live);
            for c in &list.items {
                self.record(c, false);
            }
            let rv = list.metadata.resource_version.unwrap_or_default();
            let Ok(stream) = api.watch(&WatchParams::default().timeout(290), &rv).await else { continue };
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(WatchEvent::Added(c) | WatchEvent::Modified(c)) => self.record(&c, false),
                    Ok(WatchEvent::Deleted(c)) => self.record(&c, true),
                    Ok(WatchEvent::Bookmark(_)) => {}
                    Ok(WatchEvent::Error(_)) | Err(_) => break,
                }
            }
        }
    }

    /// Samples once a second until aborted.
    pub async fn sample(self, kube: kube::Client) {
        // Nodes and pods from watches: a scenario of 10,000 pods would otherwise list them all every second.
        let (nodes, pods) = loop {
            match (
                Watched::<Node>::start(Api::all(kube.clone()), None).await,
                Watched::<Pod>::start(Api::all(kube.clone()), None).await,
            ) {
                (Ok(nodes), Ok(pods)) => break (nodes, pods),
                (n, p) => {
                    let error = n.err().or(p.err()).map(|e| format!("{e:#}")).unwrap_or_default();
                    tracing::warn!(%error, "the observer's watches did not start; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.read_events();
            self.follow_messages();
            self.mark_restarts();
            if let Some(s) = self.take_sample(&kube, &nodes.all(), &pods.all()).await {
                self.lock().samples.samples.push(s);
            }
        }
    }

    async fn take_sample(&self, kube: &kube::Client, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Option<Sample> {
        let pdbs = Api::<PodDisruptionBudget>::all(kube.clone()).list(&ListParams::default()).await.ok()?.items;
        let mut s = Sample { t: self.world_seconds(), real: self.started.elapsed().as_secs_f64(), ..Sample::default() };
        let mut tainted = Vec::new();
        for n in nodes {
            if n.spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| t.iter().any(|t| t.key == l::DISRUPTED_TAINT))
                && let Some(id) =
                    n.spec.as_ref().and_then(|s| s.provider_id.as_deref()).and_then(instance_id_from_provider_id)
            {
                tainted.push(id.to_owned());
            }
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let label = |k: &str| crate::env::label(n, k).unwrap_or("-").to_owned();
            if ready {
                *s.nodes
                    .entry(format!("{} {}", label("karpenter.sh/capacity-type"), label("topology.kubernetes.io/zone")))
                    .or_default() += 1;
            }
        }
        for p in pods {
            match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Pending") => s.pending_pods += 1,
                Some("Running") => s.running_pods += 1,
                _ => {}
            }
        }
        s.fleet_cost_per_hour = fleet_cost_per_hour(&self.fake);
        let mut violations = Vec::new();
        let mut o = self.lock();
        for lane in o.lanes.values_mut().filter(|l| l.instance_id.as_ref().is_some_and(|i| tainted.contains(i))) {
            disrupt(lane, s.t, "tainted karpenter.sh/disrupted");
        }
        for p in &pdbs {
            let Some(st) = p.status.as_ref() else { continue };
            if st.observed_generation.is_none() {
                continue;
            }
            let key = format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or("")
            );
            if st.desired_healthy > 0 && st.current_healthy >= st.desired_healthy {
                o.pdbs_armed.insert(key);
            } else if o.pdbs_armed.contains(&key) && st.current_healthy < st.desired_healthy {
                violations.push(format!(
                    "PDB {} had {} healthy pods, wants {} (t={:.0}s)",
                    p.metadata.name.as_deref().unwrap_or(""),
                    st.current_healthy,
                    st.desired_healthy,
                    s.t
                ));
            }
        }
        o.samples.pdb_violations.extend(violations);
        Some(s)
    }
}

/// Disruption began at `t`, unless it already had.
fn disrupt(lane: &mut Lane, t: f64, why: &str) {
    if lane.disrupted.is_none() {
        lane.disrupted = Some(t);
        lane.disruption = Some(why.to_owned());
    }
}

/// The claim is gone: a claim without an instance ends here (one with an instance ends when the
/// instance does).
fn gone(lane: &mut Lane, t: f64) {
    if lane.instance_id.is_none() {
        lane.terminated.get_or_insert(t);
    }
}

/// The fleet's cost per hour at the world's current prices.
pub fn fleet_cost_per_hour(fake: &AppState) -> f64 {
    let w = fake.cloud();
    let now = w.now();
    w.ec2
        .instances
        .values()
        .filter(|i| matches!(i.state.name(), "pending" | "running"))
        .filter_map(|i| {
            let pool = w.ec2.pool_of(&i.instance_type, &i.zone)?;
            Some(match i.capacity_type.as_str() {
                "spot" => w.ec2.pools.spot_price_at(pool, now).1,
                _ => w.ec2.pools.on_demand_price(pool),
            })
        })
        // An empty sum is -0.0.
        .sum::<f64>()
        + 0.0
}
