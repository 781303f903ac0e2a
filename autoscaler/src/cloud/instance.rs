//! Reading, listing, tagging and terminating the instances the autoscaler launched
//! (aws/karpenter-provider-aws `pkg/providers/instance`, `pkg/providers/instancestatus`).

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, Tag};
use chrono::{DateTime, Utc};
use tracing::{debug, info};

use super::errors::{CloudError, is_not_found_code};
use super::fleet::{TAG_EKS_CLUSTER, TAG_NODECLASS, TAG_NODEPOOL, provider_id};
use crate::scheduling::CapacityType;

/// Every state but `terminated`: what "the instance still exists" means.
pub const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    pub zone: String,
    pub state: String,
    pub capacity_type: CapacityType,
    pub image_id: String,
    pub subnet_id: String,
    pub private_dns_name: String,
    pub tags: BTreeMap<String, String>,
    pub launch_time: Option<DateTime<Utc>>,
    pub provider_id: String,
}

impl Instance {
    fn from_sdk(i: &aws_sdk_ec2::types::Instance) -> Option<Self> {
        let id = i.instance_id()?.to_owned();
        let zone = i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_owned();
        Some(Self {
            provider_id: provider_id(&zone, &id),
            instance_type: i.instance_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
            // What Karpenter trusts: a spot request id, not the lifecycle field.
            capacity_type: if i.spot_instance_request_id().is_some() {
                CapacityType::Spot
            } else {
                CapacityType::OnDemand
            },
            image_id: i.image_id().unwrap_or_default().to_owned(),
            subnet_id: i.subnet_id().unwrap_or_default().to_owned(),
            private_dns_name: i.private_dns_name().unwrap_or_default().to_owned(),
            tags: i
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect(),
            launch_time: i.launch_time().and_then(|t| DateTime::from_timestamp_millis(t.to_millis().ok()?)),
            id,
            zone,
        })
    }
}

/// The instance id of an `aws:///<zone>/<id>` providerID.
pub fn instance_id_from_provider_id(provider_id: &str) -> Option<&str> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    id.starts_with("i-").then_some(id)
}

/// What DescribeInstanceStatus says is wrong with an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnhealthyInstance {
    pub id: String,
    pub instance_status_impaired: bool,
    pub system_status_impaired: bool,
    /// The earliest `ImpairedSince` of the failed checks, when EC2 says.
    pub impaired_since: Option<DateTime<Utc>>,
    /// Scheduled event codes (`instance-retirement`, `system-reboot`, ...).
    pub scheduled_events: Vec<String>,
}

fn filter(name: &str, values: &[&str]) -> Filter {
    values.iter().fold(Filter::builder().name(name), |b, v| b.values(*v)).build()
}

#[derive(Debug, Clone)]
pub struct InstanceProvider {
    ec2: aws_sdk_ec2::Client,
}

