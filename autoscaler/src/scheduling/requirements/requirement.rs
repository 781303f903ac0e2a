//! One key's requirement: a set of allowed values, possibly a complement, possibly bounded.

use std::collections::BTreeSet;
use std::fmt;

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
