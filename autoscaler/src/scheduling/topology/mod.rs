//! Topology: pod counts per domain for every spread constraint and pod (anti-)affinity term in the
//! batch, and the domain choice that keeps them satisfied (Karpenter's topology.go and
//! topologygroup.go, reimplemented). Groups are shared by pods with identical constraints.

mod domains;
mod group;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::pod::{Namespaces, SchedPod, Taint, WhenUnsatisfiable};
use super::requirements::{Requirement, Requirements, labels};

pub use domains::DomainUniverse;
pub use group::GroupKind;
use group::{Group, GroupSpec, NodeFilter, intern};

/// A node known before the solve, as topology sees it.
#[derive(Clone, Debug)]
pub struct TopologyNode {
    pub name: String,
    pub requirements: Requirements,
    pub taints: Vec<Taint>,
}

impl TopologyNode {
    /// The node's value for `key`; hostname falls back to the node name.
    fn domain(&self, key: &str) -> Option<String> {
        match self.requirements.get_defined(key).and_then(Requirement::single) {
            Some(v) => Some(v.to_string()),
            None if key == labels::HOSTNAME => Some(self.name.clone()),
            None => None,
        }
    }
}

/// A pod already bound to a node.
#[derive(Clone, Debug)]
pub struct CountedPod {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub node_name: String,
    pub anti_affinity: Vec<super::pod::AffinityTerm>,
}

/// A topology group that applies to one pod: one it owns, or an inverse anti-affinity that
/// selects it.
#[derive(Clone, Copy, Debug)]
struct Matching {
    inverse: bool,
    group: usize,
    selects_self: bool,
}

/// A pod cannot go to the node for topology reasons; [`Topology::explain`] says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyError;

/// A hostname rule of one pod: the group (owned or inverse) and the most matching pods a host may
/// already hold for the pod to join it.
#[derive(Clone, Copy, Debug)]
struct HostRule {
    inverse: bool,
    group: usize,
    max_count: i32,
}

pub struct Topology {
    universe: DomainUniverse,
    hosts: HashMap<String, u32>,
    /// Batch pod index → its hostname rules (see [`Topology::host_allows`]).
    host_rules: Vec<Vec<HostRule>>,
    /// Batch pod index → the groups that apply to it (see [`Topology::prepare`]).
    matching: Vec<Vec<Matching>>,
    nodes: Vec<TopologyNode>,
    nodes_by_name: HashMap<String, usize>,
    scheduled: Vec<CountedPod>,
    groups: Vec<Group>,
    index: HashMap<GroupSpec, usize>,
    /// Anti-affinity seen from the other side: pods selected by someone's anti-affinity term must
    /// avoid the domains where that someone runs.
    inverse: Vec<Group>,
    inverse_index: HashMap<GroupSpec, usize>,
    /// Batch pod index → groups it owns.
    owned: Vec<Vec<usize>>,
    respect_preferences: bool,
}

impl Topology {
    pub fn new(
        universe: DomainUniverse,
        nodes: Vec<TopologyNode>,
        scheduled: Vec<CountedPod>,
        respect_preferences: bool,
    ) -> Topology {
        let nodes_by_name = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        let mut t = Topology {
            universe,
            hosts: HashMap::new(),
            host_rules: Vec::new(),
            matching: Vec::new(),
            nodes,
            nodes_by_name,
            scheduled,
            groups: Vec::new(),
            index: HashMap::new(),
            inverse: Vec::new(),
            inverse_index: HashMap::new(),
            owned: Vec::new(),
            respect_preferences,
        };
        // Anti-affinity of pods already running repels the batch.
        for i in 0..t.scheduled.len() {
            let pod = &t.scheduled[i];
            let Some(&node) = t.nodes_by_name.get(&pod.node_name) else { continue };
            let terms = pod.anti_affinity.clone();
            for term in terms {
                let g = t.inverse_group(&term);
                if let Some(domain) = t.nodes[node].domain(&term.topology_key) {
                    t.inverse[g].record_host_aware(&domain, &mut t.hosts);
                }
            }
        }
        t
    }

