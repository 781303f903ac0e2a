//! Label requirements as sets, with Karpenter's algebra (`pkg/scheduling/requirement(s).go`):
//! a requirement is a set of allowed values, possibly a complement (NotIn/Exists are infinite
//! sets), possibly bounded by integers (Gt/Lt), with an optional minValues flexibility floor.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::NodeSelectorRequirement;

pub mod labels {
    //! Well-known node label keys.
    pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
    pub const ZONE: &str = "topology.kubernetes.io/zone";
    pub const REGION: &str = "topology.kubernetes.io/region";
    pub const ARCH: &str = "kubernetes.io/arch";
    pub const OS: &str = "kubernetes.io/os";
    pub const HOSTNAME: &str = "kubernetes.io/hostname";
    pub const WINDOWS_BUILD: &str = "node.kubernetes.io/windows-build";
    pub const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
    pub const NODE_POOL: &str = "karpenter.sh/nodepool";
    pub const ZONE_ID: &str = "topology.k8s.aws/zone-id";
    pub const INSTANCE_CATEGORY: &str = "karpenter.k8s.aws/instance-category";
    pub const INSTANCE_FAMILY: &str = "karpenter.k8s.aws/instance-family";
    pub const INSTANCE_GENERATION: &str = "karpenter.k8s.aws/instance-generation";
    pub const INSTANCE_SIZE: &str = "karpenter.k8s.aws/instance-size";
    pub const INSTANCE_CPU: &str = "karpenter.k8s.aws/instance-cpu";
    pub const INSTANCE_CPU_MANUFACTURER: &str = "karpenter.k8s.aws/instance-cpu-manufacturer";
    pub const INSTANCE_MEMORY: &str = "karpenter.k8s.aws/instance-memory";
    pub const INSTANCE_HYPERVISOR: &str = "karpenter.k8s.aws/instance-hypervisor";
    pub const INSTANCE_ENCRYPTION_IN_TRANSIT: &str = "karpenter.k8s.aws/instance-encryption-in-transit-supported";
    pub const INSTANCE_NETWORK_BANDWIDTH: &str = "karpenter.k8s.aws/instance-network-bandwidth";
    pub const INSTANCE_EBS_BANDWIDTH: &str = "karpenter.k8s.aws/instance-ebs-bandwidth";
    pub const INSTANCE_LOCAL_NVME: &str = "karpenter.k8s.aws/instance-local-nvme";
    pub const INSTANCE_GPU_NAME: &str = "karpenter.k8s.aws/instance-gpu-name";
    pub const INSTANCE_GPU_MANUFACTURER: &str = "karpenter.k8s.aws/instance-gpu-manufacturer";
    pub const INSTANCE_GPU_COUNT: &str = "karpenter.k8s.aws/instance-gpu-count";
    pub const INSTANCE_GPU_MEMORY: &str = "karpenter.k8s.aws/instance-gpu-memory";

    /// Keys a pod may require even when a NodePool does not mention them: the instance types and
    /// offerings define their values (Karpenter's core `WellKnownLabels` plus the AWS provider's).
    pub const WELL_KNOWN: &[&str] = &[
        NODE_POOL,
        ZONE,
        REGION,
        INSTANCE_TYPE,
        ARCH,
        OS,
        CAPACITY_TYPE,
        WINDOWS_BUILD,
        ZONE_ID,
        INSTANCE_CATEGORY,
        INSTANCE_FAMILY,
        INSTANCE_GENERATION,
        INSTANCE_SIZE,
        INSTANCE_CPU,
        INSTANCE_CPU_MANUFACTURER,
        INSTANCE_MEMORY,
        INSTANCE_HYPERVISOR,
        INSTANCE_ENCRYPTION_IN_TRANSIT,
        INSTANCE_NETWORK_BANDWIDTH,
        INSTANCE_EBS_BANDWIDTH,
        INSTANCE_LOCAL_NVME,
        INSTANCE_GPU_NAME,
        INSTANCE_GPU_MANUFACTURER,
        INSTANCE_GPU_COUNT,
        INSTANCE_GPU_MEMORY,
    ];

