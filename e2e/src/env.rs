//! One end-to-end environment: a local cluster with the Karpenter CRDs, fake-ec2 serving a world
//! on a scaled clock and playing kubelet for its instances, and the autoscaler under test (the
//! project's, or upstream Karpenter: [`AutoscalerKind`]) running against both through the real SDK
//! clients. Tests and scenarios drive it with manifests and fake-ec2's admin API, and wait on
//! conditions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use autoscaler::cloud::AwsClients;
use autoscaler::options::Options;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use fake_ec2::server::{AppState, Hooks};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use tokio::task::JoinHandle;

use crate::cluster::{Backend, Cluster, repo_root};
use crate::external_sqs::{ExternalSqs, QueueHost};
use crate::karpenter;
pub use crate::under_test::AutoscalerKind;
use crate::under_test::{Launcher, Restarts, Running};

/// How to start an environment.
#[derive(Clone, Debug)]
pub struct EnvConfig {
    /// World file, relative to the repository root.
    pub world: String,
    pub seed: u64,
    /// World seconds per real second (boot, registration, the 2-minute notice run this much faster).
    pub clock_factor: f64,
    /// Extra `autoscaler run` flags, e.g. `--interruption-queue karpenter-interruption`.
    pub autoscaler_args: Vec<String>,
    /// Where the autoscaler's SQS client goes (default: fake-ec2), e.g. a moto_server.
    pub sqs_endpoint: Option<String>,
    /// Where the interruption queue lives: fake-ec2's (default), or an external SQS started for
    /// the run (or already running) that fake-ec2's rules feed and the autoscaler reads.
    pub sqs: QueueHost,
    /// Where the cluster runs: `local` (default) or `kind`; `SPOTBENCH_BACKEND=kind` changes the default.
    pub backend: Backend,
    /// The autoscaler under test (default: the project's). With `karpenter`, `autoscaler_args` still
    /// give the settings both have (interruption queue, batch windows).
    pub autoscaler: AutoscalerKind,
    /// Where Karpenter's log goes, `<dir>/<cluster>-karpenter.log` (default `<cache>/logs`).
    pub log_dir: Option<PathBuf>,
    /// More environment for Karpenter, as its chart's `controller.env` (e.g. `LOG_LEVEL=debug`).
    pub karpenter_env: Vec<(String, String)>,
    /// Where fake-ec2 records every request and answer (`serve --record`), for `fake-ec2 replay`.
    pub record: Option<PathBuf>,
    /// fake-ec2's state file (`serve --state-file`), written after every change: what a
    /// `restart_fake_ec2` with `keep_state` comes back from.
    pub state_file: Option<PathBuf>,
    /// Runs the project's autoscaler as this binary, a child process configured as its Deployment
    /// would be, instead of in this process: `e2e perf` measures its memory and CPU apart.
    pub autoscaler_binary: Option<PathBuf>,
}

/// The backend `SPOTBENCH_BACKEND` names (`local` when unset or unknown).
pub fn default_backend() -> Backend {
    std::env::var("SPOTBENCH_BACKEND").ok().and_then(|b| Backend::parse(&b).ok()).unwrap_or(Backend::Local)
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            world: "fixtures/worlds/default.yaml".to_owned(),
            seed: 1,
            clock_factor: 10.0,
            autoscaler_args: Vec::new(),
            sqs_endpoint: None,
            sqs: QueueHost::BuiltIn,
            backend: default_backend(),
            autoscaler: AutoscalerKind::default(),
            log_dir: None,
            karpenter_env: Vec::new(),
            record: None,
            state_file: None,
            autoscaler_binary: None,
        }
    }
}

impl EnvConfig {
    /// The default world with the autoscaler watching fake-ec2's `karpenter-interruption` queue.
    pub fn with_interruption_queue() -> Self {
        EnvConfig {
            autoscaler_args: vec!["--interruption-queue".to_owned(), INTERRUPTION_QUEUE.to_owned()],
            ..EnvConfig::default()
        }
    }
}

/// The queue the default world's EventBridge rules feed.
pub const INTERRUPTION_QUEUE: &str = "karpenter-interruption";

