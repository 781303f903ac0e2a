//! `DescribeAvailabilityZones`: the world's zones with their ids and groups.

use super::super::error::{Ec2Error, Ec2Result};
use super::super::filters::{self, Filterable, many, one};
use super::super::{Call, Ec2Ctx};
use super::region_location;
use crate::world::World;

// Availability zones

struct ZoneView<'a> {
    name: &'a str,
    id: &'a str,
    region: &'a str,
    group_name: String,
    group_long_name: Option<String>,
}

impl ZoneView<'_> {
    fn new<'a>(w: &'a World, name: &'a str, id: &'a str) -> ZoneView<'a> {
        let region = w.cfg.region.as_str();
        let group_long_name = region_location(region).map(|l| format!("{} 1", l.replace("EU (", "Europe (")));
        ZoneView { name, id, region, group_name: format!("{region}-zg-1"), group_long_name }
    }
}

impl Filterable for ZoneView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "group-long-name" => many(self.group_long_name.clone()),
            "group-name" => one(&self.group_name),
            "message" | "parent-zone-id" | "parent-zone-name" => Some(Vec::new()),
            "opt-in-status" => one("opt-in-not-required"),
            "region-name" => one(self.region),
            "state" => one("available"),
            "zone-id" => one(self.id),
            "zone-name" => one(self.name),
            "zone-type" => one("availability-zone"),
            _ => None,
        }
    }
}

pub fn describe_availability_zones(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
    let p = &call.params;
    let names = p.strings("ZoneName")?;
    let ids = p.strings("ZoneId")?;
    p.bool("AllAvailabilityZones")?;
    let fs = filters::parse(p)?;
    filters::validate(&fs, &ZoneView::new(w, "", ""))?;
    if let Some(bad) = names.iter().find(|n| !w.cfg.zones.iter().any(|z| z.name == **n)) {
        return Err(Ec2Error::client("InvalidParameterValue", format!("Invalid availability zone: [{bad}]")));
    }
    if let Some(bad) = ids.iter().find(|n| !w.cfg.zones.iter().any(|z| z.id == **n)) {
        return Err(Ec2Error::client("InvalidParameterValue", format!("Invalid availability zone ID: [{bad}]")));
    }
    call.dry_run(w)?;
    let zones: Vec<ZoneView<'_>> = w
        .cfg
        .zones
        .iter()
        .filter(|z| {
            (names.is_empty() && ids.is_empty()) || names.contains(&z.name.as_str()) || ids.contains(&z.id.as_str())
        })
        .map(|z| ZoneView::new(w, &z.name, &z.id))
        .filter(|z| filters::matches(&fs, z))
        .collect();
    let mut x = call.writer();
    x.item_set("availabilityZoneInfo", &zones, |x, z| {
        x.elem("zoneName", z.name)
            .elem("zoneState", "available")
            .elem("regionName", z.region)
            .open("messageSet")
            .close()
            .elem("zoneId", z.id)
            .elem("groupName", &z.group_name)
            .elem("optInStatus", "opt-in-not-required")
            .elem("networkBorderGroup", z.region)
            .elem("zoneType", "availability-zone");
        x.opt("groupLongName", z.group_long_name.as_deref());
    });
    Ok(call.finish(x))
}
