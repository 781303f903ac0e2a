//! Topology groups and domain choice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::scheduling::pod::LabelSelector;

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