/// The region, cluster name and credentials every client of the environment uses.
pub const REGION: &str = "us-west-2";
pub const CLUSTER_NAME: &str = "fake-cluster";
const ACCESS_KEY_ID: &str = "AKIDE2E";
const SECRET_ACCESS_KEY: &str = "secret";

/// How long the autoscaler under test gets to answer its readiness probe after a start.
const AUTOSCALER_READY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Env {
    pub cluster: Cluster,
    pub kube: kube::Client,
    pub fake: AppState,
    /// fake-ec2 as this environment hosts it (restarts, blackholes).
    pub fake_ec2: crate::chaos::FakeEc2Host,
    /// fake-ec2's endpoint (EC2, SQS, admin API under /_fake).
    pub endpoint: String,
    pub cluster_name: String,
    http: reqwest::Client,
    /// The autoscaler's /metrics address.
    metrics_addr: String,
    tasks: Vec<JoinHandle<()>>,
    /// How to (re)start the autoscaler under test, and the running one (killed when dropped).
    launcher: Launcher,
    autoscaler: Option<Running>,
    /// Supervised restarts of the autoscaler (crashes, failed starts), counted for the report.
    restarts: Restarts,
    /// SDK clients for fake-ec2 (EC2, SQS), as a user of the fake cloud would have them.
    pub aws: AwsClients,
    /// The interruption queue when it is not fake-ec2's (stopped with the environment).
    external_sqs: Option<ExternalSqs>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        // Running kills the autoscaler (task or child process) when dropped.
        self.autoscaler.take();
    }
}

impl Env {
    pub async fn start(cfg: EnvConfig) -> anyhow::Result<Env> {
        // The autoscaler's and fake-ec2's logs, in the test's output (RUST_LOG to change).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,tower=warn,hyper=warn")),
            )
            .with_test_writer()
            .try_init();
        let root = repo_root();
        // Before the cluster: a queue host this machine cannot run fails the start at once.
        crate::external_sqs::check(&cfg.sqs)?;
        // Before the cluster: on a cold cache this builds Karpenter (minutes, progress on stderr).
        let karpenter_build = match cfg.autoscaler {
            AutoscalerKind::Spotbench => None,
            AutoscalerKind::Karpenter => Some(karpenter::Build::locate(&root)?),
        };
        let cluster = Cluster::up(cfg.backend, &root, None)?;
        let kube = cluster.client().await?;
        match &karpenter_build {
            None => install_crds(&kube, autoscaler::apis::crdgen::crds().into_iter().map(|(_, crd)| crd)).await?,
            Some(build) => install_crds(&kube, build.crds()?).await?,
        }

        let recipe = crate::chaos::WorldRecipe::read(&root, &cfg.world, cfg.seed, cfg.clock_factor)?;
        let fake = AppState::new(recipe.build(None)?);
        fake.requests().set_budget(crate::chaos::HARNESS_LOG_BUDGET_BYTES);
        let state_file = cfg.state_file.clone().map(|p| recipe.state_file(p)).transpose()?;
        let hooks = Arc::new(Hooks { state_file, recorder: recorder(&cfg, &fake)? });
        let fake_ec2 = crate::chaos::FakeEc2Host::start(fake.clone(), hooks, kube.clone(), recipe).await?;
        let endpoint = fake_ec2.endpoint();
        let tasks = Vec::new();

