use anyhow::Context;
use clap::Parser;
use fake_ec2::cli::{Args, Command, ExperimentCommand, LogFormat};
use fake_ec2::client;
use fake_ec2::cloud::Cloud;
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
            client::print(client::post(&endpoint, "/_fake/interrupt", &body).await?)
        }
        Command::HealthEvent { endpoint, instance_ids, event_type_code, start_in_seconds } => {
            let body = serde_json::json!({
                "instance_ids": instance_ids,
                "event_type_code": event_type_code,
                "start_in_seconds": start_in_seconds,
            });
            client::print(client::post(&endpoint, "/_fake/health-event", &body).await?)
        }
        Command::Clock { endpoint, advance, mode, factor } => {
            let v = if advance.is_none() && mode.is_none() {
                client::get(&endpoint, "/_fake/clock").await?
            } else {
                let body = serde_json::json!({"advance_seconds": advance, "mode": mode, "factor": factor});
                client::post(&endpoint, "/_fake/clock", &body).await?
            };
            client::print(v)
        }
        Command::State { endpoint, instances } => {
            let mut v = client::get(&endpoint, "/_fake/state").await?;
            if instances {
                v["instance_list"] = client::get(&endpoint, "/_fake/instances").await?;
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
                    client::post(&endpoint, "/_fake/experiments", &body).await?
                }
                ExperimentCommand::Get { id } => client::get(&endpoint, &format!("/_fake/experiments/{id}")).await?,
                ExperimentCommand::List => client::get(&endpoint, "/_fake/experiments").await?,
            };
            client::print(v)
        }
        Command::Events { endpoint, since } => {
            print!("{}", client::text(&endpoint, &format!("/_fake/events/log?since={since}")).await?);
            Ok(())
        }
        Command::Serve(a) => match fake_ec2::serving::serve(a).await {
            Err(e) if e.is::<fake_ec2::serving::Refused>() => {
                eprintln!("error: {e}");
                std::process::exit(2)
            }
            served => served,
        },
        Command::Replay { file, world, seed } => {
            let code = fake_ec2::serving::replay(&file, world.as_deref(), seed).await?;
            std::process::exit(code)
        }
    }
}
