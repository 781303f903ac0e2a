//! `autoscaler run` starts the controllers; `autoscaler crds` prints the CRDs.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "A Karpenter-compatible node autoscaler for EC2")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        }
    }
    Ok(())
}
