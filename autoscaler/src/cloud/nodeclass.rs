//! Resolving an EC2NodeClass's selector terms to subnets, security groups and AMIs
//! (aws/karpenter-provider-aws `pkg/providers/{subnet,securitygroup,amifamily}`).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use tracing::debug;

use super::ami_family::Alias;
use super::errors::CloudError;
use crate::scheduling::{Requirement, Requirements, labels};

/// One `*SelectorTerms` entry. Within a term every field must match; terms are ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectorTerm {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `"*"` as a value matches any value of the key.
    pub tags: BTreeMap<String, String>,
    pub owner: Option<String>,
    /// AMI family alias: `al2023@latest`, `al2@v20251120`, `bottlerocket@v1.50.0`.
    pub alias: Option<String>,
}

impl SelectorTerm {
    pub fn tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { tags: tags.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(), ..Self::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
    pub zone_id: String,
    pub available_ips: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ami {
    pub id: String,
    pub name: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// RFC 3339, as EC2 reports it.
    pub creation_date: String,
    pub deprecated: bool,
    /// What an instance type must meet to use this image: its architecture, and for an alias's
    /// images the variant's accelerator requirements.
    pub requirements: Requirements,
}

fn filter(name: &str, values: &[&str]) -> Filter {
    values.iter().fold(Filter::builder().name(name), |b, v| b.values(*v)).build()
}

fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| if v == "*" { filter("tag-key", &[k]) } else { filter(&format!("tag:{k}"), &[v]) })
        .collect()
}

#[derive(Debug, Clone)]
pub struct NodeClassResolver {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
}

impl NodeClassResolver {
    pub fn new(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client) -> Self {
        Self { ec2, ssm }
    }

    /// One DescribeSubnets per term; the union, by id.
    pub async fn subnets(&self, terms: &[SelectorTerm]) -> Result<Vec<Subnet>, CloudError> {
        let mut found = BTreeMap::new();
        for term in terms {
            let mut filters = tag_filters(&term.tags);
            if let Some(id) = &term.id {
                filters.push(filter("subnet-id", &[id]));
            }
            let pages = self
                .ec2
                .describe_subnets()
                .set_filters(Some(filters))
                .max_results(500)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| CloudError::api("DescribeSubnets", e))?;
            for s in pages.iter().flat_map(|p| p.subnets()) {
                let Some(id) = s.subnet_id() else { continue };
                found.insert(
                    id.to_owned(),
                    Subnet {
                        id: id.to_owned(),
                        zone: s.availability_zone().unwrap_or_default().to_owned(),
                        zone_id: s.availability_zone_id().unwrap_or_default().to_owned(),
                        available_ips: s.available_ip_address_count().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                    },
                );
            }
        }
        if found.is_empty() {
            return Err(CloudError::NodeClassNotReady {
                condition: "SubnetsReady",
                reason: "SubnetsNotFound",
                message: "SubnetSelector did not match any Subnets".into(),
            });
        }
        debug!(subnets = ?found.keys().collect::<Vec<_>>(), "discovered subnets");
        Ok(found.into_values().collect())
    }

    pub async fn security_groups(&self, terms: &[SelectorTerm]) -> Result<Vec<SecurityGroup>, CloudError> {
        let mut found = BTreeMap::new();
        for term in terms {
            let mut filters = tag_filters(&term.tags);
            if let Some(id) = &term.id {
                filters.push(filter("group-id", &[id]));
            }
            if let Some(name) = &term.name {
                filters.push(filter("group-name", &[name]));
            }
            let pages = self
                .ec2
                .describe_security_groups()
                .set_filters(Some(filters))
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| CloudError::api("DescribeSecurityGroups", e))?;
            for g in pages.iter().flat_map(|p| p.security_groups()) {
                let Some(id) = g.group_id() else { continue };
                found.insert(
                    id.to_owned(),
                    SecurityGroup { id: id.to_owned(), name: g.group_name().unwrap_or_default().to_owned() },
                );
            }
        }
        if found.is_empty() {
            return Err(CloudError::NodeClassNotReady {
                condition: "SecurityGroupsReady",
                reason: "SecurityGroupsNotFound",
                message: "SecurityGroupSelector did not match any SecurityGroups".into(),
            });
        }
        Ok(found.into_values().collect())
    }

    /// Every AMI the terms select, newest first (ties by id). An alias reads its family's SSM
    /// parameters for `k8s_version` (`1.34`); its images carry the variant's requirements (no GPU
    /// for standard images, GPUs for NVIDIA ones), other images only their architecture.
    pub async fn amis(&self, terms: &[SelectorTerm], k8s_version: &str) -> Result<Vec<Ami>, CloudError> {
        let mut found: BTreeMap<(String, String), Ami> = BTreeMap::new();
        for term in terms {
            let mut req = self.ec2.describe_images().include_deprecated(true).max_results(1000);
            let mut filters = vec![filter("state", &["available"])];
            let mut known: BTreeMap<String, Vec<Requirements>> = BTreeMap::new();
            if let Some(alias) = &term.alias {
                for (id, reqs) in self.resolve_alias(alias, k8s_version).await? {
                    known.entry(id).or_default().push(reqs);
                }
                let ids: Vec<&str> = known.keys().map(String::as_str).collect();
                filters.push(filter("image-id", &ids));
            } else if let Some(id) = &term.id {
                filters.push(filter("image-id", &[id]));
            } else {
                filters.extend(tag_filters(&term.tags));
                if let Some(name) = &term.name {
                    filters.push(filter("name", &[name]));
                    // Only the caller's and Amazon's images unless an owner is named, so a public
                    // image with a matching name cannot slip in.
                    if term.owner.is_none() {
                        req = req.owners("self").owners("amazon");
                    }
                }
                if let Some(owner) = &term.owner {
                    req = req.owners(owner);
                }
            }
            let pages = req
                .set_filters(Some(filters))
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| CloudError::api("DescribeImages", e))?;
            for i in pages.iter().flat_map(|p| p.images()) {
                let (Some(id), Some(arch)) = (i.image_id(), i.architecture()) else { continue };
                let arch = match arch.as_str() {
                    "x86_64" => "amd64",
                    "arm64" => "arm64",
                    _ => continue,
                };
                let by_arch = Requirements::new().with(labels::ARCH, Requirement::in_values([arch]));
                // One entry per variant an image serves (AL2's GPU image serves NVIDIA and Neuron).
                let variants = known.get(id).cloned().unwrap_or_else(|| vec![by_arch.clone()]);
                for mut requirements in variants {
                    requirements.add_all(&by_arch);
                    let ami = Ami {
                        id: id.to_owned(),
                        name: i.name().unwrap_or_default().to_owned(),
                        arch: arch.to_owned(),
                        creation_date: i.creation_date().unwrap_or_default().to_owned(),
                        deprecated: i.deprecation_time().is_some_and(|t| !t.is_empty()),
                        requirements,
                    };
                    found.insert((id.to_owned(), format!("{:?}", ami.requirements)), ami);
                }
            }
        }
        if found.is_empty() {
            return Err(CloudError::NodeClassNotReady {
                condition: "AMIsReady",
                reason: "AMINotFound",
                message: "AMISelector did not match any AMIs".into(),
            });
        }
        let mut amis: Vec<Ami> = found.into_values().collect();
        amis.sort_by(|a, b| b.creation_date.cmp(&a.creation_date).then_with(|| a.id.cmp(&b.id)));
        Ok(amis)
    }

    /// The image ids an `<family>@<version>` alias names, each with the requirements of the
    /// variant whose SSM parameter named it.
    pub async fn resolve_alias(
        &self,
        alias: &str,
        k8s_version: &str,
    ) -> Result<Vec<(String, Requirements)>, CloudError> {
        let not_ready =
            |message: String| CloudError::NodeClassNotReady { condition: "AMIsReady", reason: "AMINotFound", message };
        let parsed = Alias::parse(alias).map_err(|e| not_ready(e.to_string()))?;
        parsed.check_supported(k8s_version).map_err(|e| not_ready(e.to_string()))?;
        let mut out = Vec::new();
        for param in parsed.family.alias_parameters(k8s_version, &parsed.version) {
            match self.ssm.get_parameter().name(&param.name).send().await {
                Ok(res) => {
                    if let Some(v) = res.parameter().and_then(|p| p.value()) {
                        out.push((v.to_owned(), param.requirements));
                    }
                }
                // Some variants are missing in some regions and versions; the set as a whole
                // must not be empty.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => {
                    debug!(path = %param.name, error = %aws_sdk_ssm::error::DisplayErrorContext(&e), "no AMI parameter")
                }
                // Anything else (SSM unreachable, throttling) says nothing about the variant: a
                // set resolved without it would be cached as whole and leave its types out.
                Err(e) => return Err(CloudError::api("GetParameter", e)),
            }
        }
        if out.is_empty() {
            return Err(not_ready(format!("failed to discover any AMIs for alias {alias}")));
        }
        debug!(alias, family = %parsed.family, images = out.len(), "resolved AMI alias");
        Ok(out)
    }
}

