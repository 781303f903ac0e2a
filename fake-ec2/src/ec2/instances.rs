//! RunInstances, DescribeInstances, DescribeInstanceStatus, Terminate/Stop/StartInstances.

use super::error::{Ec2Error, Ec2Result};
use super::filters::{self, Filterable, one};
use super::launch_templates::{resolve_template, spec_from_template};
use super::pagination::{Limits, num_key, paginate};
use super::query::{self, check_tag_resource_types, tags_for};
use super::render::{self, InstanceView};
use super::{Call, Ec2Ctx};
use crate::clock::Millis;
use crate::clock::iso;
use crate::world::instances::{Instance, InstanceState, is_instance_id};
use crate::world::pools::CapacityType;
use crate::world::{LaunchFailure, LaunchSpec, World};
use crate::xml::XmlWriter;

const DESCRIBE_LIMITS: Limits = Limits { min: 5, max: 1000, default: None };

/// Validates ids and checks they exist, with EC2's codes and wording.
pub fn lookup_ids<'w>(w: &'w World, ids: &[&str]) -> Ec2Result<Vec<&'w Instance>> {
    if let Some(bad) = ids.iter().find(|id| !is_instance_id(id)) {
        return Err(Ec2Error::client(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{bad}\" (expecting \"i-...\")"),
        ));
    }
    let missing: Vec<&str> = ids.iter().copied().filter(|id| w.instance(id).is_none()).collect();
    match missing.as_slice() {
        [] => Ok(ids.iter().filter_map(|id| w.instance(id)).collect()),
        [one] => Err(Ec2Error::not_found("InvalidInstanceID.NotFound", "instance ID", one)),
        many => Err(Ec2Error::client(
            "InvalidInstanceID.NotFound",
            format!("The instance IDs '{}' do not exist", many.join(", ")),
        )),
    }
}

fn failure(f: LaunchFailure) -> Ec2Error {
    // EC2 reports capacity shortfalls as server faults, everything else as the caller's.
    let status = if f.code == "InsufficientInstanceCapacity" { 500 } else { 400 };
    Ec2Error::new(status, f.code, f.message)
}

/// Picks the subnet a launch goes to: explicit, from the zone asked for, or the first one.
pub fn choose_subnet(w: &World, subnet: Option<&str>, zone: Option<&str>) -> Ec2Result<String> {
    if let Some(s) = subnet {
        if w.subnet(s).is_none() {
            return Err(Ec2Error::not_found("InvalidSubnetID.NotFound", "subnet ID", s));
        }
        return Ok(s.to_owned());
    }
    if let Some(z) = zone {
        if w.zone_index(z).is_none() {
            return Err(Ec2Error::client("InvalidParameterValue", format!("Invalid availability zone: [{z}]")));
        }
        // EC2 chooses the subnet with the most free addresses in the zone.
        return w
            .subnets
            .iter()
            .filter(|s| s.cfg.zone == z)
            .max_by_key(|s| s.available_ips())
            .map(|s| s.id().to_owned())
            .ok_or_else(|| {
                Ec2Error::client(
                    "InvalidParameterValue",
                    format!("No subnets found for the default VPC in availability zone {z}"),
                )
            });
    }
    w.subnets
        .first()
        .map(|s| s.id().to_owned())
        .ok_or_else(|| Ec2Error::client("VPCIdNotSpecified", "No default VPC for this user"))
}

