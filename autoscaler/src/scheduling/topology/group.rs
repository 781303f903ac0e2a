//! Topology groups: pods with identical spread or (anti-)affinity constraints share one, which
//! counts matching pods per domain and picks the domains a pod may go to.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::scheduling::pod::{LabelSelector, Namespaces, Taint, Toleration, tolerates};
use crate::scheduling::requirements::{Requirement, Requirements, labels};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKind {
    Spread,
    Affinity,
    AntiAffinity,
}

impl GroupKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            GroupKind::Spread => "topology spread",
            GroupKind::Affinity => "pod affinity",
            GroupKind::AntiAffinity => "pod anti-affinity",
        }
    }
}

/// Which nodes a spread constraint counts (nodeAffinityPolicy / nodeTaintsPolicy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct NodeFilter {
    /// Honor node affinity: one of these OR terms must be compatible with the node.
    pub(super) terms: Option<Vec<Requirements>>,
    /// Honor taints: the node's taints must be tolerated.
    pub(super) tolerations: Option<Vec<Toleration>>,
}

impl NodeFilter {
    pub(super) fn matches(&self, taints: &[Taint], node: &Requirements) -> bool {
        let affinity = self.terms.as_ref().is_none_or(|ts| ts.iter().any(|t| node.compatible_strict(t).is_ok()));
        affinity && self.tolerations.as_ref().is_none_or(|tols| tolerates(tols, taints).is_ok())
    }
}

/// What makes two constraints the same group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct GroupSpec {
    pub(super) kind: GroupKind,
    pub(super) key: String,
    pub(super) namespaces: Namespaces,
    pub(super) selector: Option<LabelSelector>,
    pub(super) max_skew: i32,
    pub(super) min_domains: Option<i32>,
    pub(super) filter: NodeFilter,
}

impl GroupSpec {
    /// The group a pod (anti-)affinity term describes: any skew, every node.
    pub(super) fn for_term(kind: GroupKind, term: &crate::scheduling::pod::AffinityTerm) -> GroupSpec {
        GroupSpec {
            kind,
            key: term.topology_key.clone(),
            namespaces: term.namespaces.clone(),
            selector: term.selector.clone(),
            max_skew: i32::MAX,
            min_domains: None,
            filter: NodeFilter::default(),
        }
    }

    pub(super) fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.contains(namespace) && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }
}

#[derive(Clone, Debug)]
pub(super) struct Group {
    pub(super) spec: GroupSpec,
    /// Domain → matching pods counted there. Every known domain is present (zero when empty).
    pub(super) domains: BTreeMap<String, i32>,
    /// Batch pods (by index) that carry this constraint.
    pub(super) owners: BTreeSet<usize>,
    /// Hostname groups only: counts by interned host id, for the cheap pre-check.
    pub(super) host_counts: Vec<i32>,
}

impl Group {
    pub(super) fn count(&self, domain: &str) -> i32 {
        self.domains.get(domain).copied().unwrap_or(0)
    }

    pub(super) fn record(&mut self, domain: &str) {
        match self.domains.get_mut(domain) {
            Some(c) => *c += 1,
            None => {
                self.domains.insert(domain.to_string(), 1);
            }
        }
    }

    /// `record`, keeping the by-id hostname counts in step.
    pub(super) fn record_host_aware(&mut self, domain: &str, hosts: &mut HashMap<String, u32>) {
        self.record(domain);
        if self.spec.key == labels::HOSTNAME {
            let id = intern(hosts, domain) as usize;
            if self.host_counts.len() <= id {
                self.host_counts.resize(id + 1, 0);
            }
            self.host_counts[id] += 1;
        }
    }

    pub(super) fn host_count(&self, id: u32) -> i32 {
        self.host_counts.get(id as usize).copied().unwrap_or(0)
    }

    pub(super) fn register(&mut self, domain: &str) {
        if !self.domains.contains_key(domain) {
            self.domains.insert(domain.to_string(), 0);
        }
    }

    pub(super) fn all_empty(&self) -> bool {
        self.domains.values().all(|c| *c == 0)
    }

    /// The domains a pod may go to, given what it allows (`pod`) and what the node can be (`node`).
    pub(super) fn next_domains(&self, selects_self: bool, pod: &Requirement, node: &Requirement) -> Requirement {
        match self.spec.kind {
            GroupKind::Spread => self.next_spread(selects_self, pod, node),
            GroupKind::Affinity => self.next_affinity(selects_self, pod, node),
            GroupKind::AntiAffinity => self.next_anti_affinity(pod, node),
        }
    }

    /// Candidate domains: the node's explicit values when it has some, else every known domain.
    pub(super) fn candidates<'a>(&'a self, node: &'a Requirement) -> Candidates<'a> {
        if node.is_complement() {
            Candidates::Known(self.domains.iter(), node)
        } else {
            Candidates::Listed(node.values().iter(), &self.domains)
        }
    }

    pub(super) fn next_spread(&self, selects_self: bool, pod: &Requirement, node: &Requirement) -> Requirement {
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
    pub(super) fn min_count(&self, pod: &Requirement) -> i64 {
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

    pub(super) fn any_populated(&self, pod: &Requirement) -> bool {
        self.domains.iter().any(|(d, c)| *c > 0 && pod.has(d))
    }

    pub(super) fn next_affinity(&self, selects_self: bool, pod: &Requirement, node: &Requirement) -> Requirement {
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

    pub(super) fn next_anti_affinity(&self, pod: &Requirement, node: &Requirement) -> Requirement {
        if self.spec.key == labels::HOSTNAME
            && let Some(host) = node.single()
        {
            return if self.count(host) == 0 { Requirement::in_values([host]) } else { Requirement::does_not_exist() };
        }
        let options: Vec<&str> = self.candidates(node).filter(|(d, c)| *c == 0 && pod.has(d)).map(|(d, _)| d).collect();
        if options.is_empty() { Requirement::does_not_exist() } else { Requirement::in_values(options) }
    }
}

pub(super) enum Candidates<'a> {
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

/// The id of a hostname domain, given on first sight.
pub(super) fn intern(hosts: &mut HashMap<String, u32>, name: &str) -> u32 {
    if let Some(&id) = hosts.get(name) {
        return id;
    }
    let id = hosts.len() as u32;
    hosts.insert(name.to_string(), id);
    id
}
