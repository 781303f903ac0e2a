//! The environment upstream Karpenter runs with: what its Helm chart (charts/karpenter of the pinned
//! release) puts in the controller container, translated for a process on this machine. Pure: no
//! I/O, so the exact variables are unit-tested and printed for running Karpenter by hand.

use std::path::PathBuf;
use std::time::Duration;

/// The namespace the chart is installed into by Karpenter's getting-started guide: SYSTEM_NAMESPACE
/// and the leader-election Lease live there.
pub const NAMESPACE: &str = "kube-system";

/// The chart's default feature gates (values.yaml `settings.featureGates`), in its deployment
/// template's order.
pub const CHART_FEATURE_GATES: &str = "ReservedCapacity=true,SpotToSpotConsolidation=false,NodeRepair=false,NodeOverlay=false,StaticCapacity=false,CapacityBuffer=false";

/// What one Karpenter process is pointed at.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The cluster's kubeconfig (a pod would use its service account instead).
    pub kubeconfig: PathBuf,
    /// fake-ec2: every AWS service Karpenter calls (EC2, SQS, SSM, Pricing, EKS, IAM, STS).
    pub aws_endpoint: String,
    /// SQS elsewhere (e.g. a moto_server), when not fake-ec2.
    pub sqs_endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub cluster_name: String,
    /// The API server's real URL, so Karpenter does not ask EKS for it at start-up.
    pub cluster_endpoint: String,
    /// The SQS queue the world's EventBridge rules feed; None leaves interruption handling off.
    pub interruption_queue: Option<String>,
    pub batch_idle_duration: Duration,
    pub batch_max_duration: Duration,
    /// Karpenter binds these on every interface (`:port`), so they are always set: free ports, not
    /// the chart's 8080 / 8081 that anything else on the machine may hold.
    pub metrics_port: u16,
    pub health_probe_port: u16,
    /// The chart's `logLevel` (info).
    pub log_level: String,
    /// More variables, as the chart's `controller.env`; they replace any of the above.
    pub extra: Vec<(String, String)>,
}

impl Settings {
    /// The process's whole environment (it starts from an empty one, as a container does), in the
    /// chart template's order, then the extra variables.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
        // Where a pod gets these from its service account and the node's metadata service.
        set("KUBECONFIG", &self.kubeconfig.display().to_string());
        set("AWS_ENDPOINT_URL", &self.aws_endpoint);
        if let Some(sqs) = &self.sqs_endpoint {
            set("AWS_ENDPOINT_URL_SQS", sqs);
        }
        set("AWS_REGION", &self.region);
        set("AWS_ACCESS_KEY_ID", &self.access_key_id);
        set("AWS_SECRET_ACCESS_KEY", &self.secret_access_key);
        // No instance metadata service here: the SDK must not wait on 169.254.169.254.
        set("AWS_EC2_METADATA_DISABLED", "true");
        // The chart's deployment template, with its default values.
        set("KUBERNETES_MIN_VERSION", "1.19.0-0");
        set("KARPENTER_SERVICE", "karpenter");
        set("LOG_LEVEL", &self.log_level);
        set("METRICS_PORT", &self.metrics_port.to_string());
        set("HEALTH_PROBE_PORT", &self.health_probe_port.to_string());
        set("SYSTEM_NAMESPACE", NAMESPACE);
        // In a pod, controller-runtime finds the Lease's namespace in the service account's files;
        // outside one it must be told (it is the pod's namespace either way).
        set("LEADER_ELECTION_NAMESPACE", NAMESPACE);
        set("FEATURE_GATES", CHART_FEATURE_GATES);
        set("BATCH_MAX_DURATION", &go_duration(self.batch_max_duration));
        set("BATCH_IDLE_DURATION", &go_duration(self.batch_idle_duration));
        set("PREFERENCE_POLICY", "Respect");
        set("MIN_VALUES_POLICY", "Strict");
        set("CLUSTER_NAME", &self.cluster_name);
        set("CLUSTER_ENDPOINT", &self.cluster_endpoint);
        set("VM_MEMORY_OVERHEAD_PERCENT", "0.075");
        if let Some(queue) = &self.interruption_queue {
            set("INTERRUPTION_QUEUE", queue);
        }
        set("RESERVED_ENIS", "0");
        set("IGNORE_DRA_REQUESTS", "true");
        set("AMI_REFRESH_INTERVAL", "1m");
        set("SUBNET_REFRESH_INTERVAL", "1m");
        for (key, value) in &self.extra {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        env
    }

