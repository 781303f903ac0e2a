//! Launching one instance with CreateFleet `instant`, and reading its answer the way Karpenter
//! does (aws/karpenter-provider-aws `pkg/providers/instance/{instance,types}.go`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::operation::create_fleet::CreateFleetOutput;
use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetOnDemandAllocationStrategy, FleetType, OnDemandOptionsRequest,
    ResourceType, SpotAllocationStrategy, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest,
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::errors::{
    CloudError, FleetError, INSUFFICIENT_FREE_ADDRESSES, LAUNCH_TEMPLATE_NAME_NOT_FOUND,
    SPOT_SLR_CREATION_NOT_PERMITTED, is_insufficient_capacity_code, reason_message,
};
use super::launch_template::{LaunchTemplateProvider, LaunchTemplateSpec};
pub use super::launch_template::{TAG_EKS_CLUSTER, TAG_NODECLASS};
use super::nodeclass::Subnet;
use super::offerings::UnavailableOfferings;
use crate::clock::SharedClock;
use crate::scheduling::CapacityType;

/// Karpenter never asks CreateFleet for more instance types than this.
pub const MAX_INSTANCE_TYPES: usize = 60;

pub const TAG_NODEPOOL: &str = "karpenter.sh/nodepool";
pub const TAG_NODECLAIM: &str = "karpenter.sh/nodeclaim";

/// The tags every launched instance, volume and fleet carries (Karpenter's `GetTags`, plus the
/// NodeClaim name so an orphan can be traced back).
pub fn instance_tags(
    nodeclass_tags: &BTreeMap<String, String>,
    cluster: &str,
    nodepool: &str,
    nodeclass: &str,
    nodeclaim: &str,
) -> BTreeMap<String, String> {
    let mut tags = nodeclass_tags.clone();
    tags.insert(format!("kubernetes.io/cluster/{cluster}"), "owned".into());
    tags.insert(TAG_NODEPOOL.into(), nodepool.into());
    tags.insert(TAG_EKS_CLUSTER.into(), cluster.into());
    tags.insert(TAG_NODECLASS.into(), nodeclass.into());
    tags.insert(TAG_NODECLAIM.into(), nodeclaim.into());
    tags
}

/// One (instance type, zone) the caller found available and compatible.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchOverride {
    pub instance_type: String,
    pub zone: String,
    /// Must be the image of one of the request's launch templates.
    pub image_id: String,
    pub price: f64,
}

#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub nodeclaim_name: String,
    pub capacity_type: CapacityType,
    /// One per AMI; overrides go to the template of their image.
    pub launch_templates: Vec<LaunchTemplateSpec>,
    /// Cheapest first; at most 60 instance types are used.
    pub overrides: Vec<LaunchOverride>,
    /// The NodeClass's subnets; the one with most free addresses per zone is used.
    pub subnets: Vec<Subnet>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchedInstance {
    pub id: String,
    pub instance_type: String,
    pub zone: String,
    pub subnet_id: String,
    pub image_id: String,
    pub capacity_type: CapacityType,
    pub launch_time: DateTime<Utc>,
    pub provider_id: String,
}

pub fn provider_id(zone: &str, instance_id: &str) -> String {
    format!("aws:///{zone}/{instance_id}")
}

#[derive(Debug)]
pub struct FleetProvider {
    ec2: aws_sdk_ec2::Client,
    launch_templates: Arc<LaunchTemplateProvider>,
    unavailable: Arc<UnavailableOfferings>,
    clock: SharedClock,
}

impl FleetProvider {
    pub fn new(
        ec2: aws_sdk_ec2::Client,
        launch_templates: Arc<LaunchTemplateProvider>,
        unavailable: Arc<UnavailableOfferings>,
        clock: SharedClock,
    ) -> Self {
        Self { ec2, launch_templates, unavailable, clock }
    }

