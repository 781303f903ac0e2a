//! The scheduling simulation (Karpenter's scheduler.go, nodeclaim.go, existingnode.go, queue.go):
//! place each pending pod on an existing node, else on a NodeClaim planned earlier in this solve,
//! else on a new plan from the heaviest NodePool that can take it.

mod model;
mod plans;
mod template;

use std::collections::{BTreeMap, BTreeSet};

use super::pod::{SchedPod, Taint, tolerates};
use super::requirements::{Requirement, Requirements, labels};
use super::resources::Resources;
use super::topology::{CountedPod, DomainUniverse, Topology, TopologyNode};

pub use model::{ExistingNode, NodeClaimPlan, Results, SchedNodePool, ScheduledPodInfo, SchedulerOptions};
use template::{RoomBounds, SIMULATION_ONLY, Template, TypeSlot, build_template, check_min_values, plan_labels};

/// A NodeClaim being planned.
struct Plan {
    template: usize,
    hostname: String,
    host: u32,
    requirements: Requirements,
    /// Indices into the template's types, in the template's (price) order.
    types: Vec<u32>,
    bounds: RoomBounds,
    requests: Resources,
    pods: Vec<usize>,
}

/// Which check turned a pod away from a plan.
enum Reject {
    Taints,
    Resources,
    Requirements,
    Topology,
    TopologyRequirements,
    /// No instance type is left under these (merged) requirements.
    Types(Box<Requirements>),
    MinValues(String),
}

/// What a placement would change on a plan.
struct PlanUpdate {
    requirements: Option<Requirements>,
    types: Option<Vec<u32>>,
}

struct NodeState {
    name: String,
    host: u32,
    requirements: Requirements,
    taints: Vec<Taint>,
    remaining: Resources,
    pods: Vec<usize>,
}

/// Per-pod data derived from its (possibly relaxed) constraints.
struct PodData {
    requirements: Requirements,
    strict: Requirements,
    /// Per template: Err(reason) when the pool's taints are not tolerated.
    tolerates: Vec<Result<(), String>>,
    constrained: bool,
}

pub struct Scheduler {
    templates: Vec<Template>,
    nodes: Vec<NodeState>,
    topology: Topology,
    options: SchedulerOptions,
    remaining: Vec<Option<Resources>>,
    plans: Vec<Plan>,
    /// Plans that may still take a pod (full ones drop out), fewest pods first, then oldest:
    /// Karpenter tries the emptiest in-flight NodeClaim first, which spreads pods evenly.
    open: Vec<usize>,
    next_host: usize,
    template_errors: Option<String>,
}

