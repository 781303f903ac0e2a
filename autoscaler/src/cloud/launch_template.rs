//! Launch templates Karpenter-style: named after a hash of their content, created on first use,
//! remembered for a minute (aws/karpenter-provider-aws `pkg/providers/launchtemplate`).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceMetadataProtocolIpv6, LaunchTemplateInstanceMetadataTagsState,
    LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest, RequestLaunchTemplateData, ResourceType,
    Tag, TagSpecification, VolumeType,
};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use super::cache::TtlCache;
use super::errors::{CloudError, LAUNCH_TEMPLATE_NAME_NOT_FOUND};
use crate::clock::SharedClock;

pub const LAUNCH_TEMPLATE_TTL: Duration = Duration::from_secs(60);
pub const NAME_PREFIX: &str = "karpenter.k8s.aws/";
pub const TAG_CLUSTER: &str = "karpenter.k8s.aws/cluster";
pub const TAG_NODECLASS: &str = "karpenter.k8s.aws/ec2nodeclass";
pub const TAG_EKS_CLUSTER: &str = "eks:eks-cluster-name";

/// EC2NodeClass `metadataOptions`; the default is Karpenter's (IMDSv2 only, one hop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataOptions {
    pub http_endpoint: String,
    pub http_protocol_ipv6: String,
    pub http_put_response_hop_limit: i32,
    pub http_tokens: String,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        Self {
            http_endpoint: "enabled".into(),
            http_protocol_ipv6: "disabled".into(),
            http_put_response_hop_limit: 1,
            http_tokens: "required".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDeviceMapping {
    pub device_name: String,
    pub volume_size_gib: Option<i32>,
    pub volume_type: Option<String>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: Option<bool>,
    pub delete_on_termination: Option<bool>,
}

impl BlockDeviceMapping {
    /// AL2023's default root volume as Karpenter writes it.
    pub fn al2023_root() -> Self {
        Self {
            device_name: "/dev/xvda".into(),
            volume_size_gib: Some(20),
            volume_type: Some("gp3".into()),
            iops: None,
            throughput: None,
            encrypted: Some(true),
            delete_on_termination: Some(true),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchTemplateSpec {
    pub cluster_name: String,
    pub nodeclass_name: String,
    pub image_id: String,
    /// Base64 user data in the AMI family's format (see [`super::launch_spec`]).
    pub user_data: String,
    pub security_group_ids: Vec<String>,
    pub instance_profile: String,
    pub metadata_options: MetadataOptions,
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    pub detailed_monitoring: bool,
    /// EC2NodeClass `spec.tags`.
    pub tags: BTreeMap<String, String>,
}

impl LaunchTemplateSpec {
    /// The tags on the launch template and its network interfaces: the NodeClass's plus the
    /// ones that tie it to this cluster and NodeClass.
    pub fn all_tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(TAG_CLUSTER.into(), self.cluster_name.clone());
        tags.insert(TAG_NODECLASS.into(), self.nodeclass_name.clone());
        tags.insert(TAG_EKS_CLUSTER.into(), self.cluster_name.clone());
        tags
    }

    /// `karpenter.k8s.aws/<decimal hash>`: equal content, equal name, so templates are shared.
    pub fn name(&self) -> String {
        let bdms: Vec<serde_json::Value> = self
            .block_device_mappings
            .iter()
            .map(|b| {
                serde_json::json!([
                    b.device_name,
                    b.volume_size_gib,
                    b.volume_type,
                    b.iops,
                    b.throughput,
                    b.encrypted,
                    b.delete_on_termination
                ])
            })
            .collect();
        let mut sgs = self.security_group_ids.clone();
        sgs.sort();
        let m = &self.metadata_options;
        let doc = serde_json::json!({
            "cluster": self.cluster_name,
            "nodeclass": self.nodeclass_name,
            "image": self.image_id,
            "userData": self.user_data,
            "securityGroups": sgs,
            "instanceProfile": self.instance_profile,
            "metadata": [m.http_endpoint, m.http_protocol_ipv6, m.http_put_response_hop_limit, m.http_tokens],
            "blockDevices": bdms,
            "monitoring": self.detailed_monitoring,
            "tags": self.all_tags(),
        });
        let digest = Sha256::digest(doc.to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        format!("{NAME_PREFIX}{}", u64::from_be_bytes(first))
    }
}

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

#[derive(Debug)]
pub struct LaunchTemplateProvider {
    ec2: aws_sdk_ec2::Client,
    known: TtlCache<String, ()>,
}

impl LaunchTemplateProvider {
    pub fn new(ec2: aws_sdk_ec2::Client, clock: SharedClock) -> Self {
        Self { ec2, known: TtlCache::new(LAUNCH_TEMPLATE_TTL, clock) }
    }

    /// The template's name, after making sure EC2 has it.
    pub async fn ensure(&self, spec: &LaunchTemplateSpec) -> Result<String, CloudError> {
        let name = spec.name();
        if self.known.contains(&name) {
            return Ok(name);
        }
        match self.ec2.describe_launch_templates().launch_template_names(&name).send().await {
            Ok(out) if !out.launch_templates().is_empty() => {
                debug!(launch_template = %name, "found launch template");
            }
            Ok(_) => self.create(&name, spec).await?,
            Err(e) if e.as_service_error().and_then(|s| s.meta().code()) == Some(LAUNCH_TEMPLATE_NAME_NOT_FOUND) => {
                self.create(&name, spec).await?;
            }
            Err(e) => return Err(CloudError::api("DescribeLaunchTemplates", e)),
        }
        self.known.set(name.clone(), ());
        Ok(name)
    }

    async fn create(&self, name: &str, spec: &LaunchTemplateSpec) -> Result<(), CloudError> {
        let all_tags = spec.all_tags();
        let m = &spec.metadata_options;
        let bdms: Vec<LaunchTemplateBlockDeviceMappingRequest> = spec
            .block_device_mappings
            .iter()
            .map(|b| {
                let ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
                    .set_volume_size(b.volume_size_gib)
                    .set_volume_type(b.volume_type.as_deref().map(VolumeType::from))
                    .set_iops(b.iops)
                    .set_throughput(b.throughput)
                    .set_encrypted(b.encrypted)
                    .set_delete_on_termination(b.delete_on_termination)
                    .build();
                LaunchTemplateBlockDeviceMappingRequest::builder().device_name(&b.device_name).ebs(ebs).build()
            })
            .collect();
        let data = RequestLaunchTemplateData::builder()
            .image_id(&spec.image_id)
            // Custom classes without user data launch with the AMI's own.
            .set_user_data((!spec.user_data.is_empty()).then(|| spec.user_data.clone()))
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(&spec.instance_profile).build(),
            )
            .set_security_group_ids(Some(spec.security_group_ids.clone()))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(m.http_endpoint.as_str()))
                    .http_protocol_ipv6(LaunchTemplateInstanceMetadataProtocolIpv6::from(m.http_protocol_ipv6.as_str()))
                    .http_put_response_hop_limit(m.http_put_response_hop_limit)
                    .http_tokens(LaunchTemplateHttpTokensState::from(m.http_tokens.as_str()))
                    // Karpenter's own tags (kubernetes.io/cluster/...) are not valid IMDS tag names.
                    .instance_metadata_tags(LaunchTemplateInstanceMetadataTagsState::Disabled)
                    .build(),
            )
            .set_block_device_mappings(Some(bdms))
            .monitoring(LaunchTemplatesMonitoringRequest::builder().enabled(spec.detailed_monitoring).build())
            .tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::NetworkInterface)
                    .set_tags(Some(tags(&all_tags)))
                    .build(),
            )
            .build();
        let res = self
            .ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(data)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(tags(&all_tags)))
                    .build(),
            )
            .send()
            .await;
        match res {
            Ok(out) => {
                let id = out.launch_template().and_then(|l| l.launch_template_id()).unwrap_or_default();
                info!(launch_template = %name, id, nodeclass = %spec.nodeclass_name, "created launch template");
                Ok(())
            }
            // Another writer won the race: same name, same content.
            Err(e)
                if e.as_service_error().and_then(|s| s.meta().code())
                    == Some("InvalidLaunchTemplateName.AlreadyExistsException") =>
            {
                Ok(())
            }
            Err(e) => Err(CloudError::api("CreateLaunchTemplate", e)),
        }
    }

    /// Forget a name (EC2 said it is gone); the next `ensure` checks EC2 again.
    pub fn invalidate(&self, name: &str) {
        self.known.remove(&name.to_owned());
    }

    /// Deletes every template of a NodeClass (on NodeClass deletion); returns their names.
    pub async fn delete_all_for_nodeclass(&self, cluster: &str, nodeclass: &str) -> Result<Vec<String>, CloudError> {
        let pages = self
            .ec2
            .describe_launch_templates()
            .filters(Filter::builder().name(format!("tag:{TAG_EKS_CLUSTER}")).values(cluster).build())
            .filters(Filter::builder().name(format!("tag:{TAG_NODECLASS}")).values(nodeclass).build())
            .max_results(200)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| CloudError::api("DescribeLaunchTemplates", e))?;
        let names: Vec<String> = pages
            .iter()
            .flat_map(|p| p.launch_templates())
            .filter_map(|lt| lt.launch_template_name().map(str::to_owned))
            .collect();
        for name in &names {
            self.invalidate(name);
            match self.ec2.delete_launch_template().launch_template_name(name).send().await {
                Ok(_) => info!(launch_template = %name, nodeclass, "deleted launch template"),
                Err(e)
                    if e.as_service_error().and_then(|s| s.meta().code()) == Some(LAUNCH_TEMPLATE_NAME_NOT_FOUND) => {}
                Err(e) => return Err(CloudError::api("DeleteLaunchTemplate", e)),
            }
        }
        Ok(names)
    }
}
