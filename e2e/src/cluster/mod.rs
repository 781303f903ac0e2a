//! Kubernetes clusters to run against: `local` (kwokctl's binary runtime, no Docker; the default)
//! and `kind` (where a Docker engine runs). Either way a real kube-apiserver, scheduler and
//! controller-manager, with kwok playing the kubelet for fake-ec2's Nodes.

pub mod kind;
pub mod local;

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Local,
    Kind,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Kind => "kind",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The backend cannot run on this machine; the reason is one line for reports.
    #[error("{backend} backend not run: {reason}")]
    NotRun { backend: &'static str, reason: String },
    #[error("failed to start {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed (exit {code:?}): {stderr_tail}")]
    Failed { what: String, code: Option<i32>, stderr_tail: String },
}

/// A running cluster, deleted when dropped (normal exit, failure or panic).
#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    pub backend: Backend,
    pub kubeconfig: PathBuf,
    repo_root: PathBuf,
    keep: bool,
}

impl Cluster {
    pub fn up(backend: Backend, repo_root: &Path, name: Option<&str>) -> Result<Self, ClusterError> {
        match backend {
            Backend::Local => local::up(repo_root, name),
            Backend::Kind => kind::up(repo_root, name),
        }
    }

    /// Why this backend cannot run on this machine (one line), if it cannot.
    pub fn unavailable(backend: Backend) -> Option<String> {
        match backend {
            Backend::Local => None,
            Backend::Kind => kind::unavailable(),
        }
    }

    /// Leaves the cluster running after this handle is dropped (for `e2e up`).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(cfg)?)
    }

    pub fn down(&self) -> Result<(), ClusterError> {
        match self.backend {
            Backend::Local => local::down(&self.repo_root, &self.name),
            Backend::Kind => kind::down(&self.name),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = self.down()
        {
            tracing::warn!(cluster = %self.name, error = %e, "cluster teardown failed");
        }
    }
}

/// The repository root, from this crate's manifest directory (tests) or the working directory.
pub fn repo_root() -> PathBuf {
    let from_manifest = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
    from_manifest.filter(|p| p.join("e2e/k8s/cluster.sh").exists()).unwrap_or_else(|| PathBuf::from("."))
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