    /// Launches one instance, or says why not (capacity errors have marked their offerings).
    pub async fn launch(&self, req: &LaunchRequest) -> Result<LaunchedInstance, CloudError> {
        match self.launch_once(req).await {
            // The template vanished under the cache (deleted by hand, or by another replica):
            // forget it and try once more, which recreates it.
            Err(CloudError::Api { code, .. }) if code == LAUNCH_TEMPLATE_NAME_NOT_FOUND => {
                warn!(nodeclaim = %req.nodeclaim_name, "launch template not found, recreating it");
                for spec in &req.launch_templates {
                    self.launch_templates.invalidate(&spec.name());
                }
                self.launch_once(req).await
            }
            other => other,
        }
        .map_err(|e| match e {
            CloudError::Api { code, message, .. } => {
                let (reason, _) = reason_message(&format!("{code}: {message}"));
                CloudError::Create { reason: reason.to_owned(), message: format!("{code}: {message}"), errors: vec![] }
            }
            other => other,
        })
    }

    async fn launch_once(&self, req: &LaunchRequest) -> Result<LaunchedInstance, CloudError> {
        let ct = req.capacity_type;
        let mut configs = Vec::new();
        let mut zone_subnets: BTreeMap<String, String> = BTreeMap::new();
        let types = allowed_types(&req.overrides);
        for spec in &req.launch_templates {
            let mut overrides = Vec::new();
            for o in req.overrides.iter().filter(|o| o.image_id == spec.image_id && types.contains(&o.instance_type)) {
                if self.unavailable.is_unavailable(&o.instance_type, &o.zone, ct) {
                    continue;
                }
                let Some(subnet) = self.subnet_for(&req.subnets, &o.zone) else { continue };
                zone_subnets.insert(o.zone.clone(), subnet.clone());
                overrides.push(
                    FleetLaunchTemplateOverridesRequest::builder()
                        .instance_type(o.instance_type.as_str().into())
                        .subnet_id(subnet)
                        .image_id(&o.image_id)
                        .availability_zone(&o.zone)
                        .priority(o.price)
                        .build(),
                );
            }
            if overrides.is_empty() {
                continue;
            }
            let name = self.launch_templates.ensure(spec).await?;
            configs.push(
                FleetLaunchTemplateConfigRequest::builder()
                    .launch_template_specification(
                        FleetLaunchTemplateSpecificationRequest::builder()
                            .launch_template_name(name)
                            .version("$Latest")
                            .build(),
                    )
                    .set_overrides(Some(overrides))
                    .build(),
            );
        }
        if configs.is_empty() {
            return Err(CloudError::InsufficientCapacity {
                reason: "InsufficientCapacity".into(),
                message: "no capacity offerings are currently available given the constraints".into(),
                errors: vec![],
            });
        }

        let tags: Vec<Tag> = req.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let tag_specs = [ResourceType::Instance, ResourceType::Volume, ResourceType::Fleet]
            .into_iter()
            .map(|r| TagSpecification::builder().resource_type(r).set_tags(Some(tags.clone())).build());
        let token = client_token(&req.nodeclaim_name, ct, &configs);
        let mut call = self
            .ec2
            .create_fleet()
            .r#type(FleetType::Instant)
            .target_capacity_specification(
                TargetCapacitySpecificationRequest::builder()
                    .default_target_capacity_type(target_capacity_type(ct))
                    .total_target_capacity(1)
                    .build(),
            )
            .set_launch_template_configs(Some(configs))
            .set_tag_specifications(Some(tag_specs.collect()))
            .client_token(token);
        call = match ct {
            CapacityType::Spot => call.spot_options(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            ),
            CapacityType::OnDemand | CapacityType::Reserved => call.on_demand_options(
                OnDemandOptionsRequest::builder()
                    .allocation_strategy(FleetOnDemandAllocationStrategy::LowestPrice)
                    .build(),
            ),
        };
        let out = call.send().await.map_err(|e| CloudError::Api {
            operation: "CreateFleet",
            code: e.code().unwrap_or_default().to_owned(),
            message: e.message().map_or_else(|| aws_sdk_ec2::error::DisplayErrorContext(&e).to_string(), str::to_owned),
        })?;
        self.handle(req, &out, &zone_subnets)
    }