    pub fn is_well_known(key: &str) -> bool {
        WELL_KNOWN.contains(&key)
    }

    /// Deprecated keys Karpenter rewrites to their stable names.
    pub fn normalize(key: &str) -> &str {
        match key {
            "failure-domain.beta.kubernetes.io/zone" => ZONE,
            "failure-domain.beta.kubernetes.io/region" => REGION,
            "beta.kubernetes.io/arch" => ARCH,
            "beta.kubernetes.io/os" => OS,
            "beta.kubernetes.io/instance-type" => INSTANCE_TYPE,
            other => other,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Operator {
    pub fn parse(s: &str) -> Result<Operator, String> {
        Ok(match s {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::Gt,
            "Lt" => Operator::Lt,
            other => return Err(format!("unknown operator {other:?}")),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
            Operator::Gt => "Gt",
            Operator::Lt => "Lt",
        }
    }
}

/// One key's allowed values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// When true the set is "everything except `values`".
    complement: bool,
    values: BTreeSet<String>,
    /// Inclusive integer bounds (Gt N is stored as >= N+1, Lt N as <= N-1).
    gte: Option<i64>,
    lte: Option<i64>,
    pub min_values: Option<usize>,
}

impl Requirement {
    /// Builds a requirement. Gt/Lt take one integer value; an unparsable bound matches nothing.
    pub fn new<S: Into<String>>(op: Operator, values: impl IntoIterator<Item = S>) -> Requirement {
        let values: BTreeSet<String> = values.into_iter().map(Into::into).collect();
        let bound = || values.iter().next().and_then(|v| v.trim().parse::<i64>().ok());
        match op {
            Operator::In => Requirement { complement: false, values, gte: None, lte: None, min_values: None },
            Operator::NotIn => Requirement { complement: true, values, gte: None, lte: None, min_values: None },
            Operator::Exists => Requirement::exists(),
            Operator::DoesNotExist => Requirement::does_not_exist(),
            Operator::Gt => match bound().and_then(|v| v.checked_add(1)) {
                Some(v) => Requirement { gte: Some(v), ..Requirement::exists() },
                None => Requirement::does_not_exist(),
            },
            Operator::Lt => match bound().and_then(|v| v.checked_sub(1)) {
                Some(v) => Requirement { lte: Some(v), ..Requirement::exists() },
                None => Requirement::does_not_exist(),
            },
        }
    }

    pub fn in_values<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Requirement {
        Requirement::new(Operator::In, values)
    }

    pub fn not_in<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Requirement {
        Requirement::new(Operator::NotIn, values)
    }

    pub fn exists() -> Requirement {
        Requirement { complement: true, values: BTreeSet::new(), gte: None, lte: None, min_values: None }
    }

    pub fn does_not_exist() -> Requirement {
        Requirement { complement: false, values: BTreeSet::new(), gte: None, lte: None, min_values: None }
    }

    pub fn with_min_values(mut self, min_values: Option<usize>) -> Requirement {
        self.min_values = min_values;
        self
    }

    /// The operator this set would be written with (bounded sets read as Exists, like Karpenter).
    pub fn operator(&self) -> Operator {
        match (self.complement, self.values.is_empty()) {
            (true, true) => Operator::Exists,
            (true, false) => Operator::NotIn,
            (false, false) => Operator::In,
            (false, true) => Operator::DoesNotExist,
        }
    }

    pub fn is_complement(&self) -> bool {
        self.complement
    }

    /// For In: the allowed values; for NotIn: the excluded ones.
    pub fn values(&self) -> &BTreeSet<String> {
        &self.values
    }

    pub fn bounds(&self) -> (Option<i64>, Option<i64>) {
        (self.gte, self.lte)
    }

    /// Number of allowed values (`usize::MAX - n` for complements, as in Karpenter).
    pub fn len(&self) -> usize {
        if self.complement { usize::MAX - self.values.len() } else { self.values.len() }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The only allowed value, if exactly one.
    pub fn single(&self) -> Option<&str> {
        if !self.complement && self.values.len() == 1 { self.values.iter().next().map(String::as_str) } else { None }
    }

    pub fn has(&self, value: &str) -> bool {
        within_bounds(value, self.gte, self.lte) && (self.values.contains(value) != self.complement)
    }

    /// A deterministic member: the lowest allowed value, or for complements the lowest
    /// non-negative integer in bounds that is not excluded.
    pub fn any(&self) -> Option<String> {
        if !self.complement {
            return self.values.iter().find(|v| within_bounds(v, self.gte, self.lte)).cloned();
        }
        let mut candidate = self.gte.unwrap_or(0).max(0);
        while self.values.contains(&candidate.to_string()) {
            candidate = candidate.checked_add(1)?;
        }
        if self.lte.is_some_and(|l| candidate > l) { None } else { Some(candidate.to_string()) }
    }

    /// Set intersection.
    pub fn intersection(&self, other: &Requirement) -> Requirement {
        let complement = self.complement && other.complement;
        let gte = max_opt(self.gte, other.gte);
        let lte = min_opt(self.lte, other.lte);
        let min_values = max_opt(self.min_values, other.min_values);
        if let (Some(g), Some(l)) = (gte, lte)
            && g > l
        {
            return Requirement::does_not_exist().with_min_values(min_values);
        }
        let mut values: BTreeSet<String> = match (self.complement, other.complement) {
            (true, true) => self.values.union(&other.values).cloned().collect(),
            (true, false) => other.values.difference(&self.values).cloned().collect(),
            (false, true) => self.values.difference(&other.values).cloned().collect(),
            (false, false) => self.values.intersection(&other.values).cloned().collect(),
        };
        values.retain(|v| within_bounds(v, gte, lte));
        // Concrete sets carry their bounds in their members.
        let (gte, lte) = if complement { (gte, lte) } else { (None, None) };
        Requirement { complement, values, gte, lte, min_values }
    }

    /// Whether the intersection is non-empty, without building it.
    pub fn intersects(&self, other: &Requirement) -> bool {
        let gte = max_opt(self.gte, other.gte);
        let lte = min_opt(self.lte, other.lte);
        if let (Some(g), Some(l)) = (gte, lte)
            && g > l
        {
            return false;
        }
        match (self.complement, other.complement) {
            (true, true) => true,
            (true, false) => other.values.iter().any(|v| !self.values.contains(v) && within_bounds(v, gte, lte)),
            (false, true) => self.values.iter().any(|v| !other.values.contains(v) && within_bounds(v, gte, lte)),
            (false, false) => {
                let (small, large) =
                    if self.values.len() <= other.values.len() { (self, other) } else { (other, self) };
                small.values.iter().any(|v| large.values.contains(v) && within_bounds(v, gte, lte))
            }
        }
    }

    /// The per-key rule of [`Requirements::intersects`]: the sets share a value, or both sides only
    /// exclude values.
    pub fn agrees_with(&self, other: &Requirement) -> bool {
        let excl = |r: &Requirement| matches!(r.operator(), Operator::NotIn | Operator::DoesNotExist);
        self.intersects(other) || (excl(self) && excl(other))
    }

    /// Written back as node selector terms: (operator, values). Two bounds give two terms.
    pub fn to_terms(&self) -> Vec<(Operator, Vec<String>)> {
        let mut out = Vec::new();
        match (self.gte, self.lte) {
            (None, None) => out.push((self.operator(), self.values.iter().cloned().collect())),
            (g, l) => {
                if let Some(g) = g {
                    out.push((Operator::Gt, vec![(g - 1).to_string()]));
                }
                if let Some(l) = l {
                    out.push((Operator::Lt, vec![(l + 1).to_string()]));
                }
                if !self.values.is_empty() {
                    out.push((Operator::NotIn, self.values.iter().cloned().collect()));
                }
            }
        }
        out
    }
}

impl fmt::Display for Requirement {
    /// `In [a b]`, `NotIn [x]`, `Exists >=3`, as Karpenter prints them (without the key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.operator();
        write!(f, "{}", op.as_str())?;
        if matches!(op, Operator::In | Operator::NotIn) {
            let shown: Vec<&str> = self.values.iter().take(5).map(String::as_str).collect();
            write!(f, " [{}", shown.join(" "))?;
            if self.values.len() > 5 {
                write!(f, " and {} others", self.values.len() - 5)?;
            }
            write!(f, "]")?;
        }
        if let Some(g) = self.gte {
            write!(f, " >={g}")?;
        }
        if let Some(l) = self.lte {
            write!(f, " <={l}")?;
        }
        if let Some(m) = self.min_values {
            write!(f, " minValues {m}")?;
        }
        Ok(())
    }
}

fn within_bounds(value: &str, gte: Option<i64>, lte: Option<i64>) -> bool {
    if gte.is_none() && lte.is_none() {
        return true;
    }
    let Ok(v) = value.parse::<i64>() else { return false };
    gte.is_none_or(|g| v >= g) && lte.is_none_or(|l| v <= l)
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

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
        let well_known: &[&str] = if allow_well_known { labels::WELL_KNOWN } else { &[] };
        well_known
            .iter()
            .copied()
            .chain(self.0.keys().map(String::as_str))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use Operator::*;

    fn req(op: Operator, vals: &[&str]) -> Requirement {
        Requirement::new(op, vals.iter().copied())
    }

    #[test]
    fn membership() {
        let cases: &[(Requirement, &str, bool)] = &[
            (req(In, &["a", "b"]), "a", true),
            (req(In, &["a", "b"]), "c", false),
            (req(NotIn, &["a"]), "a", false),
            (req(NotIn, &["a"]), "z", true),
            (req(Exists, &[]), "anything", true),
            (req(DoesNotExist, &[]), "x", false),
            (req(Gt, &["4"]), "5", true),
            (req(Gt, &["4"]), "4", false),
            (req(Gt, &["4"]), "five", false),
            (req(Lt, &["4"]), "3", true),
            (req(Lt, &["4"]), "4", false),
            (req(Gt, &["x"]), "1", false),
        ];
        for (r, v, want) in cases {
            assert_eq!(r.has(v), *want, "{r} has {v}");
        }
    }

    #[test]
    fn intersections() {
        // (a, b, expected operator, expected values, member probes)
        let cases: &[(Requirement, Requirement, Operator, &[&str])] = &[
            (req(In, &["a", "b"]), req(In, &["b", "c"]), In, &["b"]),
            (req(In, &["a", "b"]), req(NotIn, &["b"]), In, &["a"]),
            (req(NotIn, &["a"]), req(NotIn, &["b"]), NotIn, &["a", "b"]),
            (req(Exists, &[]), req(In, &["x"]), In, &["x"]),
            (req(In, &["a"]), req(In, &["b"]), DoesNotExist, &[]),
            (req(Gt, &["2"]), req(In, &["1", "3", "x"]), In, &["3"]),
            (req(Gt, &["5"]), req(Lt, &["3"]), DoesNotExist, &[]),
            (req(Gt, &["1"]), req(Lt, &["5"]), Exists, &[]),
            (req(DoesNotExist, &[]), req(Exists, &[]), DoesNotExist, &[]),
        ];
        for (a, b, op, vals) in cases {
            let i = a.intersection(b);
            assert_eq!(i.operator(), *op, "{a} ∩ {b} = {i}");
            let got: Vec<&str> = i.values().iter().map(String::as_str).collect();
            assert_eq!(got, *vals, "{a} ∩ {b}");
            assert_eq!(a.intersects(b), i.operator() != DoesNotExist, "{a} intersects {b}");
            assert_eq!(b.intersection(a), i, "commutative");
        }
        let bounded = req(Gt, &["1"]).intersection(&req(Lt, &["5"]));
        assert!(bounded.has("2") && bounded.has("4") && !bounded.has("5") && !bounded.has("1"));
        assert_eq!(bounded.to_string(), "Exists >=2 <=4");
    }

    #[test]
    fn min_values_take_the_max() {
        let a = req(In, &["a", "b", "c"]).with_min_values(Some(2));
        let b = req(Exists, &[]).with_min_values(Some(3));
        assert_eq!(a.intersection(&b).min_values, Some(3));
        assert_eq!(a.to_string(), "In [a b c] minValues 2");
    }

    #[test]
    fn any_is_deterministic() {
        assert_eq!(req(In, &["b", "a"]).any().as_deref(), Some("a"));
        assert_eq!(req(NotIn, &["0", "1"]).any().as_deref(), Some("2"));
        assert_eq!(req(Gt, &["7"]).any().as_deref(), Some("8"));
        assert_eq!(req(DoesNotExist, &[]).any(), None);
    }

    fn reqs(items: &[(&str, Operator, &[&str])]) -> Requirements {
        items.iter().map(|(k, op, v)| (k.to_string(), req(*op, v))).collect()
    }

    #[test]
    fn compatibility_table() {
        let zone = labels::ZONE;
        let cases: &[(Requirements, Requirements, bool, bool)] = &[
            // node side, pod side, compatible (well-known allowed), compatible_strict
            (reqs(&[]), reqs(&[(zone, In, &["a"])]), true, false),
            (reqs(&[]), reqs(&[("team", In, &["x"])]), false, false),
            (reqs(&[]), reqs(&[("team", NotIn, &["x"])]), true, true),
            (reqs(&[]), reqs(&[("team", DoesNotExist, &[])]), true, true),
            (reqs(&[("team", In, &["x"])]), reqs(&[("team", In, &["x", "y"])]), true, true),
            (reqs(&[("team", In, &["x"])]), reqs(&[("team", In, &["y"])]), false, false),
            (reqs(&[("team", In, &["x"])]), reqs(&[("team", DoesNotExist, &[])]), false, false),
            (reqs(&[("team", NotIn, &["x"])]), reqs(&[("team", DoesNotExist, &[])]), true, true),
            (reqs(&[("team", DoesNotExist, &[])]), reqs(&[("team", NotIn, &["x"])]), true, true),
            (reqs(&[(zone, In, &["a", "b"])]), reqs(&[(zone, NotIn, &["a", "b"])]), false, false),
            (reqs(&[("cpu", Gt, &["3"])]), reqs(&[("cpu", In, &["4"])]), true, true),
            (reqs(&[("cpu", Lt, &["3"])]), reqs(&[("cpu", In, &["4"])]), false, false),
        ];
        for (node, pod, loose, strict) in cases {
            assert_eq!(node.compatible(pod).is_ok(), *loose, "compatible {node} vs {pod}");
            assert_eq!(node.compatible_strict(pod).is_ok(), *strict, "strict {node} vs {pod}");
        }
    }

    #[test]
    fn error_messages_read_like_karpenter() {
        let node = reqs(&[("karpenter.sh/capacity-type", In, &["spot"])]);
        let pod = reqs(&[("karpenter.sh/capacity-type", In, &["on-demand"])]);
        assert_eq!(
            node.compatible(&pod).unwrap_err(),
            "key karpenter.sh/capacity-type, karpenter.sh/capacity-type In [on-demand] not in karpenter.sh/capacity-type In [spot]"
        );
        let err = reqs(&[]).compatible(&reqs(&[("topology.kubernetes.io/zonee", In, &["a"])])).unwrap_err();
        assert!(err.contains("does not have known values"), "{err}");
    }

    #[test]
    fn labels_and_normalisation() {
        let mut r = Requirements::from_labels(&[("a".to_string(), "1".to_string())].into());
        r.add("failure-domain.beta.kubernetes.io/zone", req(In, &["z1", "z2"]));
        r.add("b", req(In, &["x"]));
        assert!(r.has(labels::ZONE));
        let want: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "x".into())].into();
        assert_eq!(r.labels(), want);
        assert!(!r.add_all(&reqs(&[("a", In, &["1"])])));
        assert!(r.add_all(&reqs(&[(labels::ZONE, In, &["z1"])])));
        assert_eq!(r.get(labels::ZONE).single(), Some("z1"));
        assert_eq!(r.get("undefined").operator(), Exists);
    }

    #[test]
    fn from_node_selector() {
        let nsr = vec![
            NodeSelectorRequirement { key: "x".into(), operator: "Gt".into(), values: Some(vec!["3".into()]) },
            NodeSelectorRequirement { key: "y".into(), operator: "Exists".into(), values: None },
        ];
        let r = Requirements::from_node_selector_requirements(&nsr).unwrap();
        assert!(r.get("x").has("4") && !r.get("x").has("3"));
        assert_eq!(r.get("y").operator(), Exists);
        let bad = vec![NodeSelectorRequirement { key: "x".into(), operator: "Near".into(), values: None }];
        assert!(Requirements::from_node_selector_requirements(&bad).is_err());
    }

    #[test]
    fn add_operator_validates() {
        let mut r = Requirements::new();
        r.add_operator("karpenter.k8s.aws/instance-generation", "Gt", &["5".into()], None).unwrap();
        r.add_operator("karpenter.k8s.aws/instance-category", "In", &["c".into(), "m".into()], Some(2)).unwrap();
        assert!(r.get("karpenter.k8s.aws/instance-generation").has("6"));
        assert_eq!(r.get("karpenter.k8s.aws/instance-category").min_values, Some(2));
        assert!(r.add_operator("x", "Gt", &["five".into()], None).is_err());
        assert!(r.add_operator("x", "Near", &[], None).is_err());
    }

    #[test]
    fn satisfied_by_labels() {
        let labels: BTreeMap<String, String> = [("zone".to_string(), "a".to_string())].into();
        assert!(reqs(&[("zone", In, &["a"]), ("gpu", DoesNotExist, &[])]).satisfied_by_labels(&labels));
        assert!(!reqs(&[("gpu", Exists, &[])]).satisfied_by_labels(&labels));
        assert!(reqs(&[("gpu", NotIn, &["x"])]).satisfied_by_labels(&labels));
    }

    mod algebra {
        use super::*;
        use proptest::prelude::*;

        const UNIVERSE: [&str; 7] = ["0", "1", "2", "3", "4", "5", "x"];

        fn requirement() -> impl Strategy<Value = Requirement> {
            let values = proptest::sample::subsequence(UNIVERSE.to_vec(), 0..4);
            (0..6usize, values, 0..6i64).prop_map(|(op, values, bound)| match op {
                0 => Requirement::new(In, values),
                1 => Requirement::new(NotIn, values),
                2 => Requirement::exists(),
                3 => Requirement::does_not_exist(),
                4 => Requirement::new(Gt, [bound.to_string()]),
                _ => Requirement::new(Lt, [bound.to_string()]),
            })
        }

        proptest! {
            #[test]
            fn intersection_is_set_intersection(a in requirement(), b in requirement()) {
                let i = a.intersection(&b);
                for v in UNIVERSE {
                    prop_assert_eq!(i.has(v), a.has(v) && b.has(v), "{} ∩ {} = {} at {}", a, b, i, v);
                }
                prop_assert_eq!(&i, &b.intersection(&a));
                // A shared member means they intersect.
                if UNIVERSE.iter().any(|v| i.has(v)) {
                    prop_assert!(a.intersects(&b));
                }
                // Intersecting again changes nothing.
                prop_assert_eq!(i.intersection(&b), i.clone());
            }
        }
    }
}
