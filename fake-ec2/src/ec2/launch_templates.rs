//! CreateLaunchTemplate, DescribeLaunchTemplates, DeleteLaunchTemplate, and resolving a
//! template (by id or name, `$Latest`/`$Default`/number) into a launch.

use std::collections::BTreeMap;

use super::error::{Ec2Error, Ec2Result};
use super::filters::{self, Filterable, one};
use super::pagination::{Limits, paginate};
use super::query::{self, Form, Params};
use super::{Call, Ec2Ctx};
use crate::clock::iso;
use crate::world::instances::{LaunchTemplateRef, MetadataOptions};
use crate::world::launch_templates::{LaunchTemplate, LaunchTemplateVersion};
use crate::world::pools::CapacityType;
use crate::world::{LaunchSpec, World};
use crate::xml::XmlWriter;

const LIMITS: Limits = Limits { min: 1, max: 200, default: None };

fn valid_name(name: &str) -> bool {
    (3..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "().-/_".contains(c))
}

fn is_template_id(id: &str) -> bool {
    id.strip_prefix("lt-").is_some_and(|h| h.len() == 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn not_found_by_name() -> Ec2Error {
    Ec2Error::client(
        "InvalidLaunchTemplateName.NotFoundException",
        "At least one of the launch templates specified in the request does not exist.",
    )
}

fn not_found_by_id(id: &str) -> Ec2Error {
    Ec2Error::client(
        "InvalidLaunchTemplateId.NotFound",
        format!("The specified launch template, with template ID {id}, does not exist."),
    )
}

fn malformed_id(id: &str) -> Ec2Error {
    Ec2Error::client(
        "InvalidLaunchTemplateId.Malformed",
        format!("The specified ID for the launch template ({id}) is not valid. Specify a valid ID and try again."),
    )
}

/// Finds a template by `LaunchTemplateId` or `LaunchTemplateName` under `p`.
pub fn find_template<'w>(w: &'w World, p: &Params<'_>) -> Ec2Result<&'w LaunchTemplate> {
    match (p.str("LaunchTemplateId"), p.str("LaunchTemplateName")) {
        (Some(_), Some(_)) => Err(Ec2Error::invalid_combination(
            "Both a launch template ID and a launch template name were specified. Specify one or the other, but not both.",
        )),
        (Some(id), None) => {
            if !is_template_id(id) {
                return Err(malformed_id(id));
            }
            w.launch_templates.get(id).ok_or_else(|| not_found_by_id(id))
        }
        (None, Some(name)) => w.launch_templates.values().find(|t| t.name == name).ok_or_else(not_found_by_name),
        (None, None) => Err(Ec2Error::missing(&p.path("LaunchTemplateId"))),
    }
}

/// The template and version a launch names, as a reference and the version's data.
pub fn resolve_template(w: &World, p: &Params<'_>) -> Ec2Result<(LaunchTemplateRef, BTreeMap<String, String>)> {
    let lt = find_template(w, p)?;
    let version = p.str("Version");
    let v = lt.version(version).ok_or_else(|| {
        Ec2Error::client(
            "InvalidLaunchTemplateId.VersionNotFound",
            format!(
                "Could not find launch template version {} for launch template {}.",
                version.unwrap_or("$Default"),
                lt.id
            ),
        )
    })?;
    Ok((LaunchTemplateRef { id: lt.id.clone(), name: lt.name.clone(), version: v.number }, v.data.clone()))
}

/// What a template's data says about a launch; the request's own parameters override it.
pub fn spec_from_template(lt: &LaunchTemplateRef, data: &BTreeMap<String, String>) -> LaunchSpec {
    let form = Form { map: data.clone() };
    let d = form.root();
    let mut spec = LaunchSpec { launch_template: Some(lt.clone()), ..Default::default() };
    spec.image_id = d.str("ImageId").unwrap_or_default().to_owned();
    spec.instance_type = d.str("InstanceType").unwrap_or_default().to_owned();
    spec.user_data = d.str("UserData").map(str::to_owned);
    spec.key_name = d.str("KeyName").map(str::to_owned);
    spec.iam_instance_profile =
        d.str("IamInstanceProfile.Name").or_else(|| d.str("IamInstanceProfile.Arn")).map(str::to_owned);
    let mut sgs: Vec<String> =
        d.strings("SecurityGroupId").unwrap_or_default().into_iter().map(str::to_owned).collect();
    sgs.extend(d.strings("NetworkInterface.1.SecurityGroupId").unwrap_or_default().into_iter().map(str::to_owned));
    spec.security_group_ids = sgs;
    spec.subnet_id = d.str("NetworkInterface.1.SubnetId").unwrap_or_default().to_owned();
    if d.str("InstanceMarketOptions.MarketType") == Some("spot") {
        spec.capacity_type = Some(CapacityType::Spot);
    }
    spec.interruption_behavior =
        d.str("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior").map(str::to_owned);
    if d.has("MetadataOptions") {
        let m = d.child("MetadataOptions");
        let def = MetadataOptions::default();
        spec.metadata_options = Some(MetadataOptions {
            http_tokens: m.str("HttpTokens").map_or(def.http_tokens, str::to_owned),
            http_put_response_hop_limit: m
                .int("HttpPutResponseHopLimit")
                .ok()
                .flatten()
                .unwrap_or(def.http_put_response_hop_limit),
            http_endpoint: m.str("HttpEndpoint").map_or(def.http_endpoint, str::to_owned),
            http_protocol_ipv6: m.str("HttpProtocolIpv6").map_or(def.http_protocol_ipv6, str::to_owned),
            instance_metadata_tags: m.str("InstanceMetadataTags").map_or(def.instance_metadata_tags, str::to_owned),
        });
    }
    if let Some(bdm) = d.list("BlockDeviceMapping").unwrap_or_default().first() {
        spec.root_volume = Some((
            bdm.str("DeviceName").unwrap_or("/dev/xvda").to_owned(),
            bdm.int("Ebs.VolumeSize").ok().flatten().unwrap_or(20),
            bdm.str("Ebs.VolumeType").unwrap_or("gp3").to_owned(),
        ));
    }
    let specs = query::tag_specifications(&d, "TagSpecification").unwrap_or_default();
    spec.tags = query::tags_for(&specs, "instance");
    spec
}

pub fn create_launch_template(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &mut *cx.world;
    let name = p.required("LaunchTemplateName")?;
    if !valid_name(name) {
        return Err(Ec2Error::client(
            "InvalidLaunchTemplateName.MalformedException",
            "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'",
        ));
    }
    if !p.has("LaunchTemplateData") {
        return Err(Ec2Error::missing("LaunchTemplateData"));
    }
    let prefix = "LaunchTemplateData.";
    let data: BTreeMap<String, String> = p_entries(p, prefix);
    // Validate the nested shapes a launch will read, so a bad template fails now, not at launch.
    let form = Form { map: data.clone() };
    let d = form.root();
    d.int("MetadataOptions.HttpPutResponseHopLimit")?;
    super::check_user_data(d.str("UserData"))?;
    let lt_specs = query::tag_specifications(&d, "TagSpecification")?;
    query::check_tag_resource_types(&lt_specs, &["instance", "volume", "spot-instances-request", "network-interface"])?;
    for bdm in d.list("BlockDeviceMapping")? {
        bdm.int("Ebs.VolumeSize")?;
    }
    let tag_specs = query::tag_specifications(p, "TagSpecification")?;
    query::check_tag_resource_types(&tag_specs, &["launch-template"])?;
    if w.launch_templates.values().any(|t| t.name == name) {
        return Err(Ec2Error::client(
            "InvalidLaunchTemplateName.AlreadyExistsException",
            "Launch template name already in use.",
        ));
    }
    call.dry_run(w)?;
    let now = cx.now;
    let id = cx.rng.hex_id("lt", 17);
    let lt = LaunchTemplate {
        id: id.clone(),
        name: name.to_owned(),
        created: now,
        created_by: format!("arn:aws:iam::{}:user/fake-ec2", w.cfg.account_id),
        default_version: 1,
        versions: BTreeMap::from([(
            1,
            LaunchTemplateVersion {
                number: 1,
                description: p.str("VersionDescription").map(str::to_owned),
                created: now,
                data,
            },
        )]),
        tags: query::tags_for(&tag_specs, "launch-template"),
    };
    let mut x = call.writer();
    x.open("launchTemplate");
    template_body(&mut x, &lt);
    x.close();
    w.launch_templates.insert(id, lt);
    Ok(call.finish(x))
}

/// The parameters under `prefix`, with the prefix removed.
fn p_entries(p: &Params<'_>, prefix: &str) -> BTreeMap<String, String> {
    p.entries_under(prefix.trim_end_matches('.')).into_iter().collect()
}

fn template_body(x: &mut XmlWriter, lt: &LaunchTemplate) {
    x.elem("launchTemplateId", &lt.id)
        .elem("launchTemplateName", &lt.name)
        .elem("createTime", iso(lt.created))
        .elem("createdBy", &lt.created_by)
        .num("defaultVersionNumber", lt.default_version)
        .num("latestVersionNumber", lt.latest_version());
    if !lt.tags.is_empty() {
        x.tag_set("tagSet", &lt.tags);
    }
}

struct TemplateView<'a>(&'a LaunchTemplate);

impl Filterable for TemplateView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "create-time" => one(iso(self.0.created)),
            "launch-template-name" => one(&self.0.name),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        Some(&self.0.tags)
    }
}

