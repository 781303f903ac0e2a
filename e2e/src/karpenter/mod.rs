//! Upstream Karpenter (aws/karpenter-provider-aws), unmodified, as the autoscaler under test: the
//! build cached by `e2e/k8s/build-karpenter.sh`, its own CRDs, the settings its Helm chart gives
//! ([`settings`]) and the supervised process ([`process`]).

pub mod process;
pub mod settings;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub use process::{Launch, Supervisor, log_tail};
pub use settings::{NAMESPACE, Settings};

#[derive(Debug, thiserror::Error)]
pub enum KarpenterError {
    #[error("failed to run {script}")]
    BuildSpawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("building Karpenter failed (exit {code:?}; its progress is above, `make karpenter-bin` runs it alone)")]
    Build { code: Option<i32> },
    #[error("reading Karpenter's CRDs in {path}")]
    Crds {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a CustomResourceDefinition: {message}")]
    Crd { path: PathBuf, message: String },
    #[error("writing Karpenter's log {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Karpenter's health probe {url} did not answer 200 within {timeout:?}; last lines of {log}:\n{tail}")]
    NotReady { url: String, timeout: Duration, log: String, tail: String },
}

/// A built Karpenter: the controller binary and the CRDs of the same module version.
#[derive(Clone, Debug)]
pub struct Build {
    /// The pinned release, e.g. `v1.14.3`.
    pub version: String,
    pub binary: PathBuf,
    pub crds_dir: PathBuf,
}

impl Build {
    /// Runs `e2e/k8s/build-karpenter.sh`: at once when the pinned version is cached, minutes on a
    /// cold cache (its progress lines go to stderr as they come).
    pub fn locate(repo_root: &Path) -> Result<Build, KarpenterError> {
        let script = repo_root.join("e2e/k8s/build-karpenter.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| KarpenterError::BuildSpawn { script: script.clone(), source })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().last().map(str::trim).filter(|l| !l.is_empty()) {
            Some(path) if out.status.success() => Ok(Build::at(PathBuf::from(path))),
            _ => Err(KarpenterError::Build { code: out.status.code() }),
        }
    }

    /// The build whose binary is `<cache>/karpenter/<version>/bin/controller`.
    pub fn at(binary: PathBuf) -> Build {
        let version_dir = binary.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let version = version_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Build { version, crds_dir: version_dir.join("crds"), binary }
    }

    /// Karpenter's CRDs (NodePool, NodeClaim, EC2NodeClass), in file-name order.
    pub fn crds(&self) -> Result<Vec<CustomResourceDefinition>, KarpenterError> {
        let read_err = |source| KarpenterError::Crds { path: self.crds_dir.clone(), source };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.crds_dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| KarpenterError::Crds { path: path.clone(), source })?;
                serde_saphyr::from_str(&text)
                    .map_err(|e| KarpenterError::Crd { path: path.clone(), message: e.to_string() })
            })
            .collect()
    }
}

/// A TCP port free on every interface now (Karpenter binds its ports on all of them), never one
/// handed out before in this process ([`crate::ports`]).
pub fn free_port() -> std::io::Result<u16> {
    crate::ports::reserve(std::net::Ipv4Addr::UNSPECIFIED.into())
}

/// Waits until `GET http://127.0.0.1:<port>/readyz` answers 200, as the chart's readiness probe.
pub async fn wait_ready(
    http: &reqwest::Client,
    health_probe_port: u16,
    timeout: Duration,
    log: &Path,
) -> Result<(), KarpenterError> {
    let url = format!("http://127.0.0.1:{health_probe_port}/readyz");
    if answers_ready(http, &url, timeout).await {
        return Ok(());
    }
    Err(KarpenterError::NotReady { url, timeout, log: log.display().to_string(), tail: log_tail(log, 30) })
}

/// Whether `GET url` answers a success within `timeout`, asked every 250 ms as a readiness probe
/// would (a refused connection is "not yet").
pub async fn answers_ready(http: &reqwest::Client, url: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        let ok = http.get(url).timeout(Duration::from_secs(5)).send().await.is_ok_and(|r| r.status().is_success());
        if ok {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_build_is_found_from_its_binary_path() {
        let b = Build::at(PathBuf::from("/c/spotbench/karpenter/v1.14.3/bin/controller"));
        assert_eq!(b.version, "v1.14.3");
        assert_eq!(b.crds_dir, PathBuf::from("/c/spotbench/karpenter/v1.14.3/crds"));
    }

    #[test]
    fn crds_load_from_yaml_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("karpenter-crds-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("crds")).unwrap();
        let crd = |plural: &str| {
            format!(
                "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.karpenter.sh\nspec:\n  group: karpenter.sh\n  names: {{kind: X, plural: {plural}}}\n  scope: Cluster\n  versions: []\n"
            )
        };
        std::fs::write(dir.join("crds/b.yaml"), crd("nodepools")).unwrap();
        std::fs::write(dir.join("crds/a.yaml"), crd("nodeclaims")).unwrap();
        std::fs::write(dir.join("crds/notes.txt"), "not a CRD").unwrap();
        let build = Build { version: "v0".into(), binary: dir.join("bin/controller"), crds_dir: dir.join("crds") };
        let names: Vec<String> = build.crds().unwrap().into_iter().filter_map(|c| c.metadata.name).collect();
        assert_eq!(names, ["nodeclaims.karpenter.sh", "nodepools.karpenter.sh"]);
        std::fs::write(dir.join("crds/c.yaml"), "kind: [").unwrap();
        assert!(matches!(build.crds(), Err(KarpenterError::Crd { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
