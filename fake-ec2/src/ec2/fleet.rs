//! CreateFleet of type `instant`: allocation strategies over (type, zone, capacity type) pools,
//! partial fulfilment, and per-override `errorSet` entries that echo `launchTemplateAndOverrides`.
//!
//! Strategies follow the EC2 Fleet documentation:
//! - spot `lowest-price`: cheapest pools first (`InstancePoolsToUseCount` spreads over the N cheapest);
//! - spot `capacity-optimized`: the pools with the most spare capacity first;
//! - spot `capacity-optimized-prioritized`: among pools deep enough for the request, by `Priority`;
//! - spot `price-capacity-optimized`: among pools deep enough for the request, the cheapest;
//! - spot `diversified`: spread across every pool;
//! - on-demand `lowest-price` / `prioritized` (lower `Priority` value first, unset last).
//!
//! Pools with no spare capacity go last, so an error for a pool appears only when EC2 would have
//! had to try it.

use std::collections::BTreeMap;

use super::Call;
use super::error::{Ec2Error, Ec2Result};
use super::instances::{check_tag_resource_types, choose_subnet, tags_for};
use super::launch_templates::{resolve_template, spec_from_template};
use super::query::{self, Params};
use super::xml::XmlWriter;
use crate::world::instances::LaunchTemplateRef;
use crate::world::pools::CapacityType;
use crate::world::{LaunchFailure, LaunchSpec, World};

