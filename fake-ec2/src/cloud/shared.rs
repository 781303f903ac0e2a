//! The cloud behind its one lock, as the server and its background tasks hold it. Taking the lock
//! applies every timer due by then, so no handler has to remember to.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Cloud;
use crate::requests::RequestLog;

/// A handle on the cloud (and the log of requests answered beside it); clones share them.
#[derive(Clone)]
pub struct Shared {
    cloud: Arc<Mutex<Cloud>>,
    requests: Arc<Mutex<RequestLog>>,
}

impl Shared {
    pub fn new(cloud: Cloud) -> Self {
        Self { cloud: Arc::new(Mutex::new(cloud)), requests: Arc::default() }
    }

    /// The request log. Never taken while the cloud's lock is held.
    pub fn requests(&self) -> MutexGuard<'_, RequestLog> {
        self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a state file's state back (see [`Cloud::restore`]).
    pub fn restore(&self, state: super::snapshot::CloudState) -> Result<(), String> {
        let mut guard = self.cloud.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.restore(state)
    }

    /// Locks the cloud and applies the timers due by now. A panic elsewhere never makes it unusable.
    pub fn cloud(&self) -> CloudGuard<'_> {
        let mut guard = self.cloud.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.sync();
        CloudGuard(guard)
    }
}

/// The locked cloud, up to date with its clock when taken; routes anything the world still holds
/// for the bus when dropped.
pub struct CloudGuard<'a>(MutexGuard<'a, Cloud>);

impl Deref for CloudGuard<'_> {
    type Target = Cloud;

    fn deref(&self) -> &Cloud {
        &self.0
    }
}

impl DerefMut for CloudGuard<'_> {
    fn deref_mut(&mut self) -> &mut Cloud {
        &mut self.0
    }
}

impl Drop for CloudGuard<'_> {
    fn drop(&mut self) {
        self.0.settle();
    }
}
