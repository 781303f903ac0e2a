//! New NodeClaim plans: instance types, offerings, pools, limits, taints, daemonsets, preferences.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

#[test]
fn ten_small_pods_share_one_plan_on_the_cheapest_fitting_type() {
    let r = solve(vec![pool("default", catalog())], pods(10, "512m", "512Mi"));
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(r.new_node_claims.len(), 1);
    let plan = &r.new_node_claims[0];
    assert_eq!(plan.pods.len(), 10);
    // 5.12 cpu needs the 8-vCPU type: the smaller ones are gone, the cheapest remaining is first.
    let names: Vec<&str> = plan.instance_types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["m.2xlarge"]);
    assert_eq!(plan.requirements.get(labels::INSTANCE_TYPE).single(), Some("m.2xlarge"));
    assert_eq!(plan.requirements.get(labels::NODE_POOL).single(), Some("default"));
    assert!(!plan.requirements.has(labels::HOSTNAME));
    assert_eq!(plan.requests.get("cpu"), 5120);
    assert_eq!(plan.requests.get("pods"), 10_000);
    // capacity type stays open: the launcher prefers spot
    assert!(plan.requirements.get(labels::CAPACITY_TYPE).has("spot"));
}

#[test]
fn on_demand_pinned_pod_gets_an_on_demand_plan() {
    let mut p = pod("db-0", "1", "1Gi");
    p.node_selector = labels_of(&[(labels::CAPACITY_TYPE, "on-demand")]);
    let r = solve(vec![pool("default", catalog())], vec![p]);
    let plan = &r.new_node_claims[0];
    assert_eq!(plan.requirements.get(labels::CAPACITY_TYPE).single(), Some("on-demand"));
    // the cheapest on-demand offering orders the types: c.large (2 cpu, 4 GiB) first
    assert_eq!(plan.instance_types[0].name, "c.large");
}

#[test]
fn nodepool_limits_stop_new_plans() {
    let mut p = pool("limited", vec![it("m.large", 2, 8)]);
    p.remaining = Some(Resources::from_milli([("cpu", 2000)]));
    let r = solve(vec![p], pods(2, "1500m", "1Gi"));
    assert_eq!(r.new_node_claims.len(), 1);
    let err = r.pod_errors.values().next().unwrap();
    assert!(err.contains("all available instance types exceed limits for nodepool"), "{err}");

    let mut p = pool("nodes", catalog());
    p.remaining = Some(Resources::from_milli([("nodes", 1000)]));
    let r = solve(vec![p], pods(2, "7", "1Gi"));
    assert_eq!(r.new_node_claims.len(), 1);
    assert!(r.pod_errors.values().next().unwrap().contains("node limits have been exhausted"));
}

#[test]
fn heavier_pool_wins() {
    let light = SchedNodePool { weight: 1, ..pool("a-light", catalog()) };
    let heavy = SchedNodePool { weight: 50, ..pool("z-heavy", catalog()) };
    let r = solve(vec![light, heavy], pods(1, "1", "1Gi"));
    assert_eq!(r.new_node_claims[0].node_pool, "z-heavy");
    // equal weights: by name
    let r = solve(vec![pool("b", catalog()), pool("a", catalog())], pods(1, "1", "1Gi"));
    assert_eq!(r.new_node_claims[0].node_pool, "a");
}

#[test]
fn untolerated_taints_are_reported() {
    let mut p = pool("gpu", catalog());
    p.taints = vec![Taint::new("nvidia.com/gpu", "true", TaintEffect::NoSchedule)];
    let r = solve(vec![p.clone()], pods(1, "1", "1Gi"));
    assert!(r.new_node_claims.is_empty());
    assert_eq!(
        r.pod_errors["default/p00"],
        "incompatible with nodepool \"gpu\", did not tolerate taint (nvidia.com/gpu=true:NoSchedule)"
    );
    // startup taints are not considered; a toleration makes it schedulable
    p.startup_taints = vec![Taint::new("node.cilium.io/agent-not-ready", "", TaintEffect::NoExecute)];
    let mut tolerant = pod("t", "1", "1Gi");
    tolerant.tolerations =
        vec![Toleration { key: "nvidia.com/gpu".into(), exists: true, value: String::new(), effect: None }];
    let r = solve(vec![p], vec![tolerant]);
    assert_eq!(r.new_node_claims.len(), 1);
}

#[test]
fn daemonset_overhead_is_counted() {
    let mut ds = pod("ds", "1", "1Gi");
    ds.key = "kube-system/ds".into();
    // 1.5 cpu fits c.large (1.9 allocatable) alone but not beside a 1-cpu daemonset.
    let r = Scheduler::new(vec![pool("default", catalog())], vec![], vec![], vec![ds], SchedulerOptions::default())
        .solve(pods(1, "1500m", "1Gi"));
    let plan = &r.new_node_claims[0];
    assert!(plan.instance_types.iter().all(|t| t.capacity.get("cpu") >= 4000), "{:?}", plan.instance_types);
    assert_eq!(plan.requests.get("cpu"), 2500);
    assert_eq!(plan.requests.get("pods"), 2000);
}

