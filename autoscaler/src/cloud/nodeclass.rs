//! Resolving an EC2NodeClass's selector terms to subnets, security groups and AMIs
//! (aws/karpenter-provider-aws `pkg/providers/{subnet,securitygroup,amifamily}`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use tracing::debug;

use super::errors::CloudError;

/// One `*SelectorTerms` entry. Within a term every field must match; terms are ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectorTerm {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `"*"` as a value matches any value of the key.
    pub tags: BTreeMap<String, String>,
    pub owner: Option<String>,
    /// AMI family alias, `al2023@latest` or `al2023@v20251120`.
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

    /// Every AMI the terms select, newest first (ties by id). `k8s_version` (`1.34`) picks the
    /// alias's SSM parameter.
    pub async fn amis(&self, terms: &[SelectorTerm], k8s_version: &str) -> Result<Vec<Ami>, CloudError> {
        let mut found: BTreeMap<String, Ami> = BTreeMap::new();
        for term in terms {
            let mut req = self.ec2.describe_images().include_deprecated(true).max_results(1000);
            let mut filters = vec![filter("state", &["available"])];
            if let Some(alias) = &term.alias {
                let ids = self.resolve_alias(alias, k8s_version).await?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
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
                let deprecated = i.deprecation_time().is_some_and(|t| !t.is_empty());
                found.insert(
                    id.to_owned(),
                    Ami {
                        id: id.to_owned(),
                        name: i.name().unwrap_or_default().to_owned(),
                        arch: arch.to_owned(),
                        creation_date: i.creation_date().unwrap_or_default().to_owned(),
                        deprecated,
                    },
                );
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

    /// The image ids an `al2023@<version>` alias names, per architecture, via SSM public parameters.
    pub async fn resolve_alias(&self, alias: &str, k8s_version: &str) -> Result<Vec<String>, CloudError> {
        let (family, version) = alias.split_once('@').unwrap_or((alias, "latest"));
        if !family.eq_ignore_ascii_case("al2023") {
            return Err(CloudError::NodeClassNotReady {
                condition: "AMIsReady",
                reason: "AMINotFound",
                message: format!("AMI alias family {family:?} is not supported (only al2023)"),
            });
        }
        let mut ids = BTreeSet::new();
        for arch in ["x86_64", "arm64"] {
            let path = al2023_parameter(k8s_version, arch, version);
            match self.ssm.get_parameter().name(&path).send().await {
                Ok(out) => {
                    if let Some(v) = out.parameter().and_then(|p| p.value()) {
                        ids.insert(v.to_owned());
                    }
                }
                // One architecture missing is normal; the set as a whole must not be empty.
                Err(e) => debug!(path, error = %aws_sdk_ssm::error::DisplayErrorContext(&e), "no AMI parameter"),
            }
        }
        if ids.is_empty() {
            return Err(CloudError::NodeClassNotReady {
                condition: "AMIsReady",
                reason: "AMINotFound",
                message: format!("failed to discover any AMIs for alias al2023@{version}"),
            });
        }
        Ok(ids.into_iter().collect())
    }
}

/// The SSM parameter of the EKS-optimized AL2023 standard AMI.
pub fn al2023_parameter(k8s_version: &str, arch: &str, version: &str) -> String {
    let name = if version == "latest" {
        "recommended".to_owned()
    } else {
        format!("amazon-eks-node-al2023-{arch}-standard-{k8s_version}-{version}")
    };
    format!("/aws/service/eks/optimized-ami/{k8s_version}/amazon-linux-2023/{arch}/standard/{name}/image_id")
}

/// The newest non-deprecated AMI per architecture (deprecated ones only when nothing else is left).
pub fn newest_per_arch(amis: &[Ami]) -> BTreeMap<String, Ami> {
    let mut out: BTreeMap<String, Ami> = BTreeMap::new();
    for deprecated in [false, true] {
        for a in amis.iter().filter(|a| a.deprecated == deprecated) {
            out.entry(a.arch.clone()).or_insert_with(|| a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_parameters() {
        assert_eq!(
            al2023_parameter("1.34", "x86_64", "latest"),
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id"
        );
        assert_eq!(
            al2023_parameter("1.34", "arm64", "v20251120"),
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/amazon-eks-node-al2023-arm64-standard-1.34-v20251120/image_id"
        );
    }
}
