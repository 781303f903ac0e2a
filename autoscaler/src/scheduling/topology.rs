//! Topology: pod counts per domain for every spread constraint and pod (anti-)affinity term in the
//! batch, and the domain choice that keeps them satisfied (Karpenter's topology.go and
//! topologygroup.go, reimplemented). Groups are shared by pods with identical constraints.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use super::instance_type::InstanceType;
use super::pod::{LabelSelector, Namespaces, SchedPod, Taint, Toleration, WhenUnsatisfiable, tolerates};
use super::requirements::{Requirement, Requirements, labels};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKind {
    Spread,
    Affinity,
    AntiAffinity,
}

impl GroupKind {
    fn as_str(self) -> &'static str {
        match self {
            GroupKind::Spread => "topology spread",
            GroupKind::Affinity => "pod affinity",
            GroupKind::AntiAffinity => "pod anti-affinity",
        }
    }
}

/// Which nodes a spread constraint counts (nodeAffinityPolicy / nodeTaintsPolicy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct NodeFilter {
    /// Honor node affinity: one of these OR terms must be compatible with the node.
    terms: Option<Vec<Requirements>>,
    /// Honor taints: the node's taints must be tolerated.
    tolerations: Option<Vec<Toleration>>,
}

impl NodeFilter {
    fn matches(&self, taints: &[Taint], node: &Requirements) -> bool {
        let affinity = self.terms.as_ref().is_none_or(|ts| ts.iter().any(|t| node.compatible_strict(t).is_ok()));
        affinity && self.tolerations.as_ref().is_none_or(|tols| tolerates(tols, taints).is_ok())
    }
}

/// What makes two constraints the same group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupSpec {
    kind: GroupKind,
    key: String,
    namespaces: Namespaces,
    selector: Option<LabelSelector>,
    max_skew: i32,
    min_domains: Option<i32>,
    filter: NodeFilter,
}

impl GroupSpec {
    fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.contains(namespace) && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }
}

#[derive(Clone, Debug)]
struct Group {
    spec: GroupSpec,
    /// Domain → matching pods counted there. Every known domain is present (zero when empty).
    domains: BTreeMap<String, i32>,
    /// Batch pods (by index) that carry this constraint.
    owners: BTreeSet<usize>,
    /// Hostname groups only: counts by interned host id, for the cheap pre-check.
    host_counts: Vec<i32>,
}

impl Group {
    fn count(&self, domain: &str) -> i32 {
        self.domains.get(domain).copied().unwrap_or(0)
    }

    fn record(&mut self, domain: &str) {
        match self.domains.get_mut(domain) {
            Some(c) => *c += 1,
            None => {
                self.domains.insert(domain.to_string(), 1);
            }
        }
    }

    /// `record`, keeping the by-id hostname counts in step.
    fn record_host_aware(&mut self, domain: &str, hosts: &mut HashMap<String, u32>) {
        self.record(domain);
        if self.spec.key == labels::HOSTNAME {
            let id = intern(hosts, domain) as usize;
            if self.host_counts.len() <= id {
                self.host_counts.resize(id + 1, 0);
            }
            self.host_counts[id] += 1;
        }
    }

    fn host_count(&self, id: u32) -> i32 {
        self.host_counts.get(id as usize).copied().unwrap_or(0)
    }

    fn register(&mut self, domain: &str) {
        if !self.domains.contains_key(domain) {
            self.domains.insert(domain.to_string(), 0);
        }
    }

    fn all_empty(&self) -> bool {
        self.domains.values().all(|c| *c == 0)
    }

    /// The domains a pod may go to, given what it allows (`pod`) and what the node can be (`node`).
    fn next_domains(&self, selects_self: bool, pod: &Requirement, node: &Requirement) -> Requirement {
        match self.spec.kind {
            GroupKind::Spread => self.next_spread(selects_self, pod, node),
            GroupKind::Affinity => self.next_affinity(selects_self, pod, node),
            GroupKind::AntiAffinity => self.next_anti_affinity(pod, node),
        }
    }