/// One launch template config × override: a pool the fleet may launch into.
#[derive(Debug, Clone)]
struct Candidate {
    /// Position in the request, for stable tie-breaks and grouping.
    order: usize,
    lt: LaunchTemplateRef,
    spec: LaunchSpec,
    zone: String,
    weight: f64,
    priority: Option<f64>,
    max_price: Option<f64>,
    /// The override exactly as given, echoed back in `launchTemplateAndOverrides`.
    echo: Vec<(&'static str, String)>,
}

const ECHO_FIELDS: [(&str, &str); 8] = [
    ("InstanceType", "instanceType"),
    ("MaxPrice", "maxPrice"),
    ("SubnetId", "subnetId"),
    ("AvailabilityZone", "availabilityZone"),
    ("WeightedCapacity", "weightedCapacity"),
    ("Priority", "priority"),
    ("ImageId", "imageId"),
    ("AvailabilityZoneId", "availabilityZoneId"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    LowestPrice,
    Diversified,
    CapacityOptimized,
    CapacityOptimizedPrioritized,
    PriceCapacityOptimized,
    Prioritized,
}

fn parse_strategy(p: &Params<'_>, name: &str, spot: bool) -> Ec2Result<Strategy> {
    let v = p.str(name).unwrap_or("lowest-price");
    let s = match (v, spot) {
        ("lowest-price" | "lowestPrice", _) => Strategy::LowestPrice,
        ("diversified", true) => Strategy::Diversified,
        ("capacity-optimized" | "capacityOptimized", true) => Strategy::CapacityOptimized,
        ("capacity-optimized-prioritized" | "capacityOptimizedPrioritized", true) => {
            Strategy::CapacityOptimizedPrioritized
        }
        ("price-capacity-optimized" | "priceCapacityOptimized", true) => Strategy::PriceCapacityOptimized,
        ("prioritized", false) => Strategy::Prioritized,
        _ => {
            let valid = if spot {
                "lowest-price, diversified, capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized"
            } else {
                "lowest-price, prioritized"
            };
            return Err(Ec2Error::invalid_value(&p.path(name), v, &format!("Valid values: {valid}.")));
        }
    };
    Ok(s)
}

struct Options {
    strategy: Strategy,
    min_target: f64,
    single_pool: bool,
    pools_to_use: usize,
    max_total_price: Option<f64>,
}

fn parse_options(p: &Params<'_>, spot: bool) -> Ec2Result<Options> {
    let strategy = parse_strategy(p, "AllocationStrategy", spot)?;
    let pools_to_use = if spot { p.int("InstancePoolsToUseCount")?.unwrap_or(1).max(1) as usize } else { 1 };
    Ok(Options {
        strategy,
        min_target: p.int("MinTargetCapacity")?.unwrap_or(0) as f64,
        single_pool: p.flag("SingleInstanceType")? || p.flag("SingleAvailabilityZone")?,
        pools_to_use,
        max_total_price: p.float("MaxTotalPrice")?,
    })
}

fn candidates(w: &World, p: &Params<'_>) -> Ec2Result<Vec<Candidate>> {
    let configs = p.list("LaunchTemplateConfigs")?;
    if configs.is_empty() {
        return Err(Ec2Error::missing("LaunchTemplateConfigs"));
    }
    let mut out = Vec::new();
    for cfg in configs {
        let (lt, data) = resolve_template(w, &cfg.child("LaunchTemplateSpecification"))?;
        let base = spec_from_template(&lt, &data);
        let mut overrides = cfg.list("Overrides")?;
        if overrides.is_empty() {
            overrides.push(cfg.child("Overrides.1"));
        }
        for o in overrides {
            let mut spec = base.clone();
            if let Some(t) = o.str("InstanceType") {
                spec.instance_type = t.to_owned();
            }
            if spec.instance_type.is_empty() {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    format!("No instance type is specified in launch template {} or its overrides.", lt.id),
                ));
            }
            if let Some(i) = o.str("ImageId") {
                spec.image_id = i.to_owned();
            }
            if spec.image_id.is_empty() {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    format!("No AMI is specified in launch template {} or its overrides.", lt.id),
                ));
            }
            let subnet = o
                .str("SubnetId")
                .map(str::to_owned)
                .or_else(|| (!spec.subnet_id.is_empty()).then(|| spec.subnet_id.clone()));
            spec.subnet_id = choose_subnet(w, subnet.as_deref(), o.str("AvailabilityZone"))?;
            let zone = w.subnet(&spec.subnet_id).map(|s| s.cfg.zone.clone()).unwrap_or_default();
            if let Some(az) = o.str("AvailabilityZone").filter(|az| *az != zone) {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    format!(
                        "The subnet {} is not in the Availability Zone {az} given in the override.",
                        spec.subnet_id
                    ),
                ));
            }
            let weight = o.float("WeightedCapacity")?.unwrap_or(1.0);
            if weight <= 0.0 {
                return Err(Ec2Error::invalid_value(
                    &o.path("WeightedCapacity"),
                    &weight.to_string(),
                    "Must be greater than zero.",
                ));
            }
            let echo = ECHO_FIELDS.iter().filter_map(|(q, x)| o.str(q).map(|v| (*x, v.to_owned()))).collect();
            out.push(Candidate {
                order: out.len(),
                lt: lt.clone(),
                zone,
                weight,
                priority: o.float("Priority")?,
                max_price: o.float("MaxPrice")?,
                spec,
                echo,
            });
        }
    }
    Ok(out)
}

fn price(w: &World, c: &Candidate, ct: CapacityType) -> f64 {
    let Some(pool) = w.pool_of(&c.spec.instance_type, &c.zone) else {
        return f64::MAX;
    };
    match ct {
        CapacityType::Spot => w.pools.spot_price_at(pool, w.now()).1,
        CapacityType::OnDemand => w.pools.on_demand_price(pool),
    }
}

fn available(w: &World, c: &Candidate, ct: CapacityType) -> u32 {
    w.pool_of(&c.spec.instance_type, &c.zone).map_or(0, |pool| w.pools.available(ct, pool))
}

