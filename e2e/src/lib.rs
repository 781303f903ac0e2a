//! The end-to-end harness: the clusters it runs on, one environment (cluster + fake-ec2 +
//! autoscaler), scenarios run on it and the reports they leave.

pub mod cluster;
pub mod demo;
pub mod env;
pub mod perf;
pub mod report;
pub mod scenario;
pub mod up;
