//! What a run leaves behind. The [`Timeline`] is the normalized record a snapshot holds: per step,
//! the decisions seen since the previous observation (NodeClaims created with their pool, capacity
//! type, zone and instance type; instances launched and terminated by kind; where pods run) and
//! the expectation results, never wall-clock times, UIDs, generated names or resource versions.
//! NodeClaims get aliases (`nodeclaim-1`, ...) in the order they are first reported; claims first
//! reported together are ordered by what they are, so the aliases do not depend on timing.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The normalized record of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub scenario: String,
    pub seed: u64,
    pub steps: Vec<StepRecord>,
    /// `passed`, `failed at step N` or `skipped: ...`.
    pub outcome: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: usize,
    /// What the step did, from the scenario file.
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodeclaims_created: Vec<String>,
    /// Claims reported earlier without an instance that have one now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodeclaims_launched: Vec<String>,
    /// Claims being deleted (deletionTimestamp set) or gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodeclaims_deleted: Vec<String>,
    /// `capacity-type zone instance-type` -> how many.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub instances_launched: BTreeMap<String, usize>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub instances_terminated: BTreeMap<String, usize>,
    /// Running pods by `app` label, then node (as its NodeClaim's alias) -> how many; only when
    /// it changed since the previous observation.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pods_running: BTreeMap<String, BTreeMap<String, usize>>,
    /// Error codes of the injected faults fake-ec2 answered during the step (the client's retries
    /// meeting the fault), sorted; how many times depends on timing, so only which.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub injected_errors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A NodeClaim as the recorder last saw it.
#[derive(Clone, Debug, Default)]
pub struct ClaimSeen {
    pub name: String,
    pub nodepool: String,
    /// `capacity-type zone instance-type` once launched (from fake-ec2's instance).
    pub placement: Option<String>,
    pub instance_id: Option<String>,
    pub node_name: Option<String>,
    pub deleted: bool,
}

impl ClaimSeen {
    fn describe(&self) -> String {
        match &self.placement {
            Some(p) => format!("nodepool={} {p}", self.nodepool),
            None => format!("nodepool={} (not launched)", self.nodepool),
        }
    }
}

/// Turns raw observations into timeline entries, remembering what it already reported.
#[derive(Debug, Default)]
pub struct Normalizer {
    /// uid -> alias
    aliases: BTreeMap<String, String>,
    reported_deleted: BTreeSet<String>,
    /// Claims whose placement was reported.
    placed: BTreeSet<String>,
    /// fake-ec2 instance seq numbers already reported launched / terminated.
    launched: BTreeSet<u64>,
    terminated: BTreeSet<u64>,
    last_pods: BTreeMap<String, BTreeMap<String, usize>>,
}

/// One fake-ec2 instance, as observed.
#[derive(Clone, Debug)]
pub struct InstanceSeen {
    pub seq: u64,
    pub id: String,
    pub key: String,
    pub gone: bool,
}

impl Normalizer {
    /// Fills `rec` with what changed since the last call. `claims` by uid; `pods` as (app, the
    /// instance id behind the pod's node), or None at a step whose condition does not settle
    /// the pods (where they run mid-drain depends on timing; it is neither recorded nor remembered).
    pub fn observe(
        &mut self,
        rec: &mut StepRecord,
        claims: &BTreeMap<String, ClaimSeen>,
        instances: &[InstanceSeen],
        pods: Option<&[(String, String)]>,
    ) {
        let mut fresh: Vec<(&String, &ClaimSeen)> =
            claims.iter().filter(|(uid, _)| !self.aliases.contains_key(*uid)).collect();
        // Launched ones first, then by what they are, then claims alike by their instance's
        // launch order in fake-ec2 (which a seeded FIS selection refers to): the order is
        // timing-free and does not depend on UIDs.
        let seq: BTreeMap<&str, u64> = instances.iter().map(|i| (i.id.as_str(), i.seq)).collect();
        fresh.sort_by_key(|(_, c)| {
            (c.placement.is_none(), c.describe(), c.instance_id.as_deref().and_then(|id| seq.get(id).copied()))
        });
        for (uid, c) in fresh {
            let alias = format!("nodeclaim-{}", self.aliases.len() + 1);
            rec.nodeclaims_created.push(format!("{alias} {}", c.describe()));
            self.aliases.insert(uid.clone(), alias);
            if c.placement.is_some() {
                self.placed.insert(uid.clone());
            }
        }
        let mut launched: Vec<(usize, String)> = Vec::new();
        for (uid, c) in claims {
            if let (Some(p), Some(alias)) = (&c.placement, self.aliases.get(uid))
                && self.placed.insert(uid.clone())
            {
                launched.push((alias_number(alias), format!("{alias} {p}")));
            }
        }
        launched.sort();
        rec.nodeclaims_launched = launched.into_iter().map(|(_, l)| l).collect();
        let mut deleted: Vec<String> = claims
            .iter()
            .filter(|(uid, c)| c.deleted && !self.reported_deleted.contains(*uid))
            .filter_map(|(uid, _)| self.aliases.get(uid).cloned())
            .collect();
        deleted.sort_by_key(|a| alias_number(a));
        rec.nodeclaims_deleted = deleted;
        self.reported_deleted.extend(claims.iter().filter(|(_, c)| c.deleted).map(|(uid, _)| uid.clone()));

        for i in instances {
            if self.launched.insert(i.seq) {
                *rec.instances_launched.entry(i.key.clone()).or_default() += 1;
            }
            if i.gone && self.terminated.insert(i.seq) {
                *rec.instances_terminated.entry(i.key.clone()).or_default() += 1;
            }
        }

        // Pods are matched to claims through the instance behind their node (the node's providerID),
        // which is known from the launch on, before the claim's status names its node.
        let node_alias: BTreeMap<&str, &str> = claims
            .iter()
            .filter_map(|(uid, c)| Some((c.instance_id.as_deref()?, self.aliases.get(uid)?.as_str())))
            .collect();
        let Some(pods) = pods else { return };
        let mut now: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (app, node) in pods {
            let at = node_alias
                .get(node.as_str())
                .map_or_else(|| "(a node without NodeClaim)".to_owned(), |a| (*a).to_owned());
            *now.entry(app.clone()).or_default().entry(at).or_default() += 1;
        }
        if now != self.last_pods {
            rec.pods_running = now.clone();
            self.last_pods = now;
        }
    }

