//! CreateFleet requests shaped the way Karpenter sends them.

use aws_sdk_ec2::operation::create_fleet::builders::CreateFleetFluentBuilder;
use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetType, InstanceType, ResourceType, SpotAllocationStrategy,
    SpotOptionsRequest, Tag, TagSpecification, TargetCapacitySpecificationRequest,
};

/// The default world's first subnet (us-west-2a) and image.
pub const SUBNET_A: &str = "subnet-0a1a1a1a1a1a1a1a1";
pub const AMI: &str = "ami-0a0b0c0d0e0f10111";

/// CreateFleet instant for `n` instances of `capacity_type` from launch template `lt` ($Latest),
/// spot price-capacity-optimized, instances tagged `karpenter.sh/nodepool=default`.
pub fn karpenter_fleet(
    c: &aws_sdk_ec2::Client,
    lt: &str,
    capacity_type: DefaultTargetCapacityType,
    n: i32,
    overrides: Vec<FleetLaunchTemplateOverridesRequest>,
) -> CreateFleetFluentBuilder {
    c.create_fleet()
        .r#type(FleetType::Instant)
        .target_capacity_specification(
            TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(n)
                .default_target_capacity_type(capacity_type)
                .build(),
        )
        .spot_options(
            SpotOptionsRequest::builder().allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized).build(),
        )
        .launch_template_configs(
            FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_name(lt)
                        .version("$Latest")
                        .build(),
                )
                .set_overrides(Some(overrides))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("karpenter.sh/nodepool").value("default").build())
                .build(),
        )
}

/// One override as Karpenter writes it: instance type, subnet, its zone and the image.
pub fn override_for(instance_type: &str, subnet: &str, zone: &str) -> FleetLaunchTemplateOverridesRequest {
    FleetLaunchTemplateOverridesRequest::builder()
        .instance_type(InstanceType::from(instance_type))
        .subnet_id(subnet)
        .availability_zone(zone)
        .image_id(AMI)
        .build()
}