/// The image an instance type launches with (Karpenter's `MapToInstanceTypes`): the newest AMI
/// whose requirements the type meets, a deprecated one only when no other fits. `amis` is newest
/// first, as [`NodeClassResolver::amis`] returns it.
pub fn image_for<'a>(type_requirements: &Requirements, amis: &'a [Ami]) -> Option<&'a Ami> {
    [false, true].into_iter().find_map(|deprecated| {
        amis.iter().find(|a| a.deprecated == deprecated && type_requirements.intersects(&a.requirements).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ami_family::AmiFamily;

    fn ami(id: &str, date: &str, deprecated: bool, requirements: Requirements) -> Ami {
        Ami {
            id: id.into(),
            name: id.into(),
            arch: "amd64".into(),
            creation_date: date.into(),
            deprecated,
            requirements,
        }
    }

    #[test]
    fn types_get_the_newest_image_of_their_variant() {
        let params = AmiFamily::Al2023.alias_parameters("1.34", "latest");
        let amis = [
            ami("ami-nvidia", "2025-11-20", false, params[1].requirements.clone()),
            ami("ami-std-new", "2025-11-20", true, params[0].requirements.clone()),
            ami("ami-std", "2025-10-01", false, params[0].requirements.clone()),
        ];
        let amd64 = Requirements::new().with(labels::ARCH, Requirement::in_values(["amd64"]));
        let cpu = amd64.clone().with(labels::INSTANCE_GPU_COUNT, Requirement::does_not_exist());
        let gpu = amd64.with(labels::INSTANCE_GPU_COUNT, Requirement::in_values(["1"]));
        let arm = Requirements::new().with(labels::ARCH, Requirement::in_values(["arm64"]));
        assert_eq!(image_for(&cpu, &amis).map(|a| a.id.as_str()), Some("ami-std"));
        assert_eq!(image_for(&gpu, &amis).map(|a| a.id.as_str()), Some("ami-nvidia"));
        assert_eq!(image_for(&arm, &amis), None);
        // Only deprecated images left: they are used.
        assert_eq!(image_for(&cpu, &amis[..2]).map(|a| a.id.as_str()), Some("ami-std-new"));
    }
}
