//! The scheduling simulation (Karpenter's scheduler.go, nodeclaim.go, existingnode.go, queue.go):
//! place each pending pod on an existing node, else on a NodeClaim planned earlier in this solve,
//! else on a new plan from the heaviest NodePool that can take it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::instance_type::InstanceType;
use super::pod::{AffinityTerm, SchedPod, Taint, tolerates};
use super::requirements::{Requirement, Requirements, labels};
use super::resources::{NODES, Resources};
use super::topology::{CountedPod, DomainUniverse, Topology, TopologyNode};

/// A NodePool as the simulation needs it.
#[derive(Clone, Debug, Default)]
pub struct SchedNodePool {
    pub name: String,
    pub weight: i32,
    /// Template requirements and template labels (as `In [value]`).
    pub requirements: Requirements,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Not considered for toleration: they go away once the node is initialised.
    pub startup_taints: Vec<Taint>,
    /// Limits minus current usage; None = unlimited. A `nodes` entry limits the node count.
    pub remaining: Option<Resources>,
    pub instance_types: Vec<Arc<InstanceType>>,
}

/// A Node, or an in-flight NodeClaim not registered yet.
#[derive(Clone, Debug, Default)]
pub struct ExistingNode {
    pub name: String,
    /// Labels of the Node (or requirements and labels of the NodeClaim).
    pub requirements: Requirements,
    pub taints: Vec<Taint>,
    /// Allocatable minus what pods (daemonsets included) already request there.
    pub available: Resources,
    pub initialized: bool,
    pub marked_for_deletion: bool,
}

/// A pod already bound to a node: counted for topology and pod (anti-)affinity.
#[derive(Clone, Debug, Default)]
pub struct ScheduledPodInfo {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub node_name: String,
    /// Its required anti-affinity terms, which repel the pods they select.
    pub anti_affinity: Vec<AffinityTerm>,
}

impl ExistingNode {
    /// From a Node: its labels, its taints, allocatable minus `requested` (what the pods bound there,
    /// daemonsets included, request). Initialised per the `karpenter.sh/initialized` label (nodes
    /// Karpenter does not manage have none and count as initialised); a Node being deleted is
    /// marked for deletion.
    pub fn from_node(node: &k8s_openapi::api::core::v1::Node, requested: &Resources) -> ExistingNode {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| Resources::from_k8s(a).ok())
            .unwrap_or_default();
        let managed = labels.contains_key(labels::NODE_POOL);
        ExistingNode {
            name: node.metadata.name.clone().unwrap_or_default(),
            initialized: !managed || labels.get("karpenter.sh/initialized").is_some_and(|v| v == "true"),
            requirements: Requirements::from_labels(&labels),
            taints: node.spec.iter().flat_map(|s| s.taints.iter().flatten()).map(Taint::from_k8s).collect(),
            available: allocatable.minus(requested),
            marked_for_deletion: node.metadata.deletion_timestamp.is_some(),
        }
    }
}

impl ScheduledPodInfo {
    /// From a bound, non-terminal pod; None for pods without a node or already finished.
    pub fn from_pod(pod: &k8s_openapi::api::core::v1::Pod) -> Option<ScheduledPodInfo> {
        let node_name = pod.spec.as_ref()?.node_name.clone()?;
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) || pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let sched = SchedPod::from_pod(pod);
        Some(ScheduledPodInfo {
            namespace: sched.namespace,
            labels: sched.labels,
            node_name,
            anti_affinity: sched.pod_anti_affinity,
        })
    }
}

#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Instance types kept per NodeClaim (cheapest first).
    pub max_instance_types: usize,
    /// Treat preferences as requirements first and relax them one by one (Karpenter's default).
    pub respect_preferences: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { max_instance_types: 60, respect_preferences: true }
    }
}

