//! CreateFleet allocation strategies, target splits and limits, checked on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{all, call};
use fake_ec2::server::AppState;
use fake_ec2::world::config::ThrottleMode;
use fake_ec2::world::pools::CapacityType;

const SUBNETS: [(&str, &str); 3] = [
    ("us-west-2a", "subnet-0a1a1a1a1a1a1a1a1"),
    ("us-west-2b", "subnet-0b2b2b2b2b2b2b2b2"),
    ("us-west-2c", "subnet-0c3c3c3c3c3c3c3c3"),
];

fn state() -> AppState {
    let state = AppState::new(common::world_with(21, |c| c.throttling.mode = ThrottleMode::Off));
    let (s, body) = call(
        &state,
        "Action=CreateLaunchTemplate&LaunchTemplateName=fleet-lt&LaunchTemplateData.ImageId=ami-0a0b0c0d0e0f10111",
    );
    assert_eq!(s, 200, "{body}");
    state
}

/// (type, zone index, extra override fields)
fn fleet(strategy: &str, capacity: &str, total: u32, overrides: &[(&str, usize, &str)], extra: &str) -> String {
    let mut q = format!(
        "Action=CreateFleet&Type=instant&TargetCapacitySpecification.TotalTargetCapacity={total}\
         &TargetCapacitySpecification.DefaultTargetCapacityType={capacity}\
         &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=fleet-lt\
         &LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest{extra}"
    );
    if capacity == "spot" {
        q.push_str(&format!("&SpotOptions.AllocationStrategy={strategy}"));
    } else {
        q.push_str(&format!("&OnDemandOptions.AllocationStrategy={strategy}"));
    }
    for (n, (t, z, more)) in overrides.iter().enumerate() {
        let (zone, subnet) = SUBNETS[*z];
        let n = n + 1;
        q.push_str(&format!(
            "&LaunchTemplateConfigs.1.Overrides.{n}.InstanceType={t}&LaunchTemplateConfigs.1.Overrides.{n}.SubnetId={subnet}\
             &LaunchTemplateConfigs.1.Overrides.{n}.AvailabilityZone={zone}{}",
            more.replace("{n}", &n.to_string())
        ));
    }
    q
}

/// Instances launched per (type, zone), from DescribeInstances.
fn placed(state: &AppState) -> BTreeMap<(String, String), usize> {
    let (_, xml) = call(state, "Action=DescribeInstances");
    let types = all(&xml, "instanceType");
    let zones = all(&xml, "availabilityZone");
    let mut out = BTreeMap::new();
    for (t, z) in types.into_iter().zip(zones) {
        *out.entry((t, z)).or_default() += 1;
    }
    out
}

fn key(t: &str, z: &str) -> (String, String) {
    (t.to_owned(), z.to_owned())
}

fn set_capacity(state: &AppState, t: &str, z: &str, ct: CapacityType, cap: u32) {
    let mut w = state.cloud();
    let pool = w.ec2.pool_of(t, z).unwrap();
    w.ec2.pools.set_capacity(ct, pool, cap);
}

fn spot_price(state: &AppState, t: &str, z: &str) -> f64 {
    let w = state.cloud();
    let pool = w.ec2.pool_of(t, z).unwrap();
    w.ec2.pools.spot_price_at(pool, w.now()).1
}

#[test]
fn spot_lowest_price_takes_the_cheapest_pool() {
    let s = state();
    let ovs = [("m5.large", 0, ""), ("m5.large", 1, ""), ("c5.large", 2, ""), ("m6i.large", 0, "")];
    let cheapest = ovs
        .iter()
        .map(|(t, z, _)| (spot_price(&s, t, SUBNETS[*z].0), *t, SUBNETS[*z].0))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap();
    let (status, xml) = call(&s, &fleet("lowest-price", "spot", 4, &ovs, ""));
    assert_eq!(status, 200, "{xml}");
    assert_eq!(placed(&s), BTreeMap::from([(key(cheapest.1, cheapest.2), 4)]));
}