        // The SDK config a deployment gets from AWS_REGION, AWS_ENDPOINT_URL and its credentials.
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "e2e"))
            .load()
            .await;
        let aws = AwsClients::from_sdk_config(&sdk);
        let cluster_name = CLUSTER_NAME.to_owned();
        // A fixed port, so a restarted autoscaler serves its metrics where tests look.
        let metrics_addr = format!("127.0.0.1:{}", crate::ports::reserve(std::net::Ipv4Addr::LOCALHOST.into())?);
        let mut args = vec![
            "--cluster-name".to_owned(),
            cluster_name.clone(),
            "--cluster-endpoint".to_owned(),
            "https://127.0.0.1:6443".to_owned(),
            "--metrics-listen".to_owned(),
            metrics_addr.clone(),
            "--leader-election-namespace".to_owned(),
            "default".to_owned(),
        ];
        args.extend(cfg.autoscaler_args.iter().cloned());
        let options = Options::from_args(args.iter().map(String::as_str))?;
        let external_sqs = ExternalSqs::start(&cfg.sqs, options.interruption_queue.as_deref(), &sdk, &fake).await?;
        if external_sqs.is_some() && cfg.sqs_endpoint.is_some() {
            bail!("give the interruption queue's host (sqs) or the autoscaler's SQS endpoint (sqs_endpoint), not both");
        }
        let sqs_endpoint = external_sqs.as_ref().map(|q| q.endpoint().to_owned()).or_else(|| cfg.sqs_endpoint.clone());
        let (launcher, metrics_addr) = match karpenter_build {
            None => match &cfg.autoscaler_binary {
                None => {
                    let autoscaler_aws = match &sqs_endpoint {
                        Some(url) => aws.clone().with_sqs_endpoint(url),
                        None => aws.clone(),
                    };
                    (Launcher::Spotbench { kube: kube.clone(), aws: autoscaler_aws, options }, metrics_addr)
                }
                Some(binary) => {
                    let log_dir = cfg.log_dir.clone().unwrap_or_else(|| crate::cluster::cache_dir().join("logs"));
                    let launch = autoscaler_process(
                        binary,
                        &args,
                        &cluster.kubeconfig,
                        &endpoint,
                        sqs_endpoint.as_deref(),
                        log_dir.join(format!("{}-autoscaler.log", cluster.name)),
                    );
                    (Launcher::SpotbenchProcess { launch }, metrics_addr)
                }
            },
            Some(build) => {
                ensure_namespace(&kube, karpenter::NAMESPACE).await?;
                let settings = karpenter::Settings {
                    kubeconfig: cluster.kubeconfig.clone(),
                    aws_endpoint: endpoint.clone(),
                    sqs_endpoint: sqs_endpoint.clone(),
                    region: REGION.to_owned(),
                    access_key_id: ACCESS_KEY_ID.to_owned(),
                    secret_access_key: SECRET_ACCESS_KEY.to_owned(),
                    cluster_name: cluster_name.clone(),
                    cluster_endpoint: cluster.server_url()?,
                    interruption_queue: options.interruption_queue.clone(),
                    batch_idle_duration: options.batch_idle_duration,
                    batch_max_duration: options.batch_max_duration,
                    metrics_port: karpenter::free_port()?,
                    health_probe_port: karpenter::free_port()?,
                    log_level: "info".to_owned(),
                    extra: cfg.karpenter_env.clone(),
                };
                let log_dir = cfg.log_dir.clone().unwrap_or_else(|| crate::cluster::cache_dir().join("logs"));
                let launch = karpenter::Launch {
                    binary: build.binary.clone(),
                    args: Vec::new(),
                    env: settings.env(),
                    log_path: log_dir.join(format!("{}-karpenter.log", cluster.name)),
                };
                let metrics_addr = format!("127.0.0.1:{}", settings.metrics_port);
                (Launcher::Karpenter { build, settings, launch }, metrics_addr)
            }
        };
        let mut env = Env {
            cluster,
            kube,
            fake,
            fake_ec2,
            endpoint,
            cluster_name,
            http: reqwest::Client::new(),
            metrics_addr,
            tasks,
            launcher,
            autoscaler: None,
            restarts: Restarts::default(),
            aws,
            external_sqs,
        };
        env.start_autoscaler();
        // Steps begin once the autoscaler is up (its start-up EC2 check done, its caches filled),
        // so a fault a scenario injects first meets running controllers, never a start-up half
        // done: otherwise which calls the fault hits would depend on how fast this machine is.
        env.wait_autoscaler_ready(AUTOSCALER_READY_TIMEOUT).await?;
        Ok(env)
    }

    /// Starts (or restarts) the autoscaler under test: the project's in this process, Karpenter as
    /// a child process (its log appended to [`Env::autoscaler_log`]).
    pub fn start_autoscaler(&mut self) {
        if let Some(running) = self.autoscaler.take() {
            running.kill();
        }
        match self.launcher.start(&self.restarts) {
            Ok(running) => self.autoscaler = Some(running),
            Err(e) => {
                tracing::error!(error = %e, autoscaler = %self.launcher.kind(), "the autoscaler could not be started")
            }
        }
    }

    /// Stops the autoscaler and fake-ec2 before the cluster goes, so nothing logs connection
    /// errors against a deleted API server.
    pub async fn stop(mut self) {
        if let Some(running) = self.autoscaler.take() {
            running.stop().await;
        }
        self.fake_ec2.stop().await;
        let tasks: Vec<JoinHandle<()>> = self.tasks.drain(..).collect();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Some(queue) = self.external_sqs.take() {
            queue.stop().await;
        }
    }

    /// The interruption queue on an external SQS, when the environment has one.
    pub fn external_sqs(&self) -> Option<&ExternalSqs> {
        self.external_sqs.as_ref()
    }

    /// Kills the autoscaler mid-flight (no graceful shutdown), as a crash would.
    pub fn kill_autoscaler(&mut self) {
        if let Some(running) = self.autoscaler.take() {
            running.kill();
        }
    }

    /// A handle on the count of the autoscaler's supervised restarts (crashes and failed starts).
    pub fn autoscaler_restarts(&self) -> Restarts {
        self.restarts.clone()
    }

    /// Which autoscaler this environment runs.
    pub fn autoscaler_kind(&self) -> AutoscalerKind {
        self.launcher.kind()
    }

    /// The autoscaler's process id (Karpenter), None for the in-process one or when not running.
    pub fn autoscaler_pid(&self) -> Option<u32> {
        self.autoscaler.as_ref().and_then(Running::pid)
    }

    /// Karpenter's log file (None for the in-process autoscaler, whose logs go to `tracing`).
    pub fn autoscaler_log(&self) -> Option<&Path> {
        match &self.launcher {
            Launcher::Karpenter { launch, .. } | Launcher::SpotbenchProcess { launch } => {
                Some(launch.log_path.as_path())
            }
            Launcher::Spotbench { .. } => None,
        }
    }

    /// The Karpenter build and settings this environment runs (None for the project's autoscaler).
    pub fn karpenter(&self) -> Option<(&karpenter::Build, &karpenter::Settings)> {
        match &self.launcher {
            Launcher::Karpenter { build, settings, .. } => Some((build, settings)),
            Launcher::Spotbench { .. } | Launcher::SpotbenchProcess { .. } => None,
        }
    }

    /// Waits until the autoscaler answers its readiness probe: Karpenter's health port, or the
    /// project's /readyz (served once its start-up EC2 check has passed).
    pub async fn wait_autoscaler_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        match &self.launcher {
            Launcher::Karpenter { settings, launch, .. } => {
                karpenter::wait_ready(&self.http, settings.health_probe_port, timeout, &launch.log_path).await?;
            }
            Launcher::Spotbench { .. } | Launcher::SpotbenchProcess { .. } => {
                let url = format!("http://{}/readyz", self.metrics_addr);
                if !karpenter::answers_ready(&self.http, &url, timeout).await {
                    anyhow::bail!("the autoscaler did not answer {url} within {timeout:?} (see its log lines above)");
                }
            }
        }
        Ok(())
    }

    /// Server-side applies every document of a multi-document YAML manifest.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        for doc in yaml
            .split("\n---")
            .map(str::trim)
            .filter(|d| !d.is_empty() && d.lines().any(|l| !l.trim_start().starts_with('#')))
        {
            let value: serde_json::Value = serde_saphyr::from_str(doc).context("parsing manifest")?;
            let mut obj: DynamicObject =
                serde_json::from_value(value).context("manifest is not a Kubernetes object")?;
            let types = obj.types.clone().context("manifest without apiVersion/kind")?;
            let gvk = GroupVersionKind::try_from(&types)?;
            let (resource, caps) = pinned_kind(&self.kube, &gvk).await?;
            let name = obj.metadata.name.clone().context("manifest without metadata.name")?;
            let namespace = match caps.scope {
                kube::discovery::Scope::Namespaced => {
                    Some(obj.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned()))
                }
                kube::discovery::Scope::Cluster => None,
            };
            let api: Api<DynamicObject> = match &namespace {
                Some(ns) => Api::namespaced_with(self.kube.clone(), ns, &resource),
                None => Api::all_with(self.kube.clone(), &resource),
            };
            self.cluster.mark(&mut obj, &resource, namespace.as_deref());
            api.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(&obj))
                .await
                .with_context(|| format!("applying {} {name}", gvk.kind))?;
        }
        Ok(())
    }

    /// Applies a file under fixtures/.
    pub async fn apply_fixture(&self, path: &str) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(repo_root().join("fixtures").join(path))
            .with_context(|| format!("reading fixtures/{path}"))?;
        self.apply(&text).await
    }

    /// POSTs JSON to fake-ec2's admin API (`/_fake/<path>`).
    pub async fn admin(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let resp =
            self.http.post(format!("{}/_fake/{path}", self.fake_ec2.admin_endpoint())).json(&body).send().await?;
        let status = resp.status();
        let value: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            bail!("fake-ec2 admin {path}: {status}: {value}");
        }
        Ok(value)
    }

    /// GETs JSON from fake-ec2's admin API (`/_fake/<path_and_query>`).
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let resp = self.http.get(format!("{}/_fake/{path}", self.fake_ec2.admin_endpoint())).send().await?;
        let status = resp.status();
        let value: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            bail!("fake-ec2 admin {path}: {status}: {value}");
        }
        Ok(value)
    }

    /// Where the autoscaler serves its Prometheus metrics.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    /// The autoscaler's Prometheus metrics (text format).
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self.http.get(self.metrics_url()).send().await?.error_for_status()?.text().await?)
    }

    /// Messages in one of fake-ec2's queues, visible or in flight.
    pub fn queue_depth(&self, queue: &str) -> usize {
        let mut w = self.fake.cloud();
        let now = w.now();
        w.sqs.expire(now);
        w.sqs.get(queue).map(|q| q.messages().count()).unwrap_or(0)
    }

    /// World time (ms since the epoch) on fake-ec2's clock.
    pub fn world_now_ms(&self) -> i64 {
        self.fake.cloud().now()
    }

    pub async fn nodes(&self) -> anyhow::Result<Vec<Node>> {
        Ok(Api::<Node>::all(self.kube.clone()).list(&ListParams::default()).await?.items)
    }

    pub async fn pods(&self, selector: &str) -> anyhow::Result<Vec<Pod>> {
        Ok(Api::<Pod>::all(self.kube.clone()).list(&ListParams::default().labels(selector)).await?.items)
    }

    pub async fn node_claims(&self) -> anyhow::Result<Vec<autoscaler::apis::NodeClaim>> {
        Ok(Api::<autoscaler::apis::NodeClaim>::all(self.kube.clone()).list(&ListParams::default()).await?.items)
    }

    /// How many Kubernetes events with this reason exist (any namespace, any object).
    pub async fn events_with_reason(&self, reason: &str) -> anyhow::Result<usize> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::all(self.kube.clone());
        Ok(api.list(&ListParams::default()).await?.items.iter().filter(|e| e.reason.as_deref() == Some(reason)).count())
    }

    /// Instances in fake-ec2's world that are not terminated, in launch order.
    pub fn live_instances(&self) -> Vec<InstanceRow> {
        let w = self.fake.cloud();
        w.ec2
            .instances
            .values()
            .filter(|i| i.state.name() != "terminated")
            .map(|i| InstanceRow {
                id: i.id.clone(),
                instance_type: i.instance_type.clone(),
                zone: i.zone.clone(),
                capacity_type: i.capacity_type.as_str().to_owned(),
                state: i.state.name().to_owned(),
            })
            .collect()
    }
}

