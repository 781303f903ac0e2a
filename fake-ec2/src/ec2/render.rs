//! How instances look on the wire (`RunInstances`, `DescribeInstances`) and to filters.

use std::collections::BTreeMap;

use super::filters::{Filterable, boolean, many, one};
use crate::clock::iso;
use crate::world::World;
use crate::world::instances::Instance;
use crate::world::pools::CapacityType;
use crate::xml::XmlWriter;

/// Writes an instance's `<item>` body (an `Instance` shape in botocore's ec2 model).
pub fn instance(w: &mut XmlWriter, world: &World, i: &Instance) {
    // Formatted once: a 10k-instance listing would otherwise spend much of its time in chrono.
    let launched = iso(i.launch_time_on_wire());
    let ip = i.private_ip.to_string();
    w.elem("instanceId", &i.id).elem("imageId", &i.image_id);
    w.open("instanceState").num("code", i.state.code()).elem("name", i.state.name()).close();
    w.elem("privateDnsName", &i.private_dns_name).elem("dnsName", "");
    w.elem("reason", &i.state_transition_reason);
    w.opt("keyName", i.key_name.as_deref());
    w.num("amiLaunchIndex", i.ami_launch_index);
    w.open("productCodes").close();
    w.elem("instanceType", &i.instance_type);
    w.elem("launchTime", &launched);
    w.open("placement")
        .elem("availabilityZoneId", &i.zone_id)
        .elem("availabilityZone", &i.zone)
        .elem("groupName", "")
        .elem("tenancy", "default")
        .close();
    w.open("monitoring").elem("state", "disabled").close();
    w.elem("subnetId", &i.subnet_id).elem("vpcId", &i.vpc_id);
    w.elem("privateIpAddress", &ip);
    w.bool("sourceDestCheck", true);
    w.item_set("groupSet", &i.security_groups, |w, (id, name)| {
        w.elem("groupId", id).elem("groupName", name);
    });
    if let Some((code, message)) = &i.state_reason {
        w.open("stateReason").elem("code", code).elem("message", message).close();
    }
    w.elem("architecture", &i.architecture);
    network_interfaces(w, world, i, &launched, &ip);
    w.elem("rootDeviceType", "ebs");
    w.elem("rootDeviceName", i.block_devices.first().map_or("/dev/xvda", |b| b.device_name.as_str()));
    w.item_set("blockDeviceMapping", &i.block_devices, |w, b| {
        w.elem("deviceName", &b.device_name);
        w.open("ebs")
            .elem("volumeId", &b.volume_id)
            .elem(
                "status",
                if i.state == crate::world::instances::InstanceState::Terminated { "detached" } else { "attached" },
            )
            .elem("attachTime", &launched)
            .bool("deleteOnTermination", b.delete_on_termination)
            .close();
    });
    if i.capacity_type == CapacityType::Spot {
        w.elem("instanceLifecycle", "spot");
    }
    w.opt("spotInstanceRequestId", i.spot_instance_request_id.as_deref());
    w.elem("virtualizationType", "hvm");
    w.opt("clientToken", i.client_token.as_deref());
    if !i.tags.is_empty() {
        w.tag_set("tagSet", &i.tags);
    }
    w.elem("hypervisor", "xen");
    if let Some((arn, id)) = &i.iam_instance_profile_identity {
        w.open("iamInstanceProfile").elem("arn", arn).elem("id", id).close();
    } else if let Some(profile) = &i.iam_instance_profile {
        // A world without IAM: the ARN and id the profile would have.
        let arn = if profile.starts_with("arn:") {
            profile.clone()
        } else {
            format!("arn:aws:iam::{}:instance-profile/{profile}", world.cfg.account_id)
        };
        let id = format!("AIPA{}", &hex::encode(crate::rng::hash_str(&arn).to_be_bytes()).to_uppercase()[..16]);
        w.open("iamInstanceProfile").elem("arn", arn).elem("id", id).close();
    }
    w.bool("ebsOptimized", true);
    w.bool("enaSupport", true);
    if let Some(t) = world.catalog.get(&i.instance_type) {
        w.open("cpuOptions").num("coreCount", t.cores()).num("threadsPerCore", t.threads_per_core()).close();
    }
    w.open("capacityReservationSpecification").elem("capacityReservationPreference", "open").close();
    w.open("hibernationOptions").bool("configured", false).close();
    let m = &i.metadata_options;
    w.open("metadataOptions")
        .elem("state", if i.state == crate::world::instances::InstanceState::Pending { "pending" } else { "applied" })
        .elem("httpTokens", &m.http_tokens)
        .num("httpPutResponseHopLimit", m.http_put_response_hop_limit)
        .elem("httpEndpoint", &m.http_endpoint)
        .elem("httpProtocolIpv6", &m.http_protocol_ipv6)
        .elem("instanceMetadataTags", &m.instance_metadata_tags)
        .close();
    w.open("enclaveOptions").bool("enabled", false).close();
    w.elem("bootMode", if i.architecture == "arm64" { "uefi" } else { "uefi-preferred" });
    w.elem("platformDetails", "Linux/UNIX");
    w.elem("usageOperation", "RunInstances");
    w.elem("usageOperationUpdateTime", &launched);
    w.open("privateDnsNameOptions")
        .elem("hostnameType", "ip-name")
        .bool("enableResourceNameDnsARecord", false)
        .bool("enableResourceNameDnsAAAARecord", false)
        .close();
    w.open("maintenanceOptions").elem("autoRecovery", "default").close();
    w.elem("currentInstanceBootMode", if i.architecture == "arm64" { "uefi" } else { "legacy-bios" });
}