#[test]
fn lowest_price_with_instance_pools_to_use_count_spreads_over_the_cheapest_n() {
    let s = state();
    let ovs = [("m5.large", 0, ""), ("m5.large", 1, ""), ("m5.large", 2, "")];
    let (status, _) = call(&s, &fleet("lowest-price", "spot", 6, &ovs, "&SpotOptions.InstancePoolsToUseCount=3"));
    assert_eq!(status, 200);
    let p = placed(&s);
    assert_eq!(p.len(), 3);
    assert!(p.values().all(|n| *n == 2), "{p:?}");
}

#[test]
fn capacity_optimized_takes_the_deepest_pool() {
    let s = state();
    set_capacity(&s, "m5.large", "us-west-2a", CapacityType::Spot, 10);
    set_capacity(&s, "m5.large", "us-west-2b", CapacityType::Spot, 500);
    set_capacity(&s, "m5.large", "us-west-2c", CapacityType::Spot, 50);
    let ovs = [("m5.large", 0, ""), ("m5.large", 1, ""), ("m5.large", 2, "")];
    call(&s, &fleet("capacity-optimized", "spot", 5, &ovs, ""));
    assert_eq!(placed(&s), BTreeMap::from([(key("m5.large", "us-west-2b"), 5)]));
}

#[test]
fn price_capacity_optimized_prefers_cheap_pools_that_can_hold_the_request() {
    let s = state();
    let ovs = [("m5.large", 0, ""), ("c5.large", 1, ""), ("r5.large", 2, "")];
    // Make the cheapest pool too shallow for 5 instances: PCO must skip it without an error.
    let mut by_price: Vec<_> =
        ovs.iter().map(|(t, z, _)| (spot_price(&s, t, SUBNETS[*z].0), *t, SUBNETS[*z].0)).collect();
    by_price.sort_by(|a, b| a.0.total_cmp(&b.0));
    set_capacity(&s, by_price[0].1, by_price[0].2, CapacityType::Spot, 2);
    let (_, xml) = call(&s, &fleet("price-capacity-optimized", "spot", 5, &ovs, ""));
    assert!(all(&xml, "errorCode").is_empty(), "{xml}");
    assert_eq!(placed(&s), BTreeMap::from([(key(by_price[1].1, by_price[1].2), 5)]));
}

#[test]
fn capacity_optimized_prioritized_and_on_demand_prioritized_follow_priority() {
    let s = state();
    let ovs = [
        ("m5.large", 0, "&LaunchTemplateConfigs.1.Overrides.{n}.Priority=3"),
        ("c5.large", 1, "&LaunchTemplateConfigs.1.Overrides.{n}.Priority=1"),
        ("r5.large", 2, "&LaunchTemplateConfigs.1.Overrides.{n}.Priority=2"),
    ];
    call(&s, &fleet("capacity-optimized-prioritized", "spot", 2, &ovs, ""));
    assert_eq!(placed(&s), BTreeMap::from([(key("c5.large", "us-west-2b"), 2)]));
    let s = state();
    call(&s, &fleet("prioritized", "on-demand", 2, &ovs, ""));
    assert_eq!(placed(&s), BTreeMap::from([(key("c5.large", "us-west-2b"), 2)]));
}

#[test]
fn on_demand_lowest_price_uses_list_prices() {
    let s = state();
    // r5.large 0.126 > m5.large 0.096 > c5.large 0.085 (us-west-2 list prices).
    let ovs = [("r5.large", 0, ""), ("m5.large", 1, ""), ("c5.large", 2, "")];
    let (_, xml) = call(&s, &fleet("lowest-price", "on-demand", 3, &ovs, ""));
    assert_eq!(all(&xml, "lifecycle"), ["on-demand"]);
    assert_eq!(placed(&s), BTreeMap::from([(key("c5.large", "us-west-2c"), 3)]));
}

#[test]
fn diversified_spreads_across_every_pool() {
    let s = state();
    let ovs = [("m5.large", 0, ""), ("m5.large", 1, ""), ("c5.large", 2, "")];
    call(&s, &fleet("diversified", "spot", 6, &ovs, ""));
    let p = placed(&s);
    assert_eq!(p.values().copied().collect::<Vec<_>>(), [2, 2, 2], "{p:?}");
}

