//! The end-to-end harness: the clusters it runs on, one environment (cluster + fake-ec2 + the
//! autoscaler under test: the project's or upstream Karpenter), scenarios run on it and the
//! reports they leave.

pub mod aws_calls;
pub mod chaos;
pub mod cluster;
pub mod demo;
pub mod env;
pub mod external_sqs;
pub mod karpenter;
pub mod output;
pub mod perf;
pub mod ports;
pub mod report;
pub mod scenario;
pub mod under_test;
pub mod up;
pub mod watched;
