//! The one table of EC2 actions this server answers: each action's handler and the throttling
//! buckets it draws from (peers.md §8.6). The dispatcher, the throttling, the admin API's
//! `GET /_fake/actions` and the wire tests all read it.

use super::error::Ec2Result;
use super::query::Params;
use super::{Call, Ec2Ctx, catalog, fleet, instances, launch_templates, network, tags};
use crate::world::throttle::Category;

pub type Handler = fn(&mut Ec2Ctx<'_>, &Call<'_>) -> Ec2Result<String>;

/// How many resource tokens a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `MaxCount` (RunInstances).
    MaxCount,
    /// The `InstanceId.N` named.
    InstanceIds,
}

#[derive(Debug, Clone, Copy)]
pub struct Action {
    pub name: &'static str,
    pub handler: Handler,
    /// The request bucket.
    pub request: Category,
    /// The bucket instead when the call names no filters, ids or page size, if EC2 has one.
    pub unfiltered: Option<Category>,
    /// The resource bucket and what a call takes from it, if any.
    pub resource: Option<(Category, Count)>,
}

impl Action {
    /// The request bucket a call draws from.
    pub fn request_category(&self, unfiltered: bool) -> Category {
        match self.unfiltered {
            Some(c) if unfiltered => c,
            _ => self.request,
        }
    }

    /// The resource bucket and the tokens a call takes from it, if any.
    pub fn resource_tokens(&self, params: &Params<'_>) -> Option<(Category, f64)> {
        let (category, count) = self.resource?;
        let n = match count {
            Count::MaxCount => params.int("MaxCount").ok().flatten().unwrap_or(1).max(1),
            Count::InstanceIds => params.strings("InstanceId").map(|v| v.len()).unwrap_or(1).max(1) as i64,
        };
        Some((category, n as f64))
    }
}

const fn describe(name: &'static str, handler: Handler) -> Action {
    Action { name, handler, request: Category::NonMutating, unfiltered: None, resource: None }
}

/// A Describe call EC2 puts in the smaller bucket when it is unfiltered.
const fn describe_all(name: &'static str, handler: Handler) -> Action {
    Action {
        name,
        handler,
        request: Category::NonMutating,
        unfiltered: Some(Category::UnfilteredNonMutating),
        resource: None,
    }
}

const fn mutate(name: &'static str, handler: Handler, request: Category) -> Action {
    Action { name, handler, request, unfiltered: None, resource: None }
}

const fn mutate_instances(
    name: &'static str,
    handler: Handler,
    request: Category,
    resource: Category,
    count: Count,
) -> Action {
    Action { name, handler, request, unfiltered: None, resource: Some((resource, count)) }
}

/// Every EC2 action this server answers.
pub const ACTIONS: &[Action] = &[
    describe("DescribeInstanceTypes", catalog::describe_instance_types),
    describe("DescribeInstanceTypeOfferings", catalog::describe_instance_type_offerings),
    describe("DescribeSpotPriceHistory", catalog::describe_spot_price_history),
    describe("DescribeAvailabilityZones", catalog::describe_availability_zones),
    describe("DescribeSubnets", network::describe_subnets),
    describe_all("DescribeSecurityGroups", network::describe_security_groups),
    describe("DescribeImages", network::describe_images),
    mutate("CreateLaunchTemplate", launch_templates::create_launch_template, Category::Mutating),
    describe("DescribeLaunchTemplates", launch_templates::describe_launch_templates),
    mutate("DeleteLaunchTemplate", launch_templates::delete_launch_template, Category::Mutating),
    mutate("CreateFleet", fleet::create_fleet, Category::Mutating),
    mutate_instances(
        "RunInstances",
        instances::run_instances,
        Category::RunInstances,
        Category::RunInstancesResource,
        Count::MaxCount,
    ),
    describe_all("DescribeInstances", instances::describe_instances),
    describe_all("DescribeInstanceStatus", instances::describe_instance_status),
    mutate_instances(
        "TerminateInstances",
        instances::terminate_instances,
        Category::TerminateInstances,
        Category::TerminateInstancesResource,
        Count::InstanceIds,
    ),
    mutate_instances(
        "StopInstances",
        instances::stop_instances,
        Category::Mutating,
        Category::StopInstancesResource,
        Count::InstanceIds,
    ),
    mutate_instances(
        "StartInstances",
        instances::start_instances,
        Category::StartInstances,
        Category::StartInstancesResource,
        Count::InstanceIds,
    ),
    mutate("CreateTags", tags::create_tags, Category::CreateTags),
    mutate("DeleteTags", tags::delete_tags, Category::DeleteTags),
    describe("DescribeTags", tags::describe_tags),
];

/// The action of that name, if this server answers it.
pub fn find(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(action: &str, unfiltered: bool) -> Option<Category> {
        find(action).map(|a| a.request_category(unfiltered))
    }

    #[test]
    fn categorises_actions_as_documented() {
        assert_eq!(category("DescribeInstances", true), Some(Category::UnfilteredNonMutating));
        assert_eq!(category("DescribeInstances", false), Some(Category::NonMutating));
        assert_eq!(category("DescribeSpotPriceHistory", true), Some(Category::NonMutating));
        assert_eq!(category("CreateFleet", false), Some(Category::Mutating));
        assert_eq!(category("RunInstances", false), Some(Category::RunInstances));
        assert_eq!(category("StopInstances", false), Some(Category::Mutating));
    }

    #[test]
    fn names_are_unique() {
        let names: std::collections::BTreeSet<&str> = ACTIONS.iter().map(|a| a.name).collect();
        assert_eq!(names.len(), ACTIONS.len());
    }
}