pub fn run_instances(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &*cx.world;
    let min = p.int("MinCount")?.ok_or_else(|| Ec2Error::missing("MinCount"))?;
    let max = p.int("MaxCount")?.ok_or_else(|| Ec2Error::missing("MaxCount"))?;
    if min < 1 || max < 1 {
        return Err(Ec2Error::client("InvalidParameterValue", "Both MinCount and MaxCount must be at least 1."));
    }
    if min > max {
        return Err(Ec2Error::client(
            "InvalidParameterValue",
            format!("MinCount ({min}) cannot be greater than MaxCount ({max})."),
        ));
    }
    let template = if p.has("LaunchTemplate") { Some(resolve_template(w, &p.child("LaunchTemplate"))?) } else { None };
    let mut spec = match &template {
        Some((lt_ref, data)) => spec_from_template(lt_ref, data),
        None => LaunchSpec::default(),
    };
    if let Some(v) = p.str("ImageId") {
        spec.image_id = v.to_owned();
    }
    if spec.image_id.is_empty() {
        return Err(Ec2Error::missing("ImageId"));
    }
    if !w.images.iter().any(|i| i.cfg.id == spec.image_id) {
        let code = if spec.image_id.starts_with("ami-") { "InvalidAMIID.NotFound" } else { "InvalidAMIID.Malformed" };
        return Err(Ec2Error::client(code, format!("The image id '[{}]' does not exist", spec.image_id)));
    }
    if let Some(v) = p.str("InstanceType") {
        spec.instance_type = v.to_owned();
    }
    if spec.instance_type.is_empty() {
        // EC2's default instance type, which this world does not offer.
        spec.instance_type = "m1.small".into();
    }
    let sgs = p.strings("SecurityGroupId")?;
    if !sgs.is_empty() {
        spec.security_group_ids = sgs.iter().map(|s| (*s).to_owned()).collect();
    }
    if spec.security_group_ids.is_empty() {
        // Like EC2: no group named means the VPC's default group.
        spec.security_group_ids
            .extend(w.security_groups.iter().filter(|g| g.cfg.name == "default").map(|g| g.cfg.id.clone()));
    }
    for g in &spec.security_group_ids {
        if !w.security_groups.iter().any(|s| &s.cfg.id == g) {
            return Err(Ec2Error::client("InvalidGroup.NotFound", format!("The security group '{g}' does not exist")));
        }
    }
    let subnet = p.str("SubnetId").or_else(|| p.str("NetworkInterface.1.SubnetId"));
    let subnet = subnet.map(str::to_owned).or_else(|| (!spec.subnet_id.is_empty()).then(|| spec.subnet_id.clone()));
    spec.subnet_id = choose_subnet(w, subnet.as_deref(), p.str("Placement.AvailabilityZone"))?;
    super::check_user_data(p.str("UserData"))?;
    if let Some(ud) = p.str("UserData") {
        spec.user_data = Some(ud.to_owned());
    }
    if let Some(k) = p.str("KeyName") {
        spec.key_name = Some(k.to_owned());
    }
    if let Some(profile) = p.str("IamInstanceProfile.Name").or_else(|| p.str("IamInstanceProfile.Arn")) {
        spec.iam_instance_profile = Some(profile.to_owned());
    }
    match p.str("InstanceMarketOptions.MarketType") {
        Some("spot") => spec.capacity_type = Some(CapacityType::Spot),
        Some(other) if other != "capacity-block" => {
            return Err(Ec2Error::invalid_value(
                "InstanceMarketOptions.MarketType",
                other,
                "Valid values: spot, capacity-block.",
            ));
        }
        _ => {}
    }
    if let Some(b) = p.str("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior") {
        spec.interruption_behavior = Some(b.to_owned());
    }
    let tag_specs = query::tag_specifications(p, "TagSpecification")?;
    check_tag_resource_types(&tag_specs, &["instance", "volume", "spot-instances-request", "network-interface"])?;
    spec.tags.extend(tags_for(&tag_specs, "instance"));
    spec.client_token = p.str("ClientToken").map(str::to_owned);
    call.dry_run(w)?;

    if let Some(token) = &spec.client_token
        && let Some(existing) =
            w.instances.values().find(|i| i.client_token.as_ref() == Some(token) && i.fleet_id.is_none())
    {
        // Idempotent retry: answer with the reservation that token already made.
        let rid = existing.reservation_id.clone();
        let insts: Vec<&Instance> = w.instances.values().filter(|i| i.reservation_id == rid).collect();
        return Ok(reservation_response(w, call, &insts));
    }

    spec.reservation_id = cx.rng.hex_id("r", 17);
    let mut launched = Vec::new();
    for n in 0..max {
        spec.ami_launch_index = n as u32;
        match cx.launch(&spec) {
            Ok(id) => launched.push(id),
            Err(f) if (launched.len() as i64) < min => {
                for id in &launched {
                    cx.world.discard(id);
                }
                return Err(failure(f));
            }
            Err(_) => break,
        }
    }
    let w = &*cx.world;
    let insts: Vec<&Instance> = launched.iter().filter_map(|id| w.instance(id)).collect();
    Ok(reservation_response(w, call, &insts))
}

