//! `DescribeSecurityGroups`.

use std::collections::BTreeMap;

use super::super::error::{Ec2Error, Ec2Result};
use super::super::filters::{self, Filterable, one};
use super::super::pagination::{self};
use super::super::{Call, Ec2Ctx};
use super::{LIMITS, arn, first_missing, well_formed};
use crate::world::World;
use crate::world::config::SecurityGroupConfig;
use crate::world::network::SecurityGroup;
use crate::xml::XmlWriter;

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

pub fn describe_security_groups(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
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
