//! Account quotas: running totals of what counts against them, and EC2's refusals.

use super::World;
use super::launch::LaunchFailure;
use super::pools::CapacityType;

/// What counts against the quotas right now.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct QuotaUsage {
    spot_vcpus: u32,
    spot_instances: u32,
    on_demand_vcpus: u32,
}

impl QuotaUsage {
    /// Adds (or removes) one instance of `vcpus`.
    pub(super) fn count(&mut self, ct: CapacityType, vcpus: u32, add: bool) {
        let (v, n) = match ct {
            CapacityType::Spot => (&mut self.spot_vcpus, Some(&mut self.spot_instances)),
            // Reserved capacity counts against the on-demand vCPU quota, as in EC2.
            CapacityType::OnDemand | CapacityType::Reserved => (&mut self.on_demand_vcpus, None),
        };
        if add {
            *v += vcpus;
            if let Some(n) = n {
                *n += 1;
            }
        } else {
            *v = v.saturating_sub(vcpus);
            if let Some(n) = n {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl World {
    /// (spot vCPUs, spot instances, on-demand vCPUs) in use.
    pub fn quota_usage(&self) -> (u32, u32, u32) {
        (self.usage.spot_vcpus, self.usage.spot_instances, self.usage.on_demand_vcpus)
    }

    /// Checks whether one more instance of `vcpus` fits the account quotas.
    pub fn check_quota(&self, ct: CapacityType, vcpus: u32) -> Result<(), LaunchFailure> {
        let q = &self.cfg.quotas;
        let u = &self.usage;
        match ct {
            CapacityType::Spot => {
                let over_vcpus = q.spot_vcpus.is_some_and(|l| u.spot_vcpus + vcpus > l);
                let over_count = q.spot_instances.is_some_and(|l| u.spot_instances + 1 > l);
                if over_vcpus || over_count {
                    return Err(LaunchFailure {
                        code: "MaxSpotInstanceCountExceeded",
                        message: "Max spot instance count exceeded".into(),
                    });
                }
            }
            CapacityType::OnDemand | CapacityType::Reserved => {
                if let Some(l) = q.on_demand_vcpus.filter(|l| u.on_demand_vcpus + vcpus > *l) {
                    return Err(LaunchFailure {
                        code: "VcpuLimitExceeded",
                        message: format!(
                            "You have requested more vCPU capacity than your current vCPU limit of {l} allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Keeps the totals in step with an instance taking or giving back its capacity.
    pub(super) fn count_quota(&mut self, ct: CapacityType, vcpus: u32, add: bool) {
        self.usage.count(ct, vcpus, add);
    }
}
