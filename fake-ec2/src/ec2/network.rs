//! What a launch refers to: subnets, security groups and AMIs. Karpenter resolves its
//! EC2NodeClass selector terms through these three calls every minute, so filters (`tag:`,
//! `tag-key`, `name` wildcards) and the live `availableIpAddressCount` matter.

use std::collections::BTreeMap;

use super::Call;
use super::error::{Ec2Error, Ec2Result};
use super::filters::{self, Filterable, boolean, many, one};
use super::pagination::{self, Limits};
use super::xml::XmlWriter;
use crate::world::World;
use crate::world::config::{ImageConfig, SecurityGroupConfig, SubnetConfig};
use crate::world::network::{Image, SecurityGroup, Subnet};
use crate::world::rng::{hash_str, mix};

/// DescribeSubnets / DescribeSecurityGroups: MaxResults 5..1000 (botocore); everything when absent.
const LIMITS: Limits = Limits { min: 5, max: 1000, default: None };
/// DescribeImages: botocore sets no bounds; EC2 accepts up to 1000 (Karpenter asks for 1000).
const IMAGE_LIMITS: Limits = Limits { min: 1, max: 1000, default: None };

/// Accounts that publish Amazon's own AMIs (Amazon Linux, EKS-optimized, Windows): their images
/// carry the owner alias `amazon` and match `Owner=amazon`.
const AMAZON_OWNERS: &[&str] = &["137112412989", "602401143452", "801119661308"];

/// The ARN partition of a region.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn arn(w: &World, kind: &str, id: &str) -> String {
    format!("arn:{}:ec2:{}:{}:{kind}/{id}", partition(&w.cfg.region), w.cfg.region, w.cfg.account_id)
}

/// The first of `wanted` for which `exists` is false.
fn first_missing<'a>(wanted: &[&'a str], exists: impl Fn(&str) -> bool) -> Option<&'a str> {
    wanted.iter().copied().find(|id| !exists(id))
}

// ---------------------------------------------------------------------------------------------
// Subnets

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

pub fn describe_subnets(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
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

struct GroupView<'a> {
    g: &'a SecurityGroup,
    w: &'a World,
}

impl Filterable for GroupView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let g = &self.g.cfg;
        match name {
            "description" => one(&g.description),
            "group-id" => one(&g.id),
            "group-name" => one(&g.name),
            "owner-id" => one(&self.w.cfg.account_id),
            "vpc-id" => one(&self.w.cfg.vpc.id),
            // The one rule every group has: all traffic out to anywhere.
            "egress.ip-permission.cidr" => one("0.0.0.0/0"),
            "egress.ip-permission.protocol" => one("-1"),
            "egress.ip-permission.from-port"
            | "egress.ip-permission.to-port"
            | "egress.ip-permission.group-id"
            | "egress.ip-permission.group-name"
            | "egress.ip-permission.ipv6-cidr"
            | "egress.ip-permission.prefix-list-id"
            | "egress.ip-permission.user-id"
            | "ip-permission.cidr"
            | "ip-permission.from-port"
            | "ip-permission.group-id"
            | "ip-permission.group-name"
            | "ip-permission.ipv6-cidr"
            | "ip-permission.prefix-list-id"
            | "ip-permission.protocol"
            | "ip-permission.to-port"
            | "ip-permission.user-id" => Some(Vec::new()),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.g.tags)
    }
}

impl GroupView<'_> {
    fn write(&self, x: &mut XmlWriter) {
        let (g, w) = (&self.g.cfg, self.w);
        x.elem("ownerId", &w.cfg.account_id)
            .elem("groupId", &g.id)
            .elem("groupName", &g.name)
            .elem("groupDescription", &g.description)
            .elem("vpcId", &w.cfg.vpc.id)
            .open("ipPermissions")
            .close()
            .item_set("ipPermissionsEgress", [()], |x, ()| {
                x.elem("ipProtocol", "-1")
                    .open("groups")
                    .close()
                    .item_set("ipRanges", ["0.0.0.0/0"], |x, cidr| {
                        x.elem("cidrIp", cidr);
                    })
                    .open("ipv6Ranges")
                    .close()
                    .open("prefixListIds")
                    .close();
            })
            .tag_set("tagSet", &self.g.tags)
            .elem("securityGroupArn", arn(w, "security-group", &g.id));
    }
}

