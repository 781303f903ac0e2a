//! Planned NodeClaims: adding a pod to one (what it would change, or why it cannot), opening a
//! new one from a template, and the NodePool limits they use up.

use crate::scheduling::pod::SchedPod;
use crate::scheduling::requirements::{Requirement, Requirements, labels};
use crate::scheduling::resources::{NODES, Resources};

use super::*;

impl Scheduler {
    pub(super) fn add_to_planned(&mut self, idx: usize, pod: &SchedPod, data: &PodData, smallest: &Resources) -> bool {
        let mut found = None;
        let mut closed = Vec::new();
        for (pos, &p) in self.open.iter().enumerate() {
            let plan = &self.plans[p];
            // A plan that cannot take even the smallest pod is full for good.
            if !plan.requests.plus(smallest).fits(&plan.bounds.max) {
                closed.push(pos);
                continue;
            }
            if let Ok(update) = self.can_add(plan, idx, pod, data) {
                found = Some((p, update));
                break;
            }
        }
        for pos in closed.into_iter().rev() {
            self.open.remove(pos);
        }
        match found {
            Some((p, update)) => {
                self.commit(p, idx, pod, update);
                self.reposition(p);
                true
            }
            None => false,
        }
    }

    /// Moves plan `p` to its place in `open` after its pod count changed.
    pub(super) fn reposition(&mut self, p: usize) {
        if let Some(pos) = self.open.iter().position(|&q| q == p) {
            self.open.remove(pos);
        }
        let key = |q: usize| (self.plans[q].pods.len(), q);
        let at = self.open.partition_point(|&q| key(q) < key(p));
        self.open.insert(at, p);
    }

    pub(super) fn add_to_new(&mut self, idx: usize, pod: &SchedPod, data: &PodData) -> Result<(), String> {
        let mut errors = Vec::new();
        for t in 0..self.templates.len() {
            let template = &self.templates[t];
            let mut types: Vec<u32> = (0..template.types.len() as u32).collect();
            let mut limited = false;
            if let Some(remaining) = &self.remaining[template.pool] {
                if remaining.iter().any(|(k, v)| k == NODES && v <= 0) {
                    errors.push(format!(
                        "incompatible with nodepool {:?}, node limits have been exhausted for nodepool",
                        template.name
                    ));
                    continue;
                }
                types.retain(|&i| !template.types[i as usize].it.capacity.exceeds_limits(remaining));
                limited = types.len() < template.types.len();
                if types.is_empty() {
                    errors.push(format!(
                        "incompatible with nodepool {:?}, all available instance types exceed limits for nodepool",
                        template.name
                    ));
                    continue;
                }
            }
            let hostname = format!("hostname-placeholder-{:04}", self.next_host + 1);
            let host = self.topology.host_id(&hostname);
            let mut requirements = template.requirements.clone();
            requirements.add(labels::HOSTNAME, Requirement::in_values([hostname.clone()]));
            let bounds = if limited {
                RoomBounds::of(types.iter().map(|&i| &template.types[i as usize].room))
            } else {
                template.bounds.clone()
            };
            let plan = Plan {
                template: t,
                hostname,
                host,
                requirements,
                types,
                bounds,
                requests: Resources::new(),
                pods: vec![],
            };
            match self.can_add(&plan, idx, pod, data) {
                Ok(update) => {
                    self.next_host += 1;
                    self.topology.register(labels::HOSTNAME, &plan.hostname);
                    self.plans.push(plan);
                    let p = self.plans.len() - 1;
                    self.commit(p, idx, pod, update);
                    self.reposition(p);
                    self.charge_limits(p);
                    return Ok(());
                }
                Err(reject) => {
                    let e = self.explain(&plan, idx, pod, data, reject);
                    errors.push(format!("incompatible with nodepool {:?}, {e}", self.templates[t].name));
                }
            }
        }
        Err(errors.join("; "))
    }

    /// Karpenter's subtractMax: a new NodeClaim may become its largest remaining type.
    pub(super) fn charge_limits(&mut self, p: usize) {
        let plan = &self.plans[p];
        let template = &self.templates[plan.template];
        let Some(remaining) = self.remaining[template.pool].as_mut() else { return };
        let mut largest = Resources::new();
        for &i in &plan.types {
            largest = largest.max(&template.types[i as usize].it.capacity);
        }
        let names: Vec<String> = remaining.iter().map(|(k, _)| k.to_string()).collect();
        for k in names {
            let charge = if k == NODES { 1000 } else { largest.get(&k) };
            remaining.set(&k, remaining.get(&k) - charge);
        }
    }

