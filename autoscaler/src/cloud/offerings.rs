//! Offerings (instance type × zone × capacity type, with a price) and the cache of offerings EC2
//! recently could not fill (aws/karpenter-provider-aws `pkg/cache/unavailableofferings.go`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::cache::TtlCache;
use super::instance_types::InstanceTypeInfo;
use super::pricing::Pricing;
use crate::clock::SharedClock;
use crate::scheduling::{CapacityType, Offering};

/// How long a capacity failure keeps an offering, subnet or capacity type out of consideration.
pub const UNAVAILABLE_OFFERINGS_TTL: Duration = Duration::from_secs(3 * 60);

/// The capacity types offered here; reserved capacity is not modelled.
const SOLD: [CapacityType; 2] = [CapacityType::Spot, CapacityType::OnDemand];

#[derive(Debug)]
pub struct UnavailableOfferings {
    offerings: TtlCache<String, String>,
    capacity_types: TtlCache<CapacityType, String>,
    subnets: TtlCache<String, String>,
}

fn key(instance_type: &str, zone: &str, ct: CapacityType) -> String {
    format!("{}:{instance_type}:{zone}", ct.as_str())
}

impl UnavailableOfferings {
    pub fn new(clock: SharedClock) -> Self {
        Self::with_ttl(clock, UNAVAILABLE_OFFERINGS_TTL)
    }

    pub fn with_ttl(clock: SharedClock, ttl: Duration) -> Self {
        Self {
            offerings: TtlCache::new(ttl, Arc::clone(&clock)),
            capacity_types: TtlCache::new(ttl, Arc::clone(&clock)),
            subnets: TtlCache::new(ttl, clock),
        }
    }

    /// Marks (or re-marks, restarting the TTL) one offering.
    pub fn mark_unavailable(&self, instance_type: &str, zone: &str, ct: CapacityType, reason: &str) {
        debug!(instance_type, zone, capacity_type = %ct, reason, ttl_s = UNAVAILABLE_OFFERINGS_TTL.as_secs(), "removing offering from offerings");
        self.offerings.set(key(instance_type, zone, ct), reason.to_owned());
    }

    /// True if the offering or its whole capacity type is marked.
    pub fn is_unavailable(&self, instance_type: &str, zone: &str, ct: CapacityType) -> bool {
        self.capacity_types.contains(&ct) || self.offerings.contains(&key(instance_type, zone, ct))
    }

    /// Why the offering is marked, if it is.
    pub fn reason(&self, instance_type: &str, zone: &str, ct: CapacityType) -> Option<String> {
        self.capacity_types.get(&ct).or_else(|| self.offerings.get(&key(instance_type, zone, ct)))
    }

    pub fn mark_capacity_type_unavailable(&self, ct: CapacityType, reason: &str) {
        debug!(capacity_type = %ct, reason, "marking capacity type unavailable");
        self.capacity_types.set(ct, reason.to_owned());
    }

    pub fn is_capacity_type_unavailable(&self, ct: CapacityType) -> bool {
        self.capacity_types.contains(&ct)
    }

    pub fn mark_subnet_unavailable(&self, subnet_id: &str, reason: &str) {
        debug!(subnet_id, reason, "marking subnet unavailable");
        self.subnets.set(subnet_id.to_owned(), reason.to_owned());
    }

    pub fn is_subnet_unavailable(&self, subnet_id: &str) -> bool {
        self.subnets.contains(&subnet_id.to_owned())
    }

    /// Live offering marks as `capacity-type:type:zone` → reason, in key order.
    pub fn marked(&self) -> Vec<(String, String)> {
        self.offerings.entries()
    }

    pub fn flush(&self) {
        self.offerings.clear();
        self.capacity_types.clear();
        self.subnets.clear();
    }
}

/// Builds offerings from the catalog, the prices and the unavailable cache.
#[derive(Debug, Clone)]
pub struct Offerings {
    pub pricing: Arc<Pricing>,
    pub unavailable: Arc<UnavailableOfferings>,
}

impl Offerings {
    pub fn new(pricing: Arc<Pricing>, unavailable: Arc<UnavailableOfferings>) -> Self {
        Self { pricing, unavailable }
    }

    /// Every zone × capacity type with a price; pools with no price are left out (EC2 cannot
    /// be asked for them at a known cost). Ordered by zone, then spot before on-demand.
    pub fn offerings(&self, it: &InstanceTypeInfo) -> Vec<Offering> {
        self.build(it, None)
    }

    /// As [`Self::offerings`], limited to `zones` (e.g. the zones of the NodeClass's subnets).
    pub fn offerings_in(&self, it: &InstanceTypeInfo, zones: &BTreeSet<String>) -> Vec<Offering> {
        self.build(it, Some(zones))
    }

    fn build(&self, it: &InstanceTypeInfo, only: Option<&BTreeSet<String>>) -> Vec<Offering> {
        let mut out = Vec::new();
        for zone in it.zones.iter().filter(|z| only.is_none_or(|o| o.contains(*z))) {
            for ct in SOLD {
                let price = match ct {
                    CapacityType::Spot => self.pricing.spot(&it.name, zone),
                    CapacityType::OnDemand => self.pricing.on_demand(&it.name),
                    CapacityType::Reserved => None,
                };
                let Some(price) = price else { continue };
                let available = !self.unavailable.is_unavailable(&it.name, zone, ct);
                out.push(Offering { zone: zone.clone(), capacity_type: ct, price, available });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn marks_expire_after_three_minutes_and_a_new_mark_restarts_the_ttl() {
        let clock = Arc::new(ManualClock::new(Instant::now(), chrono::DateTime::UNIX_EPOCH));
        let cache = UnavailableOfferings::new(clock.clone());
        cache.mark_unavailable("m5.large", "us-west-2a", CapacityType::Spot, "InsufficientInstanceCapacity");
        assert!(cache.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));
        assert!(!cache.is_unavailable("m5.large", "us-west-2a", CapacityType::OnDemand));
        assert!(!cache.is_unavailable("m5.large", "us-west-2b", CapacityType::Spot));
        assert_eq!(
            cache.marked(),
            [("spot:m5.large:us-west-2a".to_owned(), "InsufficientInstanceCapacity".to_owned())]
        );

        clock.advance(Duration::from_secs(120));
        cache.mark_unavailable("m5.large", "us-west-2a", CapacityType::Spot, "again");
        clock.advance(Duration::from_secs(120));
        assert!(cache.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot), "re-marking extends");
        clock.advance(Duration::from_secs(61));
        assert!(!cache.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));

        cache.mark_capacity_type_unavailable(CapacityType::Spot, "SLR");
        assert!(cache.is_unavailable("c5.large", "us-west-2c", CapacityType::Spot));
        cache.mark_subnet_unavailable("subnet-1", "InsufficientFreeAddressesInSubnet");
        assert!(cache.is_subnet_unavailable("subnet-1"));
        clock.advance(UNAVAILABLE_OFFERINGS_TTL);
        assert!(!cache.is_capacity_type_unavailable(CapacityType::Spot));
        assert!(!cache.is_subnet_unavailable("subnet-1"));
    }
}
