//! Names every part of the bench agrees on, so that the fake cloud, the autoscaler and the
//! harness cannot drift apart on what a `karpenter.sh/capacity-type` value means.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How an instance is bought: the values of Karpenter's `karpenter.sh/capacity-type` label.
///
/// `Reserved` (capacity reservations) is Karpenter's; fake-ec2 offers no reserved capacity, so a
/// request for it finds none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    Spot,
    OnDemand,
    Reserved,
}

impl CapacityType {
    pub const ALL: [CapacityType; 3] = [CapacityType::Spot, CapacityType::OnDemand, CapacityType::Reserved];

    /// The label value: `spot`, `on-demand`, `reserved`.
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityType::Spot => "spot",
            CapacityType::OnDemand => "on-demand",
            CapacityType::Reserved => "reserved",
        }
    }

    /// The capacity type a label value names; `None` for anything else.
    pub fn parse(s: &str) -> Option<CapacityType> {
        CapacityType::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CapacityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CapacityType;

    #[test]
    fn label_values_round_trip_through_parse_and_serde() {
        for c in CapacityType::ALL {
            assert_eq!(CapacityType::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).ok(), Some(format!("\"{c}\"")));
        }
        assert_eq!(CapacityType::parse("Spot"), None);
        assert_eq!(CapacityType::parse("on_demand"), None);
    }
}
