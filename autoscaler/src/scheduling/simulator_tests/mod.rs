//! Table-style scenarios for the simulator, by what they exercise; the builders they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod existing;
mod planning;
mod topology;

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
