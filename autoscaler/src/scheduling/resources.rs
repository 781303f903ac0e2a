//! Resource lists as integers: every quantity is kept in milli-units (1 cpu = 1000, 1Mi = 1048576000),
//! so cpu, memory and counts share one exact representation and arithmetic never rounds.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const PODS: &str = "pods";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// NodePool limit on the number of nodes (Karpenter's `nodes` limit).
pub const NODES: &str = "nodes";

/// The four resources every node has live in a fixed array (sorted by name) so the hot fit checks
/// of the simulator touch no map; anything else (GPUs, hugepages…) goes to `extended`.
const CORE: [&str; 4] = [CPU, EPHEMERAL_STORAGE, MEMORY, PODS];

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("invalid quantity {0:?}")]
pub struct QuantityError(pub String);

/// Resource name → amount in milli-units. For arithmetic and fits an absent name counts as zero, but
/// the names that were set are remembered (even at zero) so a limit with nothing left differs from no
/// limit at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    core: [i64; 4],
    /// Bit i set when `CORE[i]` was set.
    present: u8,
    extended: BTreeMap<String, i64>,
}

fn core_index(name: &str) -> Option<usize> {
    CORE.iter().position(|c| *c == name)
}

impl Resources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from (name, milli-value) pairs.
    pub fn from_milli<'a>(pairs: impl IntoIterator<Item = (&'a str, i64)>) -> Self {
        let mut r = Self::new();
        for (k, v) in pairs {
            r.set(k, v);
        }
        r
    }

    /// Parses a Kubernetes resource list (`requests`, `capacity`, `limits`…).
    pub fn from_k8s(list: &BTreeMap<String, Quantity>) -> Result<Self, QuantityError> {
        let mut r = Self::new();
        for (k, q) in list {
            r.set(k, parse_quantity(&q.0)?);
        }
        Ok(r)
    }

    /// Parses `name → "quantity"` pairs; handy for tests and fixtures.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, QuantityError> {
        let mut r = Self::new();
        for (k, q) in pairs {
            r.set(k, parse_quantity(q)?);
        }
        Ok(r)
    }

    pub fn get(&self, name: &str) -> i64 {
        match core_index(name) {
            Some(i) => self.core[i],
            None => self.extended.get(name).copied().unwrap_or(0),
        }
    }

    pub fn set(&mut self, name: &str, milli: i64) {
        match core_index(name) {
            Some(i) => {
                self.core[i] = milli;
                self.present |= 1 << i;
            }
            None => {
                self.extended.insert(name.to_string(), milli);
            }
        }
    }

    pub fn cpu(&self) -> i64 {
        self.core[0]
    }

    pub fn memory(&self) -> i64 {
        self.core[2]
    }

    pub fn is_empty(&self) -> bool {
        self.present == 0 && self.extended.is_empty()
    }

    /// The entries that were set, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        let core = (0..CORE.len()).filter(|i| self.present & (1 << i) != 0).map(|i| (CORE[i], self.core[i]));
        let mut all: Vec<(&str, i64)> = core.chain(self.extended.iter().map(|(k, v)| (k.as_str(), *v))).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
    }

    pub fn add(&mut self, other: &Resources) {
        for (a, b) in self.core.iter_mut().zip(other.core.iter()) {
            *a = a.saturating_add(*b);
        }
        self.present |= other.present;
        for (k, v) in &other.extended {
            let sum = self.get(k).saturating_add(*v);
            self.set(k, sum);
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        for (a, b) in self.core.iter_mut().zip(other.core.iter()) {
            *a = a.saturating_sub(*b);
        }
        self.present |= other.present;
        for (k, v) in &other.extended {
            let diff = self.get(k).saturating_sub(*v);
            self.set(k, diff);
        }
    }

    pub fn plus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.add(other);
        r
    }

    pub fn minus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.sub(other);
        r
    }

    /// Element-wise maximum (over the union of names).
    pub fn max(&self, other: &Resources) -> Resources {
        self.combine(other, i64::max)
    }

    /// Element-wise minimum (over the union of names; absent counts as zero).
    pub fn min(&self, other: &Resources) -> Resources {
        self.combine(other, i64::min)
    }

    fn combine(&self, other: &Resources, f: fn(i64, i64) -> i64) -> Resources {
        if self.extended.is_empty() && other.extended.is_empty() {
            // The common case: no map to walk or clone.
            let mut core = self.core;
            for (a, b) in core.iter_mut().zip(other.core.iter()) {
                *a = f(*a, *b);
            }
            return Resources { core, present: self.present | other.present, extended: BTreeMap::new() };
        }
        let mut r = self.clone();
        for (a, b) in r.core.iter_mut().zip(other.core.iter()) {
            *a = f(*a, *b);
        }
        r.present |= other.present;
        let names: Vec<&String> = self.extended.keys().chain(other.extended.keys()).collect();
        for k in names {
            r.set(k, f(self.get(k), other.get(k)));
        }
        r
    }

    /// Kubernetes' `Fits`: every requested amount is within what is available.
    pub fn fits(&self, available: &Resources) -> bool {
        self.core.iter().zip(available.core.iter()).all(|(want, have)| want <= have)
            && self.extended.iter().all(|(k, v)| *v <= available.get(k))
    }

    /// The first resource that does not fit, for error messages.
    pub fn first_exceeding(&self, available: &Resources) -> Option<&str> {
        self.iter().find(|(k, v)| *v > available.get(k)).map(|(k, _)| k)
    }

    /// Exceeds any amount `limits` names (names it does not set are unlimited).
    pub fn exceeds_limits(&self, limits: &Resources) -> bool {
        limits.iter().any(|(k, limit)| k != NODES && self.get(k) > limit)
    }
}