    /// Candidate domains: the node's explicit values when it has some, else every known domain.
    fn candidates<'a>(&'a self, node: &'a Requirement) -> Candidates<'a> {
        if node.is_complement() {
            Candidates::Known(self.domains.iter(), node)
        } else {
            Candidates::Listed(node.values().iter(), &self.domains)
        }
    }

    fn next_spread(&self, selects_self: bool, pod: &Requirement, node: &Requirement) -> Requirement {
        let own = i64::from(selects_self);
        let skew = i64::from(self.spec.max_skew);
        if self.spec.key == labels::HOSTNAME
            && let Some(host) = node.single()
        {
            // A new plan is a new hostname domain: min is always zero for hostnames.
            return if i64::from(self.count(host)) + own <= skew {
                Requirement::in_values([host])
            } else {
                Requirement::does_not_exist()
            };
        }
        let min = self.min_count(pod);
        let mut best: Option<(i64, &str)> = None;
        for (domain, count) in self.candidates(node) {
            let count = i64::from(count) + own;
            if count - min <= skew && best.is_none_or(|(c, _)| count < c) {
                best = Some((count, domain));
            }
        }
        match best {
            Some((_, d)) => Requirement::in_values([d]),
            None => Requirement::does_not_exist(),
        }
    }

    /// The global minimum over the domains the pod may use; zero when fewer than minDomains exist.
    fn min_count(&self, pod: &Requirement) -> i64 {
        if self.spec.key == labels::HOSTNAME {
            return 0;
        }
        let mut min = i64::from(i32::MAX);
        let mut supported = 0;
        for (d, c) in &self.domains {
            if pod.has(d) {
                supported += 1;
                min = min.min(i64::from(*c));
            }
        }
        if self.spec.min_domains.is_some_and(|m| supported < m) {
            return 0;
        }
        min
    }

    fn any_populated(&self, pod: &Requirement) -> bool {
        self.domains.iter().any(|(d, c)| *c > 0 && pod.has(d))
    }

    fn next_affinity(&self, selects_self: bool, pod: &Requirement, node: &Requirement) -> Requirement {
        // A pod that matches its own affinity may open the first domain when none is populated.
        let may_bootstrap = selects_self && (self.all_empty() || !self.any_populated(pod));
        if self.spec.key == labels::HOSTNAME
            && let Some(host) = node.single()
        {
            let ok = pod.has(host) && (self.count(host) > 0 || may_bootstrap);
            return if ok { Requirement::in_values([host]) } else { Requirement::does_not_exist() };
        }
        let options: Vec<&str> = self.candidates(node).filter(|(d, c)| *c > 0 && pod.has(d)).map(|(d, _)| d).collect();
        if !options.is_empty() {
            return Requirement::in_values(options);
        }
        if may_bootstrap && let Some(d) = self.domains.keys().find(|d| pod.has(d) && node.has(d)) {
            return Requirement::in_values([d.as_str()]);
        }
        Requirement::does_not_exist()
    }

    fn next_anti_affinity(&self, pod: &Requirement, node: &Requirement) -> Requirement {
        if self.spec.key == labels::HOSTNAME
            && let Some(host) = node.single()
        {
            return if self.count(host) == 0 { Requirement::in_values([host]) } else { Requirement::does_not_exist() };
        }
        let options: Vec<&str> = self.candidates(node).filter(|(d, c)| *c == 0 && pod.has(d)).map(|(d, _)| d).collect();
        if options.is_empty() { Requirement::does_not_exist() } else { Requirement::in_values(options) }
    }
}

enum Candidates<'a> {
    Listed(std::collections::btree_set::Iter<'a, String>, &'a BTreeMap<String, i32>),
    Known(std::collections::btree_map::Iter<'a, String, i32>, &'a Requirement),
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (&'a str, i32);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Candidates::Listed(values, domains) => values.find_map(|d| domains.get(d).map(|c| (d.as_str(), *c))),
            Candidates::Known(domains, node) => domains.find(|(d, _)| node.has(d)).map(|(d, c)| (d.as_str(), *c)),
        }
    }
}

