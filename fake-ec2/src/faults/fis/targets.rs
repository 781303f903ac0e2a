//! Target resolution: which resources a template target names now, and which of them the
//! selection mode takes (drawn from the world's `fis` stream, so the same seed and requests hit
//! the same instances).

use std::collections::BTreeSet;

use rand::seq::SliceRandom;

use super::Lab;
use super::template::{ROLE, SPOT_INSTANCE, Selection, Target, instance_of_arn};
use crate::world::instances::Instance;
use crate::world::pools::CapacityType;

/// An instance's value at a DescribeInstances path, for target filters.
pub fn attribute(i: &Instance, path: &str) -> Option<String> {
    Some(match path {
        "State.Name" => i.state.name().to_owned(),
        "Placement.AvailabilityZone" => i.zone.clone(),
        "InstanceType" => i.instance_type.clone(),
        "InstanceId" => i.id.clone(),
        "ImageId" => i.image_id.clone(),
        "SubnetId" => i.subnet_id.clone(),
        "VpcId" => i.vpc_id.clone(),
        "Architecture" => i.architecture.clone(),
        "InstanceLifecycle" if i.capacity_type == CapacityType::Spot => "spot".to_owned(),
        "PrivateIpAddress" => i.private_ip.to_string(),
        "PrivateDnsName" => i.private_dns_name.clone(),
        "SpotInstanceRequestId" => i.spot_instance_request_id.clone()?,
        "KeyName" => i.key_name.clone()?,
        _ => return None,
    })
}

fn matches(t: &Target, i: &Instance, arns: &BTreeSet<&str>) -> bool {
    // Instances on their way out are gone as far as FIS is concerned.
    if i.state.is_terminating_or_terminated() {
        return false;
    }
    if t.resource_type == SPOT_INSTANCE && i.capacity_type != CapacityType::Spot {
        return false;
    }
    if !arns.is_empty() && !arns.contains(i.id.as_str()) {
        return false;
    }
    if !t.resource_tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)) {
        return false;
    }
    t.filters.iter().all(|f| attribute(i, &f.path).is_some_and(|v| f.values.contains(&v)))
}

/// The resources a target resolves to now: instance ids (in launch order) or role ARNs.
pub fn resolve(t: &Target, lab: &mut dyn Lab) -> Vec<String> {
    let mut found: Vec<String> = if t.resource_type == ROLE {
        t.resource_arns.clone()
    } else {
        let w = lab.world();
        let arns: BTreeSet<&str> = t.resource_arns.iter().filter_map(|a| instance_of_arn(a, &w.cfg.region)).collect();
        w.instances.values().filter(|i| matches(t, i, &arns)).map(|i| i.id.clone()).collect()
    };
    let Some(sel) = Selection::parse(&t.selection_mode) else {
        return Vec::new();
    };
    let take = sel.take(found.len());
    if take < found.len() {
        // Draw only when choosing, so ALL never shifts the stream.
        let order: Vec<String> = found.clone();
        found.shuffle(&mut lab.rng().fis);
        found.truncate(take);
        found.sort_by_key(|id| order.iter().position(|x| x == id));
    }
    found
}