/// One fake-ec2 instance as tests look at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRow {
    pub id: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
    pub state: String,
}

/// Pods matching `selector` that are Running, and the nodes they run on.
pub fn running(pods: &[Pod]) -> Vec<(&str, &str)> {
    pods.iter()
        .filter(|p| is_running(p))
        .filter_map(|p| Some((p.metadata.name.as_deref()?, p.spec.as_ref()?.node_name.as_deref()?)))
        .collect()
}

/// Whether a pod's phase is Running.
pub fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Whether a NodeClaim's Ready condition is True.
pub fn claim_ready(claim: &autoscaler::apis::NodeClaim) -> bool {
    autoscaler::apis::common::is_true(claim.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]), "Ready")
}

pub fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// Polls `f` every 250 ms until it returns Some, or fails naming what it waited for. A check that
/// takes long (listing 10,000 pods) is spaced by four times its own duration, at most 2 s, so
/// the harness never spends more than a fifth of its time checking.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        let check = Instant::now();
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(poll_pause(check.elapsed())).await;
    }
}

pub(crate) fn poll_pause(check: Duration) -> Duration {
    (check * 4).clamp(Duration::from_millis(250), Duration::from_secs(2))
}

/// The value of one sample in Prometheus text, e.g.
/// `metric(&text, "karpenter_interruption_deleted_messages_total{message_type=\"unparseable\"}")`.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The project's binary as its Deployment configures it: `run` with the flags the in-process one
/// gets, the cluster from KUBECONFIG, AWS from the standard variables, nothing else of this
/// process's environment (RUST_LOG excepted, default info).
fn autoscaler_process(
    binary: &Path,
    args: &[String],
    kubeconfig: &Path,
    aws_endpoint: &str,
    sqs_endpoint: Option<&str>,
    log_path: PathBuf,
) -> crate::karpenter::Launch {
    let mut env = vec![
        ("KUBECONFIG".to_owned(), kubeconfig.display().to_string()),
        ("AWS_REGION".to_owned(), REGION.to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), aws_endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), SECRET_ACCESS_KEY.to_owned()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ("RUST_LOG".to_owned(), std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned())),
    ];
    if let Some(url) = sqs_endpoint {
        env.push(("AWS_ENDPOINT_URL_SQS".to_owned(), url.to_owned()));
    }
    let args = std::iter::once("run".to_owned()).chain(args.iter().cloned()).collect();
    crate::karpenter::Launch { binary: binary.to_path_buf(), args, env, log_path }
}