/// Every domain value each topology key can take, with the taint sets of the NodePools offering it
/// (for nodeTaintsPolicy Honor). Domains are worked out per key on first use: most label keys
/// (instance type, cpu…) are never a topology key, and 800 types × every key is not free.
#[derive(Clone, Debug, Default)]
pub struct DomainUniverse {
    pools: Vec<PoolDomains>,
    domains: BTreeMap<String, BTreeMap<String, Vec<Vec<Taint>>>>,
}

#[derive(Clone, Debug)]
struct PoolDomains {
    requirements: Requirements,
    taints: Vec<Taint>,
    types: Vec<Arc<InstanceType>>,
}

impl DomainUniverse {
    /// Adds a NodePool: `requirements` (template requirements + labels), its taints and its usable
    /// instance types (whose requirements and available offerings declare values).
    pub fn add_pool<'a>(
        &mut self,
        requirements: &Requirements,
        taints: &[Taint],
        instance_types: impl IntoIterator<Item = &'a Arc<InstanceType>>,
    ) {
        self.pools.push(PoolDomains {
            requirements: requirements.clone(),
            taints: taints.to_vec(),
            types: instance_types.into_iter().cloned().collect(),
        });
        self.domains.clear();
    }

    fn ensure(&mut self, key: &str) {
        if self.domains.contains_key(key) {
            return;
        }
        let mut found: BTreeMap<String, Vec<Vec<Taint>>> = BTreeMap::new();
        for pool in &self.pools {
            let mut values: BTreeSet<&str> = BTreeSet::new();
            let pool_req = pool.requirements.get_defined(key);
            for it in &pool.types {
                if key == labels::ZONE || key == labels::CAPACITY_TYPE {
                    // From the offerings the pool could launch now: a zone whose offerings are all
                    // unavailable would hold a spread's minimum at zero.
                    for o in it.offerings.iter().filter(|o| o.available && o.compatible(&pool.requirements)) {
                        values.insert(if key == labels::ZONE { &o.zone } else { o.capacity_type.as_str() });
                    }
                } else if let Some(it_req) = it.requirements.get_defined(key)
                    && !it_req.is_complement()
                {
                    // Keys both sides define narrow each other.
                    values.extend(
                        it_req.values().iter().filter(|v| pool_req.is_none_or(|p| p.has(v))).map(String::as_str),
                    );
                }
            }
            if let Some(r) = pool_req.filter(|r| !r.is_complement()) {
                values.extend(r.values().iter().map(String::as_str));
            }
            for v in values {
                let sets = found.entry(v.to_string()).or_default();
                // An untainted pool makes the domain reachable for everyone; nothing else matters then.
                let open = sets.first().is_some_and(|s| s.is_empty());
                if pool.taints.is_empty() {
                    *sets = vec![Vec::new()];
                } else if !open && !sets.contains(&pool.taints) {
                    sets.push(pool.taints.clone());
                }
            }
        }
        self.domains.insert(key.to_string(), found);
    }

    fn domains_for(&mut self, key: &str, tolerations: Option<&[Toleration]>) -> Vec<String> {
        self.ensure(key);
        let Some(domains) = self.domains.get(key) else { return Vec::new() };
        domains
            .iter()
            .filter(|(_, sets)| tolerations.is_none_or(|tols| sets.iter().any(|t| tolerates(tols, t).is_ok())))
            .map(|(d, _)| d.clone())
            .collect()
    }
}

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

