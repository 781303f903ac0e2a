//! Issue 6 on the local control plane: interruption messages from fake-ec2's EventBridge (or
//! straight into the queue) reach the autoscaler through SQS, and the node goes the way Karpenter
//! takes it: replacement first, drain through the Eviction API within the PodDisruptionBudget,
//! instance terminated, finalizers released.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::env::{Env, EnvConfig, INTERRUPTION_QUEUE, metric, running, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const APP: &str = "app=web";
const REPLICAS: usize = 3;
const MIN_AVAILABLE: usize = 2;

/// Slower than the default 10×: the 2-minute notice takes 24 s, room for a replacement to boot
/// and a PDB-paced drain, while boot and registration still take seconds.
fn config() -> EnvConfig {
    EnvConfig { clock_factor: 5.0, ..EnvConfig::with_interruption_queue() }
}

/// One spot node running the PDB-protected workload.
struct Scene {
    env: Env,
    instance_id: String,
    node: String,
}

async fn scene(cfg: EnvConfig) -> Scene {
    let env = Env::start(cfg).await.expect("environment");
    env.apply_fixture("nodepools/ec2nodeclass-default.yaml").await.unwrap();
    env.apply_fixture("nodepools/spot.yaml").await.unwrap();
    env.apply_fixture("workloads/web-pdb.yaml").await.unwrap();
    let nodes = wait_for("3 web pods Running", WAIT, || async {
        let pods = env.pods(APP).await.ok()?;
        let r = running(&pods);
        let nodes: BTreeSet<String> = r.iter().map(|(_, n)| n.to_string()).collect();
        (pods.len() == REPLICAS && r.len() == REPLICAS).then_some(nodes)
    })
    .await
    .unwrap();
    assert_eq!(nodes.len(), 1, "one node: {nodes:?}");
    let instances = env.live_instances();
    assert_eq!(instances.len(), 1, "{instances:?}");
    let instance_id = instances[0].id.clone();
    let node = nodes.into_iter().next().unwrap();
    Scene { env, instance_id, node }
}

/// Watches the workload's pods and keeps the fewest available (Running, Ready, not terminating)
/// seen at any event.
/// A watch error fails the test: a watcher that stopped would let "no budget violated" hold
/// without watching anything.
struct Availability {
    min: Arc<AtomicUsize>,
    failure: Arc<std::sync::Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Availability {
    fn watch(env: &Env) -> Availability {
        let min = Arc::new(AtomicUsize::new(usize::MAX));
        let api: Api<Pod> = Api::namespaced(env.kube.clone(), "default");
        let seen = min.clone();
        let failure = Arc::new(std::sync::Mutex::new(None));
        let failed = failure.clone();
        let task = tokio::spawn(async move {
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let mut init: BTreeMap<String, Pod> = BTreeMap::new();
            let mut ready = false;
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default().labels(APP)).default_backoff());
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
                        return;
                    }
                };
                match ev {
                    watcher::Event::Init => init.clear(),
                    watcher::Event::InitApply(p) => {
                        init.insert(p.name_any(), p);
                    }
                    watcher::Event::InitDone => {
                        pods = std::mem::take(&mut init);
                        ready = true;
                    }
                    watcher::Event::Apply(p) => {
                        pods.insert(p.name_any(), p);
                    }
                    watcher::Event::Delete(p) => {
                        pods.remove(&p.name_any());
                    }
                }
                if ready {
                    seen.fetch_min(pods.values().filter(|p| available(p)).count(), Ordering::SeqCst);
                }
            }
            *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some("the watch stream ended".into());
        });
        Availability { min, failure, task }
    }

    /// The fewest available pods seen; panics when the watch failed or ended.
    fn min(&self) -> usize {
        if let Some(e) = self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            panic!("the pod watcher failed, so availability was not watched: {e}");
        }
        self.min.load(Ordering::SeqCst)
    }
}

