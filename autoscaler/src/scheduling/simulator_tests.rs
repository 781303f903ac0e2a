#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Table-style scenarios for the simulator.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::pod::{LabelSelector, Namespaces, SpreadConstraint};
use super::*;

const GI: i64 = 1 << 30;

fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn offerings(spot: &[&str], od: &[&str], price: f64) -> Vec<Offering> {
    let mut out: Vec<Offering> = spot
        .iter()
        .map(|z| Offering {
            zone: z.to_string(),
            capacity_type: CapacityType::Spot,
            price: price * 0.7,
            available: true,
        })
        .collect();
    out.extend(od.iter().map(|z| Offering {
        zone: z.to_string(),
        capacity_type: CapacityType::OnDemand,
        price,
        available: true,
    }));
    out
}

/// A type with `cpu` vCPU, `mem` GiB, 110 pods, 100m/100Mi overhead, priced by size.
fn it_with(name: &str, cpu: i64, mem: i64, offers: Vec<Offering>) -> Arc<InstanceType> {
    let reqs = Requirements::new()
        .with(labels::ARCH, Requirement::in_values(["amd64"]))
        .with(labels::OS, Requirement::in_values(["linux"]))
        .with(labels::INSTANCE_CPU, Requirement::in_values([cpu.to_string()]))
        .with(labels::INSTANCE_FAMILY, Requirement::in_values([name.split('.').next().unwrap_or(name).to_string()]));
    Arc::new(InstanceType::new(
        name,
        reqs,
        Resources::from_milli([("cpu", cpu * 1000), ("memory", mem * GI * 1000), ("pods", 110_000)]),
        Resources::from_milli([("cpu", 100), ("memory", 100 << 20 << 10)]),
        offers,
    ))
}

fn it(name: &str, cpu: i64, mem: i64) -> Arc<InstanceType> {
    let price = 0.05 * cpu as f64 + 0.01 * mem as f64;
    it_with(name, cpu, mem, offerings(&["a", "b", "c"], &["a", "b", "c"], price))
}

fn catalog() -> Vec<Arc<InstanceType>> {
    vec![it("m.large", 2, 8), it("m.xlarge", 4, 16), it("m.2xlarge", 8, 32), it("c.large", 2, 4)]
}

fn pool(name: &str, types: Vec<Arc<InstanceType>>) -> SchedNodePool {
    SchedNodePool { name: name.into(), instance_types: types, ..Default::default() }
}

fn pod(name: &str, cpu: &str, mem: &str) -> SchedPod {
    SchedPod::new("default", name, Resources::parse([("cpu", cpu), ("memory", mem)]).unwrap())
}

fn pods(n: usize, cpu: &str, mem: &str) -> Vec<SchedPod> {
    (0..n).map(|i| pod(&format!("p{i:02}"), cpu, mem)).collect()
}

fn solve(pools: Vec<SchedNodePool>, pending: Vec<SchedPod>) -> Results {
    Scheduler::new(pools, vec![], vec![], vec![], SchedulerOptions::default()).solve(pending)
}

fn selector(pairs: &[(&str, &str)]) -> Option<LabelSelector> {
    Some(LabelSelector { match_labels: labels_of(pairs), ..Default::default() })
}

fn spread(key: &str, min_domains: Option<i32>) -> SpreadConstraint {
    SpreadConstraint {
        topology_key: key.into(),
        max_skew: 1,
        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        selector: selector(&[("app", "web")]),
        min_domains,
        honor_node_affinity: true,
        honor_node_taints: false,
    }
}

fn web(n: usize, f: impl Fn(&mut SchedPod)) -> Vec<SchedPod> {
    (0..n)
        .map(|i| {
            let mut p = pod(&format!("web-{i}"), "500m", "512Mi");
            p.labels = labels_of(&[("app", "web")]);
            f(&mut p);
            p
        })
        .collect()
}

fn zone_of(plan: &NodeClaimPlan) -> Option<&str> {
    plan.requirements.get(labels::ZONE).single()
}

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

