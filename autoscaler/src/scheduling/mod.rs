//! The scheduling simulation: pure code, no I/O. Given NodePools (with their instance types),
//! existing nodes, bound pods and pending pods, decide where each pending pod goes and which
//! NodeClaims to create, the way Karpenter's provisioner does.

pub mod instance_type;
pub mod pod;
pub mod requirements;
pub mod resources;
pub mod simulator;
pub mod topology;

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
