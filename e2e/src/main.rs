use anyhow::Context;
use clap::{Parser, Subcommand};
use e2e::cluster::{Backend, Cluster, ClusterError, repo_root};
use e2e::env::AutoscalerKind;
use e2e::external_sqs::{QueueHost, SqsKind};

#[derive(Debug, Parser)]
#[command(version, about = "spotbench end-to-end harness")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// An environment for manual play: cluster, fake-ec2 and the autoscaler (watching the
    /// interruption queue), running until Ctrl-C; prints KUBECONFIG, the endpoints and commands to try.
    Up {
        /// local, kind, or kubeconfig:<file> (a cluster you have: what the run adds is removed at exit).
        #[arg(long, default_value = "local", value_parser = Backend::parse)]
        backend: Backend,
        /// With kubeconfig:<file>, run even though the cluster has Nodes that are not kwok fake nodes.
        #[arg(long)]
        allow_real_nodes: bool,
        /// The autoscaler to run: the project's, or upstream Karpenter (built and cached on first use).
        #[arg(long, value_enum, default_value_t = AutoscalerKind::Spotbench)]
        autoscaler: AutoscalerKind,
        /// Only the cluster, left running after this exits (`e2e down NAME` deletes it).
        #[arg(long)]
        cluster_only: bool,
        /// Cluster name (with --cluster-only).
        #[arg(long, requires = "cluster_only")]
        name: Option<String>,
        /// World file for fake-ec2.
        #[arg(long, default_value = "fixtures/worlds/default.yaml")]
        world: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// World seconds per real second.
        #[arg(long, default_value_t = 10.0)]
        clock_factor: f64,
        /// Manifests under fixtures/ to apply once up (default: the EC2NodeClass and the spot NodePool).
        #[arg(long = "apply", value_name = "FIXTURE")]
        fixtures: Vec<String>,
        /// Apply nothing.
        #[arg(long, conflicts_with = "fixtures")]
        bare: bool,
        /// Where the interruption queue lives: built-in (fake-ec2's), moto (moto_server started
        /// here), localstack (a container, needs Docker) or endpoint:<url> (an SQS already running).
        #[arg(long, value_name = "HOST", default_value = "built-in")]
        sqs: QueueHost,
        /// The interruption queue on an SQS already running, e.g. your LocalStack
        /// (`--sqs endpoint:<url>`).
        #[arg(long, value_name = "URL", conflicts_with = "sqs")]
        sqs_endpoint: Option<String>,
    },
    /// The spot scale-up scenario end to end on the local cluster (fake-ec2 + autoscaler), shown as
    /// it happens, with the resulting fleet and its cost.
    Demo {
        #[arg(long, default_value_t = 10)]
        replicas: u32,
        /// The autoscaler under test: the project's, or upstream Karpenter (built and cached on first use).
        #[arg(long, value_enum, default_value_t = AutoscalerKind::Spotbench)]
        autoscaler: AutoscalerKind,
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
        /// Also write each normalized timeline as YAML, and what the report draws as JSON, next to its report.
        #[arg(long)]
        timeline: bool,
        /// Record each result in bench/matrix-<autoscaler>.json and rewrite bench/matrix.md and the
        /// README's scenario × autoscaler matrix from those files.
        #[arg(long)]
        matrix: bool,
        /// Cluster backend: local, kind, or kubeconfig:<file> for a cluster you have (everything a run
        /// creates there is labelled spotbench.io/run=<id> and deleted after it). Default:
        /// SPOTBENCH_BACKEND, else local.
        #[arg(long, value_parser = Backend::parse)]
        backend: Option<Backend>,
        /// With kubeconfig:<file>, run even though the cluster has Nodes that are not kwok fake nodes.
        #[arg(long)]
        allow_real_nodes: bool,
        /// The autoscaler under test: the project's, or upstream Karpenter (built and cached on first use).
        #[arg(long, value_enum, default_value_t = AutoscalerKind::Spotbench)]
        autoscaler: AutoscalerKind,
        /// Where the interruption queue lives for scenarios that watch one (overrides their `sqs:`).
        #[arg(long, value_enum)]
        sqs: Option<SqsKind>,
        /// Scenarios run at once, each on its own cluster; each one's lines are printed together
        /// when it ends. Reports, JUnit and the summary keep the scenarios' order.
        #[arg(long, short = 'j', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Record the run's wall time, as the row for its --jobs, in this Markdown file (a section of
        /// bench/results.md).
        #[arg(long, value_name = "FILE")]
        wall_time_to: Option<std::path::PathBuf>,
    },
    /// A/B: each scenario with both autoscalers on the same seed; one HTML page per scenario (both
    /// runs on one time axis) and a summary table in Markdown (default bench/compare.md).
    Compare {
        /// Files, or names from fixtures/scenarios (the core scenarios when none given).
        scenarios: Vec<String>,
        /// Where the pages go (default ~/.cache/spotbench/reports/compare).
        #[arg(long)]
        report_dir: Option<std::path::PathBuf>,
        /// The Markdown summary (default bench/compare.md).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Cluster backend (default: SPOTBENCH_BACKEND, else local).
        #[arg(long, value_parser = Backend::parse)]
        backend: Option<Backend>,
    },
    /// End-to-end performance: pending to Running for N pods, interruption notice to replacement
    /// Ready, the suite's wall time; written into bench/results.md (section) and bench/e2e.json.
    Perf {
        /// Sizes of the one-Deployment scale-up (`inflate`), each on a fresh cluster.
        #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "10,100,1000")]
        sizes: Vec<u32>,
        /// Sizes of the realistic mix (fixtures/workloads/scale-mix.yaml), each on a fresh cluster.
        #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1000,5000,10000")]
        mix_sizes: Vec<u32>,
        /// Skip the interruption measurement.
        #[arg(long)]
        no_interruption: bool,
        /// The mass interruption's fleet (one pod per node; FIS warns 10% of it); 0 skips it.
        #[arg(long, default_value_t = 500)]
        mass_interruption_nodes: u32,
        /// Run the project's autoscaler in this process instead of as its binary beside this one.
        #[arg(long)]
        in_process: bool,
        /// Skip running the scenario suite for its wall time.
        #[arg(long)]
        no_suite: bool,
        #[arg(long, default_value_t = 10.0)]
        clock_factor: f64,
        /// The autoscaler under test: the project's, or upstream Karpenter (built and cached on first use).
        #[arg(long, value_enum, default_value_t = AutoscalerKind::Spotbench)]
        autoscaler: AutoscalerKind,
        /// Measure each row again with this autoscaler right after, and give the ratios (its
        /// figures also get their own section and JSON file).
        #[arg(long, value_enum)]
        peer: Option<AutoscalerKind>,
        /// Measure nothing: write the sections of bench/results.md again from the JSON files.
        #[arg(long)]
        rewrite: bool,
    },
    /// The scenarios in fixtures/scenarios: name and description.
    List,
    /// Delete a cluster started with `up`.
    Down {
        #[arg(long, default_value = "local", value_parser = Backend::parse)]
        backend: Backend,
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // Scenario runs print their own progress; RUST_LOG=autoscaler=info shows the autoscaler's logs.
            let quiet = matches!(std::env::args().nth(1).as_deref(), Some("run" | "perf" | "compare"));
            let others = if quiet { "autoscaler=off,fake_ec2=off" } else { "autoscaler=warn,fake_ec2=warn" };
            tracing_subscriber::EnvFilter::new(format!("e2e=info,{others},kube=error,kube_client=off,warn"))
        }))
        .init();
    let root = repo_root();
    match Args::parse().command {
        Cmd::Up { backend: Backend::Kubeconfig(_), cluster_only: true, .. } => {
            anyhow::bail!("--cluster-only with kubeconfig:<file>: that cluster is up already")
        }
        Cmd::Up {
            backend,
            allow_real_nodes,
            autoscaler,
            cluster_only: false,
            world,
            seed,
            clock_factor,
            fixtures,
            bare,
            sqs,
            sqs_endpoint,
            ..
        } => {
            let backend = backend.with_real_nodes_allowed(allow_real_nodes);
            let fixtures = match (bare, fixtures.is_empty()) {
                (true, _) => Vec::new(),
                (false, true) => e2e::up::DEFAULT_FIXTURES.iter().map(|f| (*f).to_owned()).collect(),
                (false, false) => fixtures,
            };
            let env = e2e::env::EnvConfig {
                world,
                seed,
                clock_factor,
                backend,
                autoscaler,
                sqs: match sqs_endpoint {
                    Some(url) => format!("endpoint:{url}").parse().map_err(anyhow::Error::msg)?,
                    None => sqs,
                },
                ..e2e::env::EnvConfig::with_interruption_queue()
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(e2e::up::run(e2e::up::UpConfig { env, fixtures }))
        }
        Cmd::Up { backend, name, .. } => match Cluster::up(backend, &root, name.as_deref()) {
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
        Cmd::Demo { replicas, keep, autoscaler } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(e2e::demo::run(replicas, keep, autoscaler))
        }
        Cmd::Run {
            scenarios,
            junit,
            report_dir,
            timeline,
            matrix,
            backend,
            allow_real_nodes,
            autoscaler,
            sqs,
            jobs,
            wall_time_to,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            let backend = backend.unwrap_or_else(e2e::env::default_backend).with_real_nodes_allowed(allow_real_nodes);
            let opts = e2e::scenario::runner::RunOptions { backend, autoscaler, sqs };
            let run = e2e::scenario::cli::RunArgs {
                junit,
                report_dir,
                timeline,
                matrix,
                jobs: jobs.into(),
                wall_time_to,
                opts,
            };
            let ok = rt.block_on(e2e::scenario::cli::run(&root, &scenarios, run))?;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Compare { scenarios, report_dir, out, backend } => {
            let rt = tokio::runtime::Runtime::new()?;
            let cfg = e2e::scenario::compare::CompareConfig {
                scenarios,
                report_dir: report_dir.unwrap_or_else(|| e2e::scenario::cli::default_report_dir().join("compare")),
                out: out.unwrap_or_else(|| root.join("bench/compare.md")),
                backend: backend.unwrap_or_else(e2e::env::default_backend),
            };
            let ok = rt.block_on(e2e::scenario::compare::run(&root, cfg))?;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Perf {
            sizes,
            mix_sizes,
            no_interruption,
            mass_interruption_nodes,
            in_process,
            no_suite,
            clock_factor,
            autoscaler,
            peer,
            rewrite,
        } => {
            if rewrite {
                return e2e::perf::rewrite(&root.join("bench/results.md"), &root.join("bench"));
            }
            let ours_measured = autoscaler == AutoscalerKind::Spotbench || peer == Some(AutoscalerKind::Spotbench);
            let autoscaler_binary = match (ours_measured, in_process) {
                (true, false) => Some(e2e::perf::sibling_autoscaler_binary().context(
                    "no autoscaler binary beside this one: build it in the same profile (cargo build [--release] -p autoscaler), or pass --in-process",
                )?),
                _ => None,
            };
            let cfg = e2e::perf::PerfConfig {
                sizes,
                mix_sizes,
                interruption: !no_interruption,
                mass_interruption_nodes: (mass_interruption_nodes > 0).then_some(mass_interruption_nodes),
                suite: !no_suite,
                clock_factor,
                autoscaler,
                autoscaler_binary,
                peer,
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(e2e::perf::run(cfg, &root.join("bench/results.md"), &root.join("bench")))?;
            Ok(())
        }
        Cmd::List => e2e::scenario::cli::list(&root),
        Cmd::Down { backend, name } => {
            let r = match backend {
                Backend::Local => e2e::cluster::local::down(&root, &name),
                Backend::Kind => e2e::cluster::kind::down(&name),
                Backend::Kubeconfig(_) => {
                    anyhow::bail!("nothing to delete: runs on kubeconfig:<file> remove what they added")
                }
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

    #[test]
    fn the_interruption_queue_host_is_chosen_on_the_command_line() {
        use clap::Parser as _;
        let sqs_of = |args: &[&str]| match super::Args::try_parse_from(args).map(|a| a.command) {
            Ok(super::Cmd::Up { sqs, sqs_endpoint, .. }) => Ok((sqs, sqs_endpoint)),
            Ok(super::Cmd::Run { sqs, .. }) => Ok((sqs.map(Into::into).unwrap_or_default(), None)),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        };
        use super::QueueHost;
        assert_eq!(sqs_of(&["e2e", "up"]), Ok((QueueHost::BuiltIn, None)));
        assert_eq!(sqs_of(&["e2e", "up", "--sqs", "localstack"]), Ok((QueueHost::LocalStack, None)));
        assert_eq!(
            sqs_of(&["e2e", "up", "--sqs", "endpoint:http://localhost:4566"]),
            Ok((QueueHost::Endpoint("http://localhost:4566".into()), None))
        );
        assert_eq!(
            sqs_of(&["e2e", "up", "--sqs-endpoint", "http://localhost:4566"]),
            Ok((QueueHost::BuiltIn, Some("http://localhost:4566".into())))
        );
        assert!(sqs_of(&["e2e", "up", "--sqs", "moto", "--sqs-endpoint", "http://x"]).is_err());
        assert_eq!(sqs_of(&["e2e", "run", "--sqs", "moto"]), Ok((QueueHost::Moto, None)));
        assert!(sqs_of(&["e2e", "run", "--sqs", "endpoint:http://x"]).is_err());
    }
}
