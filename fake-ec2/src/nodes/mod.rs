//! fake-ec2 as kubelet and cloud controller: instances that reach `running` become Nodes (after a
//! registration delay), stopped instances' Nodes go NotReady, terminated instances' Nodes are
//! deleted, and Nodes whose instance is gone are removed on start-up and ever after.
//! The kwok controller (annotation `kwok.x-k8s.io/node: fake`) plays the kubelet for them.

pub mod desired;
mod diff;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Api, Client};
use serde_json::json;
use tracing::{info, warn};
use userdata::{Family, NodeRegistration};

use crate::server::AppState;
use crate::world::instances::InstanceState;
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

/// What one pass changed, for logs and tests (each list sorted by Node name).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub created: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub deleted: Vec<String>,
}

/// Writes in flight at once: enough for hundreds of registrations a second, few enough not to
/// crowd the API server's in-flight limit.
const CONCURRENT_WRITES: usize = 16;

/// Keeps Nodes in step with instances until the task is dropped. The Nodes come from a watch
/// (a LIST of 1,000 Nodes four times a second would be most of the API server's work); each pass
/// compares them with the world and writes the differences, several at a time.
pub async fn run(state: AppState, client: Client) {
    let api: Api<Node> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    let stream = watcher(api.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let watch = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                warn!(error = %e, "node watch failed; retrying with back-off");
            }
        }
    });
    // Nothing is decided on an empty view: that would create Nodes that exist and miss orphans.
    if store.wait_until_ready().await.is_err() {
        watch.abort();
        return;
    }
    let mut failures = 0u32;
    loop {
        let nodes = store.state();
        let pass = sync(&state, &api, nodes.iter().map(|n| &**n)).await;
        if pass.failed == 0 {
            failures = 0;
        } else {
            failures += 1;
            warn!(failed = pass.failed, failures, "node sync: some writes failed; the next pass retries them");
        }
        let pass = pass.done;
        if pass != Pass::default() {
            info!(created = ?pass.created, stopped = ?pass.stopped, restarted = ?pass.restarted, deleted = ?pass.deleted, "nodes synced");
        }
        tokio::time::sleep(Duration::from_millis(if failures == 0 { 250 } else { 1000 })).await;
    }
}

/// One pass against a fresh LIST of the Nodes this process owns (tests, and callers without a
/// watch): compare them with the instances and fix every difference.
pub async fn reconcile(state: &AppState, client: &Client) -> Result<Pass, NodesError> {
    let api: Api<Node> = Api::all(client.clone());
    let owned = api.list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"))).await?;
    let pass = sync(state, &api, owned.items.iter()).await;
    match pass.first_error {
        Some(e) => Err(e),
        None => Ok(pass.done),
    }
}

/// What a pass did, and what it could not.
struct Synced {
    done: Pass,
    failed: usize,
    first_error: Option<NodesError>,
}

async fn sync<'a>(state: &AppState, api: &Api<Node>, nodes: impl Iterator<Item = &'a Node>) -> Synced {
    let by_instance: BTreeMap<String, &Node> = nodes
        .filter_map(|n| {
            let id = n.spec.as_ref()?.provider_id.as_deref().and_then(instance_id)?;
            Some((id.to_owned(), n))
        })
        .collect();
    let view = snapshot(state, &by_instance);
    let plan = diff::plan(&view, &by_instance);
    let view = &view;
    let results: Vec<(diff::Action, Result<bool, NodesError>)> = futures::stream::iter(plan)
        .map(|action| async move {
            let result = apply(api, view, &action).await;
            (action, result)
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await;
    let mut synced = Synced { done: Pass::default(), failed: 0, first_error: None };
    for (action, result) in results {
        match result {
            Ok(true) => action.record(&mut synced.done),
            Ok(false) => {}
            Err(e) => {
                warn!(node = %action.node_name(), error = %e, source = ?std::error::Error::source(&e), "node write failed");
                synced.failed += 1;
                synced.first_error.get_or_insert(e);
            }
        }
    }
    for list in
        [&mut synced.done.created, &mut synced.done.stopped, &mut synced.done.restarted, &mut synced.done.deleted]
    {
        list.sort();
    }
    synced
}

/// The instances a pass looks at: every one not terminated, and terminated ones that still have a
/// Node (an instance stays visible for an hour after termination; cloning those every 250 ms
/// would cost more than the rest of the pass).
fn snapshot(state: &AppState, nodes: &BTreeMap<String, &Node>) -> diff::View {
    let c = state.cloud();
    let w = &c.ec2;
    diff::View {
        now: c.now(),
        delay: w.cfg.lifecycle.node_registration_seconds * 1000,
        region: w.cfg.region.clone(),
        instances: w
            .instances
            .values()
            .filter(|i| i.state != InstanceState::Terminated || nodes.contains_key(&i.id))
            .map(|i| (i.clone(), w.catalog.get(&i.instance_type).cloned()))
            .collect(),
    }
}

/// Carries out one action; Ok(false) when there was nothing to do after all (a Node created by
/// someone else meanwhile).
async fn apply(api: &Api<Node>, view: &diff::View, action: &diff::Action) -> Result<bool, NodesError> {
    let pp = PatchParams::default();
    match action {
        diff::Action::Create { instance, .. } => {
            let Some((inst, Some(t))) = view.instances.get(*instance) else { return Ok(false) };
            let (family, registration) = read_user_data(inst)
                .unwrap_or_else(|e| {
                    // A kubelet with bad config still registers; it just ignores what it cannot read.
                    warn!(instance = %inst.id, error = %e, "user data unreadable; registering with defaults");
                    None
                })
                .unwrap_or((Family::Al2023, NodeRegistration::default()));
            let desired = node_for_family(inst, t, &view.region, family, &registration);
            let status = desired.status.clone();
            match api.create(&PostParams::default(), &desired).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => return Ok(false),
                Err(e) => return Err(e.into()),
            }
            // Status is a subresource: write capacity and allocatable as a kubelet does.
            api.patch_status(&inst.private_dns_name, &pp, &Patch::Merge(json!({ "status": status }))).await?;
        }
        diff::Action::Restart { node } => {
            let patch = json!({"metadata": {"annotations": {KWOK_ANNOTATION: KWOK_MANAGED}}});
            api.patch(node, &pp, &Patch::Merge(patch)).await?;
        }
        diff::Action::Stop { node, instance } => {
            let Some((inst, _)) = view.instances.get(*instance) else { return Ok(false) };
            let patch = json!({"metadata": {"annotations": {KWOK_ANNOTATION: KWOK_STOPPED}}});
            api.patch(node, &pp, &Patch::Merge(patch)).await?;
            let ready = json!({"status": {"conditions": [{
                "type": "Ready", "status": "False", "reason": "KubeletNotReady",
                "message": format!("instance {} is {}", inst.id, inst.state.name()),
                "lastHeartbeatTime": crate::clock::iso_seconds(view.now),
                "lastTransitionTime": crate::clock::iso_seconds(view.now),
            }]}});
            api.patch_status(node, &pp, &Patch::Strategic(ready)).await?;
        }
        diff::Action::Delete { node } => match api.delete(node, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(true)
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