    /// The zone's subnet with the most free addresses, skipping ones recently out of addresses.
    fn subnet_for(&self, subnets: &[Subnet], zone: &str) -> Option<String> {
        subnets
            .iter()
            .filter(|s| s.zone == zone && !self.unavailable.is_subnet_unavailable(&s.id))
            .max_by(|a, b| a.available_ips.cmp(&b.available_ips).then_with(|| b.id.cmp(&a.id)))
            .map(|s| s.id.clone())
    }

    fn handle(
        &self,
        req: &LaunchRequest,
        out: &CreateFleetOutput,
        zone_subnets: &BTreeMap<String, String>,
    ) -> Result<LaunchedInstance, CloudError> {
        let ct = req.capacity_type;
        let fleet_id = out.fleet_id().unwrap_or_default();
        let errors: Vec<FleetError> = out.errors().iter().map(fleet_error).collect();
        // Errors count even when an instance came back: they name pools that could not fill.
        for e in &errors {
            if e.code == SPOT_SLR_CREATION_NOT_PERMITTED {
                self.unavailable.mark_capacity_type_unavailable(CapacityType::Spot, &e.code);
            }
            if is_insufficient_capacity_code(&e.code)
                && let (Some(t), Some(z)) = (&e.instance_type, &e.zone)
            {
                self.unavailable.mark_unavailable(t, z, ct, &format!("{}: {fleet_id}", e.code));
            }
            if e.code == INSUFFICIENT_FREE_ADDRESSES
                && let Some(s) = &e.subnet_id
            {
                self.unavailable.mark_subnet_unavailable(s, &e.code);
            }
        }
        let launched = out.instances().iter().find_map(|i| {
            let id = i.instance_ids().first()?;
            let o = i.launch_template_and_overrides().and_then(|l| l.overrides());
            Some((i, id, o))
        });
        if let Some((i, id, o)) = launched {
            let instance_type = i
                .instance_type()
                .map(|t| t.as_str().to_owned())
                .or_else(|| o.and_then(|o| o.instance_type()).map(|t| t.as_str().to_owned()))
                .unwrap_or_default();
            let zone = o.and_then(|o| o.availability_zone()).unwrap_or_default().to_owned();
            let subnet_id = o
                .and_then(|o| o.subnet_id())
                .map(str::to_owned)
                .or_else(|| zone_subnets.get(&zone).cloned())
                .unwrap_or_default();
            let image_id = o.and_then(|o| o.image_id()).unwrap_or_default().to_owned();
            info!(
                nodeclaim = %req.nodeclaim_name, instance_id = %id, instance_type, zone,
                capacity_type = %ct, fleet_id, "launched instance"
            );
            return Ok(LaunchedInstance {
                provider_id: provider_id(&zone, id),
                id: id.clone(),
                instance_type,
                zone,
                subnet_id,
                image_id,
                capacity_type: ct,
                launch_time: self.clock.utc_now(),
            });
        }
        Err(combine(errors))
    }
}

/// Karpenter's `combineFleetErrors`: all capacity errors → InsufficientCapacity, else a
/// CreateError; either way with the well-known reason of the distinct errors.
pub fn combine(errors: Vec<FleetError>) -> CloudError {
    let unique: BTreeSet<String> = errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect();
    let message = unique.into_iter().collect::<Vec<_>>().join("; ");
    let (reason, _) = reason_message(&message);
    if errors.iter().all(FleetError::is_capacity) {
        // A quota or SLR failure keeps its specific reason; plain ICE is just "InsufficientCapacity".
        let reason = if reason == "LaunchFailed" { "InsufficientCapacity" } else { reason };
        CloudError::InsufficientCapacity {
            reason: reason.to_owned(),
            message: if errors.is_empty() { "CreateFleet returned no instance and no error".into() } else { message },
            errors,
        }
    } else {
        CloudError::Create { reason: reason.to_owned(), message, errors }
    }
}

fn fleet_error(e: &aws_sdk_ec2::types::CreateFleetError) -> FleetError {
    let o = e.launch_template_and_overrides().and_then(|l| l.overrides());
    FleetError {
        code: e.error_code().unwrap_or_default().to_owned(),
        message: e.error_message().unwrap_or_default().to_owned(),
        instance_type: o.and_then(|o| o.instance_type()).map(|t| t.as_str().to_owned()),
        zone: o.and_then(|o| o.availability_zone()).map(str::to_owned),
        subnet_id: o.and_then(|o| o.subnet_id()).map(str::to_owned),
    }
}

