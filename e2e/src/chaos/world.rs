//! How the environment builds fake-ec2's world: from a world file and a seed, on the scenario's
//! clock. Kept so a restart can build it again.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fake_ec2::cloud::Cloud;
use fake_ec2::persist::StateFile;
use fake_ec2::world::config::{FIXED_START, WorldConfig};

/// What each of fake-ec2's in-memory logs keeps in the harness: the observer reads the event log
/// as it goes, and the request log is read whole at a scenario's end (checked for drops there), so
/// it must hold a whole run: a few hundred bytes per AWS call, so 256 MiB holds about a million.
pub const HARNESS_LOG_BUDGET_BYTES: usize = 256 << 20;

pub struct WorldRecipe {
    /// The world file as the configuration names it (relative to the repository root).
    label: String,
    path: PathBuf,
    /// The world file's text with the clock scaled.
    text: String,
    seed: u64,
    clock_factor: f64,
}

impl WorldRecipe {
    pub fn read(root: &Path, world: &str, seed: u64, clock_factor: f64) -> anyhow::Result<WorldRecipe> {
        let path = root.join(world);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {world}"))?;
        let text = scaled_clock(&text, clock_factor);
        Ok(WorldRecipe { label: world.to_owned(), path, text, seed, clock_factor })
    }

    /// A new world; `start_ms` sets where its clock starts (a restart goes on from the old
    /// world's time, as a restarted fake-ec2 starts at its wall clock's now).
    pub fn build(&self, start_ms: Option<i64>) -> anyhow::Result<Cloud> {
        let mut wc = WorldConfig::parse(&self.text, &self.label)?;
        match start_ms {
            // Rounded up to the next second: the world's time never goes back.
            Some(ms) => wc.clock.start = Some(fake_ec2::clock::iso_seconds(ms + 999)),
            // A scaled clock runs ahead of every client's wall clock, so comparisons with it
            // cannot all be right: a fixed start in the past keeps every world time behind the
            // clients'. `LaunchTime`, which clients age against their own clock (Karpenter's 30 s
            // grace before collecting an instance it has no NodeClaim for), fake-ec2 gives on the
            // wall clock on a scaled world (`Clock::clients_now`). On the real clock the world
            // starts at the wall clock's now. Prices count from the start either way.
            None if self.clock_factor != 1.0 => {
                wc.clock.start.get_or_insert_with(|| FIXED_START.to_owned());
            }
            None => {}
        }
        let mut cloud = Cloud::new(wc, self.seed, self.path.parent().unwrap_or(Path::new(".")))?;
        cloud.events.set_log_budget(HARNESS_LOG_BUDGET_BYTES);
        Ok(cloud)
    }

    /// The state file at `path` for worlds of this recipe (`serve --state-file`).
    pub fn state_file(&self, path: PathBuf) -> anyhow::Result<StateFile> {
        let identity = fake_ec2::persist::identity(&self.path, self.seed)
            .with_context(|| format!("reading world {}", self.path.display()))?;
        Ok(StateFile::new(path, identity))
    }
}

fn scaled_clock(text: &str, factor: f64) -> String {
    text.replace("mode: real", "mode: scaled").replace("factor: 1\n", &format!("factor: {factor}\n"))
}
