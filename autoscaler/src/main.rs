//! `autoscaler run` starts the controllers; `autoscaler crds` prints the CRDs.

use std::path::PathBuf;

use anyhow::Context;
use autoscaler::cloud::{AwsClients, AwsOptions};
use autoscaler::options::Options;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "A Karpenter-compatible node autoscaler for EC2")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster in KUBECONFIG (or in-cluster config) and AWS.
    Run(Box<Options>),
    /// Print the CRDs (NodePool, NodeClaim, EC2NodeClass) as YAML, or write one file each.
    Crds {
        /// Write `<dir>/<group>_<plural>.yaml` files instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir } => {
            for (file, crd) in autoscaler::apis::crdgen::crds() {
                let yaml = autoscaler::apis::crdgen::to_yaml(&crd)?;
                match &out_dir {
                    Some(dir) => {
                        let path = dir.join(file);
                        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
                    }
                    None => print!("{yaml}"),
                }
            }
            Ok(())
        }
        Command::Run(options) => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let client = kube::Client::try_default().await.context("connecting to Kubernetes")?;
                let aws = AwsClients::load(&AwsOptions {
                    region: options.region.clone(),
                    endpoint_url: options.aws_endpoint_url.clone(),
                    sqs_endpoint_url: options.aws_sqs_endpoint_url.clone(),
                })
                .await;
                autoscaler::operator::run(client, aws, *options).await
            })
        }
    }
}
