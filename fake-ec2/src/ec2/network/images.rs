//! `DescribeImages`: owners, aliases, `ExecutableBy`, deprecation.

use std::collections::BTreeMap;

use super::super::error::{Ec2Error, Ec2Result};
use super::super::filters::{self, Filterable, boolean, many, one};
use super::super::pagination::{self};
use super::super::{Call, Ec2Ctx};
use super::{AMAZON_OWNERS, IMAGE_LIMITS, well_formed};
use crate::rng::{hash_str, mix};
use crate::world::World;
use crate::world::config::ImageConfig;
use crate::world::network::Image;
use crate::xml::XmlWriter;

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

pub fn describe_images(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
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
