//! What each step does to the environment: apply, delete, scale, wait, fault, clock, autoscaler
//! kill and start, expect; the chaos steps are in [`super::chaos_steps`].

use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use serde_json::json;

use super::describe::{describe, describe_fault, docs};
use super::expect::{self, describe_wait};
use super::model::{Apply, Fault, Scenario, Step};
use super::observe::Observer;
use crate::env::{Env, wait_for};
use crate::report::timeline::StepRecord;
use crate::report::view::MarkerKind;
use autoscaler::cloud::instance::instance_id_from_provider_id;

pub async fn run_step(
    env: &mut Env,
    observer: &Observer,
    scenario: &Scenario,
    step: &Step,
    rec: &mut StepRecord,
) -> anyhow::Result<()> {
    match step {
        Step::Apply(a) => apply(env, a).await,
        Step::Delete(d) => {
            observer.mark(MarkerKind::Step, format!("delete {} {}", d.kind, d.name));
            delete(env, &d.kind, &d.name, &d.namespace).await
        }
        Step::Scale(s) => {
            observer.mark(MarkerKind::Step, format!("scale {} to {}", s.deployment, s.replicas));
            let api: Api<Deployment> = Api::namespaced(env.kube.clone(), &s.namespace);
            api.patch(&s.deployment, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": s.replicas}})))
                .await
                .with_context(|| format!("scaling deployment {}", s.deployment))?;
            Ok(())
        }
        Step::Wait(w) => {
            let timeout = Duration::from_secs(w.timeout_seconds);
            let last = std::sync::Mutex::new(String::new());
            let what = describe_wait(w).replacen("wait for ", "", 1);
            let r = wait_for(&what, timeout, || async {
                match expect::wait_holds(env, w).await {
                    Ok(Ok(())) => Some(()),
                    Ok(Err(seen)) => {
                        if let Ok(mut l) = last.lock() {
                            *l = seen;
                        }
                        None
                    }
                    Err(_) => None,
                }
            })
            .await;
            r.map_err(|e| {
                let seen = last.lock().map(|l| l.clone()).unwrap_or_default();
                anyhow::anyhow!("{e}; last seen: {seen}")
            })
        }
        Step::Fault(f) => {
            observer.mark(MarkerKind::Fault, describe_fault(f));
            fault(env, f).await
        }
        Step::Clock(c) => {
            observer.mark(MarkerKind::Clock, describe(step));
            if let Some(a) = c.advance_seconds {
                env.admin("clock", json!({"advance_seconds": a})).await?;
            }
            if let Some(f) = c.factor {
                env.admin("clock", json!({"mode": "scaled", "factor": f})).await?;
            }
            Ok(())
        }
        Step::KillAutoscaler => {
            observer.mark(MarkerKind::Autoscaler, "autoscaler killed".into());
            env.kill_autoscaler();
            Ok(())
        }
        Step::StartAutoscaler => {
            observer.mark(MarkerKind::Autoscaler, "autoscaler started".into());
            env.start_autoscaler();
            Ok(())
        }
        Step::RestartFakeEc2(r) => super::chaos_steps::restart_fake_ec2(env, observer, r).await,
        Step::RestartApiserver(r) => super::chaos_steps::restart_apiserver(env, observer, r).await,
        Step::BlackholeAws(b) => super::chaos_steps::blackhole_aws(env, observer, b).await,
        Step::Expect(e) => {
            let (e, because) = e.resolved(env.autoscaler_kind());
            if let Some(why) = because {
                crate::say!("[{}]   {} differs: {why}", scenario.name, env.autoscaler_kind());
                rec.expectations.push(format!("{} differs: {why}", env.autoscaler_kind()));
            }
            let checks = expect::check(env, observer, &e, scenario.clock_factor).await?;
            let mut failed = Vec::new();
            for (what, r) in checks {
                match r {
                    Ok(()) => {
                        crate::say!("[{}]   ok: {what}", scenario.name);
                        rec.expectations.push(format!("ok: {what}"));
                    }
                    Err(seen) => {
                        crate::say!("[{}]   NOT: {what} ({seen})", scenario.name);
                        rec.expectations.push(format!("FAILED: {what}"));
                        failed.push(format!("{what} ({seen})"));
                    }
                }
            }
            if failed.is_empty() { Ok(()) } else { bail!("expectation(s) not met: {}", failed.join("; ")) }
        }
    }
}

async fn apply(env: &Env, a: &Apply) -> anyhow::Result<()> {
    let text = match (&a.fixture, &a.manifest) {
        (Some(f), _) => std::fs::read_to_string(crate::cluster::repo_root().join("fixtures").join(f))
            .with_context(|| format!("reading fixtures/{f}"))?,
        (None, Some(m)) => m.clone(),
        (None, None) => bail!("apply: give `fixture` or `manifest`"),
    };
    let Some(replicas) = a.replicas else { return env.apply(&text).await };
    // JSON is YAML: rewrite each document with the replica count and apply that.
    let mut out = Vec::new();
    for d in docs(&text) {
        let mut v: serde_json::Value = serde_saphyr::from_str(d).context("parsing manifest")?;
        if matches!(v["kind"].as_str(), Some("Deployment" | "StatefulSet" | "ReplicaSet")) {
            v["spec"]["replicas"] = json!(replicas);
        }
        out.push(serde_json::to_string(&v)?);
    }
    env.apply(&out.join("\n---\n")).await
}

/// Kinds a scenario may delete, by the kind's name.
fn gvk_of(kind: &str) -> anyhow::Result<GroupVersionKind> {
    let (g, v) = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => ("apps", "v1"),
        "Pod" | "Node" | "ConfigMap" | "Service" => ("", "v1"),
        "PodDisruptionBudget" => ("policy", "v1"),
        "NodePool" | "NodeClaim" => ("karpenter.sh", "v1"),
        "EC2NodeClass" => ("karpenter.k8s.aws", "v1"),
        other => bail!(
            "cannot delete kind {other}: one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Node, ConfigMap, Service, PodDisruptionBudget, NodePool, NodeClaim, EC2NodeClass"
        ),
    };
    Ok(GroupVersionKind::gvk(g, v, kind))
}