    /// A shell command that runs `binary` with exactly this environment (`env -i`, one variable a
    /// line), ready to paste.
    pub fn shell_command(&self, binary: &std::path::Path) -> String {
        let mut s = "env -i \\\n".to_owned();
        for (k, v) in self.env() {
            s.push_str(&format!("  {k}={} \\\n", shell_quote(&v)));
        }
        s.push_str(&format!("  {}", shell_quote(&binary.display().to_string())));
        s
    }
}

/// One of the project's `autoscaler run` flags (a scenario's `autoscaler_args`), as Karpenter takes
/// it: the environment variable of its equivalent setting, or why it has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgMapping {
    Env { flag: String, key: String, value: String },
    NotApplicable { flag: String, value: String, why: &'static str },
}

impl ArgMapping {
    /// One line for a run's progress and its report.
    pub fn describe(&self) -> String {
        match self {
            ArgMapping::Env { flag, key, value } => format!("{flag} -> {key}={value}"),
            ArgMapping::NotApplicable { flag, value, why } => format!("{flag} {value}: not applicable ({why})"),
        }
    }
}

/// Maps `autoscaler run` flags (`--flag value` or `--flag=value`) to Karpenter's settings, in the
/// order given. Every flag of ours takes a value; a flag without one is an error.
pub fn map_autoscaler_args(args: &[String]) -> Result<Vec<ArgMapping>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else { return Err(format!("`{arg}` is not a --flag")) };
        let (flag, value) = match flag.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => (flag.to_owned(), it.next().cloned().ok_or_else(|| format!("--{flag} without a value"))?),
        };
        let env = |key: &str, value: String| ArgMapping::Env { flag: format!("--{flag}"), key: key.to_owned(), value };
        let na = |why| ArgMapping::NotApplicable { flag: format!("--{flag}"), value: value.clone(), why };
        out.push(match flag.as_str() {
            "interruption-queue" => env("INTERRUPTION_QUEUE", value),
            "batch-idle-duration" => env("BATCH_IDLE_DURATION", value),
            "batch-max-duration" => env("BATCH_MAX_DURATION", value),
            "feature-gates" => env("FEATURE_GATES", merge_feature_gates(CHART_FEATURE_GATES, &value)),
            "leader-election" => env("DISABLE_LEADER_ELECTION", (value == "false").to_string()),
            "disruption-poll" => na("Karpenter's disruption controller polls every 10 s, a constant (pollingPeriod)"),
            "consolidation-validation-delay" => {
                na("Karpenter re-validates a consolidation after a fixed 15 s (commandValidationDelay)")
            }
            "launch-timeout" | "registration-timeout" => {
                na("Karpenter's launch and registration timeouts are constants (registrationTimeout 15 min)")
            }
            "instance-status-interval" => na("Karpenter has no such setting (NodeRepair reads node conditions)"),
            "cluster-cidr" => na("Karpenter reads the service CIDR from EKS DescribeCluster"),
            "kubernetes-version" => na("Karpenter reads the version from the API server"),
            _ => na("no Karpenter setting corresponds"),
        });
    }
    Ok(out)
}

