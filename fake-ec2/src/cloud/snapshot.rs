//! The cloud's whole state as a state file holds it ([`CloudState`]): every service's mutable
//! part, the clock's position, every RNG stream's position and the timer schedule. The world
//! file itself is not in it: a state is put back over a cloud freshly built from the same world
//! file and seed ([`Cloud::restore`]), which [`crate::persist`] checks before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Cloud;
use super::timers::{Timer, Timers};
use crate::clock::{Clock, ClockMode, Millis};
use crate::events::snapshot::BusState;
use crate::faults::fis::snapshot::FisState;
use crate::faults::injection::FaultsState;
use crate::iam::IamState;
use crate::sqs::queues::QueuesState;
use crate::world::snapshot::WorldState;

/// Which world and seed a state belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub seed: u64,
    /// The world file as `serve --world` named it.
    pub world_path: String,
    /// SHA-256 of the world file's bytes: an edited world file is another world.
    pub world_sha256: String,
}

/// Where the clock stood when the state was written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockState {
    pub mode: ClockMode,
    pub factor: f64,
    pub now_ms: Millis,
    /// Wall-clock time of the write (ms since the epoch): a real or scaled clock moves on by the
    /// time fake-ec2 was down, as the real cloud would have.
    pub written_at_wall_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloudState {
    /// Bumped when the layout changes in a way older files cannot be read as.
    pub format: u32,
    pub identity: Identity,
    pub clock: ClockState,
    pub rng: BTreeMap<String, String>,
    pub timers: Vec<(Millis, u64, Timer)>,
    pub timer_seq: u64,
    pub ec2: WorldState,
    pub sqs: QueuesState,
    pub events: BusState,
    pub faults: FaultsState,
    pub fis: FisState,
    pub iam: IamState,
}

pub const FORMAT: u32 = 1;

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Cloud {
    /// The state as of now.
    pub fn snapshot(&self, identity: Identity) -> CloudState {
        let (timers, timer_seq) = self.timers.snapshot();
        CloudState {
            format: FORMAT,
            identity,
            clock: ClockState {
                mode: self.clock.mode(),
                factor: self.clock.factor(),
                now_ms: self.now(),
                written_at_wall_ms: wall_ms(),
            },
            rng: self.rng.positions(),
            timers,
            timer_seq,
            ec2: self.ec2.snapshot(),
            sqs: self.sqs.snapshot(),
            events: self.events.snapshot(),
            faults: self.faults.snapshot(),
            fis: self.fis.snapshot(),
            iam: self.iam.snapshot(),
        }
    }

    /// Puts a state back over this cloud, freshly built from the state's world file and seed, and
    /// applies the timers that fell due while fake-ec2 was down (real and scaled clocks only).
    pub fn restore(&mut self, s: CloudState) -> Result<(), String> {
        let now = match s.clock.mode {
            ClockMode::Manual => s.clock.now_ms,
            ClockMode::Real | ClockMode::Scaled => {
                let down = (wall_ms() - s.clock.written_at_wall_ms).max(0) as f64;
                s.clock.now_ms + (down * s.clock.factor) as Millis
            }
        };
        self.rng.set_positions(&s.rng)?;
        self.ec2.restore(s.ec2, s.clock.now_ms)?;
        self.sqs.restore(s.sqs);
        self.events.restore(s.events)?;
        self.faults.restore(s.faults);
        let region = self.region().to_owned();
        self.fis.restore(s.fis, &region)?;
        self.iam.restore(s.iam);
        self.timers = Timers::restore(s.timers, s.timer_seq);
        self.clock = Clock::new(s.clock.mode, s.clock.factor, s.clock.now_ms);
        if now > s.clock.now_ms {
            self.advance(now - s.clock.now_ms);
        }
        Ok(())
    }
}
