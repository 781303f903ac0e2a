//! The local backend: `e2e/k8s/cluster.sh` (kwokctl `--runtime binary`, every component on
//! 127.0.0.1, binaries built from Go modules and cached by version).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Backend, Cluster, ClusterError, tail};

pub fn up(repo_root: &Path, name: Option<&str>) -> Result<Cluster, ClusterError> {
    let script = repo_root.join("e2e/k8s/cluster.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg("up");
    if let Some(n) = name {
        cmd.arg(n);
    }
    // Progress (and the long first build of the binaries) goes to our stderr as it happens, or,
    // for a scenario running beside others, into its group of lines.
    let grouped = crate::output::buffering();
    let out = cmd
        .stderr(if grouped { Stdio::piped() } else { Stdio::inherit() })
        .output()
        .map_err(|source| ClusterError::Spawn { what: script.display().to_string(), source })?;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        crate::output::line(line);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kubeconfig = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("export KUBECONFIG="))
        .map(|p| p.trim_matches(['"', '\'']).to_owned());
    match (out.status.success(), kubeconfig) {
        (true, Some(kc)) => {
            let kubeconfig = std::path::PathBuf::from(kc);
            // The cluster's name is its directory under the kwok work dir.
            let name = kubeconfig
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Cluster {
                name,
                backend: Backend::Local,
                kubeconfig,
                repo_root: repo_root.to_path_buf(),
                keep: false,
                attached: None,
            })
        }
        _ => Err(ClusterError::Failed {
            what: "cluster.sh up".into(),
            code: out.status.code(),
            stderr_tail: tail(&out.stdout),
        }),
    }
}

pub fn down(repo_root: &Path, name: &str) -> Result<(), ClusterError> {
    let script = repo_root.join("e2e/k8s/cluster.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["down", name])
        .stdout(Stdio::null())
        .output()
        .map_err(|source| ClusterError::Spawn { what: script.display().to_string(), source })?;
    succeeded(&format!("cluster.sh down {name}"), &out)
}

/// Restarts kube-apiserver (and etcd first, with `etcd`) of a local cluster; returns once the API
/// server is ready again.
pub async fn restart_apiserver(repo_root: &Path, name: &str, etcd: bool) -> Result<(), ClusterError> {
    let script = repo_root.join("e2e/k8s/cluster.sh");
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(&script).args(["restart", name]);
    if etcd {
        cmd.arg("--etcd");
    }
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .await
        .map_err(|source| ClusterError::Spawn { what: script.display().to_string(), source })?;
    succeeded(&format!("cluster.sh restart {name}"), &out)
}

/// Ok when the script exited 0, else what failed with the tail of its stderr.
fn succeeded(what: &str, out: &std::process::Output) -> Result<(), ClusterError> {
    if out.status.success() {
        return Ok(());
    }
    Err(ClusterError::Failed { what: what.to_owned(), code: out.status.code(), stderr_tail: tail(&out.stderr) })
}