fn node(name: &str, zone: &str, cpu: i64) -> ExistingNode {
    ExistingNode {
        name: name.into(),
        requirements: Requirements::from_labels(&labels_of(&[
            (labels::ZONE, zone),
            (labels::HOSTNAME, name),
            (labels::INSTANCE_TYPE, "m.xlarge"),
        ])),
        available: Resources::from_milli([("cpu", cpu), ("memory", 8 * GI * 1000), ("pods", 100_000)]),
        initialized: true,
        ..Default::default()
    }
}

#[test]
fn pods_fitting_existing_nodes_go_there() {
    let nodes = vec![node("n1", "a", 1500), node("n2", "b", 1000), node("gone", "c", 64_000)];
    let mut nodes = nodes;
    nodes[2].marked_for_deletion = true;
    let r = Scheduler::new(vec![pool("default", catalog())], nodes, vec![], vec![], SchedulerOptions::default())
        .solve(pods(4, "1", "1Gi"));
    assert!(r.pod_errors.is_empty(), "{:?}", r.pod_errors);
    assert_eq!(r.existing.get("n1").map(Vec::len), Some(1));
    assert_eq!(r.existing.get("n2").map(Vec::len), Some(1));
    assert!(!r.existing.contains_key("gone"));
    assert_eq!(r.new_node_claims.iter().map(|p| p.pods.len()).sum::<usize>(), 2);
}

#[test]
fn existing_node_requires_its_labels() {
    // A pod asking for zone c cannot use the zone-a node.
    let mut p = pod("x", "100m", "100Mi");
    p.node_selector = labels_of(&[(labels::ZONE, "c")]);
    let r = Scheduler::new(
        vec![pool("default", catalog())],
        vec![node("n1", "a", 4000)],
        vec![],
        vec![],
        SchedulerOptions::default(),
    )
    .solve(vec![p]);
    assert!(r.existing.is_empty());
    assert_eq!(zone_of(&r.new_node_claims[0]), Some("c"));
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
fn k8s_conversions_for_nodes_and_bound_pods() {
    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let node = core::Node {
        metadata: ObjectMeta {
            name: Some("ip-10-0-0-1".into()),
            labels: Some(labels_of(&[
                (labels::ZONE, "a"),
                (labels::NODE_POOL, "default"),
                ("karpenter.sh/initialized", "true"),
            ])),
            ..Default::default()
        },
        spec: Some(core::NodeSpec {
            taints: Some(vec![core::Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]),
            ..Default::default()
        }),
        status: Some(core::NodeStatus {
            allocatable: Some(
                [("cpu".to_string(), Quantity("3920m".into())), ("pods".to_string(), Quantity("58".into()))].into(),
            ),
            ..Default::default()
        }),
    };
    let n = ExistingNode::from_node(&node, &Resources::from_milli([("cpu", 920)]));
    assert_eq!(n.available.get("cpu"), 3000);
    assert!(n.initialized && !n.marked_for_deletion);
    assert_eq!(n.taints.len(), 1);
    assert_eq!(n.requirements.get(labels::ZONE).single(), Some("a"));

    let pod = core::Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("prod".into()),
            labels: Some(labels_of(&[("app", "web")])),
            ..Default::default()
        },
        spec: Some(core::PodSpec { node_name: Some("ip-10-0-0-1".into()), ..Default::default() }),
        ..Default::default()
    };
    let info = ScheduledPodInfo::from_pod(&pod).unwrap();
    assert_eq!((info.namespace.as_str(), info.node_name.as_str()), ("prod", "ip-10-0-0-1"));
    let mut done = pod.clone();
    done.status = Some(core::PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
    assert!(ScheduledPodInfo::from_pod(&done).is_none());
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
fn pool_whose_types_cannot_meet_min_values_is_skipped() {
    let mut p = pool("flex", vec![it("m.large", 2, 8), it("m.xlarge", 4, 16)]);
    p.requirements.add(labels::INSTANCE_FAMILY, Requirement::exists().with_min_values(Some(2)));
    let r = solve(vec![p], pods(1, "1", "1Gi"));
    let err = &r.pod_errors["default/p00"];
    assert!(err.contains("filtered out all") && err.contains("minValues"), "{err}");
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
