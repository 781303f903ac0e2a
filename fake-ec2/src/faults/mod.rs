//! Faults on demand: error and latency injection into EC2 calls ([`injection`]), and AWS FIS
//! experiments that drive the world and the injection rules on the world clock ([`fis`]).

pub mod fis;
pub mod injection;

pub use injection::{Fault, FaultSpec, Faults, Injected, InjectedError};
