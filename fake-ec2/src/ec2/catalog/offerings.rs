//! `DescribeInstanceTypeOfferings`: which types each region, zone or zone id offers.

use super::super::error::{Ec2Error, Ec2Result};
use super::super::filters::{self, Filterable, one};
use super::super::pagination::{self, Limits};
use super::super::{Call, Ec2Ctx};

/// `DescribeInstanceTypeOfferings`: MaxResults 5..1000 (botocore).
const OFFERING_LIMITS: Limits = Limits { min: 5, max: 1000, default: Some(1000) };

struct Offering<'a> {
    instance_type: &'a str,
    location: String,
}

impl Filterable for Offering<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "instance-type" => one(self.instance_type),
            "location" => one(&self.location),
            _ => None,
        }
    }
}

pub fn describe_instance_type_offerings(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
    let p = &call.params;
    let location_type = p.str("LocationType").unwrap_or("region");
    if !matches!(location_type, "region" | "availability-zone" | "availability-zone-id" | "outpost") {
        return Err(Ec2Error::invalid_value(
            "LocationType",
            location_type,
            "Valid values are region, availability-zone, availability-zone-id and outpost.",
        ));
    }
    let fs = filters::parse(p)?;
    filters::validate(&fs, &Offering { instance_type: "", location: String::new() })?;
    pagination::page_size(p, OFFERING_LIMITS)?;
    call.dry_run(w)?;
    let mut rows = Vec::new();
    for t in w.catalog.all() {
        match location_type {
            "region" if w.cfg.zones.iter().any(|z| w.catalog.offered_in(&t.name, &z.name)) => {
                rows.push(Offering { instance_type: &t.name, location: w.cfg.region.clone() });
            }
            "availability-zone" | "availability-zone-id" => {
                for z in w.cfg.zones.iter().filter(|z| w.catalog.offered_in(&t.name, &z.name)) {
                    let location = if location_type == "availability-zone" { z.name.clone() } else { z.id.clone() };
                    rows.push(Offering { instance_type: &t.name, location });
                }
            }
            // Not offered anywhere, or an Outpost: the fake world has none.
            _ => {}
        }
    }
    rows.retain(|o| filters::matches(&fs, o));
    let key = |o: &Offering<'_>| format!("{}|{}", o.instance_type, o.location);
    rows.sort_by_key(key);
    let page = pagination::paginate(rows, p, OFFERING_LIMITS, key)?;
    let mut x = call.writer();
    x.item_set("instanceTypeOfferingSet", &page.items, |x, o| {
        x.elem("instanceType", o.instance_type).elem("locationType", location_type).elem("location", &o.location);
    });
    x.opt("nextToken", page.next_token.as_deref());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------
