//! Test support shared by fake-ec2's, the autoscaler's and the harness's tests, so each test
//! file states what it checks instead of how a server is started or a fleet is asked for.
//!
//! Only for tests (a dev-dependency): helpers panic with a message instead of returning errors.
#![allow(clippy::expect_used)]

pub mod fake;
pub mod fleet;
pub mod fuzz;
pub mod wait;
