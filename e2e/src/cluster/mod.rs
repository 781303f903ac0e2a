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
    #[error("{what} is not supported on the {backend} backend yet ({hint})")]
    Unsupported { what: &'static str, backend: &'static str, hint: &'static str },
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

    /// The API server's URL, from the kubeconfig's current context.
    pub fn server_url(&self) -> anyhow::Result<String> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let context = kc.current_context.as_deref().unwrap_or_default();
        let cluster = kc
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.as_str())
            .unwrap_or_default();
        kc.clusters
            .iter()
            .find(|c| c.name == cluster)
            .or(kc.clusters.first())
            .and_then(|c| c.cluster.as_ref()?.server.clone())
            .ok_or_else(|| anyhow::anyhow!("no server URL in {}", self.kubeconfig.display()))
    }

    /// Restarts kube-apiserver (and etcd, with `etcd`): the local backend only for now.
    pub async fn restart_apiserver(&self, etcd: bool) -> Result<(), ClusterError> {
        match self.backend {
            Backend::Local => local::restart_apiserver(&self.repo_root, &self.name, etcd).await,
            Backend::Kind => Err(ClusterError::Unsupported {
                what: "restarting the API server",
                backend: "kind",
                hint: "its control plane runs in a container the harness does not manage; run the scenario on the local backend",
            }),
        }
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

/// The spotbench cache (`make`'s CACHE_DIR): SPOTBENCH_CACHE, else `$XDG_CACHE_HOME/spotbench` or
/// `~/.cache/spotbench`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPOTBENCH_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("spotbench")
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