impl InstanceProvider {
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2 }
    }

    /// The instance if it still exists; `NotFound` once it is terminated or unknown.
    pub async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        let res = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .filters(filter("instance-state-name", &LIVE_STATES))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) if e.code().is_some_and(is_not_found_code) => {
                return Err(CloudError::NotFound {
                    what: format!("instance {id}"),
                    message: e.message().unwrap_or_default().to_owned(),
                });
            }
            Err(e) => return Err(CloudError::api("DescribeInstances", e)),
        };
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(Instance::from_sdk)
            .find(|i| i.id == id)
            .ok_or_else(|| CloudError::NotFound {
                what: format!("instance {id}"),
                message: "instance terminated".into(),
            })
    }

    /// Every live instance this cluster's autoscaler launched (for garbage collection).
    pub async fn list_cluster_instances(&self, cluster: &str) -> Result<Vec<Instance>, CloudError> {
        let pages = self
            .ec2
            .describe_instances()
            .filters(filter("tag-key", &[TAG_NODEPOOL]))
            .filters(filter("tag-key", &[TAG_NODECLASS]))
            .filters(filter(&format!("tag:{TAG_EKS_CLUSTER}"), &[cluster]))
            .filters(filter("instance-state-name", &LIVE_STATES))
            .max_results(1000)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| CloudError::api("DescribeInstances", e))?;
        let mut by_id = BTreeMap::new();
        for i in pages.iter().flat_map(|p| p.reservations()).flat_map(|r| r.instances()).filter_map(Instance::from_sdk)
        {
            by_id.insert(i.id.clone(), i);
        }
        Ok(by_id.into_values().collect())
    }

    /// Terminates the ids not already on their way out; returns the ids asked to terminate.
    /// Unknown or terminated ids are not an error (the instance is gone either way).
    pub async fn terminate(&self, ids: &[String]) -> Result<Vec<String>, CloudError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        // One describe for all of them; a filter, unlike InstanceIds, does not fail on unknown ids.
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let pages = self
            .ec2
            .describe_instances()
            .filters(filter("instance-id", &id_refs))
            .filters(filter("instance-state-name", &LIVE_STATES))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| CloudError::api("DescribeInstances", e))?;
        let live: Vec<String> = pages
            .iter()
            .flat_map(|p| p.reservations())
            .flat_map(|r| r.instances())
            .filter_map(Instance::from_sdk)
            .filter(|i| {
                let going = i.state == "shutting-down";
                if going {
                    debug!(instance_id = %i.id, "already shutting down");
                }
                !going
            })
            .map(|i| i.id)
            .collect();
        if live.is_empty() {
            return Ok(live);
        }
        match self.ec2.terminate_instances().set_instance_ids(Some(live.clone())).send().await {
            Ok(_) => {
                info!(instance_ids = ?live, "terminating instances");
                Ok(live)
            }
            Err(e) if e.code().is_some_and(is_not_found_code) => Ok(vec![]),
            Err(e) => Err(CloudError::api("TerminateInstances", e)),
        }
    }

    pub async fn create_tags(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        match self.ec2.create_tags().resources(id).set_tags(Some(tags)).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code().is_some_and(is_not_found_code) => Err(CloudError::NotFound {
                what: format!("instance {id}"),
                message: e.message().unwrap_or_default().to_owned(),
            }),
            Err(e) => Err(CloudError::api("CreateTags", e)),
        }
    }

    /// Instances with impaired status checks or scheduled events: Karpenter's three queries.
    pub async fn describe_unhealthy(&self) -> Result<Vec<UnhealthyInstance>, CloudError> {
        let queries = [
            filter("instance-status.status", &["impaired"]),
            filter("system-status.status", &["impaired"]),
            filter(
                "event.code",
                &["instance-reboot", "system-reboot", "system-maintenance", "instance-retirement", "instance-stop"],
            ),
        ];
        let mut found: BTreeMap<String, UnhealthyInstance> = BTreeMap::new();
        for f in queries {
            let pages = self
                .ec2
                .describe_instance_status()
                .filters(f)
                .include_all_instances(true)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| CloudError::api("DescribeInstanceStatus", e))?;
            for s in pages.iter().flat_map(|p| p.instance_statuses()) {
                let Some(id) = s.instance_id() else { continue };
                let impaired = |x: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    x.and_then(|x| x.status()).is_some_and(|st| st.as_str() == "impaired")
                };
                let entry = found
                    .entry(id.to_owned())
                    .or_insert_with(|| UnhealthyInstance { id: id.to_owned(), ..Default::default() });
                entry.instance_status_impaired |= impaired(s.instance_status());
                entry.system_status_impaired |= impaired(s.system_status());
                let since = [s.instance_status(), s.system_status()]
                    .into_iter()
                    .flatten()
                    .flat_map(|x| x.details())
                    .filter_map(|d| d.impaired_since())
                    .filter_map(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
                    .min();
                if let Some(since) = since {
                    entry.impaired_since = Some(entry.impaired_since.map_or(since, |e| e.min(since)));
                }
                for ev in s.events() {
                    if let Some(code) = ev.code().map(|c| c.as_str().to_owned())
                        && !entry.scheduled_events.contains(&code)
                    {
                        entry.scheduled_events.push(code);
                    }
                }
            }
        }
        Ok(found.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::instance_id_from_provider_id;

    #[test]
    fn provider_ids() {
        assert_eq!(instance_id_from_provider_id("aws:///us-west-2a/i-0123"), Some("i-0123"));
        assert_eq!(instance_id_from_provider_id("aws:///us-west-2a/"), None);
        assert_eq!(instance_id_from_provider_id("kwok://node"), None);
    }
}