    fn inverse_group(&mut self, term: &super::pod::AffinityTerm) -> usize {
        let spec = GroupSpec::for_term(GroupKind::AntiAffinity, term);
        if let Some(&i) = self.inverse_index.get(&spec) {
            return i;
        }
        let mut g =
            Group { spec: spec.clone(), domains: BTreeMap::new(), owners: BTreeSet::new(), host_counts: Vec::new() };
        for d in self.universe.domains_for(&spec.key, None) {
            g.register(&d);
        }
        self.inverse.push(g);
        self.inverse_index.insert(spec, self.inverse.len() - 1);
        self.inverse.len() - 1
    }

    /// (Re)computes the groups batch pod `idx` owns from its current constraints; call again after
    /// relaxing the pod.
    pub fn update(&mut self, idx: usize, pod: &SchedPod) {
        if self.owned.len() <= idx {
            self.owned.resize(idx + 1, Vec::new());
        }
        for g in std::mem::take(&mut self.owned[idx]) {
            self.groups[g].owners.remove(&idx);
        }
        let mut specs = Vec::new();
        for tsc in &pod.topology_spread {
            // Ignoring preferences drops ScheduleAnyway spreads outright.
            if !self.respect_preferences && tsc.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway {
                continue;
            }
            let filter = NodeFilter {
                terms: tsc.honor_node_affinity.then(|| pod.node_selection_terms()),
                tolerations: tsc.honor_node_taints.then(|| pod.tolerations.clone()),
            };
            specs.push(GroupSpec {
                kind: GroupKind::Spread,
                key: tsc.topology_key.clone(),
                namespaces: Namespaces::Only([pod.namespace.clone()].into()),
                selector: tsc.selector.clone(),
                max_skew: tsc.max_skew,
                min_domains: tsc.min_domains,
                filter,
            });
        }
        let prefs = |terms: &[(i32, super::pod::AffinityTerm)]| -> Vec<super::pod::AffinityTerm> {
            terms.iter().map(|(_, t)| t.clone()).collect()
        };
        let mut affinity = pod.pod_affinity.clone();
        let mut anti = pod.pod_anti_affinity.clone();
        if self.respect_preferences {
            affinity.extend(prefs(&pod.preferred_pod_affinity));
            anti.extend(prefs(&pod.preferred_pod_anti_affinity));
        }
        for (kind, terms) in [(GroupKind::Affinity, &affinity), (GroupKind::AntiAffinity, &anti)] {
            for term in terms {
                specs.push(GroupSpec::for_term(kind, term));
            }
        }
        // The pod's own required anti-affinity also repels later pods it selects.
        for term in &pod.pod_anti_affinity {
            let g = self.inverse_group(term);
            self.inverse[g].owners.insert(idx);
        }
        let mut owned = Vec::new();
        for spec in specs {
            let g = match self.index.get(&spec) {
                Some(&g) => g,
                None => self.create_group(spec, pod),
            };
            self.groups[g].owners.insert(idx);
            if !owned.contains(&g) {
                owned.push(g);
            }
        }
        self.owned[idx] = owned;
        self.prepare(idx, pod);
    }

