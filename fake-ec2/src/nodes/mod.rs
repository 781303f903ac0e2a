//! fake-ec2 as kubelet and cloud controller: instances that reach `running` become Nodes (after a
//! registration delay), stopped instances' Nodes go NotReady, terminated instances' Nodes are
//! deleted, and Nodes whose instance is gone are removed on start-up and ever after.
//! The kwok controller (annotation `kwok.x-k8s.io/node: fake`) plays the kubelet for them.

pub mod desired;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;
use tracing::{info, warn};
use userdata::{Family, NodeRegistration};

use crate::clock::Millis;
use crate::server::AppState;
use crate::world::instances::{Instance, InstanceState};
use desired::{
    KWOK_ANNOTATION, KWOK_MANAGED, KWOK_STOPPED, MANAGED_BY, MANAGED_BY_LABEL, instance_id, node_for_family,
    read_user_data,
};

#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("failed to read kubeconfig {0}")]
    Kubeconfig(String, #[source] kube::config::KubeconfigError),
    #[error("failed to build a Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("Kubernetes API call failed")]
    Api(#[from] kube::Error),
    #[error("kubeconfig {0} names no cluster with a server")]
    NoCluster(String),
}

pub async fn client_from(path: &Path) -> Result<Client, NodesError> {
    let kc = Kubeconfig::read_from(path).map_err(|e| NodesError::Kubeconfig(path.display().to_string(), e))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| NodesError::Kubeconfig(path.display().to_string(), e))?;
    Client::try_from(cfg).map_err(NodesError::Client)
}

/// The API server a kubeconfig's current context points at: its URL, and its CA bundle (base64
/// PEM, as EKS's `certificateAuthority.data` carries it) when the kubeconfig has one.
pub fn api_server(path: &Path) -> Result<(String, Option<String>), NodesError> {
    use base64::Engine;
    let kc = Kubeconfig::read_from(path).map_err(|e| NodesError::Kubeconfig(path.display().to_string(), e))?;
    let context = kc.current_context.as_deref().and_then(|name| kc.contexts.iter().find(|c| c.name == name));
    let cluster_name = context.and_then(|c| c.context.as_ref()).map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| cluster_name.as_ref().is_none_or(|n| *n == c.name))
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| NodesError::NoCluster(path.display().to_string()))?;
    let server = cluster.server.clone().ok_or_else(|| NodesError::NoCluster(path.display().to_string()))?;
    let ca = cluster.certificate_authority_data.clone().or_else(|| {
        let file = cluster.certificate_authority.as_ref()?;
        let pem = std::fs::read(path.parent().unwrap_or(Path::new(".")).join(file)).ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(pem))
    });
    Ok((server, ca))
}

/// What one pass changed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub created: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub deleted: Vec<String>,
}

/// Keeps Nodes in step with instances until the task is dropped.
pub async fn run(state: AppState, client: Client) {
    let mut failures = 0u32;
    loop {
        match reconcile(&state, &client).await {
            Ok(pass) => {
                failures = 0;
                if pass != Pass::default() {
                    info!(created = ?pass.created, stopped = ?pass.stopped, restarted = ?pass.restarted, deleted = ?pass.deleted, "nodes synced");
                }
            }
            Err(e) => {
                failures += 1;
                warn!(error = %e, source = ?std::error::Error::source(&e), failures, "node sync failed; retrying");
            }
        }
        tokio::time::sleep(Duration::from_millis(if failures == 0 { 250 } else { 1000 })).await;
    }
}

struct Snapshot {
    now: Millis,
    delay: Millis,
    region: String,
    instances: Vec<(Instance, Option<crate::world::catalog::InstanceType>)>,
}

fn snapshot(state: &AppState) -> Snapshot {
    let c = state.cloud();
    let w = &c.ec2;
    Snapshot {
        now: c.now(),
        delay: w.cfg.lifecycle.node_registration_seconds * 1000,
        region: w.cfg.region.clone(),
        instances: w.instances.values().map(|i| (i.clone(), w.catalog.get(&i.instance_type).cloned())).collect(),
    }
}

fn annotation(n: &Node) -> Option<&str> {
    n.metadata.annotations.as_ref()?.get(KWOK_ANNOTATION).map(String::as_str)
}

