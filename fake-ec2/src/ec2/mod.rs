//! The EC2 Query API (`Version=2016-11-15`): request parsing, dispatch and XML responses.
//! One file per group of actions; each handler turns a [`Call`] into response XML.

pub mod catalog;
pub mod error;
pub mod filters;
pub mod fleet;
pub mod instances;
pub mod launch_templates;
pub mod network;
pub mod pagination;
pub mod query;
pub mod render;
pub mod tags;
#[cfg(test)]
pub mod testing;
pub mod xml;

use crate::world::World;
use error::{Ec2Error, Ec2Result};
use query::Params;
use xml::XmlWriter;

pub const API_VERSION: &str = "2016-11-15";

/// One EC2 request, after the envelope (auth, throttling) has been checked.
pub struct Call<'a> {
    pub action: &'a str,
    pub params: Params<'a>,
    pub request_id: String,
}

impl Call<'_> {
    /// A response writer already holding the envelope and `requestId`.
    pub fn writer(&self) -> XmlWriter {
        XmlWriter::response(self.action, &self.request_id)
    }

    pub fn finish(&self, w: XmlWriter) -> String {
        w.finish(self.action)
    }

    /// After validating a request: with `DryRun=true`, answer as EC2 does and stop there.
    pub fn dry_run(&self, world: &World) -> Ec2Result<()> {
        if self.params.flag("DryRun")? {
            if denied(world, self.action) {
                return Err(Ec2Error::unauthorized());
            }
            return Err(Ec2Error::dry_run_ok());
        }
        Ok(())
    }
}

pub fn denied(world: &World, action: &str) -> bool {
    world.cfg.auth.deny_actions.iter().any(|a| a == action || a.strip_prefix("ec2:") == Some(action))
}

pub type Handler = fn(&mut World, &Call<'_>) -> Ec2Result<String>;

/// The handler for an action, or None when the action is not one EC2 has (or we emulate).
pub fn handler(action: &str) -> Option<Handler> {
    Some(match action {
        "DescribeInstanceTypes" => catalog::describe_instance_types,
        "DescribeInstanceTypeOfferings" => catalog::describe_instance_type_offerings,
        "DescribeSpotPriceHistory" => catalog::describe_spot_price_history,
        "DescribeAvailabilityZones" => catalog::describe_availability_zones,
        "DescribeSubnets" => network::describe_subnets,
        "DescribeSecurityGroups" => network::describe_security_groups,
        "DescribeImages" => network::describe_images,
        "CreateLaunchTemplate" => launch_templates::create_launch_template,
        "DescribeLaunchTemplates" => launch_templates::describe_launch_templates,
        "DeleteLaunchTemplate" => launch_templates::delete_launch_template,
        "CreateFleet" => fleet::create_fleet,
        "RunInstances" => instances::run_instances,
        "DescribeInstances" => instances::describe_instances,
        "DescribeInstanceStatus" => instances::describe_instance_status,
        "TerminateInstances" => instances::terminate_instances,
        "StopInstances" => instances::stop_instances,
        "StartInstances" => instances::start_instances,
        "CreateTags" => tags::create_tags,
        "DeleteTags" => tags::delete_tags,
        "DescribeTags" => tags::describe_tags,
        _ => return None,
    })
}

/// Every action this server answers, for docs and tests.
pub const ACTIONS: &[&str] = &[
    "DescribeInstanceTypes",
    "DescribeInstanceTypeOfferings",
    "DescribeSpotPriceHistory",
    "DescribeAvailabilityZones",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeImages",
    "CreateLaunchTemplate",
    "DescribeLaunchTemplates",
    "DeleteLaunchTemplate",
    "CreateFleet",
    "RunInstances",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "TerminateInstances",
    "StopInstances",
    "StartInstances",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
];

/// Whether a request names no filters, ids or page size: EC2 draws those from a smaller bucket.
pub fn is_unfiltered(params: &Params<'_>) -> bool {
    !params.has("Filter") && !params.has("InstanceId") && !params.has("MaxResults") && !params.has("NextToken")
}