    /// Precomputes the pod's hostname rules. Call once every pod of the batch went through
    /// [`Topology::update`] (a later pod may add an anti-affinity group that selects an earlier one).
    pub fn prepare(&mut self, idx: usize, pod: &SchedPod) {
        if self.host_rules.len() <= idx {
            self.host_rules.resize(idx + 1, Vec::new());
            self.matching.resize(idx + 1, Vec::new());
        }
        let mut matching = Vec::new();
        for &g in self.owned.get(idx).map(Vec::as_slice).unwrap_or(&[]) {
            let selects_self = self.groups[g].spec.selects(&pod.namespace, &pod.labels);
            matching.push(Matching { inverse: false, group: g, selects_self });
        }
        for (g, group) in self.inverse.iter().enumerate() {
            if group.spec.selects(&pod.namespace, &pod.labels) {
                matching.push(Matching { inverse: true, group: g, selects_self: true });
            }
        }
        self.matching[idx] = matching;
        let mut rules = Vec::new();
        for &g in self.owned.get(idx).map(Vec::as_slice).unwrap_or(&[]) {
            let spec = &self.groups[g].spec;
            if spec.key != labels::HOSTNAME {
                continue;
            }
            let own = i32::from(spec.selects(&pod.namespace, &pod.labels));
            match spec.kind {
                GroupKind::Spread => rules.push(HostRule { inverse: false, group: g, max_count: spec.max_skew - own }),
                GroupKind::AntiAffinity => rules.push(HostRule { inverse: false, group: g, max_count: 0 }),
                GroupKind::Affinity => {}
            }
        }
        for (g, group) in self.inverse.iter().enumerate() {
            if group.spec.key == labels::HOSTNAME && group.spec.selects(&pod.namespace, &pod.labels) {
                rules.push(HostRule { inverse: true, group: g, max_count: 0 });
            }
        }
        self.host_rules[idx] = rules;
    }

    /// Interns a hostname (an existing node's or a plan's placeholder).
    pub fn host_id(&mut self, name: &str) -> u32 {
        intern(&mut self.hosts, name)
    }

    /// Cheap pre-check of hostname spread and anti-affinity against host `host`: false means pod
    /// `idx` certainly cannot go there; true means [`Topology::add_requirements`] decides.
    pub fn host_allows(&self, idx: usize, host: u32) -> bool {
        self.host_rules.get(idx).is_none_or(|rules| {
            rules.iter().all(|r| {
                let g = if r.inverse { &self.inverse[r.group] } else { &self.groups[r.group] };
                g.host_count(host) <= r.max_count
            })
        })
    }

    fn create_group(&mut self, spec: GroupSpec, pod: &SchedPod) -> usize {
        let tolerations = spec.filter.tolerations.as_ref().map(|_| pod.tolerations.as_slice());
        let mut g =
            Group { spec: spec.clone(), domains: BTreeMap::new(), owners: BTreeSet::new(), host_counts: Vec::new() };
        for d in self.universe.domains_for(&spec.key, tolerations) {
            g.register(&d);
        }
        // Existing nodes the filter admits are domains too, and their matching pods count.
        for node in &self.nodes {
            if let Some(d) = node.domain(&spec.key)
                && spec.filter.matches(&node.taints, &node.requirements)
            {
                g.register(&d);
            }
            if spec.key == labels::HOSTNAME
                && let Some(d) = node.domain(labels::HOSTNAME)
            {
                g.register(&d);
            }
        }
        for p in &self.scheduled {
            if !spec.selects(&p.namespace, &p.labels) {
                continue;
            }
            let Some(&n) = self.nodes_by_name.get(&p.node_name) else { continue };
            let node = &self.nodes[n];
            if let Some(d) = node.domain(&spec.key)
                && spec.filter.matches(&node.taints, &node.requirements)
            {
                g.record_host_aware(&d, &mut self.hosts);
            }
        }
        self.groups.push(g);
        self.index.insert(spec, self.groups.len() - 1);
        self.groups.len() - 1
    }

    /// Makes `domain` known to every group on `key` (a new plan's hostname).
    pub fn register(&mut self, key: &str, domain: &str) {
        for g in self.groups.iter_mut().chain(self.inverse.iter_mut()) {
            if g.spec.key == key {
                g.register(domain);
            }
        }
    }

