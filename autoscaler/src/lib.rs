//! The autoscaler library: pure cores first, wire code later.

pub mod scheduling;