/// One pass: compare instances with the Nodes this process owns and fix every difference.
pub async fn reconcile(state: &AppState, client: &Client) -> Result<Pass, NodesError> {
    let snap = snapshot(state);
    let api: Api<Node> = Api::all(client.clone());
    let owned = api.list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"))).await?;
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for n in owned.items {
        let id = n.spec.as_ref().and_then(|s| s.provider_id.as_deref()).and_then(instance_id).map(str::to_owned);
        if let Some(id) = id {
            nodes.insert(id, n);
        }
    }
    let mut pass = Pass::default();
    let pp = PatchParams::default();
    for (inst, itype) in &snap.instances {
        let node = nodes.remove(&inst.id);
        let name = inst.private_dns_name.clone();
        match (inst.state, node) {
            (InstanceState::Running, None) => {
                let due = inst.running_since.is_some_and(|t| snap.now >= t + snap.delay);
                let Some(t) = itype.as_ref().filter(|_| due) else { continue };
                let (family, registration) = read_user_data(inst)
                    .unwrap_or_else(|e| {
                        // A kubelet with bad config still registers; it just ignores what it cannot read.
                        warn!(instance = %inst.id, error = %e, "user data unreadable; registering with defaults");
                        None
                    })
                    .unwrap_or((Family::Al2023, NodeRegistration::default()));
                let desired = node_for_family(inst, t, &snap.region, family, &registration);
                let status = desired.status.clone();
                match api.create(&PostParams::default(), &desired).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e.into()),
                }
                // Status is a subresource: write capacity and allocatable as a kubelet does.
                api.patch_status(&name, &pp, &Patch::Merge(json!({ "status": status }))).await?;
                pass.created.push(name);
            }
            (InstanceState::Running, Some(n)) if annotation(&n) == Some(KWOK_STOPPED) => {
                let patch = json!({"metadata": {"annotations": {KWOK_ANNOTATION: KWOK_MANAGED}}});
                api.patch(&name, &pp, &Patch::Merge(patch)).await?;
                pass.restarted.push(name);
            }
            (InstanceState::Stopping | InstanceState::Stopped, Some(n)) if annotation(&n) != Some(KWOK_STOPPED) => {
                let patch = json!({"metadata": {"annotations": {KWOK_ANNOTATION: KWOK_STOPPED}}});
                api.patch(&name, &pp, &Patch::Merge(patch)).await?;
                let ready = json!({"status": {"conditions": [{
                    "type": "Ready", "status": "False", "reason": "KubeletNotReady",
                    "message": format!("instance {} is {}", inst.id, inst.state.name()),
                    "lastHeartbeatTime": crate::clock::iso_seconds(snap.now),
                    "lastTransitionTime": crate::clock::iso_seconds(snap.now),
                }]}});
                api.patch_status(&name, &pp, &Patch::Strategic(ready)).await?;
                pass.stopped.push(name);
            }
            (InstanceState::ShuttingDown | InstanceState::Terminated, Some(_)) => {
                delete(&api, &name).await?;
                pass.deleted.push(name);
            }
            (_, Some(_)) | (_, None) => {}
        }
    }
    // Nodes whose instance no longer exists (expunged, or from before a restart).
    for (_, n) in nodes {
        if let Some(name) = n.metadata.name {
            delete(&api, &name).await?;
            pass.deleted.push(name);
        }
    }
    Ok(pass)
}

async fn delete(api: &Api<Node>, name: &str) -> Result<(), NodesError> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_current_contexts_api_server_and_ca() {
        let dir = std::env::temp_dir().join(format!("fake-ec2-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        std::fs::write(dir.join("ca.crt"), "PEM").unwrap_or_else(|e| unreachable!("{e}"));
        let kc = dir.join("kubeconfig");
        let text = "apiVersion: v1\nkind: Config\ncurrent-context: b\n\
                    clusters:\n- name: a\n  cluster: {server: 'https://a:1', certificate-authority-data: QUE=}\n\
                    - name: b\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority: ca.crt}\n\
                    contexts:\n- name: a\n  context: {cluster: a, user: u}\n- name: b\n  context: {cluster: b, user: u}\n\
                    users:\n- name: u\n  user: {token: t}\n";
        std::fs::write(&kc, text).unwrap_or_else(|e| unreachable!("{e}"));
        let got = api_server(&kc).ok();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, Some(("https://127.0.0.1:6443".to_owned(), Some("UEVN".to_owned()))));
    }
}
