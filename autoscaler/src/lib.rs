//! The autoscaler: Karpenter-compatible node provisioning on EC2.

pub mod cloud;
