//! Watching a run from the side: every NodeClaim ever seen (a watch, so claims that live a moment,
//! like a failed spot launch, are not missed), and a sample of nodes, pods, PDBs and fleet cost
//! each second for the report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use autoscaler::apis::NodeClaim;
use fake_ec2::server::AppState;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

use crate::report::timeline::{ClaimSeen, InstanceSeen, Marker, Sample, Samples};

/// What the side tasks saw, shared with the runner.
#[derive(Debug, Default)]
pub struct Observed {
    /// NodeClaims by uid.
    pub claims: BTreeMap<String, ClaimSeen>,
    pub samples: Samples,
    /// PDBs seen satisfied at least once: only from then on does falling short count as a
    /// violation (not while the workload is still coming up).
    pub pdbs_armed: std::collections::BTreeSet<String>,
}

#[derive(Clone)]
pub struct Observer {
    inner: Arc<Mutex<Observed>>,
    fake: AppState,
    start_ms: i64,
}

impl Observer {
    pub fn new(fake: AppState) -> Observer {
        let start_ms = fake.cloud().now();
        Observer { inner: Arc::default(), fake, start_ms }
    }

    pub fn lock(&self) -> MutexGuard<'_, Observed> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// World seconds since the run started.
    pub fn world_seconds(&self) -> f64 {
        (self.fake.cloud().now() - self.start_ms) as f64 / 1000.0
    }

    pub fn mark(&self, kind: &str, label: String) {
        let t = self.world_seconds();
        self.lock().samples.markers.push(Marker { t, kind: kind.to_owned(), label });
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
                gone: matches!(i.state.name(), "shutting-down" | "terminated"),
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
            status.and_then(|s| s.provider_id.as_deref()).and_then(|p| p.rsplit('/').next()).map(str::to_owned);
        let placement = instance_id.as_deref().and_then(|id| {
            let w = self.fake.cloud();
            w.ec2.instance(id).map(|i| format!("{} {} {}", i.capacity_type.as_str(), i.zone, i.instance_type))
        });
        let mut o = self.lock();
        let seen = o.claims.entry(uid).or_default();
        seen.name = claim.metadata.name.clone().unwrap_or_default();
        seen.nodepool =
            claim.metadata.labels.as_ref().and_then(|l| l.get("karpenter.sh/nodepool")).cloned().unwrap_or_default();
        if instance_id.is_some() {
            seen.instance_id = instance_id;
        }
        if placement.is_some() {
            seen.placement = placement;
        }
        if let Some(n) = status.and_then(|s| s.node_name.clone()) {
            seen.node_name = Some(n);
        }
        // Deleting counts as deleted: when the claim object finally goes (finalizers, EC2's
        // shutdown) races the observation; the deletion request itself does not.
        seen.deleted |= deleted || claim.metadata.deletion_timestamp.is_some();
    }

    /// Watches NodeClaims until aborted; relists (and marks missing claims deleted) when the watch ends.
    pub async fn watch_claims(self, kube: kube::Client) {
        let api: Api<NodeClaim> = Api::all(kube);
        loop {
            let Ok(list) = api.list(&ListParams::default()).await else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let live: Vec<String> = list.items.iter().filter_map(|c| c.metadata.uid.clone()).collect();
            for (uid, c) in self.lock().claims.iter_mut() {
                c.deleted |= !live.contains(uid);
            }
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
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(s) = self.take_sample(&kube).await {
                self.lock().samples.samples.push(s);
            }
        }
    }

    async fn take_sample(&self, kube: &kube::Client) -> Option<Sample> {
        let nodes = Api::<Node>::all(kube.clone()).list(&ListParams::default()).await.ok()?.items;
        let pods = Api::<Pod>::all(kube.clone()).list(&ListParams::default()).await.ok()?.items;
        let pdbs = Api::<PodDisruptionBudget>::all(kube.clone()).list(&ListParams::default()).await.ok()?.items;
        let mut s = Sample { t: self.world_seconds(), ..Sample::default() };
        for n in &nodes {
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
        for p in &pods {
            match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Pending") => s.pending_pods += 1,
                Some("Running") => s.running_pods += 1,
                _ => {}
            }
        }
        s.fleet_cost_per_hour = fleet_cost_per_hour(&self.fake);
        let mut violations = Vec::new();
        let mut o = self.lock();
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
        .sum()
}
