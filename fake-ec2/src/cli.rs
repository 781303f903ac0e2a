//! Command line: `fake-ec2 serve --world <file> --seed N --listen 127.0.0.1:PORT`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(version, about = "A deterministic fake of EC2 (Query API, spot market, capacity, quotas, throttling)")]
pub struct Args {
    #[arg(long, env = "FAKE_EC2_LOG", default_value = "fake_ec2=info,warn", global = true)]
    pub log: String,
    #[arg(long, value_enum, env = "FAKE_EC2_LOG_FORMAT", default_value_t = LogFormat::Plain, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the EC2 Query API, the Pricing API and the admin API for one world.
    Serve(ServeArgs),
    /// Check a world file and print what it contains.
    Check {
        #[arg(long, env = "FAKE_EC2_WORLD")]
        world: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The world file (fixtures/worlds/*.yaml).
    #[arg(long, env = "FAKE_EC2_WORLD", default_value = "fixtures/worlds/default.yaml")]
    pub world: PathBuf,
    /// Seed for every random choice: the same seed and requests give the same responses.
    #[arg(long, env = "FAKE_EC2_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Address to listen on; loopback unless you mean otherwise.
    #[arg(long, env = "FAKE_EC2_LISTEN", default_value = "127.0.0.1:4566")]
    pub listen: SocketAddr,
    /// Override the world file's clock mode (real, scaled, manual).
    #[arg(long)]
    pub clock: Option<crate::world::clock::ClockMode>,
    /// Speed for `--clock scaled`.
    #[arg(long)]
    pub clock_factor: Option<f64>,
    /// Play kubelet and cloud controller in this cluster: running instances become Nodes.
    /// Deliberately not read from KUBECONFIG, so a stray variable never touches a real cluster.
    #[arg(long, env = "FAKE_EC2_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

impl std::str::FromStr for crate::world::clock::ClockMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "real" => Ok(Self::Real),
            "scaled" => Ok(Self::Scaled),
            "manual" => Ok(Self::Manual),
            _ => Err(format!("clock mode must be real, scaled or manual, not {s}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_valid() {
        <Args as clap::CommandFactory>::command().debug_assert();
    }
}
