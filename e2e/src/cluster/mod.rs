//! Kubernetes clusters to run against: `local` (kwokctl's binary runtime, no Docker; the default),
//! `kind` (where a Docker engine runs) and `kubeconfig:<file>` (a cluster the user already has).
//! Either way a real kube-apiserver, scheduler and controller-manager, with kwok playing the
//! kubelet for fake-ec2's Nodes.

pub mod kind;
pub mod kubeconfig;
pub mod local;

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Kind,
    /// `kubeconfig:<file>`: an existing cluster ([`kubeconfig`]).
    Kubeconfig(kubeconfig::Existing),
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Kind => "kind",
            Backend::Kubeconfig(_) => "kubeconfig",
        }
    }

    /// `local`, `kind` or `kubeconfig:<file>` (a command-line value).
    pub fn parse(s: &str) -> Result<Backend, String> {
        match (s, s.strip_prefix("kubeconfig:")) {
            ("local", _) => Ok(Backend::Local),
            ("kind", _) => Ok(Backend::Kind),
            (_, Some(file)) => kubeconfig::Existing::parse(file).map(Backend::Kubeconfig),
            _ => Err(format!("unknown backend `{s}`: local, kind or kubeconfig:<file>")),
        }
    }

    /// This backend, with `--allow-real-nodes` as given (only an existing cluster can have real ones).
    pub fn with_real_nodes_allowed(self, allow: bool) -> Backend {
        match self {
            Backend::Kubeconfig(e) => Backend::Kubeconfig(kubeconfig::Existing { allow_real_nodes: allow, ..e }),
            other => other,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Kubeconfig(e) => write!(f, "kubeconfig:{}", e.kubeconfig.display()),
            other => f.write_str(other.name()),
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
    /// An existing cluster (`kubeconfig:<file>`) refused, unreachable or not cleaned up.
    #[error("kubeconfig backend ({kubeconfig}): {message}")]
    Existing { kubeconfig: String, message: String },
}

/// A running cluster, deleted when dropped (normal exit, failure or panic).
#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    pub backend: Backend,
    pub kubeconfig: PathBuf,
    repo_root: PathBuf,
    keep: bool,
    /// What a run adds to an existing cluster (`kubeconfig:` backend only), deleted on teardown.
    attached: Option<Box<kubeconfig::Attached>>,
}

impl Cluster {
    pub fn up(backend: Backend, repo_root: &Path, name: Option<&str>) -> Result<Self, ClusterError> {
        match backend {
            Backend::Local => local::up(repo_root, name),
            Backend::Kind => kind::up(repo_root, name),
            Backend::Kubeconfig(existing) => kubeconfig::up(repo_root, existing),
        }
    }

    /// Why this backend cannot run on this machine (one line), if it cannot.
    pub fn unavailable(backend: Backend) -> Option<String> {
        match backend {
            Backend::Local => None,
            Backend::Kind => kind::unavailable(),
            // The user's own cluster: one that cannot be reached is a failure, not a missing capability.
            Backend::Kubeconfig(_) => None,
        }
    }

    /// The local backend's processes, by component (kube-apiserver, etcd, ...), from kwokctl's
    /// pid files beside the kubeconfig; nothing for the other backends.
    pub fn component_pids(&self) -> Vec<(String, u32)> {
        if self.backend != Backend::Local {
            return Vec::new();
        }
        let Some(dir) = self.kubeconfig.parent().map(|d| d.join("pids")) else { return Vec::new() };
        let mut pids: Vec<(String, u32)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().strip_suffix(".pid")?.to_owned();
                let pid = std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
                Some((name, pid))
            })
            .collect();
        pids.sort();
        pids
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

    /// Labels an object about to be applied and remembers it, on an existing cluster (where
    /// teardown deletes exactly what the run created); nothing otherwise.
    pub fn mark(&self, obj: &mut kube::api::DynamicObject, resource: &kube::api::ApiResource, namespace: Option<&str>) {
        if let Some(attached) = &self.attached {
            attached.mark(obj, resource, namespace);
        }
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
            Backend::Kubeconfig(_) => Err(ClusterError::Unsupported {
                what: "restarting the API server",
                backend: "kubeconfig",
                hint: "the harness does not own that cluster's control plane; run the scenario on the local backend",
            }),
        }
    }

    /// Deletes the cluster; on an existing one, what the run added to it.
    pub fn down(&self) -> Result<(), ClusterError> {
        match (self.backend, &self.attached) {
            (Backend::Kubeconfig(_), Some(attached)) => kubeconfig::detach(&self.kubeconfig, attached),
            (Backend::Kubeconfig(_), None) => Ok(()),
            (Backend::Local, _) => local::down(&self.repo_root, &self.name),
            (Backend::Kind, _) => kind::down(&self.name),
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
