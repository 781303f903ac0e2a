//! Rendering `CreateFleetResponse`: `errorSet` entries (one per pool, lifecycle and code) and
//! `fleetInstanceSet` groups, each echoing the `launchTemplateAndOverrides` it came from.

use std::collections::BTreeMap;

use super::super::Call;
use crate::world::fleet::{Candidate, Fleet, FleetError};
use crate::world::pools::CapacityType;
use crate::xml::XmlWriter;

fn echo(x: &mut XmlWriter, c: &Candidate) {
    x.open("launchTemplateAndOverrides");
    x.open("launchTemplateSpecification")
        .elem("launchTemplateId", &c.lt.id)
        .elem("version", c.lt.version.to_string())
        .close();
    x.open("overrides");
    for (name, v) in &c.echo {
        x.elem(name, v);
    }
    x.close();
    x.close();
}

/// The `CreateFleetResponse` for a fleet, under this call's request id.
pub(super) fn response(call: &Call<'_>, fleet: &Fleet) -> String {
    let (cands, launched, errors) = (&fleet.candidates, &fleet.launched, &fleet.errors);
    let mut x = call.writer();
    x.elem("fleetId", &fleet.id);
    // One error entry per (pool, lifecycle, code), in the order they happened.
    let mut seen = std::collections::BTreeSet::new();
    let errors: Vec<&FleetError> = errors.iter().filter(|e| seen.insert((e.cand, e.ct, e.failure.code))).collect();
    x.item_set("errorSet", errors, |x, e| {
        echo(x, &cands[e.cand]);
        x.elem("lifecycle", e.ct.as_str()).elem("errorCode", e.failure.code).elem("errorMessage", &e.failure.message);
    });
    let mut groups: BTreeMap<(usize, CapacityType), Vec<&str>> = BTreeMap::new();
    let mut first_seen: Vec<(usize, CapacityType)> = Vec::new();
    for l in launched {
        let key = (l.cand, l.ct);
        if !groups.contains_key(&key) {
            first_seen.push(key);
        }
        groups.entry(key).or_default().push(&l.id);
    }
    x.item_set("fleetInstanceSet", first_seen, |x, key| {
        let c = &cands[key.0];
        echo(x, c);
        x.elem("lifecycle", key.1.as_str());
        x.string_set("instanceIds", groups.get(&key).cloned().unwrap_or_default());
        x.elem("instanceType", &c.spec.instance_type);
    });
    call.finish(x)
}
