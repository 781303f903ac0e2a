use anyhow::Context;
use clap::Parser;
use fake_ec2::cli::{Args, Command, ExperimentCommand, LogFormat};
use fake_ec2::client;
use fake_ec2::cloud::Cloud;
use fake_ec2::server::{AppState, bind, serve};
use fake_ec2::world::config::WorldConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?;
    match args.log_format {
        LogFormat::Plain => tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init(),
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init(),
    }
    match args.command {
        Command::Check { world } => {
            let cfg = WorldConfig::load(&world)?;
            let c = Cloud::new(cfg, 0, world.parent().unwrap_or(std::path::Path::new(".")))?;
            let w = &c.ec2;
            println!(
                "{}: region {}, {} zones, {} subnets, {} instance types, {} pools",
                world.display(),
                w.cfg.region,
                w.cfg.zones.len(),
                w.subnets.len(),
                w.catalog.all().len(),
                w.pools.len() * 2
            );
            Ok(())
        }
        Command::Interrupt { endpoint, instance_ids, no_rebalance, notice_seconds, duration_seconds } => {
            let body = serde_json::json!({
                "instance_ids": instance_ids,
                "rebalance": !no_rebalance,
                "notice_seconds": notice_seconds,
                "duration_seconds": duration_seconds,
            });
            client::print(client::post(&endpoint.endpoint, "/_fake/interrupt", &body).await?)
        }
        Command::HealthEvent { endpoint, instance_ids, event_type_code, start_in_seconds } => {
            let body = serde_json::json!({
                "instance_ids": instance_ids,
                "event_type_code": event_type_code,
                "start_in_seconds": start_in_seconds,
            });
            client::print(client::post(&endpoint.endpoint, "/_fake/health-event", &body).await?)
        }
        Command::Clock { endpoint, advance, mode, factor } => {
            let v = if advance.is_none() && mode.is_none() {
                client::get(&endpoint.endpoint, "/_fake/clock").await?
            } else {
                let body = serde_json::json!({"advance_seconds": advance, "mode": mode, "factor": factor});
                client::post(&endpoint.endpoint, "/_fake/clock", &body).await?
            };
            client::print(v)
        }
        Command::State { endpoint, instances } => {
            let mut v = client::get(&endpoint.endpoint, "/_fake/state").await?;
            if instances {
                v["instance_list"] = client::get(&endpoint.endpoint, "/_fake/instances").await?;
            }
            client::print(v)
        }
        Command::Experiment { endpoint, command } => {
            let v = match command {
                ExperimentCommand::Start { template } => {
                    let text = std::fs::read_to_string(&template)
                        .with_context(|| format!("reading template {}", template.display()))?;
                    let body: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("template {} is not JSON", template.display()))?;
                    client::post(&endpoint.endpoint, "/_fake/experiments", &body).await?
                }
                ExperimentCommand::Get { id } => {
                    client::get(&endpoint.endpoint, &format!("/_fake/experiments/{id}")).await?
                }
                ExperimentCommand::List => client::get(&endpoint.endpoint, "/_fake/experiments").await?,
            };
            client::print(v)
        }
        Command::Events { endpoint, since } => {
            print!("{}", client::text(&endpoint.endpoint, &format!("/_fake/events/log?since={since}")).await?);
            Ok(())
        }
        Command::Serve(a) => {
            let loading = || format!("loading world {}", a.world.display());
            let mut cfg = WorldConfig::load(&a.world).with_context(loading)?;
            // Before the cloud is built, so the clock's start follows the mode asked for
            // (`--clock manual` starts at the fixed time, `real` at the wall clock).
            if let Some(mode) = a.clock {
                cfg.clock.mode = mode;
            }
            if let Some(factor) = a.clock_factor {
                cfg.clock.factor = factor;
            }
            let base_dir = a.world.parent().unwrap_or(std::path::Path::new("."));
            let mut w = Cloud::new(cfg, a.seed, base_dir).with_context(loading)?;
            if let Some(path) = &a.event_log {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening event log {}", path.display()))?;
                w.events.set_sink(file);
            }
            if let Some(kc) = &a.kubeconfig {
                let (server, ca) = fake_ec2::nodes::api_server(kc)?;
                tracing::info!(endpoint = %server, "EKS DescribeCluster answers the served cluster's API server");
                w.eks.serve_api_server(&server, ca.as_deref());
            }
            let state = AppState::new(w);
            if let Some(path) = &a.request_log {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening request log {}", path.display()))?;
                state.requests().set_sink(file);
            }
            if let Some(kc) = &a.kubeconfig {
                let client = fake_ec2::nodes::client_from(kc).await?;
                tracing::info!(kubeconfig = %kc.display(), "registering Nodes for running instances");
                tokio::spawn(fake_ec2::nodes::run(state.clone(), client));
            }
            let listener = bind(a.listen).await.with_context(|| format!("binding {}", a.listen))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, world = %a.world.display(), seed = a.seed, "fake-ec2 listening");
            // One stable line on stdout for scripts: the endpoint to point AWS clients at.
            println!("fake-ec2 listening on http://{addr}");
            serve(listener, state, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(())
        }
    }
}