/// `sg-` and 8 or 17 lowercase hex digits.
fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).and_then(|h| h.strip_prefix('-')).is_some_and(|h| {
        (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub fn describe_security_groups(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let ids = p.strings("GroupId")?;
    let names = p.strings("GroupName")?;
    let fs = filters::parse(p)?;
    let sample = SecurityGroup {
        cfg: SecurityGroupConfig {
            id: String::new(),
            name: String::new(),
            description: String::new(),
            tags: BTreeMap::new(),
        },
        tags: BTreeMap::new(),
    };
    filters::validate(&fs, &GroupView { g: &sample, w })?;
    pagination::page_size(p, LIMITS)?;
    if let Some(bad) = ids.iter().find(|id| !well_formed(id, "sg")) {
        return Err(Ec2Error::client(
            "InvalidGroupId.Malformed",
            format!("Invalid id: \"{bad}\" (expecting \"sg-...\")"),
        ));
    }
    let missing = first_missing(&ids, |id| w.security_groups.iter().any(|g| g.cfg.id == id))
        .or_else(|| first_missing(&names, |n| w.security_groups.iter().any(|g| g.cfg.name == n)));
    if let Some(g) = missing {
        return Err(Ec2Error::not_found("InvalidGroup.NotFound", "security group", g));
    }
    call.dry_run(w)?;
    let w: &World = w;
    let mut rows: Vec<GroupView<'_>> = w
        .security_groups
        .iter()
        .filter(|g| ids.is_empty() || ids.contains(&g.cfg.id.as_str()))
        .filter(|g| names.is_empty() || names.contains(&g.cfg.name.as_str()))
        .map(|g| GroupView { g, w })
        .filter(|v| filters::matches(&fs, v))
        .collect();
    rows.sort_by(|a, b| a.g.cfg.id.cmp(&b.g.cfg.id));
    let page = pagination::paginate(rows, p, LIMITS, |v| v.g.cfg.id.clone())?;
    let mut x = call.writer();
    x.item_set("securityGroupInfo", &page.items, |x, v| v.write(x));
    x.opt("nextToken", page.next_token.as_deref());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------
// Images

struct ImageView<'a> {
    i: &'a Image,
    account: &'a str,
}

impl ImageView<'_> {
    fn cfg(&self) -> &ImageConfig {
        &self.i.cfg
    }

    fn owner_alias(&self) -> Option<&'static str> {
        AMAZON_OWNERS.contains(&self.cfg().owner.as_str()).then_some("amazon")
    }

    /// Images of other accounts are public (that is how this account can see them); its own are private.
    fn is_public(&self) -> bool {
        self.cfg().owner != self.account
    }

    fn location(&self) -> String {
        format!("{}/{}", self.owner_alias().unwrap_or(&self.cfg().owner), self.cfg().name)
    }

    fn boot_mode(&self) -> &'static str {
        if self.cfg().architecture == "arm64" { "uefi" } else { "uefi-preferred" }
    }

    fn snapshot_id(&self) -> String {
        format!("snap-0{:016x}", mix(&[hash_str("snapshot"), hash_str(&self.cfg().id)]))
    }

    fn write(&self, x: &mut XmlWriter) {
        let c = self.cfg();
        x.elem("imageId", &c.id)
            .elem("imageLocation", self.location())
            .elem("imageState", "available")
            .elem("imageOwnerId", &c.owner)
            .elem("creationDate", &c.creation_date)
            .bool("isPublic", self.is_public())
            .elem("architecture", &c.architecture)
            .elem("imageType", "machine")
            .elem("sriovNetSupport", "simple")
            .opt("imageOwnerAlias", self.owner_alias())
            .elem("name", &c.name);
        if !c.description.is_empty() {
            x.elem("description", &c.description);
        }
        x.elem("rootDeviceType", "ebs").elem("rootDeviceName", "/dev/xvda").item_set(
            "blockDeviceMapping",
            [()],
            |x, ()| {
                x.elem("deviceName", "/dev/xvda")
                    .open("ebs")
                    .elem("snapshotId", self.snapshot_id())
                    .num("volumeSize", 20)
                    .bool("deleteOnTermination", true)
                    .elem("volumeType", "gp3")
                    .num("iops", 3000)
                    .bool("encrypted", false)
                    .num("throughput", 125)
                    .close();
            },
        );
        x.elem("virtualizationType", "hvm")
            .tag_set("tagSet", &self.i.tags)
            .elem("hypervisor", "xen")
            .bool("enaSupport", true)
            .elem("bootMode", self.boot_mode())
            .elem("platformDetails", "Linux/UNIX")
            .elem("usageOperation", "RunInstances");
        if c.deprecated {
            // The config says only whether; EC2 says when. The creation date is a time that has passed.
            x.elem("deprecationTime", &c.creation_date);
        }
    }
}

