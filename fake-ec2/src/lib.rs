//! fake-ec2: a deterministic, clock-driven fake of EC2 that real AWS clients cannot tell apart
//! from the real thing on the paths it covers.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod client;
pub mod ec2;
pub mod events;
pub mod faults;
pub mod nodes;
pub mod pricing;
pub mod server;
pub mod sqs;
pub mod ssm;
pub mod world;
