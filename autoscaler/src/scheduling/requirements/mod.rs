//! Label requirements as sets, with Karpenter's algebra (`pkg/scheduling/requirement(s).go`):
//! a requirement is a set of allowed values, possibly a complement (NotIn/Exists are infinite
//! sets), possibly bounded by integers (Gt/Lt), with an optional minValues flexibility floor.

pub mod labels;
mod requirement;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::NodeSelectorRequirement;

pub use requirement::{Operator, Requirement};

/// Label key → requirement; several requirements on one key are intersected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Requirements(BTreeMap<String, Requirement>);

static EXISTS: std::sync::LazyLock<Requirement> = std::sync::LazyLock::new(Requirement::exists);

impl Requirements {
    pub fn new() -> Requirements {
        Requirements::default()
    }

    /// Intersects `req` into the requirement on `key` (normalising deprecated keys).
    pub fn add(&mut self, key: &str, req: Requirement) {
        let key = labels::normalize(key);
        match self.0.get_mut(key) {
            Some(existing) => *existing = existing.intersection(&req),
            None => {
                self.0.insert(key.to_string(), req);
            }
        }
    }

    /// Intersects every requirement of `other` in. Returns whether anything narrowed.
    pub fn add_all(&mut self, other: &Requirements) -> bool {
        let mut changed = false;
        for (k, r) in &other.0 {
            match self.0.get_mut(k) {
                Some(existing) => {
                    let next = existing.intersection(r);
                    if next != *existing {
                        *existing = next;
                        changed = true;
                    }
                }
                None => {
                    self.0.insert(k.clone(), r.clone());
                    changed = true;
                }
            }
        }
        changed
    }

    /// Builder form of [`Requirements::add`].
    pub fn with(mut self, key: &str, req: Requirement) -> Requirements {
        self.add(key, req);
        self
    }

    /// Replaces (not intersects) the requirement on `key`.
    pub fn set(&mut self, key: &str, req: Requirement) {
        self.0.insert(key.to_string(), req);
    }

    pub fn remove(&mut self, key: &str) -> Option<Requirement> {
        self.0.remove(key)
    }

    /// The requirement on `key`; an undefined key allows anything (Exists).
    pub fn get(&self, key: &str) -> &Requirement {
        self.0.get(key).unwrap_or(&EXISTS)
    }

    pub fn get_defined(&self, key: &str) -> Option<&Requirement> {
        self.0.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Requirement)> {
        self.0.iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// `In [value]` for each label.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Requirements {
        let mut r = Requirements::new();
        for (k, v) in labels {
            r.add(k, Requirement::in_values([v.clone()]));
        }
        r
    }

    /// From Kubernetes node selector requirements (one node selector term's match expressions).
    pub fn from_node_selector_requirements(reqs: &[NodeSelectorRequirement]) -> Result<Requirements, String> {
        let mut r = Requirements::new();
        for req in reqs {
            let op = Operator::parse(&req.operator)?;
            r.add(&req.key, Requirement::new(op, req.values.clone().unwrap_or_default()));
        }
        Ok(r)
    }

    /// Adds one requirement written the Kubernetes way (NodePool `spec.template.spec.requirements`
    /// entries: key, operator, values, minValues).
    pub fn add_operator(
        &mut self,
        key: &str,
        operator: &str,
        values: &[String],
        min_values: Option<usize>,
    ) -> Result<(), String> {
        let op = Operator::parse(operator)?;
        if matches!(op, Operator::Gt | Operator::Lt)
            && (values.len() != 1 || values.first().is_some_and(|v| v.trim().parse::<i64>().is_err()))
        {
            return Err(format!("{key} {operator} needs one integer value, got {values:?}"));
        }
        self.add(key, Requirement::new(op, values.iter().cloned()).with_min_values(min_values));
        Ok(())
    }

    /// The labels these requirements pin down: keys with exactly one allowed value.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.0.iter().filter_map(|(k, r)| r.single().map(|v| (k.clone(), v.to_string()))).collect()
    }

    pub fn has_min_values(&self) -> bool {
        self.0.values().any(|r| r.min_values.is_some())
    }

    /// Karpenter's `Compatible` with `AllowUndefinedWellKnownLabels` — the check a pod passes against
    /// a NodePool or a planned NodeClaim: well-known keys the node side leaves undefined are fine
    /// (instance types define them), a custom key the pod requires must be defined on the node side
    /// unless the pod only excludes values (NotIn / DoesNotExist); then the shared keys must intersect.
    pub fn compatible(&self, incoming: &Requirements) -> Result<(), String> {
        self.compatible_inner(incoming, true)
    }

    /// `Compatible` without the well-known allowance: the check against an existing node, whose
    /// labels are all there is.
    pub fn compatible_strict(&self, incoming: &Requirements) -> Result<(), String> {
        self.compatible_inner(incoming, false)
    }

    fn compatible_inner(&self, incoming: &Requirements, allow_well_known: bool) -> Result<(), String> {
        for (key, req) in &incoming.0 {
            if (allow_well_known && labels::is_well_known(key))
                || self.has(key)
                || matches!(req.operator(), Operator::NotIn | Operator::DoesNotExist)
            {
                continue;
            }
            return Err(format!("label {key:?} does not have known values{}", self.label_hint(key, allow_well_known)));
        }
        self.intersects(incoming)
    }

    fn label_hint(&self, key: &str, allow_well_known: bool) -> String {
        let suffix = key.split_once('/').map_or(key, |(_, s)| s);
        let own_keys = self.0.keys().map(String::as_str);
        let well_known: Vec<&str> = if allow_well_known { labels::all_well_known().collect() } else { Vec::new() };
        well_known
            .into_iter()
            .chain(own_keys)
            .find(|known| known.contains(key) || known.ends_with(suffix))
            .map(|known| format!(" (typo of {known:?}?)"))
            .unwrap_or_default()
    }

    /// Karpenter's `Intersects`: every key defined on both sides must share a value, except that two
    /// sides that both only exclude values (NotIn / DoesNotExist) always agree.
    pub fn intersects(&self, incoming: &Requirements) -> Result<(), String> {
        let (small, large, small_is_self) =
            if self.0.len() <= incoming.0.len() { (self, incoming, true) } else { (incoming, self, false) };
        let mut errors = Vec::new();
        for (key, a) in &small.0 {
            let Some(b) = large.0.get(key) else { continue };
            let (existing, inc) = if small_is_self { (a, b) } else { (b, a) };
            if existing.agrees_with(inc) {
                continue;
            }
            errors.push(format!("key {key}, {key} {inc} not in {key} {existing}"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Whether `self` (e.g. node labels) satisfies every requirement in `terms` exactly the way the
    /// kube-scheduler evaluates a node selector term on a node.
    pub fn satisfied_by_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, r)| match labels.get(k) {
            Some(v) => r.has(v),
            None => matches!(r.operator(), Operator::NotIn | Operator::DoesNotExist) && r.bounds() == (None, None),
        })
    }
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, r)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{k} {r}")?;
        }
        Ok(())
    }
}

impl FromIterator<(String, Requirement)> for Requirements {
    fn from_iter<T: IntoIterator<Item = (String, Requirement)>>(iter: T) -> Self {
        let mut r = Requirements::new();
        for (k, v) in iter {
            r.add(&k, v);
        }
        r
    }
}
