//! A Karpenter-compatible node autoscaler for EC2: the Karpenter APIs, a pure scheduling
//! simulation, the AWS layer (CreateFleet through aws-sdk-ec2) and the controllers.

pub mod apis;
pub mod clock;
pub mod cloud;
pub mod controllers;
pub mod convert;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod options;
pub mod provider;
pub mod scheduling;
