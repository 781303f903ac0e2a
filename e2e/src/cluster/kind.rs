//! The kind backend, for laptops and hosted CI with Docker: a kind cluster with the kwok controller
//! installed from its release manifests, managing only Nodes annotated `kwok.x-k8s.io/node=fake`
//! (kwok's default deployment config), the way fake-ec2 registers them.
//! Where no Docker engine answers, it says so in one line and the run reports it as not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Backend, Cluster, ClusterError, tail};

/// kwok's release manifests: the controller and its fast Stages (kwok v0.8.0, as the local backend).
const KWOK_MANIFESTS: [&str; 2] = [
    "https://github.com/kubernetes-sigs/kwok/releases/download/v0.8.0/kwok.yaml",
    "https://github.com/kubernetes-sigs/kwok/releases/download/v0.8.0/stage-fast.yaml",
];
/// The node image matching the local backend's Kubernetes version.
const KIND_NODE_IMAGE: &str = "kindest/node:v1.34.0";

/// Why no Docker engine answers here (one line, `no Docker engine (...)`), if none does: the
/// client's `docker info`, which honours DOCKER_HOST and the current context as testcontainers does.
pub fn docker_unavailable() -> Option<String> {
    match Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output() {
        Err(_) => Some("no Docker engine (no docker command on PATH)".into()),
        Ok(o) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("docker info failed").trim().to_owned();
            Some(format!("no Docker engine ({first})"))
        }
        Ok(_) => None,
    }
}

/// Why kind cannot run here, if it cannot: no Docker engine, or no `kind`.
pub fn unavailable() -> Option<String> {
    if let Some(reason) = docker_unavailable() {
        return Some(reason);
    }
    match Command::new("kind").arg("version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("no kind command on PATH (go install sigs.k8s.io/kind@v0.30.0)".into()),
    }
}

fn run(what: &str, cmd: &mut Command) -> Result<(), ClusterError> {
    let out = cmd.stdout(Stdio::null()).output().map_err(|source| ClusterError::Spawn { what: what.into(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Failed { what: what.into(), code: out.status.code(), stderr_tail: tail(&out.stderr) })
    }
}

fn kubeconfig_path(name: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("spotbench/kind").join(name).join("kubeconfig.yaml")
}

pub fn up(repo_root: &Path, name: Option<&str>) -> Result<Cluster, ClusterError> {
    if let Some(reason) = unavailable() {
        return Err(ClusterError::NotRun { backend: "kind", reason });
    }
    // The process id and a count: clusters of one process running side by side (`--jobs`) differ.
    static CREATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = name.map_or_else(
        || {
            let n = CREATED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            format!("spotbench-{}-{n}", std::process::id())
        },
        str::to_owned,
    );
    let kubeconfig = kubeconfig_path(&name);
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| ClusterError::Spawn { what: dir.display().to_string(), source })?;
    }
    // From here on the handle exists, so any failure below still deletes the cluster.
    let cluster = Cluster {
        name: name.clone(),
        backend: Backend::Kind,
        kubeconfig: kubeconfig.clone(),
        repo_root: repo_root.to_path_buf(),
        keep: false,
        attached: None,
    };
    run(
        "kind create cluster",
        Command::new("kind")
            .args(["create", "cluster", "--name", &name, "--image", KIND_NODE_IMAGE, "--wait", "2m", "--kubeconfig"])
            .arg(&kubeconfig),
    )?;
    let kubectl = |args: &[&str]| {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(&kubeconfig).args(args);
        c
    };
    // The control plane must not take fake pods: keep it for system pods only, as Karpenter's e2e does.
    run(
        "taint the control plane",
        &mut kubectl(&["taint", "nodes", "--all", "CriticalAddonsOnly=true:NoSchedule", "--overwrite"]),
    )?;
    for m in KWOK_MANIFESTS {
        run(&format!("kubectl apply -f {m}"), &mut kubectl(&["apply", "-f", m]))?;
    }
    // kwok itself must still run on the (tainted) control plane.
    let toleration = r#"[{"op":"add","path":"/spec/template/spec/tolerations","value":[{"key":"CriticalAddonsOnly","operator":"Exists"}]}]"#;
    run(
        "let kwok tolerate the control-plane taint",
        &mut kubectl(&["-n", "kube-system", "patch", "deployment", "kwok-controller", "--type=json", "-p", toleration]),
    )?;
    run(
        "wait for the kwok controller",
        &mut kubectl(&["-n", "kube-system", "rollout", "status", "deployment/kwok-controller", "--timeout=120s"]),
    )?;
    Ok(cluster)
}

pub fn down(name: &str) -> Result<(), ClusterError> {
    run("kind delete cluster", Command::new("kind").args(["delete", "cluster", "--name", name]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_why_it_cannot_run_in_one_line() {
        // On machines without a Docker engine (CI here) this names the reason; with one, nothing.
        if let Some(reason) = super::unavailable() {
            assert!(!reason.contains('\n') && !reason.is_empty());
            let err = super::up(std::path::Path::new("."), None).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.starts_with("kind backend not run: "), "{err}");
        }
    }
}