fn reservation_response(w: &World, call: &Call<'_>, insts: &[&Instance]) -> String {
    let mut x = call.writer();
    if let Some(first) = insts.first() {
        render::reservation_header(&mut x, w, first);
    }
    x.item_set("instancesSet", insts, |x, i| render::instance(x, w, i));
    call.finish(x)
}

/// `InstanceId.N`, which EC2 refuses beside `MaxResults` (ids are answered in one page).
fn instance_ids_unpaged<'a>(p: &query::Params<'a>) -> Ec2Result<Vec<&'a str>> {
    let ids = p.strings("InstanceId")?;
    if !ids.is_empty() && p.has("MaxResults") {
        return Err(Ec2Error::invalid_combination(
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    Ok(ids)
}

pub fn describe_instances(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &*cx.world;
    let ids = instance_ids_unpaged(p)?;
    let fs = filters::parse(p)?;
    filters::validate(&fs, &InstanceView(&Instance::sample()))?;
    let selected: Vec<&Instance> = if ids.is_empty() { w.instances.values().collect() } else { lookup_ids(w, &ids)? };
    call.dry_run(w)?;
    let mut selected: Vec<&Instance> =
        selected.into_iter().filter(|i| filters::matches(&fs, &InstanceView(i))).collect();
    selected.sort_by_key(|i| i.seq);
    selected.dedup_by_key(|i| i.seq);
    let page = paginate(selected, p, DESCRIBE_LIMITS, |i| num_key(i.seq))?;
    let mut x = call.writer();
    render::reservations(&mut x, w, &page.items);
    x.opt("nextToken", page.next_token);
    Ok(call.finish(x))
}

/// How long status checks report `initializing` after an instance starts running.
const STATUS_INIT_MS: i64 = 60_000;

struct StatusView<'a> {
    i: &'a Instance,
    system: &'static str,
    instance: &'static str,
}

fn check_status(impaired: Option<i64>, initializing: bool) -> &'static str {
    if impaired.is_some() {
        "impaired"
    } else if initializing {
        "initializing"
    } else {
        "ok"
    }
}

impl Filterable for StatusView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let reach = |s: &str| match s {
            "impaired" => "failed",
            "initializing" => "initializing",
            _ => "passed",
        };
        match name {
            "availability-zone" => one(&self.i.zone),
            "instance-state-name" => one(self.i.state.name()),
            "instance-state-code" => one(self.i.state.code().to_string()),
            "system-status.status" => one(self.system),
            "system-status.reachability" => one(reach(self.system)),
            "instance-status.status" => one(self.instance),
            "instance-status.reachability" => one(reach(self.instance)),
            "event.code" => filters::many(self.i.scheduled_events.iter().map(|e| e.0.clone())),
            "event.description" => filters::many(self.i.scheduled_events.iter().map(|e| e.1.clone())),
            _ => None,
        }
    }
}