/// The order in which pools are tried for `demand` units.
fn order(w: &World, cands: &[Candidate], ct: CapacityType, strategy: Strategy, demand: f64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cands.len()).collect();
    let by_price = |a: &usize, b: &usize| price(w, &cands[*a], ct).total_cmp(&price(w, &cands[*b], ct)).then(a.cmp(b));
    let by_depth =
        |a: &usize, b: &usize| available(w, &cands[*b], ct).cmp(&available(w, &cands[*a], ct)).then(a.cmp(b));
    let by_priority = |a: &usize, b: &usize| {
        let pa = cands[*a].priority.unwrap_or(f64::MAX);
        let pb = cands[*b].priority.unwrap_or(f64::MAX);
        pa.total_cmp(&pb).then(a.cmp(b))
    };
    // A pool is deep when it can hold the whole request on its own.
    let deep = |i: &usize| f64::from(available(w, &cands[*i], ct)) * cands[*i].weight >= demand;
    match strategy {
        Strategy::LowestPrice => idx.sort_by(by_price),
        Strategy::Diversified => {}
        Strategy::CapacityOptimized => idx.sort_by(by_depth),
        Strategy::Prioritized => idx.sort_by(|a, b| by_priority(a, b).then_with(|| by_price(a, b))),
        Strategy::CapacityOptimizedPrioritized | Strategy::PriceCapacityOptimized => {
            let (mut deep_pools, mut rest): (Vec<usize>, Vec<usize>) = idx.into_iter().partition(deep);
            if strategy == Strategy::PriceCapacityOptimized {
                deep_pools.sort_by(by_price);
            } else {
                deep_pools.sort_by(by_priority);
            }
            rest.sort_by(by_depth);
            deep_pools.extend(rest);
            idx = deep_pools;
        }
    }
    // Empty pools last: EC2 only runs into them when nothing better is left.
    idx.sort_by_key(|i| available(w, &cands[*i], ct) == 0);
    idx
}

struct Launched {
    cand: usize,
    ct: CapacityType,
    id: String,
}

struct FleetError {
    cand: usize,
    ct: CapacityType,
    failure: LaunchFailure,
}

/// Launches up to `target` units of one capacity type; returns the units launched.
#[allow(clippy::too_many_arguments)]
fn fill(
    w: &mut World,
    cands: &[Candidate],
    ct: CapacityType,
    target: f64,
    opts: &Options,
    base: &LaunchSpec,
    launched: &mut Vec<Launched>,
    errors: &mut Vec<FleetError>,
) -> f64 {
    if target <= 0.0 {
        return 0.0;
    }
    let queue = order(w, cands, ct, opts.strategy, target);
    let width = match opts.strategy {
        _ if opts.single_pool => 1,
        Strategy::Diversified => queue.len(),
        Strategy::LowestPrice => opts.pools_to_use,
        _ => 1,
    };
    let mut active: Vec<usize> = queue.iter().take(width).copied().collect();
    let mut waiting = queue.iter().skip(width).copied();
    let mut done = 0.0;
    let mut cost = 0.0;
    let mut used_pool: Option<usize> = None;
    let mut turn = 0;
    while done < target && !active.is_empty() {
        let slot = turn % active.len();
        let ci = active[slot];
        let c = &cands[ci];
        let unit_price = price(w, c, ct);
        let mut spec = c.spec.clone();
        spec.capacity_type = Some(ct);
        spec.tags.extend(base.tags.clone());
        spec.fleet_id.clone_from(&base.fleet_id);
        spec.reservation_id.clone_from(&base.reservation_id);
        spec.interruption_behavior.clone_from(&base.interruption_behavior);
        let outcome = if ct == CapacityType::Spot && c.max_price.is_some_and(|m| m < unit_price) {
            Err(LaunchFailure {
                code: "SpotMaxPriceTooLow",
                message: format!(
                    "Your Spot request price of {} is lower than the minimum required Spot request fulfillment price of {unit_price}.",
                    c.max_price.unwrap_or_default()
                ),
            })
        } else if opts.max_total_price.is_some_and(|m| cost + unit_price > m) {
            // The fleet stops launching once the next instance would pass the cost ceiling.
            break;
        } else {
            w.launch(&spec)
        };
        match outcome {
            Ok(id) => {
                launched.push(Launched { cand: ci, ct, id });
                done += c.weight;
                cost += unit_price;
                used_pool = Some(ci);
                turn += 1;
            }
            Err(failure) => {
                let account_wide = matches!(failure.code, "MaxSpotInstanceCountExceeded" | "VcpuLimitExceeded");
                errors.push(FleetError { cand: ci, ct, failure: failure.clone() });
                if account_wide {
                    // The quota refuses every pool of this capacity type alike.
                    for other in active.iter().chain(waiting.clone().collect::<Vec<_>>().iter()).filter(|o| **o != ci) {
                        errors.push(FleetError { cand: *other, ct, failure: failure.clone() });
                    }
                    break;
                }
                active.remove(slot);
                if opts.single_pool && used_pool.is_some() {
                    break;
                }
                if let Some(next) = waiting.next() {
                    active.push(next);
                }
            }
        }
    }
    done
}

