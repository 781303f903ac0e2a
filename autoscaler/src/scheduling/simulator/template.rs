//! Templates: a NodePool ready for planning, with the instance types its requirements allow
//! (cheapest first) and the room each leaves after daemonsets.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::SchedNodePool;
use crate::scheduling::instance_type::InstanceType;
use crate::scheduling::pod::{SchedPod, Taint};
use crate::scheduling::requirements::{Requirement, Requirements, labels};
use crate::scheduling::resources::Resources;

/// One instance type of a template, with the room it leaves after daemonsets.
pub(super) struct TypeSlot {
    pub(super) it: Arc<InstanceType>,
    /// Daemonset requests on this type.
    pub(super) daemons: Resources,
    /// Allocatable minus daemonsets: what pods can use.
    pub(super) room: Resources,
}

/// A NodePool ready for planning.
pub(super) struct Template {
    pub(super) name: String,
    pub(super) pool: usize,
    pub(super) requirements: Requirements,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) taints: Vec<Taint>,
    pub(super) types: Vec<TypeSlot>,
    /// Room bounds over all `types` (a new plan's, when limits exclude nothing).
    pub(super) bounds: RoomBounds,
}

/// Element-wise bounds of the room over a set of types: `max` rejects quickly, `min` accepts
/// quickly.
#[derive(Clone, Debug)]
pub(super) struct RoomBounds {
    pub(super) max: Resources,
    pub(super) min: Resources,
}

impl RoomBounds {
    pub(super) fn of<'a>(mut rooms: impl Iterator<Item = &'a Resources>) -> RoomBounds {
        let first = rooms.next().cloned().unwrap_or_default();
        let (mut max, mut min) = (first.clone(), first);
        for r in rooms {
            max = max.max(r);
            min = min.min(r);
        }
        RoomBounds { max, min }
    }
}

/// Requirements only the simulation uses (so daemonsets selecting them count); never written out.
pub(super) const SIMULATION_ONLY: [&str; 2] = [REGISTERED, INITIALIZED];
pub(super) const REGISTERED: &str = "karpenter.sh/registered";
pub(super) const INITIALIZED: &str = "karpenter.sh/initialized";

/// Karpenter's resolveCustomLabelsFromRequirements: custom keys get a concrete value (the lowest
/// allowed one); well-known keys stay with the instance type the cloud picks.
pub(super) fn plan_labels(
    template_labels: &BTreeMap<String, String>,
    requirements: &Requirements,
) -> BTreeMap<String, String> {
    let mut out = template_labels.clone();
    for (key, req) in requirements.iter() {
        if labels::is_well_known(key) || key == labels::HOSTNAME || SIMULATION_ONLY.contains(&key.as_str()) {
            continue;
        }
        if let Some(v) = req.any() {
            out.insert(key.clone(), v);
        }
    }
    if let Some(pool) = requirements.get(labels::NODE_POOL).single() {
        out.insert(labels::NODE_POOL.to_string(), pool.to_string());
    }
    out
}

/// A template from a pool: its requirements (with labels and the nodepool label), and the types
/// its requirements allow that have an available offering, cheapest first.
pub(super) fn build_template(pool_idx: usize, pool: &SchedNodePool, daemonsets: &[SchedPod]) -> Template {
    let mut requirements = pool.requirements.clone();
    requirements.add_all(&Requirements::from_labels(&pool.labels));
    requirements.add(labels::NODE_POOL, Requirement::in_values([pool.name.clone()]));
    for key in SIMULATION_ONLY {
        requirements.add(key, Requirement::in_values(["true"]));
    }
    let mut priced: Vec<(f64, &Arc<InstanceType>)> = pool
        .instance_types
        .iter()
        .filter(|it| it.requirements.intersects(&requirements).is_ok())
        .filter_map(|it| it.cheapest_available(&requirements).map(|o| (o.price, it)))
        .collect();
    priced.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    // A daemonset counts on a type when its taints are tolerated and one of its node-selection OR
    // terms fits both the pool and the type (Karpenter's isDaemonPodCompatible).
    let daemon_terms: Vec<(Vec<Requirements>, &SchedPod)> = daemonsets
        .iter()
        .filter(|d| d.tolerates(&pool.taints).is_ok())
        .map(|d| (d.node_selection_terms(), d))
        .map(|(terms, d)| (terms.into_iter().filter(|t| requirements.compatible(t).is_ok()).collect::<Vec<_>>(), d))
        .filter(|(terms, _)| !terms.is_empty())
        .collect();
    let types: Vec<TypeSlot> = priced
        .into_iter()
        .map(|(_, it)| {
            let mut daemons = Resources::new();
            for (terms, d) in &daemon_terms {
                if terms.iter().any(|t| it.requirements.intersects(t).is_ok()) {
                    daemons.add(&d.requests);
                }
            }
            let room = it.allocatable().minus(&daemons);
            TypeSlot { it: it.clone(), daemons, room }
        })
        .collect();
    let bounds = RoomBounds::of(types.iter().map(|t| &t.room));
    Template {
        name: pool.name.clone(),
        pool: pool_idx,
        requirements,
        labels: pool.labels.clone(),
        taints: pool.taints.clone(),
        types,
        bounds,
    }
}

/// Every requirement with minValues must keep that many distinct values across `types`.
pub(super) fn check_min_values<'a>(
    reqs: &Requirements,
    types: impl Iterator<Item = &'a Arc<InstanceType>>,
) -> Result<(), String> {
    let types: Vec<&Arc<InstanceType>> = types.collect();
    for (key, req) in reqs.iter() {
        let Some(min) = req.min_values else { continue };
        let mut values = std::collections::BTreeSet::new();
        for it in &types {
            if let Some(r) = it.requirements.get_defined(key)
                && !r.is_complement()
            {
                values.extend(r.values().iter().filter(|v| req.has(v)).cloned());
            }
        }
        if values.len() < min {
            return Err(format!(
                "minValues requirement is not met for label(s) (label(s)=[{key}], need {min}, have {})",
                values.len()
            ));
        }
    }
    Ok(())
}
