//! RunInstances, DescribeInstances, DescribeInstanceStatus, Terminate/Stop/StartInstances.

use std::ops::Bound;

use super::error::{Ec2Error, Ec2Result};
use super::filters::{self, Filterable, one};
use super::launch_templates::{resolve_template, spec_from_template};
use super::pagination::{Limits, num_after, num_key, page_of, page_size};
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

    if let Some(ids) = spec.client_token.as_deref().and_then(|t| w.run_tokens.get(t, cx.now)) {
        // Idempotent retry: answer with the reservation that token made, while its instances are
        // still in the world.
        let insts: Vec<&Instance> = ids.iter().filter_map(|id| w.instance(id)).collect();
        if !insts.is_empty() {
            return Ok(reservation_response(w, call, &insts));
        }
    }

    spec.reservation_id = cx.rng.hex_id("r", 17);
    let mut launched = Vec::new();
    for n in 0..max {
        spec.ami_launch_index = n as u32;
        match cx.launch(&spec) {
            Ok(id) => launched.push(id),
            Err(f) if (launched.len() as i64) < min => {
                cx.world.discard(&launched);
                return Err(failure(f));
            }
            Err(_) => break,
        }
    }
    let w = &*cx.world;
    let insts: Vec<&Instance> = launched.iter().filter_map(|id| w.instance(id)).collect();
    let xml = reservation_response(w, call, &insts);
    if let Some(token) = spec.client_token {
        cx.world.run_tokens.insert(token, launched, cx.now);
    }
    Ok(xml)
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

/// The instances a Describe call pages through, in launch order, after the page token's
/// instance: those `InstanceId.N` names (already looked up) or, without ids, a range of the world's
/// launch-ordered map, so a page costs its own size rather than the whole world's.
fn in_launch_order<'w>(
    w: &'w World,
    named: Option<Vec<&'w Instance>>,
    after: Option<u64>,
) -> Box<dyn Iterator<Item = &'w Instance> + 'w> {
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    match named {
        Some(mut named) => {
            named.sort_by_key(|i| i.seq);
            named.dedup_by_key(|i| i.seq);
            Box::new(named.into_iter().filter(move |i| after.is_none_or(|a| i.seq > a)))
        }
        None => Box::new(w.instances.range((start, Bound::Unbounded)).map(|(_, i)| i)),
    }
}

pub fn describe_instances(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &*cx.world;
    let ids = instance_ids_unpaged(p)?;
    let fs = filters::parse(p)?;
    filters::validate(&fs, &InstanceView(&Instance::sample()))?;
    let named = if ids.is_empty() { None } else { Some(lookup_ids(w, &ids)?) };
    call.dry_run(w)?;
    let size = page_size(p, DESCRIBE_LIMITS)?;
    let selected = in_launch_order(w, named, num_after(p)?).filter(|i| filters::matches(&fs, &InstanceView(i)));
    let page = page_of(selected, size, |i| num_key(i.seq));
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

/// How `DescribeInstanceStatus` shows `i` at `now`; `None` when it is not shown (not running,
/// without `IncludeAllInstances`).
fn status_view(i: &Instance, include_all: bool, now: Millis) -> Option<StatusView<'_>> {
    let running = i.state == InstanceState::Running;
    if !include_all && !running {
        return None;
    }
    let init = i.running_since.is_some_and(|t| now - t < STATUS_INIT_MS);
    let check = |impaired| if running { check_status(impaired, init) } else { "not-applicable" };
    Some(StatusView { i, system: check(i.system_impaired_since), instance: check(i.instance_impaired_since) })
}