impl Drop for Availability {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn available(p: &Pod) -> bool {
    let status = p.status.as_ref();
    p.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_none_or(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The workload runs again, all of it on nodes other than `old`; returns the new node names.
async fn rescheduled_off(env: &Env, old: &str) -> BTreeSet<String> {
    wait_for(&format!("every web pod Running off {old}"), WAIT, || async {
        let pods = env.pods(APP).await.ok()?;
        let r = running(&pods);
        let on: BTreeSet<String> = r.iter().map(|(_, n)| n.to_string()).collect();
        (pods.len() == REPLICAS && r.len() == REPLICAS && !on.contains(old)).then_some(on)
    })
    .await
    .unwrap()
}

/// The end state Karpenter's restart safety promises: the old node, NodeClaim and instance gone,
/// nothing left deleting (no stuck finalizer), and live instances and NodeClaims one to one.
async fn settled_without(env: &Env, old_node: &str, old_instance: &str) {
    wait_for("old node, NodeClaim and instance gone; claims and instances one to one", WAIT, || async {
        let nodes = env.nodes().await.ok()?;
        let claims = env.node_claims().await.ok()?;
        if nodes.iter().any(|n| n.name_any() == old_node || n.metadata.deletion_timestamp.is_some()) {
            return None;
        }
        if claims.iter().any(|c| c.metadata.deletion_timestamp.is_some()) {
            return None;
        }
        let claimed: BTreeSet<String> = claims
            .iter()
            .filter_map(|c| c.status.as_ref()?.provider_id.as_deref())
            .filter_map(autoscaler::cloud::instance_id_from_provider_id)
            .map(str::to_owned)
            .collect();
        let live: BTreeSet<String> = env
            .live_instances()
            .into_iter()
            .filter(|i| i.state == "pending" || i.state == "running")
            .map(|i| i.id)
            .collect();
        (!live.contains(old_instance) && !claimed.contains(old_instance) && live == claimed && !live.is_empty())
            .then_some(())
    })
    .await
    .unwrap();
}

fn instance_state(env: &Env, id: &str) -> String {
    env.fake.cloud().ec2.instance(id).map(|i| i.state.name().to_owned()).unwrap_or_default()
}

/// The world time the interrupted instance is reclaimed at.
fn reclaim_at(env: &Env, id: &str) -> i64 {
    env.fake.cloud().ec2.instance(id).and_then(|i| i.interruption_at).expect("instance being interrupted")
}

async fn interrupt(env: &Env, id: &str) -> i64 {
    env.admin("interrupt", json!({"instance_ids": [id]})).await.unwrap();
    reclaim_at(env, id)
}

/// The spot interruption test body, on whichever queue the environment uses.
async fn spot_interruption_replaces_before_reclaim(s: Scene) {
    let Scene { env, instance_id, node } = s;
    let availability = Availability::watch(&env);
    wait_for("the watch sees every pod", WAIT, || async { (availability.min() == REPLICAS).then_some(()) })
        .await
        .unwrap();
    let reclaim = interrupt(&env, &instance_id).await;
    let new_nodes = rescheduled_off(&env, &node).await;
    let done_at = env.world_now_ms();
    assert!(
        done_at < reclaim,
        "every pod Running on the replacement {:.1} world seconds before the reclaim",
        (reclaim - done_at) as f64 / 1000.0
    );
    let ready = env.nodes().await.unwrap().into_iter().filter(|n| new_nodes.contains(&n.name_any())).all(|n| {
        n.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True")
    });
    assert!(ready, "the replacement node is Ready");
    settled_without(&env, &node, &instance_id).await;
    assert!(
        availability.min() >= MIN_AVAILABLE,
        "the PodDisruptionBudget held: at least {MIN_AVAILABLE} available throughout, saw {}",
        availability.min()
    );
    assert!(env.events_with_reason("SpotInterrupted").await.unwrap() >= 1);
    assert!(env.events_with_reason("TerminatingOnInterruption").await.unwrap() >= 1);
    // The autoscaler terminated the instance after the drain, before EC2 reclaimed it.
    assert_ne!(instance_state(&env, &instance_id), "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_interruption_warning_replaces_the_node_before_the_reclaim() {
    spot_interruption_replaces_before_reclaim(scene(config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_change_terminated_drains_and_replaces() {
    let Scene { env, instance_id, node } = scene(config()).await;
    env.aws.ec2.terminate_instances().instance_ids(&instance_id).send().await.unwrap();
    rescheduled_off(&env, &node).await;
    settled_without(&env, &node, &instance_id).await;
    assert!(env.events_with_reason("InstanceTerminating").await.unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_scheduled_change_drains_and_replaces() {
    let Scene { env, instance_id, node } = scene(config()).await;
    // Retirement an hour out: the autoscaler acts on the notice, not on the retirement.
    env.admin(
        "health-event",
        json!({"instance_ids": [instance_id], "event_type_code": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "start_in_seconds": 3600}),
    )
    .await
    .unwrap();
    rescheduled_off(&env, &node).await;
    settled_without(&env, &node, &instance_id).await;
    assert!(env.events_with_reason("InstanceUnhealthy").await.unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_recommendation_is_only_an_event() {
    let Scene { env, instance_id, node } = scene(config()).await;
    // The recommendation now, the warning ten world hours later (never, within this test).
    env.admin("interrupt", json!({"instance_ids": [instance_id], "notice_seconds": 120, "duration_seconds": 36000}))
        .await
        .unwrap();
    wait_for("a SpotRebalanceRecommendation event", WAIT, || async {
        (env.events_with_reason("SpotRebalanceRecommendation").await.ok()? >= 1).then_some(())
    })
    .await
    .unwrap();
    wait_for("the rebalance message deleted", WAIT, || async {
        (env.queue_depth(INTERRUPTION_QUEUE) == 0).then_some(())
    })
    .await
    .unwrap();
    let claims = env.node_claims().await.unwrap();
    assert_eq!(claims.len(), 1);
    assert!(claims[0].metadata.deletion_timestamp.is_none(), "the NodeClaim is not deleted");
    let nodes = env.nodes().await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.name_any()).collect::<Vec<_>>(), [node]);
    assert!(nodes[0].spec.as_ref().unwrap().taints.iter().flatten().all(|t| t.key != "karpenter.sh/disrupted"));
    assert_eq!(instance_state(&env, &instance_id), "running");
    assert_eq!(env.events_with_reason("TerminatingOnInterruption").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_deleted_and_the_queue_keeps_flowing() {
    let s = scene(config()).await;
    let url = s.env.aws.sqs.get_queue_url().queue_name(INTERRUPTION_QUEUE).send().await.unwrap().queue_url.unwrap();
    for body in [
        "not json",
        "{}",
        r#"{"version":"0","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","time":"2026-01-01T00:00:00Z","detail":{}}"#,
    ] {
        s.env.aws.sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    wait_for("the malformed messages deleted", WAIT, || async {
        (s.env.queue_depth(INTERRUPTION_QUEUE) == 0).then_some(())
    })
    .await
    .unwrap();
    let metrics = s.env.metrics().await.unwrap();
    for name in ["received", "deleted"] {
        let sample = format!("karpenter_interruption_{name}_messages_total{{message_type=\"unparseable\"}}");
        assert_eq!(metric(&metrics, &sample), Some(3.0), "{sample} in\n{metrics}");
    }
    // A real interruption right behind them is still handled.
    spot_interruption_replaces_before_reclaim(s).await;
}

/// moto_server as a child process on a free port, killed on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto_server on PATH");
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint };
    wait_for("moto_server listening", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await
    .unwrap();
    moto
}

fn moto_sqs(endpoint: &str) -> aws_sdk_sqs::Client {
    let cfg = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("AKIDE2E", "secret", None, None, "e2e"))
        .build();
    aws_sdk_sqs::Client::from_conf(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_interruption_through_a_queue_on_moto_server() {
    let moto = moto().await;
    let sqs = moto_sqs(&moto.endpoint);
    let url = sqs
        .create_queue()
        .queue_name(INTERRUPTION_QUEUE)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod, "300")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let s = scene(EnvConfig { sqs_endpoint: Some(moto.endpoint.clone()), ..config() }).await;
    // EventBridge now delivers spot warnings to the queue on moto instead of fake-ec2's.
    s.env
        .admin(
            "events/rules",
            json!({"name": "SpotInterruptionRule",
                   "pattern": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
                   "targets": [url]}),
        )
        .await
        .unwrap();
    spot_interruption_replaces_before_reclaim(s).await;
    let left = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = left.attributes.unwrap_or_default();
    let count = |k: aws_sdk_sqs::types::QueueAttributeName| attrs.get(&k).cloned().unwrap_or_default();
    assert_eq!(count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages), "0");
    assert_eq!(count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_killed_mid_interruption_recovers_after_restart() {
    let Scene { mut env, instance_id, node } = scene(config()).await;
    let claim = env.node_claims().await.unwrap().into_iter().next().unwrap().name_any();
    interrupt(&env, &instance_id).await;
    // Killed as soon as it acted on the warning: the drain and the termination are still ahead.
    wait_for("the NodeClaim deleting", WAIT, || async {
        let c = env.node_claims().await.ok()?.into_iter().find(|c| c.name_any() == claim)?;
        c.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await
    .unwrap();
    env.kill_autoscaler();
    env.start_autoscaler();
    rescheduled_off(&env, &node).await;
    settled_without(&env, &node, &instance_id).await;
    // Nothing else was drained: the replacement's claim was never deleted.
    let claims = env.node_claims().await.unwrap();
    assert_eq!(claims.len(), 1, "{:?}", claims.iter().map(|c| c.name_any()).collect::<Vec<_>>());
    assert_ne!(claims[0].name_any(), claim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_status_checks_terminate_without_a_drain() {
    let mut cfg = config();
    cfg.autoscaler_args.extend(["--instance-status-interval".to_owned(), "2s".to_owned()]);
    let Scene { env, instance_id, node } = scene(cfg).await;
    let claim = env.node_claims().await.unwrap().into_iter().next().unwrap().name_any();
    env.admin(&format!("instances/{instance_id}/status"), json!({"system_impaired": true})).await.unwrap();
    // (ImpairedSince is world time, already past the 120 s threshold on the autoscaler's clock;
    // the threshold itself is unit-tested.)
    let annotation = wait_for("the NodeClaim deleting with a termination timestamp", WAIT, || async {
        let c = env.node_claims().await.ok()?.into_iter().find(|c| c.name_any() == claim)?;
        c.metadata.deletion_timestamp.as_ref()?;
        c.annotations().get("karpenter.sh/nodeclaim-termination-timestamp").cloned()
    })
    .await
    .unwrap();
    assert!(!annotation.is_empty());
    // Forceful: the instance is terminated with the pods still on its node (a drain would have
    // emptied the node first, paced by the PodDisruptionBudget).
    let left = wait_for("the instance terminating", WAIT, || async {
        let on_node = env
            .pods(APP)
            .await
            .ok()?
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str()))
            .count();
        (instance_state(&env, &instance_id) != "running").then_some(on_node)
    })
    .await
    .unwrap();
    assert_eq!(left, REPLICAS, "every pod still bound to the node when its instance went");
    rescheduled_off(&env, &node).await;
    settled_without(&env, &node, &instance_id).await;
}