/// The primary interface every VPC instance has (`networkInterfaceSet`).
fn network_interfaces(w: &mut XmlWriter, world: &World, i: &Instance, launched: &str, ip: &str) {
    if i.state == crate::world::instances::InstanceState::Terminated {
        w.open("networkInterfaceSet").close();
        return;
    }
    let mac_seed = crate::rng::hash_str(&i.network_interface_id).to_be_bytes();
    let mac = format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac_seed[0], mac_seed[1], mac_seed[2], mac_seed[3], mac_seed[4]
    );
    w.item_set("networkInterfaceSet", [()], |w, ()| {
        w.elem("networkInterfaceId", &i.network_interface_id)
            .elem("subnetId", &i.subnet_id)
            .elem("vpcId", &i.vpc_id)
            .elem("description", "")
            .elem("ownerId", &world.cfg.account_id)
            .elem("status", "in-use")
            .elem("macAddress", &mac)
            .elem("privateIpAddress", ip)
            .elem("privateDnsName", &i.private_dns_name)
            .bool("sourceDestCheck", true);
        w.item_set("groupSet", &i.security_groups, |w, (id, name)| {
            w.elem("groupId", id).elem("groupName", name);
        });
        w.open("attachment")
            .elem("attachmentId", i.network_interface_id.replacen("eni-", "eni-attach-", 1))
            .num("deviceIndex", 0)
            .elem("status", "attached")
            .elem("attachTime", launched)
            .bool("deleteOnTermination", true)
            .num("networkCardIndex", 0)
            .close();
        w.item_set("privateIpAddressesSet", [()], |w, ()| {
            w.elem("privateIpAddress", ip).elem("privateDnsName", &i.private_dns_name).bool("primary", true);
        });
        w.open("ipv6AddressesSet").close();
        w.elem("interfaceType", "interface");
    });
}

/// Writes `reservationSet`, grouping consecutive instances of one reservation as EC2 does.
pub fn reservations(w: &mut XmlWriter, world: &World, instances: &[&Instance]) {
    w.open("reservationSet");
    let mut start = 0;
    while start < instances.len() {
        let rid = &instances[start].reservation_id;
        let end =
            instances[start..].iter().position(|i| &i.reservation_id != rid).map_or(instances.len(), |n| start + n);
        w.open("item");
        reservation_header(w, world, instances[start]);
        w.item_set("instancesSet", &instances[start..end], |w, i| instance(w, world, i));
        w.close();
        start = end;
    }
    w.close();
}

pub fn reservation_header(w: &mut XmlWriter, world: &World, first: &Instance) {
    w.elem("reservationId", &first.reservation_id).elem("ownerId", &world.cfg.account_id);
    if first.fleet_id.is_some() {
        // Fleets launch on the caller's behalf through the EC2 Fleet service principal.
        w.elem("requesterId", "AIDAIBHXDYKR6BKYBAIWM");
    }
    w.item_set("groupSet", std::iter::empty::<()>(), |_, ()| {});
}

/// The instance as filters see it (DescribeInstances filter names).
pub struct InstanceView<'a>(pub &'a Instance);

impl Filterable for InstanceView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let i = self.0;
        match name {
            "instance-id" => one(&i.id),
            "instance-state-name" => one(i.state.name()),
            "instance-state-code" => one(i.state.code().to_string()),
            "instance-type" => one(&i.instance_type),
            "instance-lifecycle" => many((i.capacity_type == CapacityType::Spot).then_some("spot")),
            "availability-zone" => one(&i.zone),
            "availability-zone-id" => one(&i.zone_id),
            "architecture" => one(&i.architecture),
            "subnet-id" => one(&i.subnet_id),
            "vpc-id" => one(&i.vpc_id),
            "image-id" => one(&i.image_id),
            "private-ip-address" | "network-interface.addresses.private-ip-address" => one(i.private_ip.to_string()),
            "private-dns-name" => one(&i.private_dns_name),
            "reservation-id" => one(&i.reservation_id),
            "spot-instance-request-id" => many(i.spot_instance_request_id.clone()),
            "instance.group-id" | "group-id" => many(i.security_groups.iter().map(|g| g.0.clone())),
            "instance.group-name" | "group-name" => many(i.security_groups.iter().map(|g| g.1.clone())),
            "launch-time" => one(iso(i.launch_time_on_wire())),
            "key-name" => many(i.key_name.clone()),
            "client-token" => many(i.client_token.clone()),
            "iam-instance-profile.arn" => many(i.iam_instance_profile.clone()),
            "metadata-options.http-tokens" => one(&i.metadata_options.http_tokens),
            "owner-id" => None,
            "placement-group-name" => many(None::<String>),
            "tenancy" => one("default"),
            "root-device-type" => one("ebs"),
            "virtualization-type" => one("hvm"),
            "hypervisor" => one("xen"),
            "ebs-optimized" => boolean(true),
            "platform-details" => one("Linux/UNIX"),
            "state-reason-code" => many(i.state_reason.as_ref().map(|r| r.0.clone())),
            "launch-template.launch-template-id" => many(i.launch_template.as_ref().map(|l| l.id.clone())),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.0.tags)
    }
}
