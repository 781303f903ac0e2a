//! The AWS layer: EC2, Pricing and SSM as Karpenter's AWS provider uses them. Plain inputs and
//! outputs, except `launch_spec`, which assembles a launch template from the EC2NodeClass and
//! NodeClaim it is for; the cloud provider and the controllers convert everything else.

pub mod ami_family;
pub mod cache;
pub mod clients;
pub mod errors;
pub mod fleet;
pub mod instance;
pub mod instance_types;
pub mod launch_spec;
pub mod launch_template;
pub mod nodeclass;
pub mod offerings;
pub mod pricing;
pub mod quantity;

pub use ami_family::{Alias, AmiFamily};
pub use clients::{AwsClients, AwsOptions};
pub use errors::{CloudError, FleetError};
pub use fleet::{FleetProvider, LaunchOverride, LaunchRequest, LaunchedInstance};
pub use instance::{Instance, InstanceProvider, UnhealthyInstance, instance_id_from_provider_id};
pub use instance_types::{InstanceTypeInfo, InstanceTypeProvider};
pub use launch_spec::{ClusterInfo, dns_ip_from_cidr, family_of, launch_template_spec};
pub use launch_template::{BlockDeviceMapping, LaunchTemplateProvider, LaunchTemplateSpec, MetadataOptions};
pub use nodeclass::{Ami, NodeClassResolver, SecurityGroup, SelectorTerm, Subnet, image_for};
pub use offerings::{Offerings, UnavailableOfferings};
pub use pricing::Pricing;
