//! Instance types and their offerings (zone × capacity type, with a price and availability).

use super::requirements::{Requirement, Requirements, labels};
use super::resources::Resources;

pub use wellknown::CapacityType;

/// Where and how a type can be bought.
#[derive(Clone, Debug, PartialEq)]
pub struct Offering {
    pub zone: String,
    pub capacity_type: CapacityType,
    pub price: f64,
    /// False while the (type, zone, capacity type) is in the unavailable-offerings cache.
    pub available: bool,
}

impl Offering {
    /// Whether the offering's zone and capacity type are allowed by `reqs`.
    pub fn compatible(&self, reqs: &Requirements) -> bool {
        reqs.get(labels::ZONE).has(&self.zone) && reqs.get(labels::CAPACITY_TYPE).has(self.capacity_type.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct InstanceType {
    pub name: String,
    /// Every well-known label of the type, including `capacity-type In {its offerings' types}` and
    /// `zone In {its offerings' zones}`.
    pub requirements: Requirements,
    /// cpu, memory, pods, ephemeral-storage (and extended resources).
    pub capacity: Resources,
    /// kube-reserved + system-reserved + eviction threshold.
    pub overhead: Resources,
    pub offerings: Vec<Offering>,
}

impl InstanceType {
    /// Builds a type whose requirements are `labels` plus the instance-type, zone and capacity-type
    /// sets derived from `offerings`.
    pub fn new(
        name: &str,
        labels: Requirements,
        capacity: Resources,
        overhead: Resources,
        offerings: Vec<Offering>,
    ) -> InstanceType {
        let mut requirements = labels;
        requirements.set(labels::INSTANCE_TYPE, Requirement::in_values([name]));
        requirements.set(labels::ZONE, Requirement::in_values(offerings.iter().map(|o| o.zone.clone())));
        requirements
            .set(labels::CAPACITY_TYPE, Requirement::in_values(offerings.iter().map(|o| o.capacity_type.as_str())));
        InstanceType { name: name.to_string(), requirements, capacity, overhead, offerings }
    }

    /// Capacity minus overhead: what pods (and daemonsets) can request.
    pub fn allocatable(&self) -> Resources {
        self.capacity.minus(&self.overhead)
    }

    /// The cheapest available offering whose zone and capacity type `reqs` allow (ties: the
    /// earlier offering).
    pub fn cheapest_available(&self, reqs: &Requirements) -> Option<&Offering> {
        self.offerings.iter().filter(|o| o.available && o.compatible(reqs)).min_by(|a, b| a.price.total_cmp(&b.price))
    }

    /// Whether any available offering is compatible with `reqs`.
    pub fn has_available_offering(&self, reqs: &Requirements) -> bool {
        self.has_available_offering_in(reqs.get(labels::ZONE), reqs.get(labels::CAPACITY_TYPE))
    }

    /// [`InstanceType::has_available_offering`] with the zone and capacity-type requirements
    /// looked up once by the caller.
    pub fn has_available_offering_in(&self, zone: &Requirement, capacity_type: &Requirement) -> bool {
        self.offerings.iter().any(|o| o.available && zone.has(&o.zone) && capacity_type.has(o.capacity_type.as_str()))
    }

    /// [`InstanceType::cheapest_available`] with the requirements looked up once by the caller.
    pub fn cheapest_available_in(&self, zone: &Requirement, capacity_type: &Requirement) -> Option<&Offering> {
        self.offerings
            .iter()
            .filter(|o| o.available && zone.has(&o.zone) && capacity_type.has(o.capacity_type.as_str()))
            .min_by(|a, b| a.price.total_cmp(&b.price))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::scheduling::requirements::Operator;

    fn offering(zone: &str, ct: CapacityType, price: f64, available: bool) -> Offering {
        Offering { zone: zone.into(), capacity_type: ct, price, available }
    }

    #[test]
    fn cheapest_available_respects_requirements_and_availability() {
        let it = InstanceType::new(
            "m5.large",
            Requirements::new(),
            Resources::parse([("cpu", "2"), ("memory", "8Gi")]).unwrap(),
            Resources::parse([("cpu", "100m")]).unwrap(),
            vec![
                offering("a", CapacityType::Spot, 0.03, false),
                offering("b", CapacityType::Spot, 0.04, true),
                offering("a", CapacityType::OnDemand, 0.096, true),
            ],
        );
        assert_eq!(it.allocatable().get("cpu"), 1900);
        assert_eq!(it.requirements.get(labels::ZONE).values().len(), 2);
        let any = Requirements::new();
        assert_eq!(it.cheapest_available(&any).unwrap().zone, "b");
        let zone_a = Requirements::new().with(labels::ZONE, Requirement::in_values(["a"]));
        assert_eq!(it.cheapest_available(&zone_a).unwrap().capacity_type, CapacityType::OnDemand);
        let spot_a = zone_a.with(labels::CAPACITY_TYPE, Requirement::new(Operator::In, ["spot"]));
        assert!(it.cheapest_available(&spot_a).is_none());
        assert!(!it.has_available_offering(&spot_a));
        assert_eq!(CapacityType::parse("on-demand"), Some(CapacityType::OnDemand));
    }
}
