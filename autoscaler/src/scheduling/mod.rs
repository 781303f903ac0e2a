//! The scheduling simulation: pure code, no I/O. Given NodePools (with their instance types),
//! existing nodes, bound pods and pending pods, decide where each pending pod goes and which
//! NodeClaims to create, the way Karpenter's provisioner does.
//!
//! ```text
//! let mut s = Scheduler::new(pools, existing_nodes, bound_pods, daemonset_pods, SchedulerOptions::default());
//! let results = s.solve(pending_pods);   // one solve per Scheduler
//! ```
//!
//! Quantities are integers in milli-units (`resources`). Requirements follow Karpenter's set algebra
//! (`requirements`). Where this differs from Karpenter on purpose:
//! - ties (domains with equal counts, the affinity bootstrap domain, `Requirement::any`) go to the
//!   lowest name instead of Go's random map order, so equal inputs give equal results;
//! - groups of topology constraints on one key narrow the node one after another instead of each
//!   against the untouched node (a zonal spread plus a zonal affinity can then agree);
//! - zone and capacity-type topology domains only come from offerings that are available now;
//! - a `namespaceSelector` in an affinity term is read as "all namespaces" (no namespace labels
//!   here); node affinity `matchFields`, host ports, volumes, DRA and reserved-capacity
//!   reservations are not modelled; minValues is always strict (no BestEffort policy).

pub mod instance_type;
pub mod pod;
pub mod requirements;
pub mod resources;
pub mod simulator;
pub(crate) mod topology;

#[cfg(test)]
mod simulator_tests;

pub use instance_type::{CapacityType, InstanceType, Offering};
pub use pod::{
    AffinityTerm, LabelSelector, Namespaces, SchedPod, SpreadConstraint, Taint, TaintEffect, Toleration,
    WhenUnsatisfiable, effective_requests, tolerates,
};
pub use requirements::{Operator, Requirement, Requirements, labels};
pub use resources::{QuantityError, Resources, parse_quantity};
pub use simulator::{
    ExistingNode, NodeClaimPlan, Results, SchedNodePool, ScheduledPodInfo, Scheduler, SchedulerOptions,
};