/// `base` (`A=true,B=false`) with the gates named in `changes` set as they say, in base's order
/// then the new ones.
fn merge_feature_gates(base: &str, changes: &str) -> String {
    let parse = |s: &str| -> Vec<(String, String)> {
        s.split(',')
            .filter_map(|g| g.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    };
    let mut gates = parse(base);
    for (k, v) in parse(changes) {
        match gates.iter_mut().find(|(g, _)| *g == k) {
            Some(g) => g.1 = v,
            None => gates.push((k, v)),
        }
    }
    gates.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A duration as Go's time.ParseDuration reads it: `10s`, `1500ms`.
pub fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// Single-quotes `s` for a POSIX shell unless it is made of safe characters only.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !s.is_empty() && s.chars().all(safe) { s.to_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn settings() -> Settings {
        Settings {
            kubeconfig: PathBuf::from("/tmp/kc.yaml"),
            aws_endpoint: "http://127.0.0.1:4566".into(),
            sqs_endpoint: None,
            region: "us-west-2".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            cluster_name: "fake-cluster".into(),
            cluster_endpoint: "https://127.0.0.1:6443".into(),
            interruption_queue: Some("karpenter-interruption".into()),
            batch_idle_duration: Duration::from_secs(1),
            batch_max_duration: Duration::from_secs(10),
            metrics_port: 18080,
            health_probe_port: 18081,
            log_level: "info".into(),
            extra: Vec::new(),
        }
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn environment_points_everything_at_fake_ec2_and_the_local_cluster() {
        let env = settings().env();
        assert_eq!(get(&env, "AWS_ENDPOINT_URL"), Some("http://127.0.0.1:4566"));
        assert_eq!(get(&env, "AWS_EC2_METADATA_DISABLED"), Some("true"));
        assert_eq!(get(&env, "CLUSTER_ENDPOINT"), Some("https://127.0.0.1:6443"));
        assert_eq!(get(&env, "INTERRUPTION_QUEUE"), Some("karpenter-interruption"));
        assert_eq!(get(&env, "METRICS_PORT"), Some("18080"));
        assert_eq!(get(&env, "HEALTH_PROBE_PORT"), Some("18081"));
        assert_eq!(get(&env, "LEADER_ELECTION_NAMESPACE"), Some(NAMESPACE));
        assert_eq!(get(&env, "BATCH_MAX_DURATION"), Some("10s"));
        // Leader election stays on (a Lease), as the chart runs it.
        assert_eq!(get(&env, "DISABLE_LEADER_ELECTION"), None);
        assert_eq!(get(&env, "AWS_ENDPOINT_URL_SQS"), None);
        let keys: std::collections::BTreeSet<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), env.len(), "no variable twice: {env:?}");
    }

    #[test]
    fn no_queue_leaves_interruption_off_and_extra_variables_replace_defaults() {
        let s = Settings {
            interruption_queue: None,
            sqs_endpoint: Some("http://127.0.0.1:5000".into()),
            extra: vec![("LOG_LEVEL".into(), "debug".into()), ("EXTRA".into(), "1".into())],
            ..settings()
        };
        let env = s.env();
        assert_eq!(get(&env, "INTERRUPTION_QUEUE"), None);
        assert_eq!(get(&env, "AWS_ENDPOINT_URL_SQS"), Some("http://127.0.0.1:5000"));
        assert_eq!(get(&env, "LOG_LEVEL"), Some("debug"));
        assert_eq!(env.iter().filter(|(k, _)| k == "LOG_LEVEL").count(), 1);
        assert_eq!(env.last(), Some(&("EXTRA".to_owned(), "1".to_owned())));
    }

    #[test]
    fn our_flags_map_to_karpenter_settings_or_say_why_not() {
        let args: Vec<String> =
            ["--interruption-queue", "q", "--disruption-poll=2s", "--feature-gates", "SpotToSpotConsolidation=true"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        let m = map_autoscaler_args(&args).unwrap();
        assert_eq!(
            m[0],
            ArgMapping::Env {
                flag: "--interruption-queue".into(),
                key: "INTERRUPTION_QUEUE".into(),
                value: "q".into()
            }
        );
        assert!(
            matches!(&m[1], ArgMapping::NotApplicable { flag, value, .. } if flag == "--disruption-poll" && value == "2s")
        );
        assert!(m[1].describe().contains("polls every 10 s"), "{}", m[1].describe());
        let ArgMapping::Env { key, value, .. } = &m[2] else { panic!("{:?}", m[2]) };
        assert_eq!(key, "FEATURE_GATES");
        assert!(
            value.contains("SpotToSpotConsolidation=true") && value.starts_with("ReservedCapacity=true,"),
            "{value}"
        );
        assert_eq!(value.matches("SpotToSpotConsolidation").count(), 1);
        assert!(map_autoscaler_args(&["--interruption-queue".to_owned()]).is_err());
        assert!(map_autoscaler_args(&["interruption-queue".to_owned()]).is_err());
    }

    #[test]
    fn go_durations_and_the_pasteable_command() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        let cmd = settings().shell_command(std::path::Path::new("/cache/karpenter/v1.14.3/bin/controller"));
        assert!(cmd.starts_with("env -i \\\n  KUBECONFIG=/tmp/kc.yaml \\\n"), "{cmd}");
        assert!(cmd.contains("  FEATURE_GATES=ReservedCapacity=true,"), "{cmd}");
        assert!(cmd.ends_with("\\\n  /cache/karpenter/v1.14.3/bin/controller"), "{cmd}");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
