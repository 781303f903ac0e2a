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
    /// Interrupt spot instances of a running fake-ec2: rebalance recommendation, the 2-minute
    /// warning, then the stop or terminate their interruption behaviour says.
    Interrupt {
        #[command(flatten)]
        endpoint: Endpoint,
        #[arg(required = true)]
        instance_ids: Vec<String>,
        /// Skip the rebalance recommendation.
        #[arg(long)]
        no_rebalance: bool,
        /// Seconds between the warning and the reclaim.
        #[arg(long, default_value_t = 120)]
        notice_seconds: i64,
        /// Seconds from now to the reclaim (FIS durationBeforeInterruption); the notice if absent.
        #[arg(long)]
        duration_seconds: Option<i64>,
    },
    /// Publish an AWS Health scheduled change for instances of a running fake-ec2.
    HealthEvent {
        #[command(flatten)]
        endpoint: Endpoint,
        #[arg(required = true)]
        instance_ids: Vec<String>,
        #[arg(long, default_value = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")]
        event_type_code: String,
        #[arg(long, default_value_t = 0)]
        start_in_seconds: i64,
    },
    /// Show, advance or change the clock of a running fake-ec2.
    Clock {
        #[command(flatten)]
        endpoint: Endpoint,
        /// World seconds to move forward.
        #[arg(long)]
        advance: Option<f64>,
        /// New clock mode (real, scaled, manual).
        #[arg(long)]
        mode: Option<crate::clock::ClockMode>,
        /// Speed for `--mode scaled`.
        #[arg(long)]
        factor: Option<f64>,
    },
    /// Print the state of a running fake-ec2 (clock, instances by state, quotas).
    State {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Also list every instance.
        #[arg(long)]
        instances: bool,
    },
    /// Run FIS experiments on a running fake-ec2 from real FIS template files.
    Experiment {
        #[command(flatten)]
        endpoint: Endpoint,
        #[command(subcommand)]
        command: ExperimentCommand,
    },
    /// Send a recording's requests (serve --record) to a fresh world with the same seed, at the
    /// same world times, and report the first answer that differs (exit 1), or how many matched.
    Replay {
        /// The recording (JSON lines).
        file: PathBuf,
        /// The world file, if not the one the recording names.
        #[arg(long)]
        world: Option<PathBuf>,
        /// The seed, if not the recording's.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Print the event log of a running fake-ec2 (JSON lines), after sequence number `--since`.
    Events {
        #[command(flatten)]
        endpoint: Endpoint,
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Create a template from a FIS template file (CreateExperimentTemplate's JSON) and start it.
    Start {
        #[arg(long)]
        template: PathBuf,
    },
    /// Print an experiment: its state, actions, and the resources it hit.
    Get { id: String },
    /// Print every experiment.
    List,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Endpoint {
    /// The running fake-ec2 (its admin API is under /_fake/).
    #[arg(long, env = "FAKE_EC2_ENDPOINT", default_value = "http://127.0.0.1:4566", global = true)]
    pub endpoint: String,
    /// The admin API's bearer token (serve's --admin-token), if it has one.
    #[arg(long, env = "FAKE_EC2_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<String>,
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
    pub clock: Option<crate::clock::ClockMode>,
    /// Speed for `--clock scaled`.
    #[arg(long)]
    pub clock_factor: Option<f64>,
    /// Play kubelet and cloud controller in this cluster: running instances become Nodes.
    /// Deliberately not read from KUBECONFIG, so a stray variable never touches a real cluster.
    #[arg(long, env = "FAKE_EC2_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Append every event (JSON lines, as `GET /_fake/events/log` shows them) to this file.
    #[arg(long, env = "FAKE_EC2_EVENT_LOG")]
    pub event_log: Option<PathBuf>,
    /// Append every AWS request answered (JSON lines, as `GET /_fake/requests` shows them).
    #[arg(long, env = "FAKE_EC2_REQUEST_LOG")]
    pub request_log: Option<PathBuf>,
    /// MiB each in-memory log (requests, events) keeps of its newest entries, so memory stays flat
    /// on long runs; `--request-log` and `--event-log` files keep everything.
    #[arg(long, env = "FAKE_EC2_LOG_BUDGET_MIB", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub log_budget_mib: u32,
    /// Serve the admin API (/_fake/*) on this address only, not on --listen.
    #[arg(long, env = "FAKE_EC2_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on the admin API. Needed when the admin API is
    /// reachable on an address other than loopback.
    #[arg(long, env = "FAKE_EC2_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Keep the cloud's state in this file: written before every answer that changed it, read
    /// back on start (same --world and --seed only), so a restarted fake-ec2 keeps its instances,
    /// queues and messages.
    #[arg(long, env = "FAKE_EC2_STATE_FILE")]
    pub state_file: Option<PathBuf>,
    /// Record every request and answer to this file (JSON lines) for `fake-ec2 replay`.
    #[arg(long, env = "FAKE_EC2_RECORD")]
    pub record: Option<PathBuf>,
}

impl std::str::FromStr for crate::clock::ClockMode {
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