/// One NodeClaim to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeClaimPlan {
    pub node_pool: String,
    /// Narrowed requirements: the pool's requirements and labels, the pods' requirements, topology
    /// choices, and `node.kubernetes.io/instance-type In [instance_types]`.
    pub requirements: Requirements,
    /// Types that fit every pod plus daemonsets, cheapest compatible available offering first.
    pub instance_types: Vec<Arc<InstanceType>>,
    /// Pod keys ("namespace/name").
    pub pods: Vec<String>,
    /// Pod requests plus daemonset overhead.
    pub requests: Resources,
    /// Placeholder hostname, unique per plan within a solve.
    pub hostname: String,
    /// Labels to put on the NodeClaim: the pool's template labels, `karpenter.sh/nodepool`, and a
    /// value for every custom (not well-known) key the requirements constrain.
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    pub new_node_claims: Vec<NodeClaimPlan>,
    /// Node name → pod keys placed there.
    pub existing: BTreeMap<String, Vec<String>>,
    /// Pod key → why it could not be placed.
    pub pod_errors: BTreeMap<String, String>,
}

/// One instance type of a template, with the room it leaves after daemonsets.
struct TypeSlot {
    it: Arc<InstanceType>,
    /// Daemonset requests on this type.
    daemons: Resources,
    /// Allocatable minus daemonsets: what pods can use.
    room: Resources,
}

/// A NodePool ready for planning.
struct Template {
    name: String,
    pool: usize,
    requirements: Requirements,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    types: Vec<TypeSlot>,
    /// Room bounds over all `types` (a new plan's, when limits exclude nothing).
    bounds: RoomBounds,
}

/// Element-wise bounds of the room over a set of types: `max` rejects quickly, `min` accepts
/// quickly.
#[derive(Clone, Debug)]
struct RoomBounds {
    max: Resources,
    min: Resources,
}

impl RoomBounds {
    fn of<'a>(mut rooms: impl Iterator<Item = &'a Resources>) -> RoomBounds {
        let first = rooms.next().cloned().unwrap_or_default();
        let (mut max, mut min) = (first.clone(), first);
        for r in rooms {
            max = max.max(r);
            min = min.min(r);
        }
        RoomBounds { max, min }
    }
}

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

    fn add_to_planned(&mut self, idx: usize, pod: &SchedPod, data: &PodData, smallest: &Resources) -> bool {
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
    fn reposition(&mut self, p: usize) {
        if let Some(pos) = self.open.iter().position(|&q| q == p) {
            self.open.remove(pos);
        }
        let key = |q: usize| (self.plans[q].pods.len(), q);
        let at = self.open.partition_point(|&q| key(q) < key(p));
        self.open.insert(at, p);
    }

    fn add_to_new(&mut self, idx: usize, pod: &SchedPod, data: &PodData) -> Result<(), String> {
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
    fn charge_limits(&mut self, p: usize) {
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
    fn can_add(&self, plan: &Plan, idx: usize, pod: &SchedPod, data: &PodData) -> Result<PlanUpdate, Reject> {
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
    fn explain(&self, plan: &Plan, idx: usize, pod: &SchedPod, data: &PodData, reject: Reject) -> String {
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

    fn type_error(&self, plan: &Plan, reqs: &Requirements, total: &Resources, pod: &SchedPod) -> String {
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

    fn commit(&mut self, p: usize, idx: usize, pod: &SchedPod, update: PlanUpdate) {
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

/// Requirements only the simulation uses (so daemonsets selecting them count); never written out.
const SIMULATION_ONLY: [&str; 2] = [REGISTERED, INITIALIZED];
const REGISTERED: &str = "karpenter.sh/registered";
const INITIALIZED: &str = "karpenter.sh/initialized";

/// Karpenter's resolveCustomLabelsFromRequirements: custom keys get a concrete value (the lowest
/// allowed one); well-known keys stay with the instance type the cloud picks.
fn plan_labels(template_labels: &BTreeMap<String, String>, requirements: &Requirements) -> BTreeMap<String, String> {
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
fn build_template(pool_idx: usize, pool: &SchedNodePool, daemonsets: &[SchedPod]) -> Template {
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
fn check_min_values<'a>(reqs: &Requirements, types: impl Iterator<Item = &'a Arc<InstanceType>>) -> Result<(), String> {
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
