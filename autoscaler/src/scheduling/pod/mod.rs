//! A compact pod model for the simulation, built from a Kubernetes Pod: effective requests, node
//! selection, tolerations, topology spread and pod (anti-)affinity.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::requirements::{Operator, Requirements};
use super::resources::{PODS, Resources};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn parse(s: &str) -> Option<TaintEffect> {
        match s {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl Taint {
    pub fn new(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint { key: key.into(), value: value.into(), effect }
    }

    /// From the Kubernetes type; an unknown effect is read as NoSchedule (the strictest that still
    /// lets running pods stay).
    pub fn from_k8s(t: &core::Taint) -> Taint {
        Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: TaintEffect::parse(&t.effect).unwrap_or(TaintEffect::NoSchedule),
        }
    }
}

impl std::fmt::Display for Taint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect.as_str())
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect.as_str())
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// Empty with `exists` = true tolerates every taint.
    pub key: String,
    /// Operator Exists (any value) rather than Equal.
    pub exists: bool,
    pub value: String,
    /// None tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    pub fn from_k8s(t: &core::Toleration) -> Toleration {
        Toleration {
            key: t.key.clone().unwrap_or_default(),
            exists: t.operator.as_deref() == Some("Exists"),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.as_deref().and_then(TaintEffect::parse),
        }
    }

    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if self.key.is_empty() {
            return self.exists;
        }
        self.key == taint.key && (self.exists || self.value == taint.value)
    }
}

/// Whether `tolerations` tolerate every NoSchedule/NoExecute taint (PreferNoSchedule is a
/// preference and never blocks). Err names the first untolerated taint.
pub fn tolerates(tolerations: &[Toleration], taints: &[Taint]) -> Result<(), String> {
    for taint in taints {
        if taint.effect == TaintEffect::PreferNoSchedule {
            continue;
        }
        if !tolerations.iter().any(|t| t.tolerates(taint)) {
            return Err(format!("did not tolerate taint ({taint})"));
        }
    }
    Ok(())
}

/// A metav1.LabelSelector. `None` selects nothing (a missing selector in an affinity term or a
/// spread constraint matches no pods); an empty selector selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    /// (key, operator, values) with operators In, NotIn, Exists, DoesNotExist.
    pub match_expressions: Vec<(String, Operator, Vec<String>)>,
    /// Set when the selector could not be parsed: matches nothing.
    pub invalid: bool,
}

