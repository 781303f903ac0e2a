//! The end-to-end harness. For now: the clusters it runs on (issue 4); scenarios, snapshots and
//! reports follow (issue 7).

pub mod cluster;
pub mod demo;
pub mod env;
