//! Parsing `CreateFleet`: parameters checked in EC2's order and with its messages, launch
//! templates resolved, overrides turned into the pools the fleet may use.

use super::super::error::{Ec2Error, Ec2Result};
use super::super::instances::choose_subnet;
use super::super::launch_templates::{resolve_template, spec_from_template};
use super::super::query::{self, Params, check_tag_resource_types, tags_for};
use crate::world::World;
use crate::world::fleet::{Candidate, FleetRequest, PoolOptions, Strategy};
use crate::world::pools::CapacityType;

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

fn parse_options(p: &Params<'_>, spot: bool) -> Ec2Result<PoolOptions> {
    let strategy = parse_strategy(p, "AllocationStrategy", spot)?;
    let pools_to_use = if spot { p.int("InstancePoolsToUseCount")?.unwrap_or(1).max(1) as usize } else { 1 };
    Ok(PoolOptions {
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

/// A `CreateFleet` request as EC2 validates it, resolved against the world's launch templates.
pub(super) fn parse(w: &World, p: &Params<'_>) -> Ec2Result<FleetRequest> {
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
        CapacityType::OnDemand | CapacityType::Reserved => od_target += remainder,
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
    let candidates = candidates(w, p)?;
    if fleet_type != "instant" {
        return Err(Ec2Error::client(
            "Unsupported",
            format!("fake-ec2 emulates EC2 Fleet of type instant only; type {fleet_type} is not supported."),
        ));
    }
    Ok(FleetRequest {
        candidates,
        default_capacity_type: default_ct,
        spot_target,
        on_demand_target: od_target,
        spot: spot_opts,
        on_demand: od_opts,
        instance_tags: tags_for(&tag_specs, "instance"),
        interruption_behavior: interruption.to_owned(),
        client_token: p.str("ClientToken").map(str::to_owned),
    })
}