pub fn create_fleet(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let fleet_type = p.str("Type").unwrap_or("maintain");
    if !matches!(fleet_type, "instant" | "request" | "maintain") {
        return Err(Ec2Error::invalid_value("Type", fleet_type, "Valid values: instant, request, maintain."));
    }
    let tcs = p.child("TargetCapacitySpecification");
    let total = tcs
        .int("TotalTargetCapacity")?
        .ok_or_else(|| Ec2Error::missing("TargetCapacitySpecification.TotalTargetCapacity"))? as f64;
    if total < 1.0 {
        return Err(Ec2Error::invalid_value(
            "TargetCapacitySpecification.TotalTargetCapacity",
            &total.to_string(),
            "Must be at least 1.",
        ));
    }
    let default_type = tcs.required("DefaultTargetCapacityType")?;
    let default_ct = match default_type {
        "spot" => CapacityType::Spot,
        "on-demand" => CapacityType::OnDemand,
        other => {
            return Err(Ec2Error::client(
                "Unsupported",
                format!("The DefaultTargetCapacityType {other} is not supported by this endpoint."),
            ));
        }
    };
    let mut spot_target = tcs.int("SpotTargetCapacity")?.unwrap_or(0) as f64;
    let mut od_target = tcs.int("OnDemandTargetCapacity")?.unwrap_or(0) as f64;
    let remainder = total - spot_target - od_target;
    if remainder < 0.0 {
        return Err(Ec2Error::client(
            "InvalidTargetCapacitySpecification",
            "TotalTargetCapacity should not be less than the sum of SpotTargetCapacity and OnDemandTargetCapacity.",
        ));
    }
    match default_ct {
        CapacityType::Spot => spot_target += remainder,
        CapacityType::OnDemand => od_target += remainder,
    }
    let spot_opts = parse_options(&p.child("SpotOptions"), true)?;
    let od_opts = parse_options(&p.child("OnDemandOptions"), false)?;
    let interruption = p.str("SpotOptions.InstanceInterruptionBehavior").unwrap_or("terminate");
    if !matches!(interruption, "terminate" | "stop" | "hibernate") {
        return Err(Ec2Error::invalid_value(
            "SpotOptions.InstanceInterruptionBehavior",
            interruption,
            "Valid values: hibernate, stop, terminate.",
        ));
    }
    let tag_specs = query::tag_specifications(p, "TagSpecification")?;
    check_tag_resource_types(
        &tag_specs,
        &["instance", "volume", "fleet", "network-interface", "spot-instances-request"],
    )?;
    let cands = candidates(w, p)?;
    if fleet_type != "instant" {
        return Err(Ec2Error::client(
            "Unsupported",
            format!("fake-ec2 emulates EC2 Fleet of type instant only; type {fleet_type} is not supported."),
        ));
    }
    call.dry_run(w)?;

    if let Some(token) = p.str("ClientToken")
        && let Some(previous) = w.client_tokens.get(&format!("CreateFleet/{token}"))
    {
        return Ok(previous.replace(&previous_request_id(previous), &call.request_id));
    }

    let fleet_id = format!("fleet-{}", w.rng.request_id());
    let base = LaunchSpec {
        tags: tags_for(&tag_specs, "instance"),
        fleet_id: Some(fleet_id.clone()),
        reservation_id: w.rng.hex_id("r", 17),
        interruption_behavior: Some(interruption.to_owned()),
        client_token: p.str("ClientToken").map(str::to_owned),
        ..Default::default()
    };
    let mut launched = Vec::new();
    let mut errors = Vec::new();
    for (ct, target, opts) in
        [(CapacityType::OnDemand, od_target, &od_opts), (CapacityType::Spot, spot_target, &spot_opts)]
    {
        let before = launched.len();
        let done = fill(w, &cands, ct, target, opts, &base, &mut launched, &mut errors);
        if done < opts.min_target {
            // All or nothing below the minimum: undo what this capacity type launched.
            for l in launched.drain(before..) {
                w.discard(&l.id);
            }
            errors.push(FleetError {
                cand: cands.first().map_or(0, |c| c.order),
                ct,
                failure: LaunchFailure {
                    code: "UnfulfillableCapacity",
                    message: format!("Unable to fulfill capacity due to your request configuration. Minimum target capacity {} could not be reached.", opts.min_target),
                },
            });
        }
    }
    if launched.is_empty() && errors.is_empty() {
        errors.push(FleetError {
            cand: 0,
            ct: default_ct,
            failure: LaunchFailure {
                code: "UnfulfillableCapacity",
                message: "Unable to fulfill capacity due to your request configuration.".into(),
            },
        });
    }
    let xml = render_response(call, &fleet_id, &cands, &launched, &errors);
    if let Some(token) = p.str("ClientToken") {
        w.client_tokens.insert(format!("CreateFleet/{token}"), xml.clone());
    }
    Ok(xml)
}