#[test]
fn daemonsets_that_do_not_tolerate_the_pool_add_nothing() {
    let mut p = pool("tainted", catalog());
    p.taints = vec![Taint::new("dedicated", "x", TaintEffect::NoSchedule)];
    let mut ds = pod("ds", "1", "1Gi");
    ds.key = "kube-system/ds".into();
    let mut w = pod("w", "1500m", "1Gi");
    w.tolerations = vec![Toleration { key: "dedicated".into(), exists: true, value: String::new(), effect: None }];
    let r = Scheduler::new(vec![p], vec![], vec![], vec![ds], SchedulerOptions::default()).solve(vec![w]);
    assert_eq!(r.new_node_claims[0].requests.get("cpu"), 1500);
}

#[test]
fn instance_types_are_truncated_to_the_cheapest_sixty() {
    let types: Vec<Arc<InstanceType>> = (0..100).rev().map(|i| it(&format!("t{i:03}"), 2 + i, 8 + i)).collect();
    let r = solve(vec![pool("default", types)], pods(1, "1", "1Gi"));
    let plan = &r.new_node_claims[0];
    assert_eq!(plan.instance_types.len(), 60);
    assert_eq!(plan.instance_types[0].name, "t000");
    assert_eq!(plan.instance_types[59].name, "t059");
    assert_eq!(plan.requirements.get(labels::INSTANCE_TYPE).values().len(), 60);
}

#[test]
fn unavailable_offerings_are_skipped() {
    let mut cheap = offerings(&["a"], &["a"], 0.01);
    for o in &mut cheap {
        o.available = false;
    }
    let mut spot_gone = offerings(&["a", "b"], &["a"], 0.2);
    spot_gone[0].available = false; // spot in a
    let types = vec![it_with("cheap.large", 2, 8, cheap), it_with("m.large", 2, 8, spot_gone)];
    let r = solve(vec![pool("default", types)], pods(1, "1", "1Gi"));
    let plan = &r.new_node_claims[0];
    let names: Vec<&str> = plan.instance_types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["m.large"]);
    let best = plan.instance_types[0].cheapest_available(&plan.requirements).unwrap();
    assert_eq!((best.zone.as_str(), best.capacity_type), ("b", CapacityType::Spot));
}

#[test]
fn spot_only_pool_with_no_spot_left_fails_then_on_demand_pool_takes_it() {
    let mut none = offerings(&["a"], &[], 0.1);
    none[0].available = false;
    let mut spot = SchedNodePool { weight: 10, ..pool("spot", vec![it_with("m.large", 2, 8, none)]) };
    spot.requirements.add(labels::CAPACITY_TYPE, Requirement::in_values(["spot"]));
    let od = pool("on-demand", catalog());
    let r = solve(vec![spot, od], pods(1, "1", "1Gi"));
    assert_eq!(r.new_node_claims[0].node_pool, "on-demand");
}

#[test]
fn impossible_preferences_are_relaxed() {
    let mut p = pod("pref", "1", "1Gi");
    p.preferred_node_affinity = vec![
        (100, Requirements::new().with(labels::ZONE, Requirement::in_values(["nowhere"]))),
        (10, Requirements::new().with(labels::ZONE, Requirement::in_values(["b"]))),
    ];
    let r = solve(vec![pool("default", catalog())], vec![p]);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(zone_of(&r.new_node_claims[0]), Some("b"));
}

#[test]
fn required_node_affinity_terms_are_ored() {
    let mut p = pod("or", "1", "1Gi");
    p.required_node_affinity = vec![
        Requirements::new().with(labels::ARCH, Requirement::in_values(["arm64"])),
        Requirements::new().with(labels::ZONE, Requirement::in_values(["c"])),
    ];
    let r = solve(vec![pool("default", catalog())], vec![p]);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(zone_of(&r.new_node_claims[0]), Some("c"));
}

#[test]
fn gt_requirement_filters_instance_types() {
    let mut p = pod("big", "1", "1Gi");
    p.required_node_affinity =
        vec![Requirements::new().with(labels::INSTANCE_CPU, Requirement::new(Operator::Gt, ["4"]))];
    let r = solve(vec![pool("default", catalog())], vec![p]);
    let names: Vec<&str> = r.new_node_claims[0].instance_types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["m.2xlarge"]);
}

