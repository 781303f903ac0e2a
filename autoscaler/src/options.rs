//! Settings, with Karpenter's environment variable names and defaults (karpenter.md §8).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

fn duration(text: &str) -> Result<Duration, String> {
    crate::apis::common::parse_duration(text)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "Never is not allowed here".to_owned())
}

#[derive(Args, Clone, Debug)]
pub struct Options {
    /// Cluster name: tags (eks:eks-cluster-name, kubernetes.io/cluster/<name>) and user data.
    #[arg(long, env = "CLUSTER_NAME")]
    pub cluster_name: String,
    /// API server endpoint written into node user data.
    #[arg(long, env = "CLUSTER_ENDPOINT", default_value = "https://kubernetes.default.svc")]
    pub cluster_endpoint: String,
    /// Base64 cluster CA for node user data.
    #[arg(long, env = "CLUSTER_CA_BUNDLE", default_value = "")]
    pub cluster_ca_bundle: String,
    /// Service CIDR written into node user data (Karpenter asks EKS for it).
    #[arg(long, env = "CLUSTER_CIDR", default_value = "10.100.0.0/16")]
    pub cluster_cidr: String,
    /// SQS queue name for interruption events; unset disables interruption handling.
    #[arg(long, env = "INTERRUPTION_QUEUE")]
    pub interruption_queue: Option<String>,
    /// AWS region (falls back to the SDK's usual sources).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Endpoint for every AWS service (the SDKs also read AWS_ENDPOINT_URL themselves).
    #[arg(long)]
    pub aws_endpoint_url: Option<String>,
    /// Endpoint for SQS alone (the interruption queue), overriding --aws-endpoint-url for it.
    #[arg(long, env = "AWS_ENDPOINT_URL_SQS")]
    pub aws_sqs_endpoint_url: Option<String>,
    /// How often DescribeInstanceStatus is polled for impaired instances and scheduled events.
    #[arg(long, env = "INSTANCE_STATUS_INTERVAL", default_value = "1m", value_parser = duration)]
    pub instance_status_interval: Duration,
    /// Quiet time that closes a batch of pending pods.
    #[arg(long, env = "BATCH_IDLE_DURATION", default_value = "1s", value_parser = duration)]
    pub batch_idle_duration: Duration,
    /// Longest a batch stays open.
    #[arg(long, env = "BATCH_MAX_DURATION", default_value = "10s", value_parser = duration)]
    pub batch_max_duration: Duration,
    /// A NodeClaim not launched by then is deleted.
    #[arg(long, env = "LAUNCH_TIMEOUT", default_value = "5m", value_parser = duration)]
    pub launch_timeout: Duration,
    /// A launched NodeClaim whose Node has not registered by then is deleted.
    #[arg(long, env = "REGISTRATION_TIMEOUT", default_value = "15m", value_parser = duration)]
    pub registration_timeout: Duration,
    /// Prometheus /metrics, plus /healthz and /readyz.
    #[arg(long, env = "METRICS_LISTEN", default_value = "127.0.0.1:8080")]
    pub metrics_listen: SocketAddr,
    /// Leader election through a coordination.k8s.io Lease; off runs as the only replica.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE", default_value = "kube-system")]
    pub leader_election_namespace: String,
    #[arg(long, env = "LEADER_ELECTION_NAME", default_value = "karpenter-leader-election")]
    pub leader_election_name: String,
    /// How often the disruption controller looks for a decision.
    #[arg(long, env = "DISRUPTION_POLL", default_value = "10s", value_parser = duration)]
    pub disruption_poll: Duration,
    /// A disruption decision is checked again after this long before it is carried out.
    #[arg(long, env = "CONSOLIDATION_VALIDATION_DELAY", default_value = "15s", value_parser = duration)]
    pub consolidation_validation_delay: Duration,
    /// Karpenter's feature gates, e.g. `SpotToSpotConsolidation=true`.
    #[arg(long, env = "FEATURE_GATES", default_value = "SpotToSpotConsolidation=false")]
    pub feature_gates: String,
    /// Kubernetes version for AMI aliases; discovered from the API server when unset.
    #[arg(long, env = "KUBERNETES_VERSION")]
    pub kubernetes_version: Option<String>,
}

/// Parses options from arguments alone (tests, embedding), ignoring the process's own argv.
#[derive(clap::Parser)]
struct Standalone {
    #[command(flatten)]
    options: Options,
}

impl Options {
    /// `Options::from_args(["--cluster-name", "c"])`: defaults for everything else.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options, clap::Error> {
        use clap::Parser;
        let argv = std::iter::once("autoscaler").chain(args);
        Ok(Standalone::try_parse_from(argv)?.options)
    }

    pub fn feature_gate(&self, name: &str) -> bool {
        self.feature_gates
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .any(|(k, v)| k.trim() == name && v.trim() == "true")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_durations_and_defaults() {
        let o = Options::from_args(["--cluster-name", "c", "--disruption-poll", "2s"]).unwrap();
        assert_eq!(o.disruption_poll, Duration::from_secs(2));
        assert_eq!(o.consolidation_validation_delay, Duration::from_secs(15));
        assert_eq!(o.batch_idle_duration, Duration::from_secs(1));
        assert!(o.leader_election);
        assert!(!o.feature_gate("SpotToSpotConsolidation"));
    }
}