impl Scheduler {
    pub fn new(
        node_pools: Vec<SchedNodePool>,
        existing_nodes: Vec<ExistingNode>,
        scheduled_pods: Vec<ScheduledPodInfo>,
        daemonsets: Vec<SchedPod>,
        options: SchedulerOptions,
    ) -> Scheduler {
        let mut pools = node_pools;
        // Heaviest pool first, ties by name.
        pools.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.name.cmp(&b.name)));
        let mut universe = DomainUniverse::default();
        let mut templates = Vec::new();
        let mut skipped = Vec::new();
        for (i, pool) in pools.iter().enumerate() {
            let template = build_template(i, pool, &daemonsets);
            // Only usable types declare reachable domains.
            universe.add_pool(&template.requirements, &pool.taints, template.types.iter().map(|t| &t.it));
            let min_values = if template.requirements.has_min_values() {
                check_min_values(&template.requirements, template.types.iter().map(|t| &t.it)).err()
            } else {
                None
            };
            if template.types.is_empty() {
                skipped.push(format!("nodepool {:?} requirements filtered out all instance types", pool.name));
            } else if let Some(e) = min_values {
                skipped.push(format!("nodepool {:?} requirements filtered out all instance types, {e}", pool.name));
            } else {
                templates.push(template);
            }
        }
        let mut live: Vec<ExistingNode> = existing_nodes;
        // Initialised nodes first, then by name (Karpenter's order).
        live.sort_by(|a, b| b.initialized.cmp(&a.initialized).then_with(|| a.name.cmp(&b.name)));
        let topo_nodes = live
            .iter()
            .map(|n| TopologyNode {
                name: n.name.clone(),
                requirements: n.requirements.clone(),
                taints: n.taints.clone(),
            })
            .collect();
        let counted = scheduled_pods
            .into_iter()
            .map(|p| CountedPod {
                namespace: p.namespace,
                labels: p.labels,
                node_name: p.node_name,
                anti_affinity: p.anti_affinity,
            })
            .collect();
        let mut topology = Topology::new(universe, topo_nodes, counted, options.respect_preferences);
        let nodes = live
            .into_iter()
            .filter(|n| !n.marked_for_deletion)
            .map(|n| {
                let mut requirements = n.requirements;
                if !requirements.has(labels::HOSTNAME) {
                    requirements.add(labels::HOSTNAME, Requirement::in_values([n.name.clone()]));
                }
                let hostname = requirements.get(labels::HOSTNAME).any().unwrap_or_else(|| n.name.clone());
                topology.register(labels::HOSTNAME, &hostname);
                NodeState {
                    host: topology.host_id(&hostname),
                    name: n.name,
                    requirements,
                    taints: n.taints,
                    remaining: n.available,
                    pods: Vec::new(),
                }
            })
            .collect();
        let remaining = pools.iter().map(|p| p.remaining.clone()).collect();
        let template_errors = if pools.is_empty() {
            Some("no nodepools".to_string())
        } else if templates.is_empty() {
            Some(format!("nodepool requirements filtered out all available instance types ({})", skipped.join("; ")))
        } else {
            None
        };
        Scheduler {
            templates,
            nodes,
            topology,
            options,
            remaining,
            plans: Vec::new(),
            open: Vec::new(),
            next_host: 0,
            template_errors,
        }
    }

    /// Places `pods`; pods that fit nowhere get an error. Deterministic for the same input. Call it
    /// once per `Scheduler` (like Karpenter, a scheduler is built for one batch).
    pub fn solve(&mut self, pods: Vec<SchedPod>) -> Results {
        let mut pods = pods;
        // Biggest first (cpu, then memory), then by key so equal pods keep a stable order.
        pods.sort_by(|a, b| {
            b.requests
                .cpu()
                .cmp(&a.requests.cpu())
                .then_with(|| b.requests.memory().cmp(&a.requests.memory()))
                .then_with(|| a.key.cmp(&b.key))
        });
        for (i, p) in pods.iter().enumerate() {
            self.topology.update(i, p);
        }
        for (i, p) in pods.iter().enumerate() {
            self.topology.prepare(i, p);
        }
        let mut data: Vec<PodData> = pods.iter().enumerate().map(|(i, p)| self.pod_data(i, p)).collect();
        let smallest = pods.iter().fold(None::<Resources>, |acc, p| {
            Some(match acc {
                Some(a) => a.min(&p.requests),
                None => p.requests.clone(),
            })
        });
        let smallest = smallest.unwrap_or_default();

        let mut errors: BTreeMap<usize, String> = BTreeMap::new();
        let mut queue: std::collections::VecDeque<usize> = (0..pods.len()).collect();
        // Queue length when each pod was last pushed back: seeing the same length again means a
        // full pass made no progress (Karpenter's queue.go).
        let mut last_len: Vec<Option<usize>> = vec![None; pods.len()];
        while let Some(&idx) = queue.front() {
            if last_len[idx] == Some(queue.len()) {
                break;
            }
            queue.pop_front();
            match self.try_schedule(idx, &pods[idx], &mut data, &smallest) {
                Ok(()) => {
                    errors.remove(&idx);
                }
                Err(e) => {
                    errors.insert(idx, e);
                    queue.push_back(idx);
                    last_len[idx] = Some(queue.len());
                }
            }
        }
        self.results(&pods, errors)
    }

    fn pod_data(&self, idx: usize, pod: &SchedPod) -> PodData {
        PodData {
            requirements: pod.requirements(self.options.respect_preferences),
            strict: pod.strict_requirements(),
            tolerates: self.templates.iter().map(|t| pod.tolerates(&t.taints)).collect(),
            constrained: self.topology.constrains(idx),
        }
    }

    /// Tries the pod, relaxing one preference after each failure; the pod's original constraints
    /// are restored for later passes when it still fails.
    fn try_schedule(
        &mut self,
        idx: usize,
        pod: &SchedPod,
        data: &mut [PodData],
        smallest: &Resources,
    ) -> Result<(), String> {
        let mut relaxed: Option<SchedPod> = None;
        loop {
            let current = relaxed.as_ref().unwrap_or(pod);
            let err = match self.add(idx, current, &data[idx], smallest) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let mut next = current.clone();
            if next.relax().is_none() {
                if relaxed.is_some() {
                    self.topology.update(idx, pod);
                    data[idx] = self.pod_data(idx, pod);
                }
                return Err(err);
            }
            self.topology.update(idx, &next);
            data[idx] = self.pod_data(idx, &next);
            relaxed = Some(next);
        }
    }

    fn add(&mut self, idx: usize, pod: &SchedPod, data: &PodData, smallest: &Resources) -> Result<(), String> {
        if self.add_to_existing(idx, pod, data) {
            return Ok(());
        }
        if self.add_to_planned(idx, pod, data, smallest) {
            return Ok(());
        }
        if let Some(e) = &self.template_errors {
            return Err(e.clone());
        }
        self.add_to_new(idx, pod, data)
    }

    fn add_to_existing(&mut self, idx: usize, pod: &SchedPod, data: &PodData) -> bool {
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if !pod.requests.fits(&node.remaining)
                || !self.topology.host_allows(idx, node.host)
                || tolerates(&pod.tolerations, &node.taints).is_err()
                || node.requirements.compatible_strict(&data.requirements).is_err()
            {
                continue;
            }
            let mut merged = node.requirements.clone();
            merged.add_all(&data.requirements);
            if data.constrained {
                match self.topology.add_requirements(idx, &data.strict, &node.requirements, &data.requirements) {
                    Ok(extra) => {
                        if merged.compatible_strict(&extra).is_err() {
                            continue;
                        }
                        merged.add_all(&extra);
                    }
                    Err(_) => continue,
                }
            }
            let node = &mut self.nodes[n];
            node.remaining.sub(&pod.requests);
            node.requirements = merged;
            node.pods.push(idx);
            self.topology.record(idx, pod, &node.taints, &node.requirements);
            return true;
        }
        false
    }

    fn results(&self, pods: &[SchedPod], mut errors: BTreeMap<usize, String>) -> Results {
        let mut out = Results::default();
        for plan in &self.plans {
            let template = &self.templates[plan.template];
            let mut requirements = plan.requirements.clone();
            requirements.remove(labels::HOSTNAME);
            // Cheapest compatible available offering first; ties by name. The template is already in
            // that order for its own zone and capacity-type sets, so only narrowed plans re-sort.
            let (zone, capacity_type) =
                (requirements.get(labels::ZONE).clone(), requirements.get(labels::CAPACITY_TYPE).clone());
            let (zone, capacity_type) = (&zone, &capacity_type);
            let same_offerings = zone == template.requirements.get(labels::ZONE)
                && capacity_type == template.requirements.get(labels::CAPACITY_TYPE);
            let mut priced: Vec<(f64, &TypeSlot)> = plan
                .types
                .iter()
                .map(|&i| &template.types[i as usize])
                .map(|s| {
                    let price = if same_offerings {
                        0.0
                    } else {
                        s.it.cheapest_available_in(zone, capacity_type).map_or(f64::INFINITY, |o| o.price)
                    };
                    (price, s)
                })
                .collect();
            if !same_offerings {
                priced.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.it.name.cmp(&b.1.it.name)));
            }
            priced.truncate(self.options.max_instance_types.max(1));
            let slots: Vec<&TypeSlot> = priced.into_iter().map(|(_, s)| s).collect();
            if requirements.has_min_values()
                && let Err(e) = check_min_values(&requirements, slots.iter().map(|s| &s.it))
            {
                for &p in &plan.pods {
                    errors.insert(
                        p,
                        format!(
                            "pod didn't schedule because NodePool {:?} couldn't meet minValues requirements, {e}",
                            template.name
                        ),
                    );
                }
                continue;
            }
            let names: Vec<String> = slots.iter().map(|s| s.it.name.clone()).collect();
            let mut itreq = Requirement::in_values(names);
            itreq.min_values = requirements.get_defined(labels::INSTANCE_TYPE).and_then(|r| r.min_values);
            requirements.add(labels::INSTANCE_TYPE, itreq);
            // Capacity types narrow to those the chosen types can still be bought as (Karpenter's
            // ToNodeClaim): spot and on-demand stay open together when both are available.
            let capacity_types: BTreeSet<&str> = slots
                .iter()
                .flat_map(|s| s.it.offerings.iter())
                .filter(|o| o.available && zone.has(&o.zone) && capacity_type.has(o.capacity_type.as_str()))
                .map(|o| o.capacity_type.as_str())
                .collect();
            if !capacity_types.is_empty() {
                requirements.add(labels::CAPACITY_TYPE, Requirement::in_values(capacity_types));
            }
            for key in SIMULATION_ONLY {
                requirements.remove(key);
            }
            let labels = plan_labels(&template.labels, &requirements);
            // The smallest daemonset overhead among the remaining types, as Karpenter adds it.
            let mut daemons: Option<Resources> = None;
            for s in &slots {
                daemons = Some(match daemons {
                    Some(d) => d.min(&s.daemons),
                    None => s.daemons.clone(),
                });
            }
            let requests = plan.requests.plus(&daemons.unwrap_or_default());
            out.new_node_claims.push(NodeClaimPlan {
                node_pool: template.name.clone(),
                requirements,
                instance_types: slots.iter().map(|s| s.it.clone()).collect(),
                pods: plan.pods.iter().map(|&i| pods[i].key.clone()).collect(),
                requests,
                hostname: plan.hostname.clone(),
                labels,
            });
        }
        for node in &self.nodes {
            if !node.pods.is_empty() {
                out.existing.insert(node.name.clone(), node.pods.iter().map(|&i| pods[i].key.clone()).collect());
            }
        }
        out.pod_errors = errors.into_iter().map(|(i, e)| (pods[i].key.clone(), e)).collect();
        out
    }
}