impl fmt::Display for Resources {
    /// `{"cpu":"1500m","memory":"512Mi","pods":"3"}`, the way Karpenter prints resource lists.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{k:?}:\"{}\"", format_quantity(k, v))?;
        }
        write!(f, "}}")
    }
}

/// Formats a milli-value back into a Kubernetes quantity string.
pub fn format_quantity(name: &str, milli: i64) -> String {
    if name == CPU || milli % 1000 != 0 {
        return if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{milli}m") };
    }
    let units = milli / 1000;
    for (suffix, mult) in [("Ti", 1i64 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if units != 0 && units % mult == 0 {
            return format!("{}{suffix}", units / mult);
        }
    }
    format!("{units}")
}

/// Parses a Kubernetes quantity into milli-units, rounding up like `Quantity.MilliValue`.
///
/// Accepts an optional sign, a decimal number, and one of the binary suffixes (Ki…Ei), the decimal
/// suffixes (n, u, m, k, M, G, T, P, E) or an exponent (`1e3`, `5E-1`).
pub fn parse_quantity(s: &str) -> Result<i64, QuantityError> {
    let err = || QuantityError(s.to_string());
    let t = s.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(err());
    }
    // mantissa × 10^exp10 × 2^exp2 units, kept exact in i128.
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(err());
    }
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| err())? };
    let mut exp10: i32 = -(frac_part.len() as i32) + 3; // +3: milli-units
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        e if e.starts_with(['e', 'E']) => {
            let x: i32 = e[1..].parse().map_err(|_| err())?;
            if !(-40..=40).contains(&x) {
                return Err(err());
            }
            exp10 += x;
        }
        _ => return Err(err()),
    }
    let mut value = mantissa.checked_mul(1i128 << exp2).ok_or_else(err)?;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            value = value.checked_mul(10).ok_or_else(err)?;
        }
    } else {
        // Round up, as Kubernetes does for milli values; anything positive below 10^-38 is 1m.
        value = match 10i128.checked_pow((-exp10) as u32) {
            Some(div) => (value + div - 1) / div,
            None => i128::from(value > 0),
        };
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_every_suffix() {
        let cases: &[(&str, i64)] = &[
            ("1", 1000),
            ("1.5", 1500),
            ("100m", 100),
            ("0.1", 100),
            ("1500m", 1500),
            ("512Mi", 536_870_912_000),
            ("1Gi", 1_073_741_824_000),
            ("2Ki", 2_048_000),
            ("1Ti", 1_099_511_627_776_000),
            ("1k", 1_000_000),
            ("1M", 1_000_000_000),
            ("1G", 1_000_000_000_000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("5e-1", 500),
            ("110", 110_000),
            ("1.5Gi", 1_610_612_736_000),
            ("+2", 2000),
            ("-1", -1000),
            ("100n", 1), // rounds up
            ("0", 0),
            ("0.0005", 1),
            (".5", 500),
            ("1e-40", 1),
        ];
        for (s, want) in cases {
            assert_eq!(parse_quantity(s).unwrap(), *want, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "abc", "1.2.3", "1Zi", "Mi", "1e", "1e999", "99999999999999999999Ei"] {
            assert!(parse_quantity(s).is_err(), "{s}");
        }
    }

    #[test]
    fn arithmetic_and_fits() {
        let a = Resources::parse([("cpu", "1"), ("memory", "1Gi"), ("nvidia.com/gpu", "1")]).unwrap();
        let b = Resources::parse([("cpu", "500m"), ("memory", "2Gi")]).unwrap();
        assert_eq!(a.plus(&b).get(CPU), 1500);
        assert_eq!(a.minus(&b).get(MEMORY), -1_073_741_824_000);
        assert_eq!(a.max(&b).get(MEMORY), 2_147_483_648_000);
        assert_eq!(a.min(&b).get("nvidia.com/gpu"), 0);
        assert!(b.fits(&a.max(&b)));
        assert!(!a.fits(&b));
        assert_eq!(a.first_exceeding(&b), Some("cpu"));
        assert_eq!(a.to_string(), r#"{"cpu":"1","memory":"1Gi","nvidia.com/gpu":"1"}"#);
        assert_eq!(b.to_string(), r#"{"cpu":"500m","memory":"2Gi"}"#);
    }

    #[test]
    fn from_k8s_lists() {
        let list: BTreeMap<String, Quantity> =
            [("cpu".to_string(), Quantity("250m".into())), ("pods".to_string(), Quantity("110".into()))].into();
        let r = Resources::from_k8s(&list).unwrap();
        assert_eq!(r.get(CPU), 250);
        assert_eq!(r.get(PODS), 110_000);
    }

    #[test]
    fn limits_keep_zero_distinct_from_unset() {
        let limits = Resources::from_milli([(CPU, 4000)]);
        assert!(!Resources::from_milli([(CPU, 4000), (MEMORY, 1 << 40)]).exceeds_limits(&limits));
        assert!(Resources::from_milli([(CPU, 4001)]).exceeds_limits(&limits));
        let none_left = Resources::from_milli([(MEMORY, 0)]);
        assert!(Resources::from_milli([(MEMORY, 1)]).exceeds_limits(&none_left));
        assert!(!Resources::from_milli([(CPU, 1)]).exceeds_limits(&none_left));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(milli in -(1i64 << 50)..(1i64 << 50), memory in proptest::bool::ANY) {
            let name = if memory { MEMORY } else { CPU };
            proptest::prop_assert_eq!(parse_quantity(&format_quantity(name, milli)).unwrap(), milli);
        }
    }
}
