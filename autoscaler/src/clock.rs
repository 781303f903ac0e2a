//! The one clock every controller and TTL cache reads, so tests can move time instead of sleeping.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic time, for expiries.
    fn now(&self) -> Instant;
    /// Wall time, for what goes on the wire (`StartTime`) and into records (`launch_time`).
    fn utc_now(&self) -> DateTime<Utc>;
    /// Wall time as the Kubernetes types carry it (condition times, deletion timestamps).
    fn timestamp(&self) -> Timestamp {
        let t = self.utc_now();
        let nanos = i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0);
        Timestamp::new(t.timestamp(), nanos).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn utc_now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_utc: DateTime<Utc>,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new(start: Instant, start_utc: DateTime<Utc>) -> Self {
        Self { start, start_utc, offset: Mutex::new(Duration::ZERO) }
    }

    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.offset()
    }
    fn utc_now(&self) -> DateTime<Utc> {
        self.start_utc + chrono::Duration::from_std(self.offset()).unwrap_or(chrono::Duration::MAX)
    }
}
