//! AMI families as Karpenter knows them (aws/karpenter-provider-aws `pkg/providers/amifamily`):
//! the family a NodeClass launches with, the SSM parameters an alias reads (one per architecture
//! and variant, each with the requirements an instance type must meet to use that image), the
//! default block devices, and the user data format. Pure: [`super::nodeclass`] does the calls.

use std::fmt;

use super::launch_template::BlockDeviceMapping;
use crate::scheduling::{Requirement, Requirements, labels};

/// `amiFamily` values Karpenter supports for Linux nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AmiFamily {
    Al2,
    Al2023,
    Bottlerocket,
    /// The user's own AMI and user data, passed through untouched.
    Custom,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmiFamilyError {
    #[error("unsupported amiFamily {0:?}: expected AL2, AL2023, Bottlerocket or Custom")]
    UnknownFamily(String),
    #[error("malformed AMI alias {0:?}: expected <family>@<version>, e.g. al2023@latest")]
    MalformedAlias(String),
    #[error("unsupported AMI alias family {0:?}: expected al2, al2023 or bottlerocket")]
    UnknownAliasFamily(String),
    /// Karpenter's own words: EKS publishes no AL2 images from 1.33 on.
    #[error(
        "AL2 aliases are no longer supported on EKS 1.33+ (see https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions-standard.html#kubernetes-1-33)"
    )]
    Al2AliasUnsupported,
}

impl AmiFamily {
    pub const ALL: [AmiFamily; 4] = [AmiFamily::Al2, AmiFamily::Al2023, AmiFamily::Bottlerocket, AmiFamily::Custom];

    /// The `amiFamily` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AmiFamily::Al2 => "AL2",
            AmiFamily::Al2023 => "AL2023",
            AmiFamily::Bottlerocket => "Bottlerocket",
            AmiFamily::Custom => "Custom",
        }
    }

    pub fn parse(s: &str) -> Result<Self, AmiFamilyError> {
        Self::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| AmiFamilyError::UnknownFamily(s.to_owned()))
    }

    /// The format Karpenter writes user data in; `Custom` writes none of its own.
    pub fn user_data_format(self) -> Option<userdata::Family> {
        match self {
            AmiFamily::Al2 => Some(userdata::Family::Al2),
            AmiFamily::Al2023 => Some(userdata::Family::Al2023),
            AmiFamily::Bottlerocket => Some(userdata::Family::Bottlerocket),
            AmiFamily::Custom => None,
        }
    }

    /// Block devices when the NodeClass names none. Bottlerocket keeps the OS on a small root
    /// volume and containers on a data volume; Custom leaves the choice to the AMI.
    pub fn default_block_devices(self) -> Vec<BlockDeviceMapping> {
        let gp3 = |device: &str, gib: i32| BlockDeviceMapping {
            device_name: device.to_owned(),
            volume_size_gib: Some(gib),
            volume_type: Some("gp3".into()),
            iops: None,
            throughput: None,
            encrypted: Some(true),
            delete_on_termination: Some(true),
        };
        match self {
            AmiFamily::Al2 | AmiFamily::Al2023 => vec![gp3("/dev/xvda", 20)],
            AmiFamily::Bottlerocket => vec![gp3("/dev/xvda", 4), gp3("/dev/xvdb", 20)],
            AmiFamily::Custom => vec![],
        }
    }

    /// The device whose size is the node's ephemeral storage (Bottlerocket: the data volume).
    pub fn ephemeral_device(self) -> &'static str {
        match self {
            AmiFamily::Bottlerocket => "/dev/xvdb",
            _ => "/dev/xvda",
        }
    }

    /// The SSM parameters an `<family>@<version>` alias reads for Kubernetes `k8s` (`1.34`).
    /// `Custom` has no alias.
    pub fn alias_parameters(self, k8s: &str, version: &str) -> Vec<AliasParameter> {
        let mut out = Vec::new();
        let mut push = |name: String, arch: &str, variant: Variant| {
            out.push(AliasParameter { name, requirements: variant.requirements(arch) });
        };
        match self {
            AmiFamily::Al2023 => {
                for (arch, variants) in [
                    ("x86_64", &[Variant::Standard, Variant::Nvidia, Variant::Neuron][..]),
                    ("arm64", &[Variant::Standard, Variant::Nvidia][..]),
                ] {
                    for v in variants {
                        let variant = v.as_str();
                        let seg = if version == LATEST {
                            "recommended".to_owned()
                        } else {
                            format!("amazon-eks-node-al2023-{arch}-{variant}-{k8s}-{version}")
                        };
                        push(format!("{EKS}/{k8s}/amazon-linux-2023/{arch}/{variant}/{seg}/image_id"), arch, *v);
                    }
                }
            }
            AmiFamily::Al2 => {
                // One GPU image serves both NVIDIA and Neuron (Inferentia) types.
                for (suffix, arch, v) in [
                    ("", "x86_64", Variant::Standard),
                    ("-gpu", "x86_64", Variant::Nvidia),
                    ("-gpu", "x86_64", Variant::Neuron),
                    ("-arm64", "arm64", Variant::Standard),
                ] {
                    let seg = if version == LATEST {
                        "recommended".to_owned()
                    } else {
                        format!("amazon-eks{suffix}-node-{k8s}-{version}")
                    };
                    push(format!("{EKS}/{k8s}/amazon-linux-2{suffix}/{seg}/image_id"), arch, v);
                }
            }
            AmiFamily::Bottlerocket => {
                // Bottlerocket pins by its own release (`v1.50.0` → `1.50.0`).
                let seg = version.strip_prefix('v').unwrap_or(version);
                for arch in ["x86_64", "arm64"] {
                    for (flavour, v) in [("", Variant::Standard), ("-nvidia", Variant::Nvidia)] {
                        push(format!("{BOTTLEROCKET}/aws-k8s-{k8s}{flavour}/{arch}/{seg}/image_id"), arch, v);
                    }
                }
            }
            AmiFamily::Custom => {}
        }
        out
    }
}