#[test]
fn min_values_keeps_enough_flexibility() {
    let mut p = pool("flex", catalog());
    p.requirements.add(labels::INSTANCE_FAMILY, Requirement::exists().with_min_values(Some(2)));
    // 3 cpu pods: only m.xlarge and m.2xlarge remain, both family "m": one family < 2.
    let r = solve(vec![p.clone()], pods(1, "3", "1Gi"));
    assert!(r.new_node_claims.is_empty());
    assert!(r.pod_errors.values().next().unwrap().contains("minValues"), "{:?}", r.pod_errors);
    let r = solve(vec![p], pods(1, "1", "1Gi"));
    assert_eq!(r.new_node_claims.len(), 1);
}

#[test]
fn unknown_pod_does_not_fit_anywhere() {
    let r = solve(vec![pool("default", catalog())], pods(1, "100", "1Gi"));
    let err = &r.pod_errors["default/p00"];
    assert!(err.starts_with("incompatible with nodepool \"default\", no instance type has enough resources"), "{err}");
}

#[test]
fn same_input_gives_identical_results() {
    let build = || {
        let mut pending = pods(20, "700m", "900Mi");
        pending.extend(web(6, |p| p.topology_spread = vec![spread(labels::ZONE, None)]));
        pending.extend(web(4, |p| p.topology_spread = vec![spread(labels::HOSTNAME, None)]));
        for (i, p) in pending.iter_mut().enumerate() {
            p.key = format!("default/x{i:03}");
        }
        solve(vec![pool("a", catalog()), pool("b", catalog())], pending)
    };
    let first = build();
    assert_eq!(first, build());
    assert!(first.pod_errors.is_empty(), "{:?}", first.pod_errors);
}

#[test]
fn capacity_type_narrows_to_what_the_chosen_types_offer() {
    // Spot is unavailable everywhere: the plan says on-demand, so the launcher does not try spot.
    let mut offers = offerings(&["a"], &["a"], 0.1);
    offers[0].available = false;
    let r = solve(vec![pool("default", vec![it_with("m.large", 2, 8, offers)])], pods(1, "1", "1Gi"));
    let ct = r.new_node_claims[0].requirements.get(labels::CAPACITY_TYPE);
    assert_eq!(ct.single(), Some("on-demand"), "{ct}");
    // Both available: both stay.
    let r = solve(vec![pool("default", catalog())], pods(1, "1", "1Gi"));
    let ct = r.new_node_claims[0].requirements.get(labels::CAPACITY_TYPE);
    assert!(ct.has("spot") && ct.has("on-demand"), "{ct}");
    assert!(!r.new_node_claims[0].requirements.has("karpenter.sh/initialized"), "simulation-only key");
}

#[test]
fn plan_labels_resolve_custom_keys() {
    let mut p = pool("team", catalog());
    p.labels = labels_of(&[("team", "payments")]);
    p.requirements.add("tier", Requirement::in_values(["gold", "silver"]));
    let r = solve(vec![p], pods(1, "1", "1Gi"));
    let want = labels_of(&[(labels::NODE_POOL, "team"), ("team", "payments"), ("tier", "gold")]);
    assert_eq!(r.new_node_claims[0].labels, want);
}

#[test]
fn daemonset_or_terms_and_simulation_keys_count() {
    let mut ds = pod("ds", "1", "1Gi");
    ds.key = "kube-system/ds".into();
    ds.required_node_affinity = vec![
        Requirements::new().with(labels::ARCH, Requirement::in_values(["arm64"])),
        Requirements::new().with("karpenter.sh/initialized", Requirement::in_values(["true"])),
    ];
    let r = Scheduler::new(vec![pool("default", catalog())], vec![], vec![], vec![ds], SchedulerOptions::default())
        .solve(pods(1, "500m", "1Gi"));
    assert_eq!(r.new_node_claims[0].requests.get("cpu"), 1500);
}

#[test]
fn ignoring_preferences_drops_soft_constraints() {
    let mut p = pool("one-zone", catalog());
    p.requirements.add(labels::ZONE, Requirement::in_values(["a"]));
    let pending = web(2, |p| {
        let mut s = spread(labels::ZONE, Some(3));
        s.when_unsatisfiable = WhenUnsatisfiable::ScheduleAnyway;
        p.topology_spread = vec![s];
        p.preferred_node_affinity = vec![(1, Requirements::new().with(labels::ZONE, Requirement::in_values(["b"])))];
    });
    let options = SchedulerOptions { respect_preferences: false, ..Default::default() };
    let r = Scheduler::new(vec![p], vec![], vec![], vec![], options).solve(pending);
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(r.new_node_claims.len(), 1, "both pods share one plan in zone a");
}

#[test]
fn pool_whose_types_cannot_meet_min_values_is_skipped() {
    let mut p = pool("flex", vec![it("m.large", 2, 8), it("m.xlarge", 4, 16)]);
    p.requirements.add(labels::INSTANCE_FAMILY, Requirement::exists().with_min_values(Some(2)));
    let r = solve(vec![p], pods(1, "1", "1Gi"));
    let err = &r.pod_errors["default/p00"];
    assert!(err.contains("filtered out all") && err.contains("minValues"), "{err}");
}