fn previous_request_id(xml: &str) -> String {
    xml.split("<requestId>").nth(1).and_then(|s| s.split("</requestId>").next()).unwrap_or_default().to_owned()
}

fn echo(x: &mut XmlWriter, c: &Candidate) {
    x.open("launchTemplateAndOverrides");
    x.open("launchTemplateSpecification")
        .elem("launchTemplateId", &c.lt.id)
        .elem("version", c.lt.version.to_string())
        .close();
    x.open("overrides");
    for (name, v) in &c.echo {
        x.elem(name, v);
    }
    x.close();
    x.close();
}

fn render_response(
    call: &Call<'_>,
    fleet_id: &str,
    cands: &[Candidate],
    launched: &[Launched],
    errors: &[FleetError],
) -> String {
    let mut x = call.writer();
    x.elem("fleetId", fleet_id);
    // One error entry per (pool, lifecycle, code), in the order they happened.
    let mut seen = std::collections::BTreeSet::new();
    let errors: Vec<&FleetError> = errors.iter().filter(|e| seen.insert((e.cand, e.ct, e.failure.code))).collect();
    x.item_set("errorSet", errors, |x, e| {
        echo(x, &cands[e.cand]);
        x.elem("lifecycle", e.ct.as_str()).elem("errorCode", e.failure.code).elem("errorMessage", &e.failure.message);
    });
    let mut groups: BTreeMap<(usize, CapacityType), Vec<&str>> = BTreeMap::new();
    let mut first_seen: Vec<(usize, CapacityType)> = Vec::new();
    for l in launched {
        let key = (l.cand, l.ct);
        if !groups.contains_key(&key) {
            first_seen.push(key);
        }
        groups.entry(key).or_default().push(&l.id);
    }
    x.item_set("fleetInstanceSet", first_seen, |x, key| {
        let c = &cands[key.0];
        echo(x, c);
        x.elem("lifecycle", key.1.as_str());
        x.string_set("instanceIds", groups.get(&key).cloned().unwrap_or_default());
        x.elem("instanceType", &c.spec.instance_type);
    });
    call.finish(x)
}