async fn delete(env: &Env, kind: &str, name: &str, namespace: &str) -> anyhow::Result<()> {
    let (resource, caps) = pinned_kind(&env.kube, &gvk_of(kind)?).await?;
    let api: Api<DynamicObject> = match caps.scope {
        kube::discovery::Scope::Namespaced => Api::namespaced_with(env.kube.clone(), namespace, &resource),
        kube::discovery::Scope::Cluster => Api::all_with(env.kube.clone(), &resource),
    };
    api.delete(name, &DeleteParams::default()).await.with_context(|| format!("deleting {kind} {name}"))?;
    Ok(())
}

async fn fault(env: &Env, f: &Fault) -> anyhow::Result<()> {
    for p in &f.pools {
        env.admin("pools", serde_json::to_value(p)?).await?;
    }
    if let Some(q) = &f.quotas {
        env.admin("quotas", serde_json::to_value(q)?).await?;
    }
    if let Some(a) = &f.api {
        env.admin("faults", serde_json::to_value(a)?).await?;
    }
    if let Some(t) = &f.fis {
        let path = crate::cluster::repo_root().join("fixtures").join(t);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading fixtures/{t}"))?;
        let template: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("fixtures/{t} is not JSON"))?;
        env.admin("experiments", template).await?;
    }
    if let Some(n) = f.interrupt_spot {
        let ids: Vec<String> = env
            .live_instances()
            .into_iter()
            .filter(|i| i.capacity_type == "spot" && i.state == "running")
            .take(n as usize)
            .map(|i| i.id)
            .collect();
        if ids.len() < n as usize {
            bail!("interrupt_spot: {n} wanted, {} running spot instances", ids.len());
        }
        env.admin("interrupt", json!({"instance_ids": ids})).await?;
    }
    if f.clear_api_faults {
        let resp =
            reqwest::Client::new().delete(format!("{}/_fake/faults", env.fake_ec2.admin_endpoint())).send().await?;
        if !resp.status().is_success() {
            bail!("clearing faults: {}", resp.status());
        }
    }
    Ok(())
}

/// Running pods on Ready nodes as (`app` label, the instance id behind their node).
pub async fn running_pods_by_app(env: &Env) -> anyhow::Result<Vec<(String, String)>> {
    let ready = expect::ready_nodes(env).await?;
    let instance_of: std::collections::BTreeMap<String, String> = env
        .nodes()
        .await?
        .into_iter()
        .filter_map(|n| {
            let id = instance_id_from_provider_id(n.spec.as_ref()?.provider_id.as_deref()?)?.to_owned();
            Some((n.metadata.name?, id))
        })
        .collect();
    Ok(env
        .pods("app")
        .await?
        .iter()
        .filter(|p| expect::is_healthy(p, &ready))
        .filter_map(|p| {
            let app = p.metadata.labels.as_ref()?.get("app")?.clone();
            let node = p.spec.as_ref()?.node_name.clone()?;
            Some((app, instance_of.get(&node).cloned().unwrap_or(node)))
        })
        .collect())
}
