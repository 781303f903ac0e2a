//! Scenarios: YAML files under fixtures/scenarios that drive an [`crate::env::Env`] through steps
//! (manifests, waits, faults, clock, autoscaler restarts, chaos, expectations) with either autoscaler
//! under test, the runner that records what happened as a normalized timeline, and the A/B
//! comparison of both autoscalers on one scenario.

pub mod chaos_steps;
pub mod cli;
pub mod compare;
pub mod describe;
pub mod expect;
pub mod load;
pub mod matrix;
pub mod messages;
pub mod model;
pub mod observe;
pub mod parallel;
pub mod runner;
pub mod steps;
pub mod wall_time;
pub mod world_events;
