//! `serve --state-file F`: the cloud's state ([`CloudState`]) written to `F` as JSON, atomically
//! (a temporary file beside it, then a rename), and read back when fake-ec2 starts again.
//!
//! When it is written:
//! - after every request that changes the cloud (every AWS call but the read-only ones, every
//!   admin POST/DELETE), before its answer is sent: an answered change is on disk;
//! - after a read-only call (`Describe*`, `Get*`, `List*`) only the request-id stream and the
//!   throttle buckets move: those are written at most [`FLUSH_EVERY`] later, and on shutdown.
//!
//! Concurrent requests share writes (group commit): a request whose change an earlier write
//! already covered does not write again. Writes are not `fsync`ed: the file survives fake-ec2
//! being killed (SIGKILL included), not the machine losing power.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::cloud::Shared;
use crate::cloud::snapshot::{CloudState, FORMAT, Identity};

/// How long a read-only call's side effects may wait to be written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading state file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not a fake-ec2 state: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error(
        "state file {path} was written for {theirs}, not for {ours}; start with the same --world and --seed, or remove the state file to start afresh"
    )]
    Mismatch { path: PathBuf, theirs: String, ours: String },
    #[error("state file {path} has format {found}; this fake-ec2 reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("state file {path} does not fit this world: {message}")]
    Restore { path: PathBuf, message: String },
}

/// The world file and seed a cloud was built from, as a state file names them.
pub fn identity(world_path: &Path, seed: u64) -> std::io::Result<Identity> {
    let bytes = std::fs::read(world_path)?;
    Ok(Identity {
        seed,
        world_path: world_path.display().to_string(),
        world_sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

fn describe(i: &Identity) -> String {
    format!("world {} (sha256 {}) with seed {}", i.world_path, &i.world_sha256[..i.world_sha256.len().min(12)], i.seed)
}

/// The state file of a serving fake-ec2.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    identity: Identity,
    /// Requests finished so far (each bumps it once its change is made).
    finished: AtomicU64,
    /// Held while writing; the count of finished requests the last write covered.
    written: Mutex<u64>,
    /// A read-only call moved something not yet written.
    dirty: AtomicBool,
}

impl StateFile {
    pub fn new(path: PathBuf, identity: Identity) -> Self {
        Self { path, identity, finished: AtomicU64::new(0), written: Mutex::new(0), dirty: AtomicBool::new(false) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state file, if there is one, and checks it belongs to this world and seed.
    pub fn load(&self) -> Result<Option<CloudState>, StateError> {
        let path = self.path.clone();
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let format = serde_json::from_slice::<serde_json::Value>(&text)
            .map_err(|source| StateError::Parse { path: path.clone(), source })?
            .get("format")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default() as u32;
        if format != FORMAT {
            return Err(StateError::Format { path, found: format });
        }
        let state: CloudState =
            serde_json::from_slice(&text).map_err(|source| StateError::Parse { path: path.clone(), source })?;
        let (theirs, ours) = (&state.identity, &self.identity);
        if theirs.seed != ours.seed || theirs.world_sha256 != ours.world_sha256 {
            return Err(StateError::Mismatch { path, theirs: describe(theirs), ours: describe(ours) });
        }
        Ok(Some(state))
    }

    /// Restores the state file (if any) into the served cloud; says whether there was one.
    pub fn restore_into(&self, shared: &Shared) -> Result<bool, StateError> {
        let Some(state) = self.load()? else { return Ok(false) };
        let instances = state.ec2.instance_count();
        shared.restore(state).map_err(|message| StateError::Restore { path: self.path.clone(), message })?;
        info!(path = %self.path.display(), instances, "restored the cloud from its state file");
        Ok(true)
    }

    /// After a request: a change is written before the caller answers; a read-only call only
    /// marks the state dirty for the next [`StateFile::flush`].
    pub fn commit(&self, shared: &Shared, read_only: bool) {
        if read_only {
            self.dirty.store(true, Ordering::Release);
            return;
        }
        let mine = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *written >= mine {
            return;
        }
        *written = self.write_locked(shared);
    }

    /// Writes the state if a read-only call moved something since the last write.
    pub fn flush(&self, shared: &Shared) {
        if self.dirty.load(Ordering::Acquire) {
            let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *written = self.write_locked(shared);
        }
    }

    /// Writes now (with `written` held); returns how many finished requests the write covers.
    fn write_locked(&self, shared: &Shared) -> u64 {
        let (state, covered) = {
            let cloud = shared.cloud();
            // Read under the cloud's lock: every request counted has made its change by then.
            let covered = self.finished.load(Ordering::Acquire);
            self.dirty.store(false, Ordering::Release);
            (cloud.snapshot(self.identity.clone()), covered)
        };
        match serde_json::to_vec(&state).map_err(std::io::Error::other).and_then(|b| write_atomic(&self.path, &b)) {
            Ok(()) => {}
            Err(e) => warn!(path = %self.path.display(), error = %e, "could not write the state file"),
        }
        covered
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or a restart after a kill) sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Whether an AWS call only reads (its state changes are the request-id stream and throttle
/// buckets, which may wait for the next flush).
pub fn is_read_only(service: &str, action: &str) -> bool {
    match service {
        "pricing" | "ssm" | "sts" | "eks" => true,
        "sqs" => action.starts_with("Get") || action.starts_with("List"),
        _ => ["Describe", "Get", "List"].iter().any(|p| action.starts_with(p)),
    }
}

#[cfg(test)]
mod tests;
