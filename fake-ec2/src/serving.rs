//! `fake-ec2 serve` and `fake-ec2 replay`, as the binary runs them.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::cloud::Cloud;
use crate::persist::StateFile;
use crate::record::{Header, Recorder, replay};
use crate::server::{AdminExposure, AppState, Hooks, Listeners, bind, check_exposure, serve_with};
use crate::world::config::WorldConfig;

fn append(path: &Path, what: &str) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {what} {}", path.display()))
}

/// `serve` will not start as asked (an admin API open off loopback): the binary prints this one
/// line, with no backtrace whatever RUST_BACKTRACE says, and exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Serves until SIGINT or SIGTERM; the state file (if any) is written last.
pub async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let exposure = AdminExposure { listen: a.listen, admin_listen: a.admin_listen, token: a.admin_token.as_deref() };
    check_exposure(exposure).map_err(Refused)?;
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
    let base_dir = a.world.parent().unwrap_or(Path::new("."));
    let mut w = Cloud::new(cfg, a.seed, base_dir).with_context(loading)?;
    let log_budget = a.log_budget_mib as usize * 1024 * 1024;
    w.events.set_log_budget(log_budget);
    if let Some(path) = &a.event_log {
        w.events.set_sink(append(path, "event log")?);
    }
    if let Some(kc) = &a.kubeconfig {
        let (server, ca) = crate::nodes::api_server(kc)?;
        tracing::info!(endpoint = %server, "EKS DescribeCluster answers the served cluster's API server");
        w.eks.serve_api_server(&server, ca.as_deref());
    }
    let state = AppState::new(w);
    let state_file = match &a.state_file {
        Some(path) => {
            let identity = crate::persist::identity(&a.world, a.seed)
                .with_context(|| format!("reading world {}", a.world.display()))?;
            let file = StateFile::new(path.clone(), identity);
            let restored = file.restore_into(&state)?;
            if !restored {
                tracing::info!(path = %path.display(), "no state file yet: starting afresh");
            }
            Some((file, restored))
        }
        None => None,
    };
    let restored = state_file.as_ref().is_some_and(|(_, r)| *r);
    state.requests().set_budget(log_budget);
    if let Some(path) = &a.request_log {
        state.requests().set_sink(append(path, "request log")?);
    }
    let recorder = match &a.record {
        Some(path) => {
            // One lock: the world's start and its clock.
            let (world_start_ms, time_tolerance_ms) = {
                let cloud = state.cloud();
                let clock = &cloud.ec2.cfg.clock;
                (cloud.ec2.started_at, crate::record::time_tolerance(clock.mode, clock.factor))
            };
            let header = Header {
                fake_ec2_recording: crate::record::FORMAT,
                world: a.world.display().to_string(),
                seed: a.seed,
                world_start_ms,
                restored_from_state: restored,
                time_tolerance_ms,
            };
            let file = std::fs::File::create(path).with_context(|| format!("creating recording {}", path.display()))?;
            Some(Recorder::start(std::io::BufWriter::new(file), &header)?)
        }
        None => None,
    };
    let hooks = Arc::new(Hooks { state_file: state_file.map(|(f, _)| f), recorder });
    if let Some(kc) = &a.kubeconfig {
        let client = crate::nodes::client_from(kc).await?;
        tracing::info!(kubeconfig = %kc.display(), "registering Nodes for running instances");
        tokio::spawn(crate::nodes::run(state.clone(), client));
    }
    let aws = bind(a.listen).await.with_context(|| format!("binding {}", a.listen))?;
    let addr = aws.local_addr()?;
    let admin = match a.admin_listen {
        Some(at) => Some(bind(at).await.with_context(|| format!("binding the admin API on {at}"))?),
        None => None,
    };
    tracing::info!(%addr, world = %a.world.display(), seed = a.seed, "fake-ec2 listening");
    // One stable line on stdout for scripts: the endpoint to point AWS clients at.
    println!("fake-ec2 listening on http://{addr}");
    if let Some(admin) = &admin {
        println!("fake-ec2 admin API on http://{}", admin.local_addr()?);
    }
    let listeners = Listeners { aws, admin, admin_token: a.admin_token.clone(), hooks };
    serve_with(listeners, state, shutdown_signal()).await?;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Replays a recording; prints the outcome; the process's exit code (0 identical, 1 differs).
pub async fn replay(file: &Path, world: Option<&Path>, seed: Option<u64>) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading recording {}", file.display()))?;
    let (header, exchanges) =
        crate::record::read(&text).map_err(|e| anyhow::anyhow!("recording {}: {e}", file.display()))?;
    if header.restored_from_state {
        eprintln!("warning: the recorded fake-ec2 started from a state file; a fresh world may answer differently");
    }
    match replay::run(&header, &exchanges, world, seed).await? {
        replay::Outcome::Identical { replayed, skipped } => {
            let times = match header.time_tolerance_ms {
                Some(ms) => format!("; timestamps within {ms} ms, as the recorded clock ran by itself"),
                None => "; byte for byte".to_owned(),
            };
            println!("identical: {replayed} requests ({skipped} clock-mode changes skipped{times})");
            Ok(0)
        }
        replay::Outcome::Differs { seq, service, action, diff } => {
            println!("differs: request {seq} ({service} {action}) answered differently:\n{diff}");
            Ok(1)
        }
    }
}
