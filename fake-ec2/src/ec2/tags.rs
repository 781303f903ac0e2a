//! CreateTags, DeleteTags and DescribeTags across every taggable resource of the world.

use std::collections::BTreeMap;

use super::error::{Ec2Error, Ec2Result};
use super::filters::{self, Filterable, one};
use super::pagination::{Limits, paginate};
use super::query;
use super::{Call, Ec2Ctx};
use crate::world::World;

const MAX_TAGS_PER_RESOURCE: usize = 50;
const LIMITS: Limits = Limits { min: 5, max: 1000, default: None };

fn resource_type(id: &str) -> Option<&'static str> {
    let prefix = id.split_once('-')?.0;
    Some(match prefix {
        "i" => "instance",
        "lt" => "launch-template",
        "subnet" => "subnet",
        "sg" => "security-group",
        "ami" => "image",
        _ => return None,
    })
}

fn not_found(id: &str) -> Ec2Error {
    match resource_type(id) {
        Some("instance") => Ec2Error::not_found("InvalidInstanceID.NotFound", "instance ID", id),
        Some("launch-template") => Ec2Error::client(
            "InvalidLaunchTemplateId.NotFound",
            format!("The specified launch template, with template ID {id}, does not exist."),
        ),
        Some("subnet") => Ec2Error::not_found("InvalidSubnetID.NotFound", "subnet ID", id),
        Some("security-group") => Ec2Error::not_found("InvalidGroup.NotFound", "security group", id),
        Some("image") => Ec2Error::client("InvalidAMIID.NotFound", format!("The image id '[{id}]' does not exist")),
        _ => Ec2Error::client("InvalidID", format!("The ID '{id}' is not valid")),
    }
}

fn tags_mut<'w>(w: &'w mut World, id: &str) -> Option<&'w mut BTreeMap<String, String>> {
    match resource_type(id)? {
        "instance" => w.instance_mut(id).map(|i| &mut i.tags),
        "launch-template" => w.launch_templates.get_mut(id).map(|t| &mut t.tags),
        "subnet" => w.subnets.iter_mut().find(|s| s.id() == id).map(|s| &mut s.tags),
        "security-group" => w.security_groups.iter_mut().find(|s| s.cfg.id == id).map(|s| &mut s.tags),
        "image" => w.images.iter_mut().find(|s| s.cfg.id == id).map(|s| &mut s.tags),
        _ => None,
    }
}

fn resource_ids(call: &Call<'_>) -> Ec2Result<Vec<String>> {
    let ids: Vec<String> = call.params.strings("ResourceId")?.into_iter().map(str::to_owned).collect();
    if ids.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    Ok(ids)
}

pub fn create_tags(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &mut *cx.world;
    let ids = resource_ids(call)?;
    let tags = query::tags(&call.params, "Tag")?;
    if tags.is_empty() {
        return Err(Ec2Error::missing("Tag"));
    }
    for id in &ids {
        let current = tags_mut(w, id).ok_or_else(|| not_found(id))?;
        let added = tags.iter().filter(|(k, _)| !current.contains_key(k)).count();
        if current.len() + added > MAX_TAGS_PER_RESOURCE {
            return Err(Ec2Error::client(
                "TagLimitExceeded",
                "The maximum number of Tags for a resource has been reached.",
            ));
        }
    }
    call.dry_run(w)?;
    for id in &ids {
        if let Some(current) = tags_mut(w, id) {
            current.extend(tags.iter().cloned());
        }
    }
    let mut x = call.writer();
    x.bool("return", true);
    Ok(call.finish(x))
}

pub fn delete_tags(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &mut *cx.world;
    let ids = resource_ids(call)?;
    let mut keys = Vec::new();
    for t in call.params.list("Tag")? {
        keys.push((t.required("Key")?.to_owned(), t.str("Value").map(str::to_owned)));
    }
    for id in &ids {
        tags_mut(w, id).ok_or_else(|| not_found(id))?;
    }
    call.dry_run(w)?;
    for id in &ids {
        if let Some(current) = tags_mut(w, id) {
            if keys.is_empty() {
                // No Tag parameter deletes every user tag.
                current.retain(|k, _| k.starts_with("aws:"));
            }
            for (k, v) in &keys {
                if v.as_ref().is_none_or(|v| current.get(k) == Some(v)) {
                    current.remove(k);
                }
            }
        }
    }
    let mut x = call.writer();
    x.bool("return", true);
    Ok(call.finish(x))
}

#[derive(Debug, Clone)]
struct TagRow {
    resource_id: String,
    resource_type: &'static str,
    key: String,
    value: String,
}

impl Filterable for TagRow {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "key" => one(&self.key),
            "value" => one(&self.value),
            "resource-id" => one(&self.resource_id),
            "resource-type" => one(self.resource_type),
            n if n.starts_with("tag:") => {
                // `tag:<k>` matches rows of resources carrying that key; checked in `describe_tags`.
                Some(Vec::new())
            }
            _ => None,
        }
    }
}

fn all_rows(w: &World) -> Vec<TagRow> {
    let mut rows = Vec::new();
    let mut push = |id: &str, rt: &'static str, tags: &BTreeMap<String, String>| {
        for (k, v) in tags {
            rows.push(TagRow { resource_id: id.to_owned(), resource_type: rt, key: k.clone(), value: v.clone() });
        }
    };
    for i in w.instances.values() {
        push(&i.id, "instance", &i.tags);
    }
    for t in w.launch_templates.values() {
        push(&t.id, "launch-template", &t.tags);
    }
    for s in &w.subnets {
        push(s.id(), "subnet", &s.tags);
    }
    for g in &w.security_groups {
        push(&g.cfg.id, "security-group", &g.tags);
    }
    for i in &w.images {
        push(&i.cfg.id, "image", &i.tags);
    }
    rows.sort_by(|a, b| (&a.resource_id, &a.key).cmp(&(&b.resource_id, &b.key)));
    rows
}

pub fn describe_tags(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
    let p = &call.params;
    let fs = filters::parse(p)?;
    let sample =
        TagRow { resource_id: String::new(), resource_type: "instance", key: String::new(), value: String::new() };
    filters::validate(&fs, &sample)?;
    call.dry_run(w)?;
    let (tag_filters, plain): (Vec<_>, Vec<_>) = fs.into_iter().partition(|f| f.name.starts_with("tag:"));
    let rows = all_rows(w);
    // `tag:<k>=<v>` keeps the rows of resources that carry that tag.
    let keep_resource = |id: &str| {
        tag_filters.iter().all(|f| {
            let key = &f.name[4..];
            rows.iter()
                .any(|r| r.resource_id == id && r.key == key && f.values.iter().any(|v| filters::glob(v, &r.value)))
        })
    };
    let selected: Vec<TagRow> =
        rows.iter().filter(|r| filters::matches(&plain, *r) && keep_resource(&r.resource_id)).cloned().collect();
    let page = paginate(selected, p, LIMITS, |r| format!("{}\u{1}{}", r.resource_id, r.key))?;
    let mut x = call.writer();
    x.item_set("tagSet", &page.items, |x, r| {
        x.elem("resourceId", &r.resource_id)
            .elem("resourceType", r.resource_type)
            .elem("key", &r.key)
            .elem("value", &r.value);
    });
    x.opt("nextToken", page.next_token);
    Ok(call.finish(x))
}
