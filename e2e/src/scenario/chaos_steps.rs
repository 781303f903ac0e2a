//! The chaos steps: fake-ec2 restarted (with its state or without), the API server restarted,
//! the AWS endpoint blackholed for a while. Each marks the timeline when it happens.

use super::describe::describe_chaos;
use super::model::{BlackholeAws, RestartApiserver, RestartFakeEc2};
use super::observe::Observer;
use crate::env::Env;
use crate::report::view::MarkerKind;

pub async fn restart_fake_ec2(env: &mut Env, observer: &Observer, r: &RestartFakeEc2) -> anyhow::Result<()> {
    let done = env.fake_ec2.restart(r.keep_state).await?;
    // The world inside was replaced: its event log starts over (or where its state file had it).
    observer.world_replaced();
    observer.mark(
        MarkerKind::Fault,
        format!(
            "{}: {} live instances before, {} after",
            describe_chaos(&super::model::Step::RestartFakeEc2(r.clone())),
            done.instances_before,
            done.instances_after
        ),
    );
    if r.keep_state && done.instances_after != done.instances_before {
        anyhow::bail!(
            "fake-ec2 came back from its state file with {} live instances, not the {} it had",
            done.instances_after,
            done.instances_before
        );
    }
    Ok(())
}

pub async fn restart_apiserver(env: &Env, observer: &Observer, r: &RestartApiserver) -> anyhow::Result<()> {
    observer.mark(MarkerKind::Fault, describe_chaos(&super::model::Step::RestartApiserver(r.clone())));
    env.cluster.restart_apiserver(r.etcd).await?;
    Ok(())
}

pub async fn blackhole_aws(env: &mut Env, observer: &Observer, b: &BlackholeAws) -> anyhow::Result<()> {
    observer.mark(MarkerKind::Fault, describe_chaos(&super::model::Step::BlackholeAws(b.clone())));
    let lifted = observer.clone();
    env.fake_ec2
        .blackhole(b.mode, b.seconds, move |r| {
            let label = match r {
                Ok(c) => format!(
                    "AWS endpoint reachable again ({} connections held unanswered, {} open ones cut so far)",
                    c.held, c.cut
                ),
                Err(e) => format!("AWS endpoint NOT reachable again: {e:#}"),
            };
            tracing::info!(%label, "blackhole lifted");
            lifted.mark(MarkerKind::Fault, label);
        })
        .await
}