fn intern(hosts: &mut HashMap<String, u32>, name: &str) -> u32 {
    if let Some(&id) = hosts.get(name) {
        return id;
    }
    let id = hosts.len() as u32;
    hosts.insert(name.to_string(), id);
    id
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
        let spec = GroupSpec {
            kind: GroupKind::AntiAffinity,
            key: term.topology_key.clone(),
            namespaces: term.namespaces.clone(),
            selector: term.selector.clone(),
            max_skew: i32::MAX,
            min_domains: None,
            filter: NodeFilter::default(),
        };
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
                specs.push(GroupSpec {
                    kind,
                    key: term.topology_key.clone(),
                    namespaces: term.namespaces.clone(),
                    selector: term.selector.clone(),
                    max_skew: i32::MAX,
                    min_domains: None,
                    filter: NodeFilter::default(),
                });
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn group(kind: GroupKind, key: &str, domains: &[(&str, i32)], min_domains: Option<i32>) -> Group {
        Group {
            spec: GroupSpec {
                kind,
                key: key.into(),
                namespaces: Namespaces::All,
                selector: Some(LabelSelector::default()),
                max_skew: 1,
                min_domains,
                filter: NodeFilter::default(),
            },
            domains: domains.iter().map(|(d, c)| (d.to_string(), *c)).collect(),
            owners: BTreeSet::new(),
            host_counts: Vec::new(),
        }
    }

    #[test]
    fn spread_picks_the_least_loaded_allowed_domain() {
        let g = group(GroupKind::Spread, labels::ZONE, &[("a", 1), ("b", 0), ("c", 0)], None);
        let any = Requirement::exists();
        assert_eq!(g.next_domains(true, &any, &any).single(), Some("b"));
        let only_a = Requirement::in_values(["a"]);
        // a would have 2 against a global min of 0: skew 2 > 1.
        assert!(g.next_domains(true, &any, &only_a).is_empty());
        // a pod that can only use a: min over its domains is 1, so a is fine.
        assert_eq!(g.next_domains(true, &only_a, &only_a).single(), Some("a"));
    }

    #[test]
    fn min_domains_forces_a_zero_minimum() {
        let g = group(GroupKind::Spread, labels::ZONE, &[("a", 1), ("b", 1)], Some(3));
        let any = Requirement::exists();
        let only_a = Requirement::in_values(["a"]);
        assert!(g.next_domains(true, &any, &only_a).is_empty());
        let g = group(GroupKind::Spread, labels::ZONE, &[("a", 1), ("b", 1)], None);
        assert_eq!(g.next_domains(true, &any, &only_a).single(), Some("a"));
    }

    #[test]
    fn hostname_rules() {
        let host = Requirement::in_values(["h1"]);
        let any = Requirement::exists();
        let spread = group(GroupKind::Spread, labels::HOSTNAME, &[("h1", 1)], None);
        assert!(spread.next_domains(true, &any, &host).is_empty());
        assert_eq!(spread.next_domains(true, &any, &Requirement::in_values(["h2"])).single(), Some("h2"));
        let anti = group(GroupKind::AntiAffinity, labels::HOSTNAME, &[("h1", 1)], None);
        assert!(anti.next_domains(true, &any, &host).is_empty());
        assert_eq!(anti.next_domains(true, &any, &Requirement::in_values(["h2"])).single(), Some("h2"));
    }

    #[test]
    fn affinity_bootstraps_then_follows() {
        let mut g = group(GroupKind::Affinity, labels::ZONE, &[("a", 0), ("b", 0)], None);
        let any = Requirement::exists();
        assert_eq!(g.next_domains(true, &any, &any).single(), Some("a"));
        assert!(g.next_domains(false, &any, &any).is_empty(), "a pod not matching itself cannot bootstrap");
        g.record("b");
        assert_eq!(g.next_domains(true, &any, &any).single(), Some("b"));
        assert!(g.next_domains(true, &any, &Requirement::in_values(["a"])).is_empty());
    }

    #[test]
    fn anti_affinity_avoids_populated_domains() {
        let g = group(GroupKind::AntiAffinity, labels::ZONE, &[("a", 1), ("b", 0), ("c", 0)], None);
        let any = Requirement::exists();
        let got = g.next_domains(true, &any, &any);
        assert_eq!(got.values().iter().map(String::as_str).collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn universe_honours_taints() {
        let mut u = DomainUniverse::default();
        let taint = Taint::new("gpu", "", super::super::pod::TaintEffect::NoSchedule);
        let pool = Requirements::new().with("custom", Requirement::in_values(["1"]));
        u.add_pool(&pool, std::slice::from_ref(&taint), &[]);
        u.add_pool(&Requirements::new().with("custom", Requirement::in_values(["2"])), &[], &[]);
        assert_eq!(u.domains_for("custom", None), ["1", "2"]);
        assert_eq!(u.domains_for("custom", Some(&[])), ["2"]);
    }
}
