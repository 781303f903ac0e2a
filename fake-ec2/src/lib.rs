//! fake-ec2: a deterministic, clock-driven fake of EC2 that real AWS clients cannot tell apart
//! from the real thing on the paths it covers.
//!
//! The EC2 world ([`world`]) holds EC2's state; the services beside it ([`sqs`], [`events`],
//! [`faults`], [`iam`], [`eks`], [`sts`]) are composed with it in one [`cloud::Cloud`] on one [`clock`] and one seeded
//! [`rng`]; each service's wire module answers in its own protocol, and [`server`] routes requests
//! to them.

pub mod admin;
pub mod auth;
pub mod bounded_log;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cloud;
pub mod ec2;
pub mod eks;
pub mod events;
pub mod faults;
pub mod iam;
pub mod interned;
pub mod nodes;
pub mod persist;
pub mod pricing;
pub mod record;
pub mod requests;
pub mod rng;
pub mod server;
pub mod serving;
pub mod sqs;
pub mod ssm;
pub mod sts;
pub mod world;
pub mod xml;
