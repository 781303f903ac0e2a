//! What a controller's reconcile can fail with; every variant keeps what caused it.

use std::time::Duration;

use crate::cloud::CloudError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("cloud provider: {0}")]
    Cloud(#[from] CloudError),
    /// The Launched condition is true but the status names no instance.
    #[error("nodeclaim {0} launched without a providerID")]
    MissingProviderId(String),
    #[error("nodepool {0} vanished")]
    NodePoolNotFound(String),
    /// Disruption's replacements did not come up; the candidates stay tainted.
    #[error("replacement nodeclaim(s) {names:?} did not initialize in {timeout:?}; candidates left tainted")]
    ReplacementsNotInitialized { names: Vec<String>, timeout: Duration },
}
