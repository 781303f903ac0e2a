//! EC2NodeClass status: the subnets, security groups and AMIs its selectors resolve to, and
//! readiness conditions that say what matched nothing.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::Context;
use crate::apis::common::set_condition;
use crate::apis::ec2nodeclass::conditions as c;
use crate::apis::{EC2NodeClass, EC2NodeClassStatus};

/// Karpenter refreshes node class status every minute and on change.
const REFRESH: Duration = Duration::from_secs(60);

pub async fn run(ctx: Arc<Context>) {
    let mut changed = ctx.state.capacity_changed.clone();
    let mut last: std::collections::BTreeMap<String, (i64, std::time::Instant)> = Default::default();
    loop {
        let now = ctx.clock.now();
        for class in ctx.state.node_classes.state() {
            let name = class.name_any();
            let generation = class.metadata.generation.unwrap_or(0);
            let fresh =
                last.get(&name).is_some_and(|(g, at)| *g == generation && now.saturating_duration_since(*at) < REFRESH);
            let ready = class.status.as_ref().is_some_and(|s| crate::apis::common::is_true(&s.conditions, c::READY));
            if fresh && ready {
                continue;
            }
            match update(&ctx, &class).await {
                Ok(()) => {
                    last.insert(name, (generation, ctx.clock.now()));
                }
                Err(err) => tracing::warn!(EC2NodeClass = %name, error = %err, "updating ec2nodeclass status"),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), changed.changed()).await;
    }
}

/// One pass over one EC2NodeClass: resolve its selectors and write its status when it changed.
pub async fn update(ctx: &Context, class: &EC2NodeClass) -> Result<(), kube::Error> {
    let resolved = ctx.cloud.resolve(class).await;
    let mut status: EC2NodeClassStatus = class.status.clone().unwrap_or_default();
    let before = status.clone();
    let now = ctx.now();
    let generation = class.metadata.generation;
    status.subnets = resolved.subnets.clone();
    status.security_groups = resolved.security_groups.clone();
    status.amis = resolved.amis.clone();
    status.instance_profile = class
        .spec
        .instance_profile
        .clone()
        .or_else(|| class.spec.role.as_ref().map(|_| format!("{}_{}", ctx.options.cluster_name, class.name_any())));
    let checks = [
        (c::SUBNETS_READY, &resolved.subnet_error, "SubnetsNotFound"),
        (c::SECURITY_GROUPS_READY, &resolved.security_group_error, "SecurityGroupsNotFound"),
        (c::AMIS_READY, &resolved.ami_error, "AMINotFound"),
    ];
    let mut all = true;
    let mut messages = Vec::new();
    for (type_, err, reason) in checks {
        let ok = err.is_none();
        all &= ok;
        if let Some(e) = err {
            messages.push(format!("{type_}=False: {e}"));
        }
        set_condition(
            &mut status.conditions,
            type_,
            ok,
            if ok { type_ } else { reason },
            err.as_deref().unwrap_or(""),
            generation,
            now.clone(),
        );
    }
    set_condition(
        &mut status.conditions,
        c::INSTANCE_PROFILE_READY,
        true,
        c::INSTANCE_PROFILE_READY,
        "",
        generation,
        now.clone(),
    );
    set_condition(
        &mut status.conditions,
        c::READY,
        all,
        if all { c::READY } else { "NotReady" },
        &messages.join("; "),
        generation,
        now,
    );
    if status == before {
        return Ok(());
    }
    let api: Api<EC2NodeClass> = Api::all(ctx.client.clone());
    api.patch_status(&class.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    if !all {
        tracing::warn!(EC2NodeClass = %class.name_any(), problems = %messages.join("; "), "ec2nodeclass not ready");
    }
    Ok(())
}
