use anyhow::Context;
use clap::{Parser, Subcommand};
use e2e::cluster::{Backend, Cluster, ClusterError, repo_root};

#[derive(Debug, Parser)]
#[command(version, about = "spotbench end-to-end harness")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start a cluster and leave it running; prints how to use it.
    Up {
        #[arg(long, value_enum, default_value_t = Backend::Local)]
        backend: Backend,
        #[arg(long)]
        name: Option<String>,
    },
    /// The spot scale-up scenario end to end on the local cluster (fake-ec2 + autoscaler), shown as
    /// it happens, with the resulting fleet and its cost.
    Demo {
        #[arg(long, default_value_t = 10)]
        replicas: u32,
        /// Leave everything running until Ctrl-C and print how to look at it.
        #[arg(long)]
        keep: bool,
    },
    /// Run scenarios (files, or names from fixtures/scenarios; all of them when none given).
    Run {
        scenarios: Vec<String>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<std::path::PathBuf>,
        /// Where the HTML reports go (default ~/.cache/spotbench/reports).
        #[arg(long)]
        report_dir: Option<std::path::PathBuf>,
        /// Also write each normalized timeline as YAML next to its report.
        #[arg(long)]
        timeline: bool,
        /// Cluster backend (default: SPOTBENCH_BACKEND, else local).
        #[arg(long, value_enum)]
        backend: Option<Backend>,
    },
    /// The scenarios in fixtures/scenarios: name and description.
    List,
    /// Delete a cluster started with `up`.
    Down {
        #[arg(long, value_enum, default_value_t = Backend::Local)]
        backend: Backend,
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // Scenario runs print their own progress; RUST_LOG=autoscaler=info shows the autoscaler's logs.
            let quiet = std::env::args().nth(1).as_deref() == Some("run");
            let others = if quiet { "autoscaler=off,fake_ec2=off" } else { "autoscaler=warn,fake_ec2=warn" };
            tracing_subscriber::EnvFilter::new(format!("e2e=info,{others},kube=error,kube_client=off,warn"))
        }))
        .init();
    let root = repo_root();
    match Args::parse().command {
        Cmd::Up { backend, name } => match Cluster::up(backend, &root, name.as_deref()) {
            Ok(c) => {
                let c = c.keep();
                println!("cluster {} is up ({:?} backend)", c.name, c.backend);
                println!("export KUBECONFIG={}", c.kubeconfig.display());
                println!("kubectl get nodes,pods -A");
                println!("e2e down {}", c.name);
                Ok(())
            }
            Err(e @ ClusterError::NotRun { .. }) => {
                println!("{e}");
                Ok(())
            }
            Err(e) => Err(e).context("bringing the cluster up"),
        },
        Cmd::Demo { replicas, keep } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(e2e::demo::run(replicas, keep))
        }
        Cmd::Run { scenarios, junit, report_dir, timeline, backend } => {
            let rt = tokio::runtime::Runtime::new()?;
            let backend = backend.unwrap_or_else(e2e::env::default_backend);
            let ok = rt.block_on(e2e::scenario::cli::run(
                &root,
                &scenarios,
                junit.as_deref(),
                report_dir,
                timeline,
                backend,
            ))?;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::List => e2e::scenario::cli::list(&root),
        Cmd::Down { backend, name } => {
            let r = match backend {
                Backend::Local => e2e::cluster::local::down(&root, &name),
                Backend::Kind => e2e::cluster::kind::down(&name),
            };
            r.with_context(|| format!("deleting cluster {name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_valid() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