/// The first 60 distinct instance types, in the caller's (cheapest-first) order.
fn allowed_types(overrides: &[LaunchOverride]) -> BTreeSet<String> {
    let mut seen = Vec::new();
    for o in overrides {
        if !seen.contains(&o.instance_type) {
            if seen.len() == MAX_INSTANCE_TYPES {
                break;
            }
            seen.push(o.instance_type.clone());
        }
    }
    seen.into_iter().collect()
}

/// The fleet's `DefaultTargetCapacityType`: ordinary capacity reservations launch as on-demand,
/// as Karpenter launches them.
fn target_capacity_type(ct: CapacityType) -> DefaultTargetCapacityType {
    match ct {
        CapacityType::Spot => DefaultTargetCapacityType::Spot,
        CapacityType::OnDemand | CapacityType::Reserved => DefaultTargetCapacityType::OnDemand,
    }
}

/// Same NodeClaim and same request → same token, so a retried call cannot launch twice; a
/// changed request (other offerings after a failure) gets a new one, as EC2 would otherwise
/// replay the old answer. At most 64 characters, as EC2 allows.
fn client_token(nodeclaim: &str, ct: CapacityType, configs: &[FleetLaunchTemplateConfigRequest]) -> String {
    let mut h = Sha256::new();
    h.update(ct.as_str());
    for c in configs {
        h.update(format!("{:?}", c.launch_template_specification()));
        for o in c.overrides() {
            h.update(format!(
                "|{:?}/{:?}/{:?}/{:?}",
                o.instance_type(),
                o.availability_zone(),
                o.subnet_id(),
                o.image_id()
            ));
        }
    }
    let digest = hex::encode(&h.finalize()[..8]);
    let prefix: String = nodeclaim.chars().filter(char::is_ascii).take(47).collect();
    format!("{prefix}-{digest}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Instant;

    use aws_sdk_ec2::types::{
        CreateFleetError, CreateFleetInstance, FleetLaunchTemplateOverrides, InstanceType,
        LaunchTemplateAndOverridesResponse,
    };

    use super::*;
    use crate::clock::ManualClock;

    fn provider() -> (FleetProvider, Arc<UnavailableOfferings>) {
        let clock: SharedClock = Arc::new(ManualClock::new(Instant::now(), DateTime::UNIX_EPOCH));
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-west-2"))
            .build();
        let ec2 = aws_sdk_ec2::Client::from_conf(conf);
        let unavailable = Arc::new(UnavailableOfferings::new(clock.clone()));
        let lts = Arc::new(LaunchTemplateProvider::new(ec2.clone(), clock.clone()));
        (FleetProvider::new(ec2, lts, unavailable.clone(), clock), unavailable)
    }

    fn overrides(t: &str, zone: &str, subnet: &str) -> LaunchTemplateAndOverridesResponse {
        LaunchTemplateAndOverridesResponse::builder()
            .overrides(
                FleetLaunchTemplateOverrides::builder()
                    .instance_type(InstanceType::from(t))
                    .availability_zone(zone)
                    .subnet_id(subnet)
                    .image_id("ami-1")
                    .build(),
            )
            .build()
    }

    fn fleet_err(code: &str, t: &str, zone: &str, subnet: &str) -> CreateFleetError {
        CreateFleetError::builder()
            .error_code(code)
            .error_message("m")
            .launch_template_and_overrides(overrides(t, zone, subnet))
            .build()
    }

    fn request(ct: CapacityType) -> LaunchRequest {
        LaunchRequest {
            nodeclaim_name: "c".into(),
            capacity_type: ct,
            launch_templates: vec![],
            overrides: vec![],
            subnets: vec![],
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn errors_mark_offerings_even_when_an_instance_launched() {
        let (p, unavailable) = provider();
        let out = CreateFleetOutput::builder()
            .fleet_id("fleet-1")
            .errors(fleet_err("InsufficientInstanceCapacity", "m5.large", "us-west-2a", "subnet-a"))
            .errors(fleet_err("InsufficientFreeAddressesInSubnet", "c5.large", "us-west-2b", "subnet-b"))
            .errors(fleet_err("InvalidParameterValue", "r5.large", "us-west-2c", "subnet-c"))
            .instances(
                CreateFleetInstance::builder()
                    .instance_ids("i-1")
                    .instance_type(InstanceType::from("m5.large"))
                    .launch_template_and_overrides(overrides("m5.large", "us-west-2c", "subnet-c"))
                    .build(),
            )
            .build();
        let launched = p.handle(&request(CapacityType::Spot), &out, &BTreeMap::new()).unwrap();
        assert_eq!(launched.provider_id, "aws:///us-west-2c/i-1");
        assert_eq!((launched.subnet_id.as_str(), launched.image_id.as_str()), ("subnet-c", "ami-1"));
        assert!(unavailable.is_unavailable("m5.large", "us-west-2a", CapacityType::Spot));
        assert!(unavailable.is_unavailable("c5.large", "us-west-2b", CapacityType::Spot));
        assert!(unavailable.is_subnet_unavailable("subnet-b"));
        assert!(!unavailable.is_unavailable("r5.large", "us-west-2c", CapacityType::Spot));
    }

    #[test]
    fn the_spot_slr_error_disables_all_spot() {
        let (p, unavailable) = provider();
        let out = CreateFleetOutput::builder()
            .errors(fleet_err(SPOT_SLR_CREATION_NOT_PERMITTED, "m5.large", "us-west-2a", "subnet-a"))
            .build();
        let err = p.handle(&request(CapacityType::Spot), &out, &BTreeMap::new()).unwrap_err();
        assert!(err.is_insufficient_capacity());
        assert_eq!(err.reason(), "SpotSLRCreationFailed");
        assert!(unavailable.is_unavailable("c7g.xlarge", "us-west-2b", CapacityType::Spot));
        assert!(!unavailable.is_unavailable("c7g.xlarge", "us-west-2b", CapacityType::OnDemand));
    }

    #[test]
    fn subnets_with_most_free_addresses_unless_marked() {
        let (p, unavailable) = provider();
        let s = |id: &str, zone: &str, ips: u32| Subnet {
            id: id.into(),
            zone: zone.into(),
            zone_id: String::new(),
            available_ips: ips,
        };
        let subnets = [s("subnet-1", "a", 10), s("subnet-2", "a", 500), s("subnet-3", "b", 5)];
        assert_eq!(p.subnet_for(&subnets, "a").as_deref(), Some("subnet-2"));
        unavailable.mark_subnet_unavailable("subnet-2", "full");
        assert_eq!(p.subnet_for(&subnets, "a").as_deref(), Some("subnet-1"));
        unavailable.mark_subnet_unavailable("subnet-1", "full");
        assert_eq!(p.subnet_for(&subnets, "a"), None);
    }

    fn err(code: &str) -> FleetError {
        FleetError {
            code: code.into(),
            message: "m".into(),
            instance_type: Some("m5.large".into()),
            zone: Some("us-west-2a".into()),
            subnet_id: None,
        }
    }

    #[test]
    fn all_capacity_errors_are_insufficient_capacity() {
        let e = combine(vec![err("InsufficientInstanceCapacity"), err("MaxSpotInstanceCountExceeded")]);
        assert!(e.is_insufficient_capacity());
        assert_eq!(e.reason(), "SpotQuotaExceeded");
        let e = combine(vec![err("InsufficientInstanceCapacity"), err("InvalidParameterValue")]);
        assert!(!e.is_insufficient_capacity());
        assert_eq!(e.reason(), "LaunchFailed");
    }

    #[test]
    fn tokens_are_short_and_stable() {
        let t = client_token(&"x".repeat(80), CapacityType::Spot, &[]);
        assert!(t.len() <= 64);
        assert_eq!(t, client_token(&"x".repeat(80), CapacityType::Spot, &[]));
        assert_ne!(t, client_token(&"x".repeat(80), CapacityType::OnDemand, &[]));
    }
}
