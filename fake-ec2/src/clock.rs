//! The one clock every delay in the world runs on: real time, scaled real time, or manual.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// World time in milliseconds since the Unix epoch.
pub type Millis = i64;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// World time follows wall-clock time from the world's start instant.
    Real,
    /// World time runs `factor` times faster than wall-clock time.
    Scaled,
    /// World time moves only when advanced (admin API or tests): fully deterministic.
    Manual,
}

#[derive(Debug, Clone)]
pub struct Clock {
    mode: ClockMode,
    factor: f64,
    /// World time at `anchor`.
    base: Millis,
    anchor: Instant,
}

impl Clock {
    pub fn new(mode: ClockMode, factor: f64, start: Millis) -> Self {
        let factor = match mode {
            ClockMode::Real => 1.0,
            ClockMode::Scaled => factor.max(0.0),
            ClockMode::Manual => 0.0,
        };
        Self { mode, factor, base: start, anchor: Instant::now() }
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    pub fn now(&self) -> Millis {
        if self.factor == 0.0 {
            return self.base;
        }
        let real = self.anchor.elapsed().as_secs_f64() * 1000.0;
        self.base + (real * self.factor) as Millis
    }

    /// Jumps world time forward (never backward: timers already fired stay fired).
    pub fn advance(&mut self, by: Millis) {
        let now = self.now();
        self.base = now + by.max(0);
        self.anchor = Instant::now();
    }

    /// Changes the speed of time from now on, keeping the current world time.
    pub fn set_mode(&mut self, mode: ClockMode, factor: f64) {
        let now = self.now();
        *self = Self::new(mode, factor, now);
    }

    /// The wall clock's time now (ms since the epoch) when world time runs at another speed than
    /// it, None when the two agree (real) or the world must answer the same every run (manual).
    /// A client ages some things against its own wall clock (Karpenter collects an instance it
    /// has no NodeClaim for once `LaunchTime` is 30 s behind its clock): those are given on it.
    pub fn clients_now(&self) -> Option<Millis> {
        (self.mode == ClockMode::Scaled).then(|| Utc::now().timestamp_millis())
    }

    /// Real milliseconds until world time reaches `at`, or None if time does not move on its own.
    pub fn real_delay_until(&self, at: Millis) -> Option<std::time::Duration> {
        if self.factor == 0.0 {
            return None;
        }
        let world = (at - self.now()).max(0) as f64;
        Some(std::time::Duration::from_secs_f64(world / self.factor / 1000.0))
    }
}

pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `2026-01-01T00:00:00.000Z`, the form EC2 uses in XML.
pub fn iso(ms: Millis) -> String {
    to_datetime(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `2026-01-01T00:00:00Z`, the form EventBridge uses.
pub fn iso_seconds(ms: Millis) -> String {
    to_datetime(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let mut c = Clock::new(ClockMode::Manual, 1.0, 1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(500);
        assert_eq!(c.now(), 1_500);
        c.advance(-100);
        assert_eq!(c.now(), 1_500, "time never goes back");
        assert_eq!(c.real_delay_until(9_000), None);
    }

    #[test]
    fn formats_like_ec2() {
        assert_eq!(iso(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(iso_seconds(1_767_225_600_000), "2026-01-01T00:00:00Z");
    }
}