/// The recorder for `cfg.record`: a header naming the world and seed the replay rebuilds.
fn recorder(cfg: &EnvConfig, fake: &AppState) -> anyhow::Result<Option<fake_ec2::record::Recorder>> {
    let Some(path) = &cfg.record else { return Ok(None) };
    // One lock: the world's start and its clock.
    let (world_start_ms, time_tolerance_ms) = {
        let cloud = fake.cloud();
        (cloud.ec2.started_at, fake_ec2::record::time_tolerance(cloud.ec2.cfg.clock.mode, cloud.ec2.cfg.clock.factor))
    };
    let header = fake_ec2::record::Header {
        fake_ec2_recording: fake_ec2::record::FORMAT,
        world: cfg.world.clone(),
        seed: cfg.seed,
        world_start_ms,
        restored_from_state: false,
        time_tolerance_ms,
    };
    let file = std::fs::File::create(path).with_context(|| format!("creating recording {}", path.display()))?;
    Ok(Some(fake_ec2::record::Recorder::start(std::io::BufWriter::new(file), &header)?))
}

/// Installs CRDs (the autoscaler's) and waits until the API server serves them.
pub async fn install_crds(
    kube: &kube::Client,
    crds: impl IntoIterator<Item = CustomResourceDefinition>,
) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(kube.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("creating CRD {name}")),
        }
        wait_for(&format!("CRD {name} Established"), Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                let established =
                    crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
                established.then_some(())
            }
        })
        .await?;
    }
    Ok(())
}

/// Creates a namespace unless it exists.
pub async fn ensure_namespace(kube: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.clone());
    let ns = k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}")),
    }
}
