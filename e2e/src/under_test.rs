//! The autoscaler under test: the project's own (`spotbench`, run in this process, or its binary
//! as a child process when it is measured) or upstream Karpenter (the unmodified binary, a
//! supervised child process). Either is started, killed like a crashed pod and restarted the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use autoscaler::cloud::AwsClients;
use autoscaler::options::Options;
use tokio::task::JoinHandle;

use crate::karpenter;

/// Which autoscaler an environment runs (`spotbench`, `karpenter` on the command line and in
/// scenario files).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalerKind {
    /// The project's autoscaler (crate `autoscaler`), in this process.
    #[default]
    Spotbench,
    /// Upstream Karpenter (aws/karpenter-provider-aws), the version pinned in e2e/k8s/karpenter.env.
    Karpenter,
}

impl AutoscalerKind {
    pub const ALL: [AutoscalerKind; 2] = [AutoscalerKind::Spotbench, AutoscalerKind::Karpenter];

    pub fn name(self) -> &'static str {
        match self {
            AutoscalerKind::Spotbench => "spotbench",
            AutoscalerKind::Karpenter => "karpenter",
        }
    }
}

impl std::fmt::Display for AutoscalerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How many times the autoscaler under test was restarted by its supervisor after a crash or a
/// failed start (as kubelet restarts a pod), over every start of an environment's autoscaler. A
/// shared handle: the observer reads it to mark each restart.
#[derive(Clone, Debug, Default)]
pub struct Restarts(Arc<AtomicU32>);

impl Restarts {
    pub fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything needed to start (and restart) the autoscaler.
#[derive(Clone)]
pub enum Launcher {
    Spotbench {
        kube: kube::Client,
        aws: AwsClients,
        options: Options,
    },
    /// The project's autoscaler as its own binary, a supervised child process like Karpenter (so
    /// its memory and CPU can be measured apart from the harness and fake-ec2).
    SpotbenchProcess {
        launch: karpenter::Launch,
    },
    Karpenter {
        build: karpenter::Build,
        settings: karpenter::Settings,
        launch: karpenter::Launch,
    },
}

/// A running autoscaler; dropping it kills it.
pub enum Running {
    InProcess(InProcess),
    /// A supervised child process: Karpenter, or the project's binary.
    Child(karpenter::Supervisor),
}

/// The in-process autoscaler's task, aborted when dropped.
pub struct InProcess(Option<JoinHandle<()>>);

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl Launcher {
    pub fn kind(&self) -> AutoscalerKind {
        match self {
            Launcher::Spotbench { .. } | Launcher::SpotbenchProcess { .. } => AutoscalerKind::Spotbench,
            Launcher::Karpenter { .. } => AutoscalerKind::Karpenter,
        }
    }

    /// Starts it; each supervised restart from then on is counted in `restarts`.
    pub fn start(&self, restarts: &Restarts) -> Result<Running, karpenter::KarpenterError> {
        match self {
            Launcher::Spotbench { kube, aws, options } => Ok(Running::InProcess(InProcess(Some(spawn_in_process(
                kube.clone(),
                aws.clone(),
                options.clone(),
                restarts.clone(),
            ))))),
            Launcher::Karpenter { launch, .. } | Launcher::SpotbenchProcess { launch } => {
                Ok(Running::Child(karpenter::Supervisor::start(launch.clone(), restarts.clone())?))
            }
        }
    }
}

impl Running {
    /// Kills it now, as a crash would (no graceful shutdown).
    pub fn kill(self) {
        drop(self);
    }

    /// Kills it and waits until it has gone.
    pub async fn stop(self) {
        match self {
            Running::InProcess(mut in_process) => {
                if let Some(task) = in_process.0.take() {
                    task.abort();
                    let _ = task.await;
                }
            }
            Running::Child(sup) => sup.stop().await,
        }
    }

    /// The child process's id, None in-process or between a crash and its restart.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Running::InProcess(_) => None,
            Running::Child(sup) => sup.pid(),
        }
    }
}

/// The project's autoscaler as its Deployment's pod would run: a failed start (the EC2
/// connectivity check during an outage) is restarted with kubelet's back-off, 10 s doubling to at
/// most 5 minutes.
fn spawn_in_process(kube: kube::Client, aws: AwsClients, options: Options, restarts: Restarts) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(10);
        loop {
            match autoscaler::operator::run(kube.clone(), aws.clone(), options.clone()).await {
                Ok(()) => break,
                Err(err) => tracing::error!(
                    error = %format!("{err:#}"),
                    restart_in_s = backoff.as_secs(),
                    "autoscaler stopped; restarting it"
                ),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(300));
            restarts.bump();
        }
    })
}