impl fmt::Display for AmiFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const EKS: &str = "/aws/service/eks/optimized-ami";
const BOTTLEROCKET: &str = "/aws/service/bottlerocket";
const LATEST: &str = "latest";

/// One SSM parameter an alias reads, and what an instance type needs to use its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasParameter {
    pub name: String,
    pub requirements: Requirements,
}

/// Karpenter's image variants: standard images must not land on accelerated types, and the
/// accelerated images only on types with that accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Standard,
    Nvidia,
    Neuron,
}

impl Variant {
    fn as_str(self) -> &'static str {
        match self {
            Variant::Standard => "standard",
            Variant::Nvidia => "nvidia",
            Variant::Neuron => "neuron",
        }
    }

    fn requirements(self, ec2_arch: &str) -> Requirements {
        let r = Requirements::new().with(labels::ARCH, Requirement::in_values([kube_arch(ec2_arch)]));
        match self {
            Variant::Standard => r
                .with(labels::INSTANCE_GPU_COUNT, Requirement::does_not_exist())
                .with(labels::INSTANCE_ACCELERATOR_COUNT, Requirement::does_not_exist()),
            Variant::Nvidia => r.with(labels::INSTANCE_GPU_COUNT, Requirement::exists()),
            Variant::Neuron => r.with(labels::INSTANCE_ACCELERATOR_COUNT, Requirement::exists()),
        }
    }
}

/// EC2's architecture names as Kubernetes spells them.
pub fn kube_arch(ec2_arch: &str) -> &str {
    match ec2_arch {
        "x86_64" => "amd64",
        other => other,
    }
}

/// An `amiSelectorTerms[].alias`: `al2023@latest`, `bottlerocket@v1.50.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub family: AmiFamily,
    pub version: String,
}

impl Alias {
    pub fn parse(alias: &str) -> Result<Self, AmiFamilyError> {
        let (family, version) =
            alias.split_once('@').ok_or_else(|| AmiFamilyError::MalformedAlias(alias.to_owned()))?;
        if family.is_empty() || version.is_empty() {
            return Err(AmiFamilyError::MalformedAlias(alias.to_owned()));
        }
        let family = match family.to_ascii_lowercase().as_str() {
            "al2" => AmiFamily::Al2,
            "al2023" => AmiFamily::Al2023,
            "bottlerocket" => AmiFamily::Bottlerocket,
            _ => return Err(AmiFamilyError::UnknownAliasFamily(family.to_owned())),
        };
        Ok(Alias { family, version: version.to_owned() })
    }

    /// Whether the alias can be used on Kubernetes `k8s` (`1.34`): as Karpenter, `al2@` is refused
    /// from 1.33 on (an `amiFamily: AL2` class may still select AL2 images by name, id or tags).
    pub fn check_supported(&self, k8s: &str) -> Result<(), AmiFamilyError> {
        let minor = k8s.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
        let modern = k8s.starts_with("1.") && minor.is_some_and(|m| m >= 33);
        if self.family == AmiFamily::Al2 && modern { Err(AmiFamilyError::Al2AliasUnsupported) } else { Ok(()) }
    }
}

/// Karpenter's `EC2NodeClass.AMIFamily()`: `amiFamily` when set, else the alias's family, else
/// Custom (validation requires one of the two).
pub fn nodeclass_family<'a>(
    ami_family: Option<&str>,
    aliases: impl IntoIterator<Item = &'a str>,
) -> Result<AmiFamily, AmiFamilyError> {
    if let Some(f) = ami_family {
        return AmiFamily::parse(f);
    }
    match aliases.into_iter().next() {
        Some(a) => Alias::parse(a).map(|a| a.family),
        None => Ok(AmiFamily::Custom),
    }
}

#[cfg(test)]
mod tests;
