//! Scenarios: YAML files under fixtures/scenarios that drive an [`crate::env::Env`] through steps
//! (manifests, waits, faults, clock, autoscaler restarts, expectations), and the runner that
//! records what happened as a normalized timeline.

pub mod cli;
pub mod expect;
pub mod load;
pub mod model;
pub mod observe;
pub mod runner;
pub mod world_events;
