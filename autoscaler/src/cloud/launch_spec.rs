//! What goes into a NodeClaim's launch template, from its EC2NodeClass and NodePool: the user
//! data the node registers with (labels, taints, kubelet settings), block devices, instance
//! metadata options, instance profile and tags. Pure; [`super::launch_template`] writes it to EC2.
//! The user data is in the class's AMI family's format, rendered by the `userdata` crate as
//! Karpenter renders it.

use std::net::Ipv4Addr;

use base64::Engine as _;
use kube::ResourceExt;

use super::ami_family::{AmiFamily, nodeclass_family};
use super::errors::CloudError;
use super::launch_template::{BlockDeviceMapping, LaunchTemplateSpec, MetadataOptions};
use crate::apis::ec2nodeclass::{EC2NodeClassSpec, KubeletConfiguration};
use crate::apis::labels as l;
use crate::apis::{EC2NodeClass, NodeClaim};
use crate::scheduling::parse_quantity;

/// What the nodes' user data needs to join the cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterInfo {
    pub name: String,
    pub endpoint: String,
    pub ca_bundle: String,
    pub cidr: String,
    /// `1.34`: picks the AMI alias's SSM parameter.
    pub kubernetes_version: String,
    /// The kube-dns service IP nodes resolve through (Karpenter's `KubeDNSIP`), unless the
    /// class's kubelet names `clusterDNS`.
    pub dns_ip: Option<String>,
}

/// The DNS service IP EKS gives a cluster: the tenth address of its IPv4 service CIDR
/// (`10.100.0.0/16` → `10.100.0.10`). Used when no kube-dns service can be read.
pub fn dns_ip_from_cidr(cidr: &str) -> Option<String> {
    let (addr, _) = cidr.split_once('/')?;
    let base: Ipv4Addr = addr.parse().ok()?;
    Some(Ipv4Addr::from(u32::from(base).checked_add(10)?).to_string())
}

/// The AMI family a class launches with (see [`nodeclass_family`]).
pub fn family_of(class: &EC2NodeClass) -> Result<AmiFamily, CloudError> {
    let aliases = class.spec.ami_selector_terms.iter().filter_map(|t| t.alias.as_deref());
    nodeclass_family(class.spec.ami_family.as_deref(), aliases).map_err(|e| CloudError::Invalid(e.to_string()))
}

/// The launch template for one AMI of the claim's class. `pool_kubelet` is a v1beta1 NodePool's
/// kubelet block, used when the class has none.
pub fn launch_template_spec(
    cluster: &ClusterInfo,
    claim: &NodeClaim,
    class: &EC2NodeClass,
    pool_kubelet: Option<&KubeletConfiguration>,
    image_id: &str,
    security_group_ids: Vec<String>,
) -> Result<LaunchTemplateSpec, CloudError> {
    let spec = &class.spec;
    let family = family_of(class)?;
    let registration = registration(cluster, claim, spec.kubelet.clone().or_else(|| pool_kubelet.cloned()));
    let custom = spec.user_data.as_deref();
    let user_data = match family.user_data_format() {
        Some(format) => userdata::render_base64(format, &registration, custom)
            .map_err(|e| CloudError::Invalid(format!("rendering {family} user data: {e}")))?,
        // Custom: the class's user data is all the node gets.
        None => base64::engine::general_purpose::STANDARD.encode(custom.unwrap_or_default()),
    };
    Ok(LaunchTemplateSpec {
        cluster_name: cluster.name.clone(),
        nodeclass_name: class.name_any(),
        image_id: image_id.to_owned(),
        user_data,
        security_group_ids,
        instance_profile: spec
            .instance_profile
            .clone()
            .unwrap_or_else(|| format!("{}_{}", cluster.name, class.name_any())),
        metadata_options: metadata_options(spec),
        block_device_mappings: block_device_mappings(spec, family),
        detailed_monitoring: spec.detailed_monitoring.unwrap_or(false),
        tags: spec.tags.clone(),
    })
}

/// The user data: the claim's labels and taints (startup taints included) plus
/// `karpenter.sh/unregistered`, and the kubelet settings.
fn registration(
    cluster: &ClusterInfo,
    claim: &NodeClaim,
    kubelet: Option<KubeletConfiguration>,
) -> userdata::NodeRegistration {
    let kubelet = kubelet.unwrap_or_default();
    let mut taints: Vec<userdata::Taint> = claim
        .spec
        .taints
        .iter()
        .chain(claim.spec.startup_taints.iter())
        .map(|t| userdata::Taint { key: t.key.clone(), value: t.value.clone(), effect: t.effect.clone() })
        .collect();
    // Karpenter registers nodes with this taint and removes it once it has synced the Node.
    taints.push(userdata::Taint { key: l::UNREGISTERED_TAINT.to_owned(), value: None, effect: "NoExecute".to_owned() });
    userdata::NodeRegistration {
        cluster: userdata::Cluster {
            name: cluster.name.clone(),
            api_server_endpoint: cluster.endpoint.clone(),
            certificate_authority: cluster.ca_bundle.clone(),
            cidr: cluster.cidr.clone(),
        },
        labels: claim.labels().clone(),
        taints,
        max_pods: kubelet.max_pods.and_then(|m| u32::try_from(m).ok()),
        kube_reserved: kubelet.kube_reserved.unwrap_or_default(),
        system_reserved: kubelet.system_reserved.unwrap_or_default(),
        eviction_hard: kubelet.eviction_hard.unwrap_or_default(),
        cluster_dns: kubelet.cluster_dns.unwrap_or_else(|| cluster.dns_ip.iter().cloned().collect()),
    }
}

/// The class's `metadataOptions`, each field defaulting to Karpenter's.
fn metadata_options(spec: &EC2NodeClassSpec) -> MetadataOptions {
    let d = MetadataOptions::default();
    let Some(m) = spec.metadata_options.as_ref() else { return d };
    MetadataOptions {
        http_endpoint: m.http_endpoint.clone().unwrap_or(d.http_endpoint),
        http_protocol_ipv6: m.http_protocol_ipv6.clone().unwrap_or(d.http_protocol_ipv6),
        http_put_response_hop_limit: m
            .http_put_response_hop_limit
            .and_then(|h| i32::try_from(h).ok())
            .unwrap_or(d.http_put_response_hop_limit),
        http_tokens: m.http_tokens.clone().unwrap_or(d.http_tokens),
    }
}

/// The class's block devices, or its family's defaults when it names none.
fn block_device_mappings(spec: &EC2NodeClassSpec, family: AmiFamily) -> Vec<BlockDeviceMapping> {
    if spec.block_device_mappings.is_empty() {
        return family.default_block_devices();
    }
    spec.block_device_mappings
        .iter()
        .map(|b| {
            let ebs = b.ebs.clone().unwrap_or_default();
            BlockDeviceMapping {
                device_name: b.device_name.clone().unwrap_or_else(|| "/dev/xvda".to_owned()),
                volume_size_gib: ebs
                    .volume_size
                    .as_deref()
                    .and_then(|q| parse_quantity(q).ok())
                    .map(|milli| i32::try_from(milli / 1000 / (1 << 30)).unwrap_or(20).max(1)),
                volume_type: ebs.volume_type.clone(),
                iops: ebs.iops.and_then(|v| i32::try_from(v).ok()),
                throughput: ebs.throughput.and_then(|v| i32::try_from(v).ok()),
                encrypted: ebs.encrypted,
                delete_on_termination: ebs.delete_on_termination,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