impl LabelSelector {
    pub fn from_k8s(s: &meta::LabelSelector) -> LabelSelector {
        let mut sel = LabelSelector { match_labels: s.match_labels.clone().unwrap_or_default(), ..Default::default() };
        for e in s.match_expressions.iter().flatten() {
            match Operator::parse(&e.operator) {
                Ok(op @ (Operator::In | Operator::NotIn | Operator::Exists | Operator::DoesNotExist)) => {
                    let mut values = e.values.clone().unwrap_or_default();
                    values.sort();
                    sel.match_expressions.push((e.key.clone(), op, values));
                }
                _ => sel.invalid = true,
            }
        }
        sel.match_expressions.sort();
        sel
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        if self.invalid {
            return false;
        }
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|(k, op, values)| {
                let v = labels.get(k);
                match op {
                    Operator::In => v.is_some_and(|v| values.contains(v)),
                    Operator::NotIn => v.is_none_or(|v| !values.contains(v)),
                    Operator::Exists => v.is_some(),
                    Operator::DoesNotExist => v.is_none(),
                    Operator::Gt | Operator::Lt => false,
                }
            })
    }

    /// Adds `key In [value]` (matchLabelKeys) or `key NotIn [value]` (mismatchLabelKeys).
    fn with_pod_label(&mut self, key: &str, value: &str, op: Operator) {
        self.match_expressions.push((key.to_string(), op, vec![value.to_string()]));
        self.match_expressions.sort();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WhenUnsatisfiable {
    DoNotSchedule,
    ScheduleAnyway,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpreadConstraint {
    pub topology_key: String,
    pub max_skew: i32,
    pub when_unsatisfiable: WhenUnsatisfiable,
    /// None: selects no pods.
    pub selector: Option<LabelSelector>,
    pub min_domains: Option<i32>,
    /// nodeAffinityPolicy Honor (default): only nodes matching the pod's node selection count.
    pub honor_node_affinity: bool,
    /// nodeTaintsPolicy Honor (default Ignore): only nodes whose taints the pod tolerates count.
    pub honor_node_taints: bool,
}

/// Which namespaces an affinity term looks at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespaces {
    Only(BTreeSet<String>),
    /// A namespaceSelector was given: without namespace labels the simulation treats it as every
    /// namespace (exact for the empty selector `{}`).
    All,
}

impl Namespaces {
    pub fn contains(&self, ns: &str) -> bool {
        match self {
            Namespaces::Only(set) => set.contains(ns),
            Namespaces::All => true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AffinityTerm {
    pub topology_key: String,
    pub selector: Option<LabelSelector>,
    pub namespaces: Namespaces,
}

impl AffinityTerm {
    fn from_k8s(t: &core::PodAffinityTerm, pod_ns: &str, pod_labels: &BTreeMap<String, String>) -> AffinityTerm {
        let mut selector = t.label_selector.as_ref().map(LabelSelector::from_k8s);
        if let Some(sel) = selector.as_mut() {
            for (keys, op) in [(&t.match_label_keys, Operator::In), (&t.mismatch_label_keys, Operator::NotIn)] {
                for k in keys.iter().flatten() {
                    if let Some(v) = pod_labels.get(k) {
                        sel.with_pod_label(k, v, op);
                    }
                }
            }
        }
        let namespaces = match (&t.namespaces, &t.namespace_selector) {
            (_, Some(_)) => Namespaces::All,
            (Some(list), None) if !list.is_empty() => Namespaces::Only(list.iter().cloned().collect()),
            _ => Namespaces::Only([pod_ns.to_string()].into()),
        };
        AffinityTerm { topology_key: t.topology_key.clone(), selector, namespaces }
    }

    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.contains(namespace) && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }
}

/// The pod as the scheduler sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedPod {
    /// "namespace/name".
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub priority: i32,
    /// Effective requests plus `pods: 1`.
    pub requests: Resources,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: OR of terms (empty: no required affinity).
    pub required_node_affinity: Vec<Requirements>,
    /// Preferred node affinity as (weight, term), heaviest first.
    pub preferred_node_affinity: Vec<(i32, Requirements)>,
    pub tolerations: Vec<Toleration>,
    pub topology_spread: Vec<SpreadConstraint>,
    pub pod_affinity: Vec<AffinityTerm>,
    pub pod_anti_affinity: Vec<AffinityTerm>,
    /// Preferred terms as (weight, term), heaviest first.
    pub preferred_pod_affinity: Vec<(i32, AffinityTerm)>,
    pub preferred_pod_anti_affinity: Vec<(i32, AffinityTerm)>,
}

impl SchedPod {
    /// A pod with only a key, namespace and requests; fill in the rest as needed (tests, benches).
    pub fn new(namespace: &str, name: &str, requests: Resources) -> SchedPod {
        let mut requests = requests;
        requests.set(PODS, 1000);
        SchedPod {
            key: format!("{namespace}/{name}"),
            uid: format!("{namespace}/{name}"),
            namespace: namespace.to_string(),
            requests,
            ..Default::default()
        }
    }

    pub fn from_pod(pod: &core::Pod) -> SchedPod {
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let mut out = SchedPod {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_else(|| format!("{namespace}/{name}")),
            namespace: namespace.clone(),
            priority: spec.priority.unwrap_or(0),
            requests: effective_requests(&spec),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            tolerations: spec.tolerations.iter().flatten().map(Toleration::from_k8s).collect(),
            ..Default::default()
        };
        let affinity = spec.affinity.clone().unwrap_or_default();
        if let Some(na) = &affinity.node_affinity {
            if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
                out.required_node_affinity = req
                    .node_selector_terms
                    .iter()
                    // An invalid term can match nothing; dropping it keeps the other OR terms.
                    .filter_map(|t| {
                        Requirements::from_node_selector_requirements(t.match_expressions.as_deref().unwrap_or(&[]))
                            .ok()
                    })
                    .collect();
            }
            for p in na.preferred_during_scheduling_ignored_during_execution.iter().flatten() {
                let exprs = p.preference.match_expressions.as_deref().unwrap_or(&[]);
                if let Ok(r) = Requirements::from_node_selector_requirements(exprs) {
                    out.preferred_node_affinity.push((p.weight, r));
                }
            }
            out.preferred_node_affinity.sort_by_key(|(w, _)| std::cmp::Reverse(*w));
        }
        if let Some(pa) = &affinity.pod_affinity {
            let terms = pa.required_during_scheduling_ignored_during_execution.iter().flatten();
            out.pod_affinity = terms.map(|t| AffinityTerm::from_k8s(t, &namespace, &labels)).collect();
            let preferred = pa.preferred_during_scheduling_ignored_during_execution.iter().flatten();
            out.preferred_pod_affinity = preferred
                .map(|w| (w.weight, AffinityTerm::from_k8s(&w.pod_affinity_term, &namespace, &labels)))
                .collect();
            out.preferred_pod_affinity.sort_by_key(|(w, _)| std::cmp::Reverse(*w));
        }
        if let Some(pa) = &affinity.pod_anti_affinity {
            let terms = pa.required_during_scheduling_ignored_during_execution.iter().flatten();
            out.pod_anti_affinity = terms.map(|t| AffinityTerm::from_k8s(t, &namespace, &labels)).collect();
            let preferred = pa.preferred_during_scheduling_ignored_during_execution.iter().flatten();
            out.preferred_pod_anti_affinity = preferred
                .map(|w| (w.weight, AffinityTerm::from_k8s(&w.pod_affinity_term, &namespace, &labels)))
                .collect();
            out.preferred_pod_anti_affinity.sort_by_key(|(w, _)| std::cmp::Reverse(*w));
        }
        for tsc in spec.topology_spread_constraints.iter().flatten() {
            let mut selector = tsc.label_selector.as_ref().map(LabelSelector::from_k8s);
            if let Some(sel) = selector.as_mut() {
                for k in tsc.match_label_keys.iter().flatten() {
                    if let Some(v) = labels.get(k) {
                        sel.with_pod_label(k, v, Operator::In);
                    }
                }
            }
            out.topology_spread.push(SpreadConstraint {
                topology_key: tsc.topology_key.clone(),
                max_skew: tsc.max_skew.max(1),
                when_unsatisfiable: if tsc.when_unsatisfiable == "ScheduleAnyway" {
                    WhenUnsatisfiable::ScheduleAnyway
                } else {
                    WhenUnsatisfiable::DoNotSchedule
                },
                selector,
                min_domains: tsc.min_domains,
                honor_node_affinity: tsc.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: tsc.node_taints_policy.as_deref() == Some("Honor"),
            });
        }
        out.labels = labels;
        out
    }

    /// Karpenter's pod requirements: nodeSelector, the heaviest remaining preferred node-affinity
    /// term (treated as required until relaxed) and the first remaining required OR term.
    pub fn requirements(&self, respect_preferences: bool) -> Requirements {
        let mut r = Requirements::from_labels(&self.node_selector);
        if respect_preferences && let Some((_, pref)) = self.preferred_node_affinity.first() {
            r.add_all(pref);
        }
        if let Some(first) = self.required_node_affinity.first() {
            r.add_all(first);
        }
        r
    }

    /// Only what the pod really requires (no preferences).
    pub fn strict_requirements(&self) -> Requirements {
        self.requirements(false)
    }

    /// Every OR term of node selection (nodeSelector merged in), for topology node filters.
    pub fn node_selection_terms(&self) -> Vec<Requirements> {
        let base = Requirements::from_labels(&self.node_selector);
        if self.required_node_affinity.is_empty() {
            return vec![base];
        }
        self.required_node_affinity
            .iter()
            .map(|t| {
                let mut r = base.clone();
                r.add_all(t);
                r
            })
            .collect()
    }

    pub fn tolerates(&self, taints: &[Taint]) -> Result<(), String> {
        tolerates(&self.tolerations, taints)
    }

    /// Drops one soft constraint, in Karpenter's order (preferences.go): another required OR term,
    /// a preferred pod affinity, a preferred pod anti-affinity, a preferred node affinity, a
    /// ScheduleAnyway spread. Returns what was relaxed, or None when nothing is left to relax.
    pub fn relax(&mut self) -> Option<String> {
        if self.required_node_affinity.len() > 1 {
            self.required_node_affinity.remove(0);
            return Some("required node affinity term".into());
        }
        if !self.preferred_pod_affinity.is_empty() {
            self.preferred_pod_affinity.remove(0);
            return Some("preferred pod affinity term".into());
        }
        if !self.preferred_pod_anti_affinity.is_empty() {
            self.preferred_pod_anti_affinity.remove(0);
            return Some("preferred pod anti-affinity term".into());
        }
        if !self.preferred_node_affinity.is_empty() {
            self.preferred_node_affinity.remove(0);
            return Some("preferred node affinity term".into());
        }
        if let Some(i) =
            self.topology_spread.iter().position(|t| t.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway)
        {
            self.topology_spread.remove(i);
            return Some("ScheduleAnyway topology spread".into());
        }
        None
    }
}

/// Kubernetes' effective pod requests: the larger of (regular containers + restartable init
/// sidecars) and the peak of any init container (plus the sidecars started before it), then
/// spec.overhead; pod-level `spec.resources.requests` replace the aggregate for what they name.
/// Limits stand in for missing requests, as the API server defaults them.
pub fn effective_requests(spec: &core::PodSpec) -> Resources {
    let container_requests = |c: &core::Container| -> Resources {
        let Some(res) = &c.resources else { return Resources::new() };
        let mut list = res.limits.clone().unwrap_or_default();
        list.extend(res.requests.clone().unwrap_or_default());
        lenient(&list)
    };
    let mut total = Resources::new();
    for c in &spec.containers {
        total.add(&container_requests(c));
    }
    let mut sidecars = Resources::new();
    let mut init_peak = Resources::new();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        let during = if c.restart_policy.as_deref() == Some("Always") {
            total.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            r.plus(&sidecars)
        };
        init_peak = init_peak.max(&during);
    }
    let mut total = total.max(&init_peak);
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        for (k, v) in lenient(pod_level).iter() {
            total.set(k, v);
        }
    }
    if let Some(overhead) = &spec.overhead {
        total.add(&lenient(overhead));
    }
    total.set(PODS, 1000);
    total
}

/// Quantities were validated by the API server; an unparsable one counts as zero.
fn lenient(list: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Resources {
    let mut r = Resources::new();
    for (k, q) in list {
        r.set(k, super::resources::parse_quantity(&q.0).unwrap_or(0));
    }
    r
}