    /// The extra requirements topology puts on a node for pod `idx`, or why it cannot go there.
    /// `node` is the node's (or plan's) requirements and `overlay` the pod's requirements about to be
    /// merged into them (kept apart so a rejection costs no clone); groups on the same key narrow
    /// the domains one after another.
    pub fn add_requirements(
        &self,
        idx: usize,
        pod_strict: &Requirements,
        node: &Requirements,
        overlay: &Requirements,
    ) -> Result<Requirements, TopologyError> {
        self.resolve(idx, pod_strict, node, overlay, false).map_err(|_| TopologyError)
    }

    /// The message for a pod [`Topology::add_requirements`] rejected (same arguments).
    pub fn explain(
        &self,
        idx: usize,
        pod_strict: &Requirements,
        node: &Requirements,
        overlay: &Requirements,
    ) -> String {
        match self.resolve(idx, pod_strict, node, overlay, true) {
            Err(Some(msg)) => msg,
            _ => "unsatisfiable topology constraint".to_string(),
        }
    }

    /// Rejections are the hot path, so the message is only built when `explain` asks for it.
    fn resolve(
        &self,
        idx: usize,
        pod_strict: &Requirements,
        node: &Requirements,
        overlay: &Requirements,
        explain: bool,
    ) -> Result<Requirements, Option<String>> {
        let mut extra = Requirements::new();
        for m in self.matching.get(idx).map(Vec::as_slice).unwrap_or(&[]) {
            let g = if m.inverse { &self.inverse[m.group] } else { &self.groups[m.group] };
            let key = &g.spec.key;
            let pod_domains = pod_strict.get(key);
            // The node's domains, narrowed by the pod's own requirements and earlier groups.
            let mut node_domains = Cow::Borrowed(node.get(key));
            for narrower in [overlay.get_defined(key), extra.get_defined(key)].into_iter().flatten() {
                node_domains = Cow::Owned(node_domains.intersection(narrower));
            }
            let domains = g.next_domains(m.selects_self, pod_domains, &node_domains);
            if domains.is_empty() {
                return Err(explain.then(|| topology_error(g, pod_domains, &node_domains)));
            }
            extra.add(key, domains);
        }
        Ok(extra)
    }

    /// Counts pod `idx` placed on a node with `taints` and final `requirements`.
    pub fn record(&mut self, idx: usize, pod: &SchedPod, taints: &[Taint], requirements: &Requirements) {
        for g in &mut self.groups {
            if !g.spec.selects(&pod.namespace, &pod.labels) || !g.spec.filter.matches(taints, requirements) {
                continue;
            }
            let domains = requirements.get(&g.spec.key);
            if domains.is_complement() {
                continue;
            }
            if g.spec.kind == GroupKind::AntiAffinity {
                for d in domains.values() {
                    g.record_host_aware(d, &mut self.hosts);
                }
            } else if let Some(d) = domains.single() {
                g.record_host_aware(d, &mut self.hosts);
            }
        }
        for g in &mut self.inverse {
            if g.owners.contains(&idx) {
                let domains = requirements.get(&g.spec.key);
                if !domains.is_complement() {
                    for d in domains.values() {
                        g.record_host_aware(d, &mut self.hosts);
                    }
                }
            }
        }
    }

    /// Whether the pod takes part in any topology (owned group or someone's anti-affinity).
    pub fn constrains(&self, idx: usize) -> bool {
        self.matching.get(idx).is_some_and(|m| !m.is_empty())
    }
}

fn topology_error(g: &Group, pod: &Requirement, node: &Requirement) -> String {
    let mut counts = String::new();
    for (i, (d, c)) in g.domains.iter().enumerate() {
        if i == 25 {
            let _ = write!(counts, ", and {} others", g.domains.len() - 25);
            break;
        }
        let _ = write!(counts, "{}{d}={c}", if i > 0 { ", " } else { "" });
    }
    format!(
        "unsatisfiable topology constraint for {}, key={} (counts = {{{counts}}}, podDomains = {pod}, nodeDomains = {node})",
        g.spec.kind.as_str(),
        g.spec.key
    )
}
