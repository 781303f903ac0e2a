//! `e2e up`: an environment left running for manual play — a local cluster with the CRDs,
//! fake-ec2 serving a world on a scaled clock, the autoscaler under test (the project's or upstream
//! Karpenter) watching the interruption queue — and the commands to poke at it from another shell.

use std::fmt::Write as _;

use crate::env::{Env, EnvConfig, INTERRUPTION_QUEUE};

/// What `e2e up` starts.
#[derive(Clone, Debug)]
pub struct UpConfig {
    pub env: EnvConfig,
    /// Manifests under fixtures/ applied once everything is up.
    pub fixtures: Vec<String>,
}

/// The fixtures applied when none are named: an EC2NodeClass and a spot NodePool, so scaling a
/// Deployment is all it takes to see nodes arrive.
pub const DEFAULT_FIXTURES: [&str; 2] = ["nodepools/ec2nodeclass-default.yaml", "nodepools/spot.yaml"];

/// Starts everything, prints how to use it and runs until Ctrl-C, then tears it all down.
pub async fn run(cfg: UpConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    println!(
        "up: {} cluster + fake-ec2 ({}, seed {}, clock x{}) + {} ...",
        cfg.env.backend, cfg.env.world, cfg.env.seed, cfg.env.clock_factor, cfg.env.autoscaler
    );
    let env = Env::start(cfg.env.clone()).await?;
    for fixture in &cfg.fixtures {
        env.apply_fixture(fixture).await?;
        println!("up: applied fixtures/{fixture}");
    }
    println!("up: ready in {:.0?}\n", started.elapsed());
    print!("{}", howto(&env));
    println!("\nup: Ctrl-C tears everything down");
    tokio::signal::ctrl_c().await?;
    println!("up: tearing down");
    env.stop().await;
    Ok(())
}

/// Ready-to-paste commands for a running environment: its KUBECONFIG, fake-ec2's endpoint for the
/// AWS CLI and fake-ec2's own CLI, the autoscaler's metrics, and what to try first.
pub fn howto(env: &Env) -> String {
    let root = crate::cluster::repo_root();
    let endpoint = &env.endpoint;
    let mut s = String::new();
    let mut line = |text: &str| {
        let _ = writeln!(s, "{text}");
    };
    line("# In another shell:");
    line(&format!("export KUBECONFIG={}", env.cluster.kubeconfig.display()));
    line("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-west-2");
    line(&format!("export FAKE_EC2_ENDPOINT={endpoint}"));
    line(&format!("cd {}", root.display()));
    line("");
    line("# Kubernetes: the autoscaler's objects and the nodes it brings");
    line("kubectl get nodepools,ec2nodeclasses,nodeclaims,nodes -o wide");
    line("kubectl apply -f fixtures/workloads/inflate.yaml && kubectl scale deployment inflate --replicas 20");
    line("kubectl get events -A --field-selector involvedObject.kind=NodeClaim -w");
    line("");
    line("# EC2 and SQS through the AWS CLI");
    line(&format!(
        "aws --endpoint-url {endpoint} ec2 describe-instances --query 'Reservations[].Instances[].[InstanceId,InstanceType,InstanceLifecycle,Placement.AvailabilityZone,State.Name]' --output table"
    ));
    line(&format!(
        "aws --endpoint-url {endpoint} ec2 describe-spot-price-history --instance-types m5.large --max-items 3"
    ));
    line(&format!(
        "aws --endpoint-url {endpoint} sqs get-queue-attributes --attribute-names ApproximateNumberOfMessages --queue-url $(aws --endpoint-url {endpoint} sqs get-queue-url --queue-name {INTERRUPTION_QUEUE} --output text)"
    ));
    if let Some(queue) = env.external_sqs() {
        line(&format!(
            "# The interruption queue is on {}: fake-ec2's rules feed it, the autoscaler reads it",
            queue.host()
        ));
        line(&format!(
            "aws --endpoint-url {} sqs get-queue-attributes --attribute-names All --queue-url {}",
            queue.endpoint(),
            queue.queue_url()
        ));
        line(&format!("curl -s {endpoint}/_fake/events/forwarded"));
    }
    line("");
    line("# Faults: interrupt one instance (2-minute notice on the scaled clock), or run an FIS experiment");
    line("cargo run -q -p fake-ec2 -- state --instances");
    line("cargo run -q -p fake-ec2 -- interrupt i-...");
    line("# (the template targets NodePool \"default\"; this points it at the \"spot\" NodePool applied above)");
    line(
        "sed 's/\"karpenter.sh\\/nodepool\": \"default\"/\"karpenter.sh\\/nodepool\": \"spot\"/' fixtures/fis/spot-interrupt-50-percent.json > /tmp/fis-spot.json",
    );
    line(&format!(
        "aws --endpoint-url {endpoint} fis create-experiment-template --cli-input-json file:///tmp/fis-spot.json --query experimentTemplate.id --output text"
    ));
    line(&format!("aws --endpoint-url {endpoint} fis start-experiment --experiment-template-id EXT..."));
    line("");
    line("# The autoscaler's Prometheus metrics (Karpenter's names)");
    line(&format!("curl -s {} | grep ^karpenter_", env.metrics_url()));
    if let (Some((build, settings)), Some(log)) = (env.karpenter(), env.autoscaler_log()) {
        line("");
        line(&format!("# Upstream Karpenter {} (unmodified, {}), its log:", build.version, build.binary.display()));
        line(&format!("tail -f {}", log.display()));
        line(&format!(
            "kubectl -n {} get lease karpenter-leader-election -o jsonpath='{{.spec.holderIdentity}}{{\"\\n\"}}'",
            crate::karpenter::NAMESPACE
        ));
        line("# Karpenter against fake-ec2 by hand: the same environment on other ports. While this env's one");
        line("# holds the Lease it waits as a standby replica would; kill this env's one to hand over (it is");
        line("# restarted after 10 s, as kubelet restarts a crashed pod, and becomes the standby):");
        if let Some(pid) = env.autoscaler_pid() {
            line(&format!("kill -9 {pid}"));
        }
        let by_hand = crate::karpenter::Settings { metrics_port: 18080, health_probe_port: 18081, ..settings.clone() };
        line(&by_hand.shell_command(&build.binary));
    }
    s
}
