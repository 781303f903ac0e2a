//! The operator: wires clients, caches and controllers together (Karpenter's `operator.go`),
//! serves /metrics, /healthz and /readyz, and runs the controllers while it holds the lease.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::clock;
use crate::cloud::{AwsClients, ClusterInfo};
use crate::controllers::{self, ClusterState, Context};
use crate::leader::LeaderElector;
use crate::metrics::Metrics;
use crate::options::Options;
use crate::provider::CloudProvider;

/// How long a start waits out EC2 answering 5xx or throttling before giving up.
const EC2_CHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// The start-up dry run, asked again (1 s, 2 s, ... up to 10 s apart) while EC2's answer is
/// transient: a brief EC2 outage must not crash-loop the controller. Anything else (bad
/// credentials, a wrong endpoint, a denied action) fails at once.
async fn check_ec2(aws: &AwsClients) -> Result<(), crate::cloud::CloudError> {
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        match aws.check_ec2_connectivity().await {
            Err(e) if e.is_transient() && started.elapsed() + wait < EC2_CHECK_PATIENCE => {
                tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "EC2 connectivity check failed; asking again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Builds the shared context: discovers the Kubernetes version, probes EC2 (a dry run, as
/// Karpenter does at start), and fills the caches.
pub async fn context(client: Client, aws: &AwsClients, options: Options) -> anyhow::Result<Arc<Context>> {
    let kubernetes_version = match &options.kubernetes_version {
        Some(v) => v.clone(),
        None => {
            let info = client.apiserver_version().await.context("reading the API server version")?;
            format!("{}.{}", info.major, info.minor.trim_end_matches('+'))
        }
    };
    check_ec2(aws).await.context("EC2 connectivity check (dry-run DescribeInstanceTypes)")?;
    let dns_ip = kube_dns_ip(&client, &options.cluster_cidr).await;
    let cluster = ClusterInfo {
        dns_ip,
        name: options.cluster_name.clone(),
        endpoint: options.cluster_endpoint.clone(),
        ca_bundle: options.cluster_ca_bundle.clone(),
        cidr: options.cluster_cidr.clone(),
        kubernetes_version,
    };
    let clock = clock::system();
    let cloud = Arc::new(CloudProvider::new(aws, cluster, clock.clone()));
    let state = ClusterState::start(client.clone()).await;
    let identity = identity();
    let recorder = Recorder::new(client.clone(), Reporter { controller: "karpenter".into(), instance: Some(identity) });
    let sqs = aws.sqs.clone();
    Ok(Arc::new(Context {
        client,
        state,
        cloud,
        metrics: Metrics::new(),
        recorder,
        event_gate: Default::default(),
        options,
        sqs,
        clock,
    }))
}

/// The cluster DNS address nodes get (Karpenter reads the kube-dns service at start): the
/// service's ClusterIP, else the tenth address of the service CIDR, as EKS assigns it.
async fn kube_dns_ip(client: &Client, service_cidr: &str) -> Option<String> {
    let services: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(client.clone(), "kube-system");
    let found = match services.get_opt("kube-dns").await {
        Ok(svc) => svc.and_then(|s| s.spec).and_then(|s| s.cluster_ip).filter(|ip| !ip.is_empty() && ip != "None"),
        Err(err) => {
            tracing::warn!(error = %err, "reading the kube-dns service");
            None
        }
    };
    let ip = found.or_else(|| crate::cloud::dns_ip_from_cidr(service_cidr));
    tracing::info!(cluster_dns = ?ip, "cluster DNS for node user data");
    ip
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "autoscaler".to_owned());
    format!("{host}_{}", std::process::id())
}

/// Runs until leadership is lost (then returns an error so the process exits and restarts).
pub async fn run(client: Client, aws: AwsClients, options: Options) -> anyhow::Result<()> {
    let metrics_listen = options.metrics_listen;
    let elector = options.leader_election.then(|| {
        LeaderElector::new(
            client.clone(),
            &options.leader_election_namespace,
            &options.leader_election_name,
            &identity(),
        )
    });
    if let Some(e) = &elector {
        e.acquire().await;
    }
    let ctx = context(client, &aws, options).await?;
    let served = ctx.clone();
    let app = Router::new()
        .route("/metrics", get(move || std::future::ready(served.metrics.encode())))
        .route("/healthz", get(|| std::future::ready("ok")))
        .route("/readyz", get(|| std::future::ready("ok")));
    let listener =
        tokio::net::TcpListener::bind(metrics_listen).await.with_context(|| format!("binding {metrics_listen}"))?;
    tracing::info!(listen = %metrics_listen, "serving metrics");
    // Stops with the operator (an embedding that restarts it gets the port back).
    let _server = AbortOnDrop(tokio::spawn(async move { axum::serve(listener, app).await }));
    tracing::info!(cluster = %ctx.options.cluster_name, "starting controllers");
    match elector {
        Some(e) => {
            tokio::select! {
                () = controllers::run_all(ctx) => {},
                () = e.hold() => anyhow::bail!("leader election lost"),
            }
        }
        None => controllers::run_all(ctx).await,
    }
    Ok(())
}