#[test]
fn exhausted_pools_fall_through_and_report_each_failure_once() {
    let s = state();
    set_capacity(&s, "m5.large", "us-west-2a", CapacityType::Spot, 1);
    set_capacity(&s, "m5.large", "us-west-2b", CapacityType::Spot, 1);
    let ovs = [("m5.large", 0, ""), ("m5.large", 1, "")];
    let (_, xml) = call(&s, &fleet("lowest-price", "spot", 4, &ovs, ""));
    // Each error echoes its override (1 instanceType); each instance group echoes it and names it (2).
    assert_eq!(all(&xml, "instanceType").len(), 2 + 2 * 2, "two errors and two instance groups");
    let codes = all(&xml, "errorCode");
    assert_eq!(codes, ["InsufficientInstanceCapacity", "InsufficientInstanceCapacity"]);
    assert_eq!(placed(&s).values().sum::<usize>(), 2);
}

#[test]
fn min_target_capacity_is_all_or_nothing() {
    let s = state();
    set_capacity(&s, "m5.large", "us-west-2a", CapacityType::Spot, 2);
    let ovs = [("m5.large", 0, "")];
    let (status, xml) = call(&s, &fleet("lowest-price", "spot", 3, &ovs, "&SpotOptions.MinTargetCapacity=3"));
    assert_eq!(status, 200);
    assert!(all(&xml, "errorCode").contains(&"UnfulfillableCapacity".to_owned()), "{xml}");
    assert!(placed(&s).is_empty(), "nothing launched below the minimum");
    let w = s.cloud();
    let pool = w.ec2.pool_of("m5.large", "us-west-2a").unwrap();
    assert_eq!(w.ec2.pools.used(CapacityType::Spot, pool), 0, "capacity given back");
}

#[test]
fn weighted_capacity_counts_units_and_targets_split_by_type() {
    let s = state();
    let ovs = [("m5.2xlarge", 0, "&LaunchTemplateConfigs.1.Overrides.{n}.WeightedCapacity=4")];
    call(&s, &fleet("lowest-price", "spot", 8, &ovs, ""));
    assert_eq!(placed(&s), BTreeMap::from([(key("m5.2xlarge", "us-west-2a"), 2)]));
    let s = state();
    let ovs = [("m5.large", 0, "")];
    let split =
        "&TargetCapacitySpecification.OnDemandTargetCapacity=1&TargetCapacitySpecification.SpotTargetCapacity=2";
    let (_, xml) = call(&s, &fleet("lowest-price", "spot", 3, &ovs, split));
    let mut lifecycles = all(&xml, "lifecycle");
    lifecycles.sort();
    assert_eq!(lifecycles, ["on-demand", "spot"]);
    assert_eq!(all(&xml, "instanceIds").len(), 2);
}

#[test]
fn max_price_below_the_market_is_refused_per_override() {
    let s = state();
    let ovs = [("m5.large", 0, "&LaunchTemplateConfigs.1.Overrides.{n}.MaxPrice=0.0001")];
    let (_, xml) = call(&s, &fleet("lowest-price", "spot", 1, &ovs, ""));
    assert_eq!(all(&xml, "errorCode"), ["SpotMaxPriceTooLow"]);
    assert!(placed(&s).is_empty());
}

#[test]
fn invalid_requests_fail_whole_with_ec2_codes() {
    let s = state();
    let ovs = [("m5.large", 0, "")];
    let cases = [
        (fleet("cheapest", "spot", 1, &ovs, ""), "InvalidParameterValue"),
        (fleet("lowest-price", "spot", 1, &[], "").replace("&LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=fleet-lt&LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest", ""), "MissingParameter"),
        (fleet("lowest-price", "spot", 1, &ovs, "").replace("LaunchTemplateName=fleet-lt", "LaunchTemplateName=nope"), "InvalidLaunchTemplateName.NotFoundException"),
        (fleet("lowest-price", "spot", 2, &ovs, "&TargetCapacitySpecification.SpotTargetCapacity=3"), "InvalidTargetCapacitySpecification"),
        (fleet("lowest-price", "spot", 1, &ovs, "").replace("Type=instant", "Type=maintain"), "Unsupported"),
    ];
    for (body, code) in cases {
        let (status, xml) = call(&s, &body);
        assert_eq!((status, all(&xml, "Code")), (400, vec![code.to_owned()]), "{body}");
    }
    assert!(placed(&s).is_empty());
}