pub fn describe_instance_status(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &*cx.world;
    let ids = instance_ids_unpaged(p)?;
    let include_all = p.flag("IncludeAllInstances")?;
    let fs = filters::parse(p)?;
    let now = cx.now;
    let selected: Vec<&Instance> = if ids.is_empty() { w.instances.values().collect() } else { lookup_ids(w, &ids)? };
    call.dry_run(w)?;
    let mut views: Vec<StatusView<'_>> = selected
        .into_iter()
        .filter(|i| include_all || i.state == InstanceState::Running)
        .map(|i| {
            let init = i.running_since.is_some_and(|t| now - t < STATUS_INIT_MS);
            let running = i.state == InstanceState::Running;
            StatusView {
                i,
                system: if running { check_status(i.system_impaired_since, init) } else { "not-applicable" },
                instance: if running { check_status(i.instance_impaired_since, init) } else { "not-applicable" },
            }
        })
        .collect();
    if let Some(v) = views.first() {
        filters::validate(&fs, v)?;
    }
    views.retain(|v| filters::matches(&fs, v));
    views.sort_by_key(|v| v.i.seq);
    let page = paginate(views, p, DESCRIBE_LIMITS, |v| num_key(v.i.seq))?;
    let mut x = call.writer();
    x.item_set("instanceStatusSet", &page.items, |x, v| {
        let i = v.i;
        x.elem("instanceId", &i.id).elem("availabilityZone", &i.zone).elem("availabilityZoneId", &i.zone_id);
        if !i.scheduled_events.is_empty() {
            x.item_set("eventsSet", &i.scheduled_events, |x, (code, desc, not_before)| {
                x.elem(
                    "instanceEventId",
                    format!(
                        "instance-event-{:017x}",
                        crate::rng::hash_str(&format!("{}{code}", i.id)) & 0xfffffffffffffff
                    ),
                );
                x.elem("code", code).elem("description", desc).elem("notBefore", iso(*not_before));
            });
        }
        x.open("instanceState").num("code", i.state.code()).elem("name", i.state.name()).close();
        status_block(x, "systemStatus", v.system, i.system_impaired_since);
        status_block(x, "instanceStatus", v.instance, i.instance_impaired_since);
        status_block(
            x,
            "attachedEbsStatus",
            if v.instance == "not-applicable" { "not-applicable" } else { "ok" },
            None,
        );
    });
    x.opt("nextToken", page.next_token);
    Ok(call.finish(x))
}

fn status_block(x: &mut XmlWriter, name: &'static str, status: &str, impaired_since: Option<i64>) {
    x.open(name).elem("status", status);
    if status != "not-applicable" {
        x.item_set("details", [()], |x, ()| {
            x.elem("name", "reachability");
            x.elem(
                "status",
                match status {
                    "impaired" => "failed",
                    "initializing" => "initializing",
                    _ => "passed",
                },
            );
            if let Some(t) = impaired_since {
                x.elem("impairedSince", iso(t));
            }
        });
    }
    x.close();
}

type Transition = fn(&mut World, &str, Millis) -> Ec2Result<Option<(InstanceState, InstanceState)>>;

fn state_change_action(cx: &mut Ec2Ctx<'_>, call: &Call<'_>, set: &'static str, f: Transition) -> Ec2Result<String> {
    let p = &call.params;
    let (w, now) = (&mut *cx.world, cx.now);
    let ids = p.strings("InstanceId")?;
    if ids.is_empty() {
        return Err(Ec2Error::missing("InstanceId"));
    }
    let ids: Vec<String> = lookup_ids(w, &ids)?.iter().map(|i| i.id.clone()).collect();
    call.dry_run(w)?;
    let mut changes = Vec::new();
    for id in &ids {
        if let Some((prev, cur)) = f(w, id, now)? {
            changes.push((id.clone(), prev, cur));
        }
    }
    let mut x = call.writer();
    x.item_set(set, &changes, |x, (id, prev, cur)| {
        x.elem("instanceId", id);
        x.open("currentState").num("code", cur.code()).elem("name", cur.name()).close();
        x.open("previousState").num("code", prev.code()).elem("name", prev.name()).close();
    });
    Ok(call.finish(x))
}

pub fn terminate_instances(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    state_change_action(cx, call, "instancesSet", |w, id, now| Ok(w.terminate(id, "User initiated", now)))
}

pub fn stop_instances(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
    // A spot instance can only be stopped if it was launched as persistent; ours are one-time.
    if let Ok(ids) = call.params.strings("InstanceId")
        && let Some(spot) = ids
            .iter()
            .filter_map(|id| w.instance(id))
            .find(|i| i.capacity_type == CapacityType::Spot && i.interruption_behavior != "stop")
    {
        return Err(Ec2Error::client(
            "UnsupportedOperation",
            format!(
                "You can't stop the Spot Instance '{}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.",
                spot.id
            ),
        ));
    }
    state_change_action(cx, call, "instancesSet", |w, id, now| Ok(w.stop(id, now)))
}

pub fn start_instances(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    state_change_action(cx, call, "instancesSet", |w, id, now| w.start(id, now).map_err(failure))
}