impl Filterable for ImageView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let c = self.cfg();
        match name {
            "architecture" => one(&c.architecture),
            "block-device-mapping.delete-on-termination" => boolean(true),
            "block-device-mapping.device-name" | "root-device-name" => one("/dev/xvda"),
            "block-device-mapping.snapshot-id" => one(self.snapshot_id()),
            "block-device-mapping.volume-size" => one("20"),
            "block-device-mapping.volume-type" => one("gp3"),
            "block-device-mapping.encrypted" => boolean(false),
            "creation-date" => one(&c.creation_date),
            "description" => one(&c.description),
            "ena-support" => boolean(true),
            "free-tier-eligible" | "image-allowed" => boolean(false),
            "hypervisor" => one("xen"),
            "image-id" => one(&c.id),
            "image-type" => one("machine"),
            "is-public" => boolean(self.is_public()),
            "manifest-location" => one(self.location()),
            "name" => one(&c.name),
            "owner-alias" => many(self.owner_alias()),
            "owner-id" => one(&c.owner),
            "root-device-type" => one("ebs"),
            "sriov-net-support" => one("simple"),
            "state" => one("available"),
            "virtualization-type" => one("hvm"),
            "kernel-id"
            | "platform"
            | "product-code"
            | "product-code.type"
            | "ramdisk-id"
            | "source-image-id"
            | "source-image-region"
            | "source-instance-id"
            | "state-reason-code"
            | "state-reason-message" => Some(Vec::new()),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.i.tags)
    }
}

/// An `Owner.N` value: an account id or one of EC2's aliases.
fn owner_matches(owner: &str, view: &ImageView<'_>) -> bool {
    match owner {
        "self" => view.cfg().owner == view.account,
        "amazon" => view.owner_alias() == Some("amazon"),
        "aws-marketplace" | "aws-backup-vault" => false,
        id => view.cfg().owner == id,
    }
}

/// An `ExecutableBy.N` value: `all` sees public images, an account (or `self`) also its own.
fn executable_by(who: &str, view: &ImageView<'_>) -> bool {
    match who {
        "all" => view.is_public(),
        "self" => true,
        id => view.is_public() || view.cfg().owner == id,
    }
}