    pub fn alias_of(&self, uid: &str) -> Option<&str> {
        self.aliases.get(uid).map(String::as_str)
    }
}

fn alias_number(alias: &str) -> usize {
    alias.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claim(pool: &str, placement: Option<&str>, node: Option<&str>) -> ClaimSeen {
        ClaimSeen {
            name: "random-abcde".into(),
            nodepool: pool.into(),
            placement: placement.map(str::to_owned),
            instance_id: None,
            node_name: node.map(str::to_owned),
            deleted: false,
        }
    }

    #[test]
    fn aliases_do_not_depend_on_uids_or_names() {
        let mut a = Normalizer::default();
        let mut b = Normalizer::default();
        let mut ca = BTreeMap::new();
        ca.insert("uid-1".to_owned(), claim("spot", Some("spot us-west-2b m5.large"), Some("n1")));
        ca.insert("uid-2".to_owned(), claim("spot", Some("spot us-west-2a m5.large"), Some("n2")));
        let mut cb = BTreeMap::new();
        cb.insert("zz".to_owned(), claim("spot", Some("spot us-west-2b m5.large"), Some("x1")));
        cb.insert("aa".to_owned(), claim("spot", Some("spot us-west-2a m5.large"), Some("x2")));
        for c in ca.values_mut().chain(cb.values_mut()) {
            c.instance_id = c.node_name.clone();
        }
        let pods_a = vec![("inflate".to_owned(), "n1".to_owned()), ("inflate".to_owned(), "n2".to_owned())];
        let pods_b = vec![("inflate".to_owned(), "x2".to_owned()), ("inflate".to_owned(), "x1".to_owned())];
        let (mut ra, mut rb) = (StepRecord::default(), StepRecord::default());
        a.observe(&mut ra, &ca, &[], Some(&pods_a));
        b.observe(&mut rb, &cb, &[], Some(&pods_b));
        assert_eq!(ra, rb);
        assert_eq!(ra.nodeclaims_created[0], "nodeclaim-1 nodepool=spot spot us-west-2a m5.large");
        // Claims alike are aliased in their instances' launch order, whatever their UIDs.
        let mut c = Normalizer::default();
        let mut cc = BTreeMap::new();
        cc.insert("uid-a".to_owned(), claim("spot", Some("spot us-west-2b m5.large"), None));
        cc.insert("uid-b".to_owned(), claim("spot", Some("spot us-west-2b m5.large"), None));
        cc.get_mut("uid-a").unwrap().instance_id = Some("i-late".into());
        cc.get_mut("uid-b").unwrap().instance_id = Some("i-early".into());
        let seen =
            |seq, id: &str| InstanceSeen { seq, id: id.into(), key: "spot us-west-2b m5.large".into(), gone: false };
        let mut rc = StepRecord::default();
        c.observe(&mut rc, &cc, &[seen(1, "i-early"), seen(2, "i-late")], Some(&[]));
        assert_eq!(c.alias_of("uid-b"), Some("nodeclaim-1"));
        assert_eq!(c.alias_of("uid-a"), Some("nodeclaim-2"));
        // Nothing new: nothing reported.
        let mut again = StepRecord::default();
        a.observe(&mut again, &ca, &[], Some(&pods_a));
        assert_eq!(again, StepRecord::default());
    }
}
