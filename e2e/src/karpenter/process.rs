//! An autoscaler as a child process (upstream Karpenter, or the project's own binary when it is
//! measured apart from the harness), kept running as kubelet keeps a Deployment's pod: a
//! process that exits is started again after a back-off (10 s doubling to 5 min, reset after
//! 10 min of running), a kill is a crash, and nothing outlives its [`Supervisor`]. Its stdout and
//! stderr go to one log file, appended across restarts.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::KarpenterError;
use crate::under_test::Restarts;

/// How often the supervisor looks whether the process has exited.
const EXIT_POLL: Duration = Duration::from_millis(200);

/// One supervised Karpenter: started by [`Supervisor::start`], killed by [`Supervisor::kill`] or
/// drop (SIGKILL, no graceful shutdown, as a crashed pod).
pub struct Supervisor {
    slot: Arc<Mutex<Slot>>,
    task: Option<JoinHandle<()>>,
    log_path: PathBuf,
}

struct Slot {
    child: Option<Child>,
    /// Set by kill: the supervisor starts nothing more.
    stopped: bool,
    starts: u32,
}

/// What the supervisor runs.
#[derive(Clone, Debug)]
pub struct Launch {
    pub binary: PathBuf,
    /// Command-line arguments (Karpenter takes none: its chart configures it through `env`).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
}

impl Supervisor {
    /// Starts the process now (an error when it cannot be started at all) and supervises it,
    /// counting each restart in `restarts`.
    pub fn start(launch: Launch, restarts: Restarts) -> Result<Supervisor, KarpenterError> {
        if let Some(dir) = launch.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| KarpenterError::Log { path: dir.to_path_buf(), source })?;
        }
        let child = spawn(&launch, 1)?;
        let slot = Arc::new(Mutex::new(Slot { child: Some(child), stopped: false, starts: 1 }));
        let log_path = launch.log_path.clone();
        let task = tokio::spawn(supervise(slot.clone(), launch, restarts));
        Ok(Supervisor { slot, task: Some(task), log_path })
    }

    /// Kills the process (SIGKILL) and stops supervising it. Nothing is restarted afterwards.
    pub fn kill(&self) {
        if let Some(mut child) = self.take_for_kill() {
            // SIGKILL now; tokio reaps the process once the Child has gone.
            let _ = child.start_kill();
        }
    }

    /// Kills the process, waits until it has exited and the supervisor has gone.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.take_for_kill() {
            let _ = child.kill().await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn take_for_kill(&self) -> Option<Child> {
        let mut slot = lock(&self.slot);
        slot.stopped = true;
        if let Some(task) = &self.task {
            task.abort();
        }
        slot.child.take()
    }

    /// The running process's id, None between a crash and its restart (or after kill).
    pub fn pid(&self) -> Option<u32> {
        lock(&self.slot).child.as_ref().and_then(Child::id)
    }

    /// How many times the process has been started.
    pub fn starts(&self) -> u32 {
        lock(&self.slot).starts
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic elsewhere while holding the lock leaves the slot consistent (plain fields): go on.
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn spawn(launch: &Launch, start: u32) -> Result<Child, KarpenterError> {
    let log_err = |source| KarpenterError::Log { path: launch.log_path.clone(), source };
    let mut log = File::options().create(true).append(true).open(&launch.log_path).map_err(log_err)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    writeln!(log, "--- spotbench {now}: starting {} (start {start} of this supervisor) ---", launch.binary.display())
        .map_err(log_err)?;
    let stderr = log.try_clone().map_err(log_err)?;
    Command::new(&launch.binary)
        .args(&launch.args)
        // Only what the chart gives the container: nothing of this process's AWS_*, HOME, ... leaks in.
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| KarpenterError::Spawn { binary: launch.binary.clone(), source })
}

/// Restarts the process whenever it exits, until [`Supervisor::kill`].
async fn supervise(slot: Arc<Mutex<Slot>>, launch: Launch, restarts: Restarts) {
    let mut backoff = Duration::from_secs(10);
    let mut started = Instant::now();
    loop {
        let status = loop {
            tokio::time::sleep(EXIT_POLL).await;
            let mut s = lock(&slot);
            let Some(child) = s.child.as_mut() else { return };
            match child.try_wait() {
                Ok(Some(status)) => {
                    s.child = None;
                    break status.to_string();
                }
                Ok(None) => {}
                Err(e) => {
                    s.child = None;
                    break format!("unknown ({e})");
                }
            }
        };
        if started.elapsed() > Duration::from_secs(600) {
            backoff = Duration::from_secs(10);
        }
        tracing::warn!(
            status = %status,
            restart_in_s = backoff.as_secs(),
            log = %launch.log_path.display(),
            binary = %launch.binary.display(),
            "autoscaler process exited; restarting it"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(300));
        let mut s = lock(&slot);
        if s.stopped {
            return;
        }
        s.starts += 1;
        match spawn(&launch, s.starts) {
            Ok(child) => {
                s.child = Some(child);
                restarts.bump();
            }
            Err(e) => {
                tracing::error!(error = %e, binary = %launch.binary.display(), "autoscaler process could not be restarted");
                return;
            }
        }
        started = Instant::now();
    }
}

/// The last `lines` lines of a log file (empty when it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