pub fn describe_images(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let ids = p.strings("ImageId")?;
    let owners = p.strings("Owner")?;
    let executable = p.strings("ExecutableBy")?;
    let include_deprecated = p.flag("IncludeDeprecated")?;
    p.bool("IncludeDisabled")?;
    let fs = filters::parse(p)?;
    let sample = Image {
        cfg: ImageConfig {
            id: String::new(),
            name: String::new(),
            architecture: String::new(),
            owner: String::new(),
            description: String::new(),
            creation_date: String::new(),
            deprecated: false,
            tags: BTreeMap::new(),
        },
        tags: BTreeMap::new(),
    };
    filters::validate(&fs, &ImageView { i: &sample, account: "" })?;
    pagination::page_size(p, IMAGE_LIMITS)?;
    if let Some(bad) = ids.iter().find(|id| !well_formed(id, "ami")) {
        return Err(Ec2Error::client(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{bad}\" (expecting \"ami-...\")"),
        ));
    }
    let valid_owner = |o: &&str| {
        matches!(*o, "self" | "amazon" | "aws-marketplace" | "aws-backup-vault")
            || (o.len() == 12 && o.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(bad) = owners.iter().find(|o| !valid_owner(o)) {
        return Err(Ec2Error::client("InvalidUserID.Malformed", format!("Invalid user id: \"{bad}\"")));
    }
    let missing: Vec<&str> = ids.iter().copied().filter(|id| !w.images.iter().any(|i| i.cfg.id == *id)).collect();
    match missing.as_slice() {
        [] => {}
        [id] => {
            return Err(Ec2Error::client("InvalidAMIID.NotFound", format!("The image id '[{id}]' does not exist")));
        }
        several => {
            let list = several.join(", ");
            return Err(Ec2Error::client("InvalidAMIID.NotFound", format!("The image ids '[{list}]' do not exist")));
        }
    }
    call.dry_run(w)?;
    let w: &World = w;
    let account = w.cfg.account_id.as_str();
    let mut rows: Vec<ImageView<'_>> = w
        .images
        .iter()
        .map(|i| ImageView { i, account })
        .filter(|v| ids.is_empty() || ids.contains(&v.cfg().id.as_str()))
        .filter(|v| owners.is_empty() || owners.iter().any(|o| owner_matches(o, v)))
        .filter(|v| executable.is_empty() || executable.iter().any(|e| executable_by(e, v)))
        // Deprecated AMIs stay hidden unless asked for, named by id, or owned by the caller.
        .filter(|v| !v.cfg().deprecated || include_deprecated || !ids.is_empty() || v.cfg().owner == account)
        .filter(|v| filters::matches(&fs, v))
        .collect();
    rows.sort_by(|a, b| a.cfg().id.cmp(&b.cfg().id));
    let page = pagination::paginate(rows, p, IMAGE_LIMITS, |v| v.cfg().id.clone())?;
    let mut x = call.writer();
    x.item_set("imagesSet", &page.items, |x, v| v.write(x));
    x.opt("nextToken", page.next_token.as_deref());
    Ok(call.finish(x))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ok, run, texts};
    use super::*;
    use crate::world::tests::test_world;

    fn err(r: Ec2Result<String>) -> Option<(u16, String, String)> {
        r.err().map(|e| (e.status, e.code, e.message))
    }

    #[test]
    fn subnets_by_tag_show_live_free_addresses() {
        let mut w = test_world(1);
        let q = "Filter.1.Name=tag%3Akarpenter.sh%2Fdiscovery&Filter.1.Value.1=fake-cluster&MaxResults=500";
        let xml = ok(run(describe_subnets, &mut w, "DescribeSubnets", q));
        assert_eq!(
            texts(&xml, "subnetId"),
            ["subnet-0a1a1a1a1a1a1a1a1", "subnet-0b2b2b2b2b2b2b2b2", "subnet-0c3c3c3c3c3c3c3c3"]
        );
        assert_eq!(texts(&xml, "availabilityZoneId"), ["usw2-az1", "usw2-az2", "usw2-az3"]);
        // A /19 has 8192 addresses, less the 5 AWS keeps.
        assert_eq!(texts(&xml, "availableIpAddressCount"), ["8187"; 3]);
        assert!(
            xml.contains("<subnetArn>arn:aws:ec2:us-west-2:123456789012:subnet/subnet-0a1a1a1a1a1a1a1a1</subnetArn>")
        );
        assert!(xml.contains("<tagSet><item><key>Name</key><value>private-us-west-2a</value></item>"));

        if let Some(s) = w.subnets.iter_mut().find(|s| s.id() == "subnet-0b2b2b2b2b2b2b2b2") {
            s.allocate_ip();
        }
        let xml = ok(run(describe_subnets, &mut w, "DescribeSubnets", "SubnetId.1=subnet-0b2b2b2b2b2b2b2b2"));
        assert_eq!(texts(&xml, "availableIpAddressCount"), ["8186"]);

        let xml = ok(run(
            describe_subnets,
            &mut w,
            "DescribeSubnets",
            "Filter.1.Name=availability-zone&Filter.1.Value.1=us-west-2c",
        ));
        assert_eq!(texts(&xml, "subnetId"), ["subnet-0c3c3c3c3c3c3c3c3"]);
        let xml =
            ok(run(describe_subnets, &mut w, "DescribeSubnets", "Filter.1.Name=tag-key&Filter.1.Value.1=missing"));
        assert!(texts(&xml, "subnetId").is_empty());
    }

    #[test]
    fn subnet_errors_and_dry_run() {
        let mut w = test_world(1);
        assert_eq!(
            err(run(describe_subnets, &mut w, "DescribeSubnets", "SubnetId.1=subnet-0123456789abcdef0")),
            Some((
                400,
                "InvalidSubnetID.NotFound".into(),
                "The subnet ID 'subnet-0123456789abcdef0' does not exist".into()
            ))
        );
        assert_eq!(
            err(run(describe_subnets, &mut w, "DescribeSubnets", "Filter.1.Name=colour&Filter.1.Value.1=x"))
                .map(|e| e.1),
            Some("InvalidParameterValue".into())
        );
        assert_eq!(
            err(run(describe_subnets, &mut w, "DescribeSubnets", "DryRun=true")).map(|e| (e.0, e.1)),
            Some((412, "DryRunOperation".into()))
        );
        assert_eq!(
            err(run(describe_subnets, &mut w, "DescribeSubnets", "MaxResults=2")).map(|e| e.1),
            Some("InvalidParameterValue".into())
        );
    }

    #[test]
    fn subnets_page_through_once_each() {
        let mut w = test_world(1);
        let first = ok(run(describe_subnets, &mut w, "DescribeSubnets", "MaxResults=5"));
        assert_eq!(texts(&first, "subnetId").len(), 3);
        assert!(texts(&first, "nextToken").is_empty());
    }

    #[test]
    fn security_groups_render_egress_and_filter() {
        let mut w = test_world(1);
        let xml = ok(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupId.1=sg-0123456789abcdef0"));
        assert_eq!(texts(&xml, "groupName"), ["eks-cluster-sg-fake-cluster"]);
        assert!(xml.contains(
            "<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups></groups><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges>"
        ));
        assert!(xml.contains("<securityGroupArn>arn:aws:ec2:us-west-2:123456789012:security-group/sg-0123456789abcdef0</securityGroupArn>"));
        assert!(xml.contains("<ipPermissions></ipPermissions>"));

        let xml = ok(run(
            describe_security_groups,
            &mut w,
            "DescribeSecurityGroups",
            "Filter.1.Name=group-name&Filter.1.Value.1=fake-cluster-*",
        ));
        assert_eq!(texts(&xml, "groupId"), ["sg-0fedcba9876543210"]);
        let xml = ok(run(
            describe_security_groups,
            &mut w,
            "DescribeSecurityGroups",
            "Filter.1.Name=tag-key&Filter.1.Value.1=karpenter.sh%2Fdiscovery",
        ));
        assert_eq!(texts(&xml, "groupId"), ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]);
        let xml = ok(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupName.1=fake-cluster-node"));
        assert_eq!(texts(&xml, "groupId"), ["sg-0fedcba9876543210"]);
    }

    #[test]
    fn security_group_errors() {
        let mut w = test_world(1);
        assert_eq!(
            err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupId.1=sg-00000000000000000")),
            Some((
                400,
                "InvalidGroup.NotFound".into(),
                "The security group 'sg-00000000000000000' does not exist".into()
            ))
        );
        assert_eq!(
            err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupId.1=web")).map(|e| e.1),
            Some("InvalidGroupId.Malformed".into())
        );
        assert_eq!(
            err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "GroupName.1=nope")).map(|e| e.1),
            Some("InvalidGroup.NotFound".into())
        );
        assert_eq!(
            err(run(describe_security_groups, &mut w, "DescribeSecurityGroups", "DryRun=true")).map(|e| (e.0, e.1)),
            Some((412, "DryRunOperation".into()))
        );
        assert_eq!(
            err(run(
                describe_security_groups,
                &mut w,
                "DescribeSecurityGroups",
                "Filter.1.Name=ports&Filter.1.Value.1=1"
            ))
            .map(|e| e.1),
            Some("InvalidParameterValue".into())
        );
    }

    #[test]
    fn images_by_name_wildcard_owner_and_state() {
        let mut w = test_world(1);
        let q = "Filter.1.Name=name&Filter.1.Value.1=amazon-eks-node-al2023-arm64-*&Filter.2.Name=state&Filter.2.Value.1=available\
                 &IncludeDeprecated=true&MaxResults=1000";
        let xml = ok(run(describe_images, &mut w, "DescribeImages", q));
        assert_eq!(texts(&xml, "imageId"), ["ami-0a0b0c0d0e0f20222"]);
        assert_eq!(texts(&xml, "architecture"), ["arm64"]);
        assert_eq!(texts(&xml, "bootMode"), ["uefi"]);
        assert_eq!(texts(&xml, "imageOwnerAlias"), ["amazon"]);
        assert_eq!(texts(&xml, "rootDeviceName"), ["/dev/xvda"]);
        assert_eq!(texts(&xml, "imageState"), ["available"]);
        assert!(xml.contains("<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>snap-0"));
        assert!(!xml.contains("deprecationTime"));

        let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=amazon"));
        assert_eq!(texts(&xml, "imageId").len(), 2);
        let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=self"));
        assert!(texts(&xml, "imageId").is_empty());
        let xml = ok(run(
            describe_images,
            &mut w,
            "DescribeImages",
            "Filter.1.Name=image-id&Filter.1.Value.1=ami-0a0b0c0d0e0f10111",
        ));
        assert_eq!(texts(&xml, "architecture"), ["x86_64"]);
    }

    #[test]
    fn deprecated_images_need_asking_for() {
        let mut w = test_world(1);
        if let Some(i) = w.images.iter_mut().find(|i| i.cfg.id == "ami-0a0b0c0d0e0f10111") {
            i.cfg.deprecated = true;
        }
        let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=amazon"));
        assert_eq!(texts(&xml, "imageId"), ["ami-0a0b0c0d0e0f20222"]);
        let xml = ok(run(describe_images, &mut w, "DescribeImages", "Owner.1=amazon&IncludeDeprecated=true"));
        assert_eq!(texts(&xml, "imageId").len(), 2);
        assert_eq!(texts(&xml, "deprecationTime"), ["2025-11-20T18:01:02.000Z"]);
    }

    #[test]
    fn image_errors() {
        let mut w = test_world(1);
        assert_eq!(
            err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-0123456789abcdef0")),
            Some((400, "InvalidAMIID.NotFound".into(), "The image id '[ami-0123456789abcdef0]' does not exist".into()))
        );
        assert_eq!(
            err(run(
                describe_images,
                &mut w,
                "DescribeImages",
                "ImageId.1=ami-0123456789abcdef0&ImageId.2=ami-12345678"
            ))
            .map(|e| e.2),
            Some("The image ids '[ami-0123456789abcdef0, ami-12345678]' do not exist".into())
        );
        assert_eq!(
            err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-xyz")).map(|e| e.1),
            Some("InvalidAMIID.Malformed".into())
        );
        assert_eq!(
            err(run(describe_images, &mut w, "DescribeImages", "Owner.1=someone")).map(|e| e.1),
            Some("InvalidUserID.Malformed".into())
        );
        assert_eq!(
            err(run(describe_images, &mut w, "DescribeImages", "Filter.1.Name=flavour&Filter.1.Value.1=x"))
                .map(|e| e.1),
            Some("InvalidParameterValue".into())
        );
        assert_eq!(
            err(run(describe_images, &mut w, "DescribeImages", "ImageId.1=ami-0a0b0c0d0e0f10111&DryRun=true"))
                .map(|e| (e.0, e.1)),
            Some((412, "DryRunOperation".into()))
        );
    }

    #[test]
    fn images_page_through_once_each() {
        let mut w = test_world(1);
        let page1 = ok(run(describe_images, &mut w, "DescribeImages", "MaxResults=1"));
        assert_eq!(texts(&page1, "imageId"), ["ami-0a0b0c0d0e0f10111"]);
        let token = texts(&page1, "nextToken").pop().unwrap_or_default();
        assert!(!token.is_empty());
        let page2 = ok(run(describe_images, &mut w, "DescribeImages", &format!("MaxResults=1&NextToken={token}")));
        assert_eq!(texts(&page2, "imageId"), ["ami-0a0b0c0d0e0f20222"]);
        assert!(texts(&page2, "nextToken").is_empty());
    }
}
