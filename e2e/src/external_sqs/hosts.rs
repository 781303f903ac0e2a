//! What runs an external queue: moto_server as a child process, LocalStack as a container through
//! testcontainers, or nothing (an endpoint the user runs).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use testcontainers_modules::localstack::LocalStack;
use testcontainers_modules::testcontainers::runners::AsyncRunner as _;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt as _};

use super::{ExternalSqsError, QueueHost};

/// The LocalStack image, pinned: `:latest` has needed an auth token since 2026, and a pinned tag
/// keeps a CI run reproducible.
pub const LOCALSTACK_IMAGE: &str = "localstack/localstack";
pub const LOCALSTACK_TAG: &str = "4.5.0";
/// LocalStack's edge port inside the container.
const LOCALSTACK_PORT: u16 = 4566;
/// How long LocalStack gets to print "Ready." (the image pull is not counted).
const LOCALSTACK_STARTUP: Duration = Duration::from_secs(180);

/// Why no Docker engine answers here, as the kind backend finds it (`no Docker engine (...)`).
pub fn docker_unavailable() -> Option<String> {
    crate::cluster::kind::docker_unavailable()
}

/// Why moto_server cannot start here, if it cannot.
pub(super) fn moto_unavailable() -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join("moto_server").is_file());
    (!found).then(|| "no moto_server on PATH (pip install 'moto[server]')".to_owned())
}

/// What was started for the run.
pub(super) enum Running {
    Moto {
        child: Box<tokio::process::Child>,
        log: PathBuf,
    },
    LocalStack(Box<ContainerAsync<LocalStack>>),
    /// An endpoint the user runs: nothing to stop.
    Existing,
}

impl Running {
    /// Starts what `host` needs; returns it and the SQS endpoint this machine reaches it on.
    pub(super) async fn start(host: &QueueHost) -> Result<(Running, String), ExternalSqsError> {
        match host {
            QueueHost::Moto => start_moto(),
            QueueHost::LocalStack => start_localstack().await,
            QueueHost::Endpoint(url) => Ok((Running::Existing, url.clone())),
            QueueHost::BuiltIn => Err(ExternalSqsError::Start {
                what: host.to_string(),
                message: "the built-in queue runs in fake-ec2".to_owned(),
            }),
        }
    }

    /// Why the started process is gone, if it is (moto_server exited, with its log's last lines).
    fn exited(&mut self) -> Option<String> {
        let Running::Moto { child, log } = self else { return None };
        let status = child.try_wait().ok()??;
        let text = std::fs::read_to_string(&*log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        Some(format!("moto_server exited ({status}); {}: {}", log.display(), tail.join(" | ")))
    }

    pub(super) async fn stop(self) {
        match self {
            Running::Moto { mut child, .. } => {
                if let Err(e) = child.kill().await {
                    tracing::warn!(error = %e, "could not kill moto_server");
                }
            }
            Running::LocalStack(container) => {
                if let Err(e) = container.rm().await {
                    tracing::warn!(error = %e, "could not remove LocalStack's container");
                }
            }
            Running::Existing => {}
        }
    }
}

/// moto_server on a free loopback port, its output in `<cache>/logs/moto_server-<port>.log`,
/// killed when its handle is dropped.
fn start_moto() -> Result<(Running, String), ExternalSqsError> {
    let failed = |message: String| ExternalSqsError::Start { what: "moto_server".to_owned(), message };
    let port = crate::karpenter::free_port().map_err(|e| failed(format!("no free port: {e}")))?;
    let dir = crate::cluster::cache_dir().join("logs");
    std::fs::create_dir_all(&dir).map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
    let log = dir.join(format!("moto_server-{port}.log"));
    let out = std::fs::File::create(&log).map_err(|e| failed(format!("creating {}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| failed(e.to_string()))?;
    let child = tokio::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    Ok((Running::Moto { child: Box::new(child), log }, format!("http://127.0.0.1:{port}")))
}

/// LocalStack with SQS only, its queue URLs in path style on the host and port a request came to.
async fn start_localstack() -> Result<(Running, String), ExternalSqsError> {
    let what = format!("LocalStack ({LOCALSTACK_IMAGE}:{LOCALSTACK_TAG})");
    let failed = |e: testcontainers_modules::testcontainers::TestcontainersError| ExternalSqsError::Start {
        what: what.clone(),
        message: e.to_string(),
    };
    let container = LocalStack::default()
        .with_tag(LOCALSTACK_TAG)
        .with_env_var("SERVICES", "sqs")
        .with_env_var("SQS_ENDPOINT_STRATEGY", "path")
        .with_startup_timeout(LOCALSTACK_STARTUP)
        .start()
        .await
        .map_err(failed)?;
    let host = container.get_host().await.map_err(failed)?;
    let port = container.get_host_port_ipv4(LOCALSTACK_PORT).await.map_err(failed)?;
    Ok((Running::LocalStack(Box::new(container)), format!("http://{host}:{port}")))
}

/// Waits until the SQS at `endpoint` answers ListQueues (what the run needs of it), failing early
/// when the process started for it has exited.
pub(super) async fn wait_answering(
    client: &aws_sdk_sqs::Client,
    running: &mut Running,
    host: &str,
    endpoint: &str,
    timeout: Duration,
) -> Result<(), ExternalSqsError> {
    let started = Instant::now();
    loop {
        if let Some(why) = running.exited() {
            return Err(ExternalSqsError::Start { what: host.to_owned(), message: why });
        }
        let last = match client.list_queues().send().await {
            Ok(_) => return Ok(()),
            Err(e) => aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
        };
        if started.elapsed() > timeout {
            return Err(ExternalSqsError::NotReady {
                host: host.to_owned(),
                endpoint: endpoint.to_owned(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