pub fn describe_launch_templates(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &*cx.world;
    let ids = p.strings("LaunchTemplateId")?;
    let names = p.strings("LaunchTemplateName")?;
    if (!ids.is_empty() || !names.is_empty()) && p.has("MaxResults") {
        return Err(Ec2Error::invalid_combination(
            "The parameter launchTemplateIds or launchTemplateNames cannot be used with the parameter maxResults",
        ));
    }
    let fs = filters::parse(p)?;
    let sample = LaunchTemplate {
        id: String::new(),
        name: String::new(),
        created: 0,
        created_by: String::new(),
        default_version: 1,
        versions: BTreeMap::new(),
        tags: BTreeMap::new(),
    };
    filters::validate(&fs, &TemplateView(&sample))?;
    for id in &ids {
        if !is_template_id(id) {
            return Err(malformed_id(id));
        }
        if !w.launch_templates.contains_key(*id) {
            return Err(not_found_by_id(id));
        }
    }
    for name in &names {
        if !w.launch_templates.values().any(|t| t.name == *name) {
            return Err(not_found_by_name());
        }
    }
    call.dry_run(w)?;
    let selected: Vec<&LaunchTemplate> = w
        .launch_templates
        .values()
        .filter(|t| ids.is_empty() || ids.contains(&t.id.as_str()))
        .filter(|t| names.is_empty() || names.contains(&t.name.as_str()))
        .filter(|t| filters::matches(&fs, &TemplateView(t)))
        .collect();
    let page = paginate(selected, p, LIMITS, |t| t.id.clone())?;
    let mut x = call.writer();
    x.item_set("launchTemplates", &page.items, |x, t| template_body(x, t));
    x.opt("nextToken", page.next_token);
    Ok(call.finish(x))
}

pub fn delete_launch_template(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &mut *cx.world;
    let id = find_template(w, &call.params)?.id.clone();
    call.dry_run(w)?;
    let Some(lt) = w.launch_templates.remove(&id) else {
        return Err(not_found_by_id(&id));
    };
    let mut x = call.writer();
    x.open("launchTemplate");
    template_body(&mut x, &lt);
    x.close();
    Ok(call.finish(x))
}
