//! Topology spread, pod affinity and anti-affinity, over new plans and existing nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

#[test]
fn zone_spread_with_min_domains_uses_distinct_zones() {
    let pending = web(3, |p| p.topology_spread = vec![spread(labels::ZONE, Some(3))]);
    let r = solve(vec![pool("default", catalog())], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    let mut zones: Vec<&str> = r.new_node_claims.iter().filter_map(zone_of).collect();
    zones.sort();
    assert_eq!(zones, ["a", "b", "c"]);
}

#[test]
fn min_domains_above_the_reachable_zones_caps_each_zone() {
    let mut p = pool("two-zones", catalog());
    p.requirements.add(labels::ZONE, Requirement::in_values(["a", "b"]));
    let pending = web(3, |p| p.topology_spread = vec![spread(labels::ZONE, Some(3))]);
    let r = solve(vec![p], pending);
    assert_eq!(r.new_node_claims.len(), 2);
    assert_eq!(r.pod_errors.len(), 1, "the third pod would make a skew of 2 against a global minimum of 0");
    let err = r.pod_errors.values().next().unwrap();
    assert!(err.contains("unsatisfiable topology constraint for topology spread"), "{err}");
}

#[test]
fn custom_label_spread_splits_across_pools() {
    let mut a = pool("spread-1", catalog());
    a.requirements.add("capacity-spread", Requirement::in_values(["1"]));
    let mut b = pool("spread-2", catalog());
    b.requirements.add("capacity-spread", Requirement::in_values(["2"]));
    let pending = web(4, |p| p.topology_spread = vec![spread("capacity-spread", None)]);
    let r = solve(vec![a, b], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    let per_pool: BTreeMap<&str, usize> =
        r.new_node_claims.iter().map(|p| (p.node_pool.as_str(), p.pods.len())).collect();
    assert_eq!(per_pool, BTreeMap::from([("spread-1", 2), ("spread-2", 2)]));
    for plan in &r.new_node_claims {
        assert!(plan.requirements.get("capacity-spread").single().is_some());
    }
}

#[test]
fn custom_key_the_pool_does_not_declare_is_unsatisfiable() {
    let pending = web(1, |p| p.topology_spread = vec![spread("capacity-spread", None)]);
    let mut p = pending;
    p[0].node_selector = labels_of(&[("capacity-spread", "1")]);
    let r = solve(vec![pool("default", catalog())], p);
    let err = r.pod_errors.values().next().unwrap();
    assert!(err.contains("label \"capacity-spread\" does not have known values"), "{err}");
}

#[test]
fn hostname_anti_affinity_gives_one_pod_per_plan() {
    let term = AffinityTerm {
        topology_key: labels::HOSTNAME.into(),
        selector: selector(&[("app", "web")]),
        namespaces: Namespaces::Only(["default".to_string()].into()),
    };
    let pending = web(4, |p| p.pod_anti_affinity = vec![term.clone()]);
    let mut all = pending;
    all.extend(pods(3, "100m", "100Mi"));
    let r = solve(vec![pool("default", catalog())], all);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(r.new_node_claims.len(), 4);
    for plan in &r.new_node_claims {
        assert_eq!(plan.pods.iter().filter(|p| p.contains("web-")).count(), 1, "{:?}", plan.pods);
    }
}

#[test]
fn hostname_spread_puts_one_per_host_with_max_skew_one() {
    let pending = web(3, |p| p.topology_spread = vec![spread(labels::HOSTNAME, None)]);
    let r = solve(vec![pool("default", catalog())], pending);
    assert_eq!(r.new_node_claims.len(), 3);
}

#[test]
fn zonal_self_affinity_lands_in_one_zone() {
    let term = AffinityTerm {
        topology_key: labels::ZONE.into(),
        selector: selector(&[("app", "web")]),
        namespaces: Namespaces::Only(["default".to_string()].into()),
    };
    // big pods so they need several plans
    let pending: Vec<SchedPod> = web(6, |p| {
        p.pod_affinity = vec![term.clone()];
        p.requests.set("cpu", 3000);
    });
    let r = solve(vec![pool("default", catalog())], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert!(r.new_node_claims.len() > 1);
    for plan in &r.new_node_claims {
        assert_eq!(zone_of(plan), Some("a"));
    }
}

#[test]
fn anti_affinity_of_running_pods_repels_pending_ones() {
    let term = AffinityTerm {
        topology_key: labels::ZONE.into(),
        selector: selector(&[("app", "web")]),
        namespaces: Namespaces::Only(["default".to_string()].into()),
    };
    let running = ScheduledPodInfo {
        namespace: "default".into(),
        labels: labels_of(&[("app", "db")]),
        node_name: "n1".into(),
        anti_affinity: vec![term],
    };
    let r = Scheduler::new(
        vec![pool("default", catalog())],
        vec![node("n1", "a", 4000)],
        vec![running],
        vec![],
        SchedulerOptions::default(),
    )
    .solve(web(1, |_| {}));
    assert!(r.existing.is_empty(), "zone a is repelled");
    let zone = r.new_node_claims[0].requirements.get(labels::ZONE);
    assert!(!zone.has("a") && zone.has("b"), "{zone}");
}

#[test]
fn pending_anti_affinity_avoids_running_matches() {
    let running = ScheduledPodInfo {
        namespace: "default".into(),
        labels: labels_of(&[("app", "web")]),
        node_name: "n1".into(),
        anti_affinity: vec![],
    };
    let term = AffinityTerm {
        topology_key: labels::ZONE.into(),
        selector: selector(&[("app", "web")]),
        namespaces: Namespaces::Only(["default".to_string()].into()),
    };
    let r = Scheduler::new(
        vec![pool("default", catalog())],
        vec![node("n1", "a", 4000)],
        vec![running],
        vec![],
        SchedulerOptions::default(),
    )
    .solve(web(1, |p| p.pod_anti_affinity = vec![term.clone()]));
    assert!(r.existing.is_empty());
    assert!(!r.new_node_claims[0].requirements.get(labels::ZONE).has("a"));
}

#[test]
fn schedule_anyway_spread_is_best_effort() {
    let mut p = pool("one-zone", catalog());
    p.requirements.add(labels::ZONE, Requirement::in_values(["a"]));
    let pending = web(3, |p| {
        let mut s = spread(labels::ZONE, Some(3));
        s.when_unsatisfiable = WhenUnsatisfiable::ScheduleAnyway;
        p.topology_spread = vec![s];
    });
    let r = solve(vec![p], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
}

#[test]
fn zonal_anti_affinity_commits_late_like_karpenter() {
    let term = AffinityTerm {
        topology_key: labels::ZONE.into(),
        selector: selector(&[("app", "web")]),
        namespaces: Namespaces::Only(["default".to_string()].into()),
    };
    // Required: the first plan may land in any zone, so all three count as taken and the other
    // pods wait for the next batch (Karpenter's "should support pod anti-affinity with a zone
    // topology").
    let r = solve(vec![pool("default", catalog())], web(3, |p| p.pod_anti_affinity = vec![term.clone()]));
    assert_eq!(r.new_node_claims.len(), 1);
    assert_eq!(r.pod_errors.len(), 2);
    assert_eq!(r.new_node_claims[0].requirements.get(labels::ZONE).values().len(), 3);
    // Preferred: best effort, everything schedules.
    let pending = web(5, |p| {
        p.preferred_pod_anti_affinity = vec![(10, term.clone())];
        p.requests.set("cpu", 1500);
    });
    let r = solve(vec![pool("default", catalog())], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
}

#[test]
fn zones_without_available_offerings_are_not_spread_domains() {
    // Zone c is sold out: spreading over a and b only, with no zone-c minimum of zero holding back.
    let types: Vec<Arc<InstanceType>> = catalog()
        .iter()
        .map(|t| {
            let mut t = (**t).clone();
            for o in &mut t.offerings {
                o.available = o.zone != "c";
            }
            Arc::new(t)
        })
        .collect();
    let pending = web(4, |p| {
        p.topology_spread = vec![spread(labels::ZONE, None)];
        p.requests.set("cpu", 1500);
    });
    let r = solve(vec![pool("default", types)], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    let per_zone: BTreeMap<&str, usize> =
        r.new_node_claims.iter().map(|p| (zone_of(p).unwrap_or("?"), p.pods.len())).collect();
    assert_eq!(per_zone, BTreeMap::from([("a", 2), ("b", 2)]));
}

#[test]
fn capacity_type_spread_pins_each_plan() {
    let pending = web(2, |p| p.topology_spread = vec![spread(labels::CAPACITY_TYPE, None)]);
    let r = solve(vec![pool("default", catalog())], pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    let mut cts: Vec<&str> =
        r.new_node_claims.iter().filter_map(|p| p.requirements.get(labels::CAPACITY_TYPE).single()).collect();
    cts.sort();
    assert_eq!(cts, ["on-demand", "spot"]);
}

#[test]
fn bound_pods_count_toward_spread() {
    let bound = |node: &str| ScheduledPodInfo {
        namespace: "default".into(),
        labels: labels_of(&[("app", "web")]),
        node_name: node.into(),
        anti_affinity: vec![],
    };
    let r = Scheduler::new(
        vec![pool("default", catalog())],
        vec![node("n1", "a", 8000)],
        vec![bound("n1"), bound("n1")],
        vec![],
        SchedulerOptions::default(),
    )
    .solve(web(2, |p| p.topology_spread = vec![spread(labels::ZONE, None)]));
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert!(r.existing.is_empty(), "zone a already has 2: {:?}", r.existing);
    let mut zones: Vec<&str> = r.new_node_claims.iter().filter_map(zone_of).collect();
    zones.sort();
    assert_eq!(zones, ["b", "c"]);
}

#[test]
fn hostname_spread_counts_bound_pods_on_existing_nodes() {
    let bound = ScheduledPodInfo {
        namespace: "default".into(),
        labels: labels_of(&[("app", "web")]),
        node_name: "n1".into(),
        anti_affinity: vec![],
    };
    let r = Scheduler::new(
        vec![pool("default", catalog())],
        vec![node("n1", "a", 8000), node("n2", "a", 8000)],
        vec![bound],
        vec![],
        SchedulerOptions::default(),
    )
    .solve(web(2, |p| p.topology_spread = vec![spread(labels::HOSTNAME, None)]));
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert!(!r.existing.contains_key("n1"));
    assert_eq!(r.existing.get("n2").map(Vec::len), Some(1));
    assert_eq!(r.new_node_claims.len(), 1);
}