pub fn describe_instance_status(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let w = &*cx.world;
    let ids = instance_ids_unpaged(p)?;
    let include_all = p.flag("IncludeAllInstances")?;
    let fs = filters::parse(p)?;
    let now = cx.now;
    let named = if ids.is_empty() { None } else { Some(lookup_ids(w, &ids)?) };
    call.dry_run(w)?;
    let view = |i| status_view(i, include_all, now);
    // Filter names are checked against the first instance shown, as EC2 does: none, no check.
    if let Some(first) = in_launch_order(w, named.clone(), None).find_map(view) {
        filters::validate(&fs, &first)?;
    }
    let size = page_size(p, DESCRIBE_LIMITS)?;
    let views = in_launch_order(w, named, num_after(p)?).filter_map(view).filter(|v| filters::matches(&fs, v));
    let page = page_of(views, size, |v| num_key(v.i.seq));
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

#[cfg(test)]
mod tests {
    use super::super::testing::{now, ok, run, texts};
    use super::*;
    use crate::world::tests::test_world;

    /// `n` on-demand instances in launch order; every third tagged `pick=yes`.
    fn world_with(n: usize) -> (World, Vec<String>) {
        let mut w = test_world(5);
        let mut rng = crate::rng::Streams::new(5);
        let at = now(&w);
        let spec = LaunchSpec {
            instance_type: "m5.large".into(),
            subnet_id: "subnet-0a1a1a1a1a1a1a1a1".into(),
            image_id: "ami-0a0b0c0d0e0f10111".into(),
            reservation_id: "r-1".into(),
            ..Default::default()
        };
        let ids: Vec<String> =
            (0..n).map(|_| w.launch(&spec, at, &mut rng, &mut ()).unwrap_or_else(|e| unreachable!("{e:?}"))).collect();
        for id in ids.iter().step_by(3) {
            if let Some(i) = w.instance_mut(id) {
                i.tags.insert("pick".into(), "yes".into());
            }
        }
        (w, ids)
    }

    /// Every page of `action` with `query`: (instance ids per page, the tokens given).
    fn pages(
        w: &mut World,
        h: crate::ec2::actions::Handler,
        action: &str,
        query: &str,
    ) -> (Vec<Vec<String>>, Vec<String>) {
        let (mut out, mut tokens) = (Vec::new(), Vec::new());
        loop {
            let q = match tokens.last() {
                Some(t) => format!("{query}&NextToken={t}"),
                None => query.to_owned(),
            };
            let xml = ok(run(h, w, action, &q));
            out.push(texts(&xml, "instanceId"));
            match texts(&xml, "nextToken").pop() {
                Some(t) => tokens.push(t),
                None => return (out, tokens),
            }
        }
    }

    #[test]
    fn describe_pages_by_launch_order_with_filters_and_ids() {
        let (mut w, ids) = world_with(30);
        let (got, tokens) = pages(&mut w, describe_instances, "DescribeInstances", "MaxResults=5");
        assert_eq!(got.concat(), ids);
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![5; 6]);
        // Tokens name the last instance's launch sequence, as before paging by key.
        let seq = |id: &str| w.instance(id).map_or(0, |i| i.seq);
        assert_eq!(tokens[0], hex::encode(num_key(seq(&ids[4]))));

        let picked: Vec<String> = ids.iter().step_by(3).cloned().collect();
        let q = "MaxResults=5&Filter.1.Name=tag:pick&Filter.1.Value.1=yes";
        let (got, tokens) = pages(&mut w, describe_instances, "DescribeInstances", q);
        assert_eq!(got.concat(), picked);
        assert_eq!(tokens.len(), 1, "10 matches: two pages, no empty third");

        let named = format!("InstanceId.1={}&InstanceId.2={}&InstanceId.3={}", ids[7], ids[2], ids[7]);
        let xml = ok(run(describe_instances, &mut w, "DescribeInstances", &named));
        assert_eq!(texts(&xml, "instanceId"), vec![ids[2].clone(), ids[7].clone()]);
    }

    #[test]
    fn a_page_boundary_survives_the_last_instance_going_away() {
        let (mut w, ids) = world_with(12);
        let xml = ok(run(describe_instances, &mut w, "DescribeInstances", "MaxResults=5"));
        let token = texts(&xml, "nextToken").pop().unwrap_or_default();
        w.discard(&ids[3..6]);
        let xml = ok(run(describe_instances, &mut w, "DescribeInstances", &format!("MaxResults=5&NextToken={token}")));
        assert_eq!(texts(&xml, "instanceId"), ids[6..11].to_vec());
    }

    #[test]
    fn status_pages_the_same_way() {
        let (mut w, ids) = world_with(12);
        let (got, _) =
            pages(&mut w, describe_instance_status, "DescribeInstanceStatus", "MaxResults=5&IncludeAllInstances=true");
        assert_eq!(got.concat(), ids);
        // Pending instances are shown only with IncludeAllInstances.
        let (got, _) = pages(&mut w, describe_instance_status, "DescribeInstanceStatus", "MaxResults=5");
        assert_eq!(got.concat(), Vec::<String>::new());
        let err = run(
            describe_instance_status,
            &mut w,
            "DescribeInstanceStatus",
            "IncludeAllInstances=true&Filter.1.Name=nope&Filter.1.Value.1=x",
        );
        assert_eq!(err.err().map(|e| e.code), Some("InvalidParameterValue".into()));
    }

    #[test]
    fn tokens_no_page_gave_are_refused_in_ec2s_words() {
        let (mut w, _) = world_with(6);
        for token in ["zz".to_owned(), hex::encode("not-a-key"), hex::encode("42")] {
            for (h, action) in [
                (describe_instances as crate::ec2::actions::Handler, "DescribeInstances"),
                (describe_instance_status, "DescribeInstanceStatus"),
            ] {
                let err = run(h, &mut w, action, &format!("MaxResults=5&NextToken={token}")).err();
                assert_eq!(err.as_ref().map(|e| e.code.as_str()), Some("InvalidPaginationToken"), "{action} {token}");
                assert!(err.is_some_and(|e| e.message.contains(&token)));
            }
        }
    }
}
