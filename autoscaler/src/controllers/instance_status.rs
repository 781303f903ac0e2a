//! The instance status poller (aws/karpenter-provider-aws `interruption/instancestatus_controller.go`):
//! every minute, DescribeInstanceStatus. Status checks failed for 120 s → forceful termination (the
//! termination deadline set to now, so no drain); a scheduled event → cordon and drain. Works
//! without the interruption queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;
use tracing::{info, warn};

use super::context::Context;
use super::error::Error;
use super::writes::{claim_event, delete_claim};
use crate::apis::NodeClaim;
use crate::apis::labels as l;
use crate::cloud::UnhealthyInstance;

/// Karpenter's `UnhealthyThreshold`.
pub const UNHEALTHY_THRESHOLD: Duration = Duration::from_secs(120);

/// What to do with one instance, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `instance_status` / `system_status`: terminate without draining.
    Forceful(&'static str),
    /// `event_status`: cordon and drain.
    Graceful,
}

/// Decides for one instance; `first_seen` stands in when EC2 gives no `ImpairedSince`.
pub fn verdict(u: &UnhealthyInstance, first_seen: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Verdict> {
    if u.instance_status_impaired || u.system_status_impaired {
        let since = u.impaired_since.or(first_seen).unwrap_or(now);
        if (now - since).to_std().unwrap_or_default() >= UNHEALTHY_THRESHOLD {
            let kind = if u.instance_status_impaired { "instance_status" } else { "system_status" };
            return Some(Verdict::Forceful(kind));
        }
    }
    (!u.scheduled_events.is_empty()).then_some(Verdict::Graceful)
}

pub async fn run(ctx: Arc<Context>) {
    let mut first_seen: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut tick = tokio::time::interval(ctx.options.instance_status_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = reconcile(&ctx, &mut first_seen).await {
            warn!(error = %err, "polling instance status");
        }
    }
}

pub async fn reconcile(ctx: &Context, first_seen: &mut BTreeMap<String, DateTime<Utc>>) -> Result<(), Error> {
    let unhealthy = ctx.cloud.describe_unhealthy().await?;
    let now = ctx.clock.utc_now();
    first_seen.retain(|id, _| unhealthy.iter().any(|u| &u.id == id));
    for u in &unhealthy {
        let seen = *first_seen.entry(u.id.clone()).or_insert(now);
        let Some(verdict) = verdict(u, Some(seen), now) else { continue };
        let Some(claim) = ctx.state.node_claim_by_instance_id(&u.id) else { continue };
        if claim.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let kind = match verdict {
            Verdict::Forceful(kind) => {
                annotate_deadline(ctx, &claim, now).await?;
                kind
            }
            Verdict::Graceful => "event_status",
        };
        delete_claim(ctx, &claim, kind).await?;
        info!(messageKind = kind, NodeClaim = %claim.name_any(), instance_id = %u.id, action = if kind == "event_status" { "CordonAndDrain" } else { "ForcefulTermination" }, "initiating delete from instance status");
        claim_event(
            ctx,
            &claim,
            EventType::Warning,
            "InstanceUnhealthy",
            "An unhealthy warning was triggered for the instance",
        )
        .await;
    }
    Ok(())
}

/// `karpenter.sh/nodeclaim-termination-timestamp=now`: the termination controller skips the drain.
async fn annotate_deadline(ctx: &Context, claim: &NodeClaim, now: DateTime<Utc>) -> Result<(), kube::Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"metadata": {"annotations": {l::TERMINATION_TIMESTAMP: stamp}}});
    api.patch(&claim.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600 + s, 0).unwrap_or_default()
    }

    #[test]
    fn impaired_for_the_threshold_is_forceful() {
        let mut u = UnhealthyInstance { id: "i-1".into(), system_status_impaired: true, ..Default::default() };
        u.impaired_since = Some(at(0));
        assert_eq!(verdict(&u, None, at(119)), None);
        assert_eq!(verdict(&u, None, at(120)), Some(Verdict::Forceful("system_status")));
        u.instance_status_impaired = true;
        assert_eq!(verdict(&u, None, at(500)), Some(Verdict::Forceful("instance_status")));
        // No ImpairedSince: counted from when the poller first saw it.
        u.impaired_since = None;
        assert_eq!(verdict(&u, Some(at(100)), at(200)), None);
        assert_eq!(verdict(&u, Some(at(100)), at(220)), Some(Verdict::Forceful("instance_status")));
    }

    #[test]
    fn scheduled_events_drain_at_once() {
        let u = UnhealthyInstance {
            id: "i-1".into(),
            scheduled_events: vec!["instance-retirement".into()],
            ..Default::default()
        };
        assert_eq!(verdict(&u, None, at(0)), Some(Verdict::Graceful));
        assert_eq!(verdict(&UnhealthyInstance::default(), None, at(0)), None);
    }
}