    /// Whether the pod fits the plan, and what the plan becomes with it. Rejections are the hot
    /// path, so they carry no message; [`Scheduler::explain`] writes one when it is needed.
    pub(super) fn can_add(
        &self,
        plan: &Plan,
        idx: usize,
        pod: &SchedPod,
        data: &PodData,
    ) -> Result<PlanUpdate, Reject> {
        let template = &self.templates[plan.template];
        if data.tolerates[plan.template].is_err() {
            return Err(Reject::Taints);
        }
        let total = plan.requests.plus(&pod.requests);
        if !total.fits(&plan.bounds.max) {
            return Err(Reject::Resources);
        }
        if !self.topology.host_allows(idx, plan.host) {
            return Err(Reject::Topology);
        }
        if plan.requirements.compatible(&data.requirements).is_err() {
            return Err(Reject::Requirements);
        }
        let mut merged: Option<Requirements> = None;
        if !data.requirements.is_empty() {
            let mut m = plan.requirements.clone();
            if m.add_all(&data.requirements) {
                merged = Some(m);
            }
        }
        if data.constrained {
            let extra = self
                .topology
                .add_requirements(idx, &data.strict, &plan.requirements, &data.requirements)
                .map_err(|_| Reject::Topology)?;
            let base = merged.as_ref().unwrap_or(&plan.requirements);
            if base.compatible(&extra).is_err() {
                return Err(Reject::TopologyRequirements);
            }
            if !extra.is_empty() {
                let was_merged = merged.is_some();
                let mut m = merged.take().unwrap_or_else(|| plan.requirements.clone());
                if m.add_all(&extra) || was_merged {
                    merged = Some(m);
                }
            }
        }
        let reqs = merged.as_ref().unwrap_or(&plan.requirements);
        let types: Option<Vec<u32>> = if merged.is_some() {
            // The plan's types already agree with its old requirements: only narrowed keys need a
            // second look, and offerings only when the zone or capacity type narrowed.
            let changed: Vec<(&String, &Requirement)> =
                reqs.iter().filter(|(k, r)| plan.requirements.get_defined(k) != Some(*r)).collect();
            let (zone, capacity_type) = (reqs.get(labels::ZONE), reqs.get(labels::CAPACITY_TYPE));
            let offerings_changed =
                changed.iter().any(|(k, _)| k.as_str() == labels::ZONE || k.as_str() == labels::CAPACITY_TYPE);
            Some(
                plan.types
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let slot = &template.types[i as usize];
                        total.fits(&slot.room)
                            && changed
                                .iter()
                                .all(|(k, r)| slot.it.requirements.get_defined(k).is_none_or(|t| t.agrees_with(r)))
                            && (!offerings_changed || slot.it.has_available_offering_in(zone, capacity_type))
                    })
                    .collect(),
            )
        } else if total.fits(&plan.bounds.min) {
            None
        } else {
            Some(plan.types.iter().copied().filter(|&i| total.fits(&template.types[i as usize].room)).collect())
        };
        if let Some(t) = &types {
            if t.is_empty() {
                return Err(Reject::Types(Box::new(reqs.clone())));
            }
            if reqs.has_min_values() {
                check_min_values(reqs, t.iter().map(|&i| &template.types[i as usize].it)).map_err(Reject::MinValues)?;
            }
        }
        Ok(PlanUpdate { requirements: merged, types })
    }

    /// The message for a rejection by [`Scheduler::can_add`] (same plan and pod).
    pub(super) fn explain(&self, plan: &Plan, idx: usize, pod: &SchedPod, data: &PodData, reject: Reject) -> String {
        let total = plan.requests.plus(&pod.requests);
        match reject {
            Reject::Taints => data.tolerates[plan.template].clone().err().unwrap_or_default(),
            Reject::Resources => self.type_error(plan, &plan.requirements, &total, pod),
            Reject::Requirements => match plan.requirements.compatible(&data.requirements) {
                Err(e) => format!("incompatible requirements, {e}"),
                Ok(()) => "incompatible requirements".to_string(),
            },
            Reject::Topology => self.topology.explain(idx, &data.strict, &plan.requirements, &data.requirements),
            Reject::TopologyRequirements => {
                let mut base = plan.requirements.clone();
                base.add_all(&data.requirements);
                match self.topology.add_requirements(idx, &data.strict, &plan.requirements, &data.requirements) {
                    Ok(extra) => base.compatible(&extra).err().unwrap_or_default(),
                    Err(_) => String::new(),
                }
            }
            Reject::Types(reqs) => self.type_error(plan, &reqs, &total, pod),
            Reject::MinValues(e) => e,
        }
    }

    pub(super) fn type_error(&self, plan: &Plan, reqs: &Requirements, total: &Resources, pod: &SchedPod) -> String {
        let template = &self.templates[plan.template];
        let compatible = plan.types.iter().any(|&i| {
            let slot = &template.types[i as usize];
            slot.it.requirements.intersects(reqs).is_ok()
        });
        let fits = plan.types.iter().any(|&i| total.fits(&template.types[i as usize].room));
        let offering = plan.types.iter().any(|&i| template.types[i as usize].it.has_available_offering(reqs));
        let what = match (compatible, fits, offering) {
            (false, false, _) => "no instance type met the scheduling requirements or had enough resources",
            (false, _, _) => "no instance type met all requirements",
            (_, false, _) => "no instance type has enough resources",
            (_, _, false) => "no instance type has the required offering",
            _ => "no instance type met the requirements/resources/offering tuple",
        };
        let mut shown = reqs.clone();
        shown.remove(labels::HOSTNAME);
        let daemons = plan.types.first().map(|&i| &template.types[i as usize].daemons);
        let overhead = match daemons {
            Some(d) if !d.is_empty() => format!("daemonset overhead={d}, "),
            _ => String::new(),
        };
        format!("{overhead}{what}, requirements={shown}, resources={}", pod.requests)
    }

    pub(super) fn commit(&mut self, p: usize, idx: usize, pod: &SchedPod, update: PlanUpdate) {
        let plan = &mut self.plans[p];
        let template = &self.templates[plan.template];
        if let Some(r) = update.requirements {
            plan.requirements = r;
        }
        if let Some(t) = update.types {
            plan.bounds = RoomBounds::of(t.iter().map(|&i| &template.types[i as usize].room));
            plan.types = t;
        }
        plan.requests.add(&pod.requests);
        plan.pods.push(idx);
        self.topology.record(idx, pod, &template.taints, &plan.requirements);
    }
}
