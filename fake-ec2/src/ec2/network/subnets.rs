//! `DescribeSubnets`, with the live count of free addresses.

use std::collections::BTreeMap;

use super::super::error::{Ec2Error, Ec2Result};
use super::super::filters::{self, Filterable, boolean, one};
use super::super::pagination::{self};
use super::super::{Call, Ec2Ctx};
use super::{LIMITS, arn, first_missing};
use crate::world::World;
use crate::world::config::SubnetConfig;
use crate::world::network::Subnet;
use crate::xml::XmlWriter;

struct SubnetView<'a> {
    s: &'a Subnet,
    w: &'a World,
}

impl Filterable for SubnetView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let s = self.s;
        match name {
            "availability-zone" | "availabilityZone" => one(&s.cfg.zone),
            "availability-zone-id" | "availabilityZoneId" => one(&s.zone_id),
            "available-ip-address-count" | "availableIpAddressCount" => one(s.available_ips().to_string()),
            "cidr-block" | "cidr" | "cidrBlock" => one(&s.cfg.cidr),
            "default-for-az" | "defaultForAz" => boolean(false),
            "enable-dns64" | "ipv6-native" | "map-customer-owned-ip-on-launch" | "map-public-ip-on-launch" => {
                boolean(false)
            }
            "customer-owned-ipv4-pool"
            | "enable-lni-at-device-index"
            | "ipv6-cidr-block-association.ipv6-cidr-block"
            | "ipv6-cidr-block-association.association-id"
            | "ipv6-cidr-block-association.state"
            | "outpost-arn" => Some(Vec::new()),
            "owner-id" => one(&self.w.cfg.account_id),
            "private-dns-name-options-on-launch.hostname-type" => one("ip-name"),
            "private-dns-name-options-on-launch.enable-resource-name-dns-a-record"
            | "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record" => boolean(false),
            "state" => one("available"),
            "subnet-arn" => one(arn(self.w, "subnet", s.id())),
            "subnet-id" => one(s.id()),
            "vpc-id" => one(&self.w.cfg.vpc.id),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.s.tags)
    }
}

impl SubnetView<'_> {
    fn write(&self, x: &mut XmlWriter) {
        let (s, w) = (self.s, self.w);
        x.elem("subnetId", s.id())
            .elem("subnetArn", arn(w, "subnet", s.id()))
            .elem("state", "available")
            .elem("ownerId", &w.cfg.account_id)
            .elem("vpcId", &w.cfg.vpc.id)
            .elem("cidrBlock", &s.cfg.cidr)
            .open("ipv6CidrBlockAssociationSet")
            .close()
            .num("availableIpAddressCount", s.available_ips())
            .elem("availabilityZone", &s.cfg.zone)
            .elem("availabilityZoneId", &s.zone_id)
            .bool("defaultForAz", false)
            .bool("mapPublicIpOnLaunch", false)
            .bool("assignIpv6AddressOnCreation", false)
            .tag_set("tagSet", &s.tags)
            .bool("mapCustomerOwnedIpOnLaunch", false)
            .bool("enableDns64", false)
            .bool("ipv6Native", false)
            .open("privateDnsNameOptionsOnLaunch")
            .elem("hostnameType", "ip-name")
            .bool("enableResourceNameDnsARecord", false)
            .bool("enableResourceNameDnsAAAARecord", false)
            .close()
            .open("blockPublicAccessStates")
            .elem("internetGatewayBlockMode", "off")
            .close();
    }
}

pub fn describe_subnets(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
    let p = &call.params;
    let ids = p.strings("SubnetId")?;
    let fs = filters::parse(p)?;
    let sample = Subnet::new(
        SubnetConfig {
            id: String::new(),
            zone: String::new(),
            cidr: "10.0.0.0/24".into(),
            free_ips: None,
            tags: BTreeMap::new(),
        },
        String::new(),
    );
    filters::validate(&fs, &SubnetView { s: &sample, w })?;
    pagination::page_size(p, LIMITS)?;
    if let Some(id) = first_missing(&ids, |id| w.subnet(id).is_some()) {
        return Err(Ec2Error::client("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist")));
    }
    call.dry_run(w)?;
    let w: &World = w;
    let mut rows: Vec<SubnetView<'_>> = w
        .subnets
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id()))
        .map(|s| SubnetView { s, w })
        .filter(|v| filters::matches(&fs, v))
        .collect();
    rows.sort_by(|a, b| a.s.id().cmp(b.s.id()));
    let page = pagination::paginate(rows, p, LIMITS, |v| v.s.id().to_owned())?;
    let mut x = call.writer();
    x.item_set("subnetSet", &page.items, |x, v| v.write(x));
    x.opt("nextToken", page.next_token.as_deref());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------
// Security groups
