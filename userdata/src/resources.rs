//! What a kubelet reserves and evicts at when its user data does not say, and Kubernetes quantities.

use std::collections::BTreeMap;

/// kube-reserved as EKS AMIs (and Karpenter's capacity estimates) set it when the user data does not:
/// CPU 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of the rest; memory
/// 11 MiB per pod plus 255 MiB; 1 GiB of ephemeral storage.
pub fn default_kube_reserved(vcpus: u32, max_pods: u32) -> BTreeMap<String, String> {
    let cores = f64::from(vcpus);
    let tiers = [(1.0, 0.06), (1.0, 0.01), (2.0, 0.005), (f64::MAX, 0.0025)];
    let mut left = cores;
    let mut millicores = 0.0;
    for (size, share) in tiers {
        let take = left.min(size);
        millicores += take * share * 1000.0;
        left -= take;
        if left <= 0.0 {
            break;
        }
    }
    BTreeMap::from([
        ("cpu".to_owned(), format!("{}m", millicores.round() as u64)),
        ("memory".to_owned(), format!("{}Mi", 11 * u64::from(max_pods) + 255)),
        ("ephemeral-storage".to_owned(), "1Gi".to_owned()),
    ])
}

/// The hard eviction thresholds a kubelet uses when none are configured.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("memory.available".to_owned(), "100Mi".to_owned()),
        ("nodefs.available".to_owned(), "10%".to_owned()),
    ])
}

/// A Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1G`, `2e3`) in base units (cores or bytes).
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reservations_follow_the_eks_formula() {
        // m5.large: 2 vCPUs, 29 pods -> 70m CPU, 574Mi memory (Karpenter's documented overhead).
        let r = default_kube_reserved(2, 29);
        assert_eq!(r.get("cpu").map(String::as_str), Some("70m"));
        assert_eq!(r.get("memory").map(String::as_str), Some("574Mi"));
        assert_eq!(default_kube_reserved(8, 58).get("cpu").map(String::as_str), Some("90m"));
        assert_eq!(default_kube_reserved(96, 737).get("cpu").map(String::as_str), Some("310m"));
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("250m"), Some(0.25));
        assert_eq!(parse_quantity("512Mi"), Some(536_870_912.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("10%"), None);
    }
}
