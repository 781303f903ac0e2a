//! The interruption queue outside fake-ec2: on a moto_server or a LocalStack (through the
//! testcontainers crate, a pinned image) started for the run and torn down with it, or on an SQS
//! endpoint the user already runs. The queue is created there with aws-sdk-sqs, fake-ec2's
//! EventBridge rules that fed the built-in queue deliver to it instead (fake-ec2's forwarder), and
//! the autoscaler under test reads it there through its SQS endpoint. So every interruption message
//! crosses an SQS that is not fake-ec2's, as it does for teams whose CI runs LocalStack.

mod hosts;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};

pub use hosts::{LOCALSTACK_IMAGE, LOCALSTACK_TAG, docker_unavailable};

/// Where a scenario's interruption queue lives (`sqs:` in a scenario file, `e2e run --sqs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SqsKind {
    /// fake-ec2's own SQS.
    #[default]
    #[value(name = "built-in")]
    BuiltIn,
    /// moto_server, a child process on a free loopback port.
    Moto,
    /// LocalStack, a container started through testcontainers (needs a Docker engine).
    #[value(name = "localstack")]
    #[serde(rename = "localstack")]
    LocalStack,
}

/// Where a run's interruption queue lives: a [`SqsKind`], or an SQS endpoint already running
/// (`endpoint:<url>`, e.g. the team's LocalStack), where nothing is started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum QueueHost {
    #[default]
    BuiltIn,
    Moto,
    LocalStack,
    Endpoint(String),
}

impl From<SqsKind> for QueueHost {
    fn from(kind: SqsKind) -> Self {
        match kind {
            SqsKind::BuiltIn => QueueHost::BuiltIn,
            SqsKind::Moto => QueueHost::Moto,
            SqsKind::LocalStack => QueueHost::LocalStack,
        }
    }
}

impl FromStr for QueueHost {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "built-in" => Ok(QueueHost::BuiltIn),
            "moto" => Ok(QueueHost::Moto),
            "localstack" => Ok(QueueHost::LocalStack),
            other => match other.strip_prefix("endpoint:") {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    Ok(QueueHost::Endpoint(url.trim_end_matches('/').to_owned()))
                }
                Some(url) => Err(format!("`{url}` is not an http(s) URL: write e.g. endpoint:http://localhost:4566")),
                None => Err(format!(
                    "unknown SQS `{other}`: one of built-in, moto, localstack, endpoint:<url> (e.g. endpoint:http://localhost:4566)"
                )),
            },
        }
    }
}

impl fmt::Display for QueueHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueHost::BuiltIn => f.write_str("fake-ec2's built-in SQS"),
            QueueHost::Moto => f.write_str("moto_server"),
            QueueHost::LocalStack => write!(f, "LocalStack ({LOCALSTACK_IMAGE}:{LOCALSTACK_TAG})"),
            QueueHost::Endpoint(url) => write!(f, "the SQS endpoint {url}"),
        }
    }
}

impl QueueHost {
    /// Why this machine cannot host the queue (one line), if it cannot: LocalStack needs a Docker
    /// engine (`no Docker engine (...)`), moto needs `moto_server` on PATH.
    pub fn unavailable(&self) -> Option<String> {
        match self {
            QueueHost::LocalStack => docker_unavailable(),
            QueueHost::Moto => hosts::moto_unavailable(),
            QueueHost::BuiltIn | QueueHost::Endpoint(_) => None,
        }
    }
}

/// Fails with [`ExternalSqsError::NotRun`] when this machine cannot host the queue.
pub fn check(host: &QueueHost) -> Result<(), ExternalSqsError> {
    match host.unavailable() {
        Some(reason) => Err(ExternalSqsError::NotRun { host: host.to_string(), reason }),
        None => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExternalSqsError {
    #[error("the interruption queue on {host} cannot run here: {reason}")]
    NotRun { host: String, reason: String },
    #[error("the interruption queue on {host} needs its name: run the autoscaler with `--interruption-queue <name>`")]
    NoQueue { host: String },
    #[error("no EventBridge rule of the world targets queue {queue}, so nothing would reach {host}")]
    NoRule { queue: String, host: String },
    #[error("starting {what}: {message}")]
    Start { what: String, message: String },
    #[error("{host} at {endpoint} did not answer ListQueues within {timeout:?}: {last}")]
    NotReady { host: String, endpoint: String, timeout: Duration, last: String },
    #[error("creating queue {queue} on {endpoint}: {message}")]
    CreateQueue { queue: String, endpoint: String, message: String },
}

/// How long a started moto_server or LocalStack gets to answer SQS.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The interruption queue on an external SQS, and what runs it (stopped by [`ExternalSqs::stop`],
/// or killed when dropped).
pub struct ExternalSqs {
    host: QueueHost,
    endpoint: String,
    queue_url: String,
    client: aws_sdk_sqs::Client,
    running: hosts::Running,
}

impl ExternalSqs {
    /// Starts `host` (nothing for an existing endpoint), waits until it answers SQS, creates
    /// `queue` there and points every rule of `bus` that fed the built-in `queue` at it. `sdk`
    /// gives region and credentials. None for the built-in queue.
    pub async fn start(
        host: &QueueHost,
        queue: Option<&str>,
        sdk: &aws_config::SdkConfig,
        bus: &fake_ec2::cloud::Shared,
    ) -> Result<Option<ExternalSqs>, ExternalSqsError> {
        if *host == QueueHost::BuiltIn {
            return Ok(None);
        }
        check(host)?;
        let shown = host.to_string();
        let queue = queue.ok_or_else(|| ExternalSqsError::NoQueue { host: shown.clone() })?;
        let (mut running, endpoint) = hosts::Running::start(host).await?;
        let client =
            aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).endpoint_url(&endpoint).build());
        hosts::wait_answering(&client, &mut running, &shown, &endpoint, READY_TIMEOUT).await?;
        let created = client
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .map_err(|e| ExternalSqsError::CreateQueue {
                queue: queue.to_owned(),
                endpoint: endpoint.clone(),
                message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?
            .queue_url
            .unwrap_or_default();
        // fake-ec2's forwarder sends to the URL's origin: the one this machine reaches, whatever
        // host name the SQS put in it (LocalStack names its own port inside the container).
        let queue_url = reachable_queue_url(&created, &endpoint);
        let retargeted = retarget(&mut bus.cloud().events.rules, queue, &queue_url);
        if retargeted == 0 {
            return Err(ExternalSqsError::NoRule { queue: queue.to_owned(), host: shown });
        }
        tracing::info!(host = %shown, %queue_url, rules = retargeted, "interruption queue on an external SQS");
        Ok(Some(ExternalSqs { host: host.clone(), endpoint, queue_url, client, running }))
    }

    pub fn host(&self) -> &QueueHost {
        &self.host
    }

    /// The SQS endpoint the autoscaler under test is given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The queue's URL, as fake-ec2's rules target it.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Messages in the queue: visible, in flight and delayed (SQS's approximate counts).
    pub async fn depth(&self) -> anyhow::Result<u64> {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await?
            .attributes
            .unwrap_or_default();
        Ok([
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .filter_map(|k| attrs.get(k)?.parse::<u64>().ok())
        .sum())
    }

    /// What went through the queue: once fake-ec2's forwarder has handled every message handed to
    /// it and the autoscaler has deleted them all (or `timeout` passed), the forwarder's counts and
    /// the messages left.
    pub async fn settle(&self, fake: &fake_ec2::cloud::Shared, timeout: Duration) -> ExternalQueueReport {
        let waited = crate::env::wait_for("the external queue to settle", timeout, || async {
            let forwarded = fake.cloud().events.forwarded();
            let left = self.depth().await.ok()?;
            (forwarded.queued == forwarded.delivered + forwarded.failed && left == 0).then_some(())
        })
        .await;
        if let Err(e) = waited {
            tracing::warn!(error = %e, queue = %self.queue_url, "the external queue did not settle");
        }
        ExternalQueueReport {
            host: self.host.to_string(),
            queue_url: self.queue_url.clone(),
            forwarded: fake.cloud().events.forwarded(),
            left: self.depth().await.ok(),
        }
    }

    /// Stops what was started for the run (moto_server killed, LocalStack's container removed).
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// What a run's external interruption queue carried.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExternalQueueReport {
    pub host: String,
    pub queue_url: String,
    /// fake-ec2's forwarder: messages handed to it, delivered to the queue, given up on.
    pub forwarded: fake_ec2::events::Forwarded,
    /// Messages still in the queue at the end (None when it could not be asked).
    pub left: Option<u64>,
}

impl ExternalQueueReport {
    /// One line for a run's notes.
    pub fn describe(&self) -> String {
        let left = self.left.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        format!(
            "interruption queue on {} ({}): {} message(s) forwarded by fake-ec2's rules, {} failed, {left} left at the end",
            self.host, self.queue_url, self.forwarded.delivered, self.forwarded.failed
        )
    }
}

/// The queue `--interruption-queue` names in `autoscaler run` flags, if any.
pub fn interruption_queue(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--interruption-queue") {
        Some("") => args.get(i + 1).map(String::as_str),
        Some(v) => v.strip_prefix('='),
        None => None,
    })
}

/// `url` with its scheme, host and port replaced by `endpoint`'s (path kept).
pub fn reachable_queue_url(url: &str, endpoint: &str) -> String {
    let path = url.find("://").and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..])).unwrap_or("");
    format!("{}{path}", endpoint.trim_end_matches('/'))
}

/// Points every rule target naming `queue` (by name or by ARN) at `url`; returns how many rules
/// changed.
pub fn retarget(rules: &mut [fake_ec2::events::Rule], queue: &str, url: &str) -> usize {
    let names_queue = |t: &str| t == queue || (t.starts_with("arn:") && t.rsplit(':').next() == Some(queue));
    let mut changed = 0;
    for rule in rules {
        let before = rule.targets.clone();
        for t in rule.targets.iter_mut().filter(|t| names_queue(t)) {
            *t = url.to_owned();
        }
        rule.targets.dedup();
        changed += usize::from(rule.targets != before);
    }
    changed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fake_ec2::events::{Rule, RuleConfig};
    use serde_json::json;

    use super::*;

    #[test]
    fn hosts_parse_from_the_command_line() {
        assert_eq!("moto".parse(), Ok(QueueHost::Moto));
        assert_eq!("localstack".parse(), Ok(QueueHost::LocalStack));
        assert_eq!("built-in".parse(), Ok(QueueHost::BuiltIn));
        assert_eq!(
            "endpoint:http://localhost:4566/".parse(),
            Ok(QueueHost::Endpoint("http://localhost:4566".to_owned()))
        );
        assert!("endpoint:localhost:4566".parse::<QueueHost>().unwrap_err().contains("not an http(s) URL"));
        assert!("sqs".parse::<QueueHost>().unwrap_err().contains("one of built-in, moto, localstack"));
    }

    #[test]
    fn kinds_are_written_as_scenarios_write_them() {
        let kinds: Vec<SqsKind> = serde_saphyr::from_str("[built-in, moto, localstack]").unwrap();
        assert_eq!(kinds, [SqsKind::BuiltIn, SqsKind::Moto, SqsKind::LocalStack]);
        assert!(serde_saphyr::from_str::<SqsKind>("elasticmq").is_err());
        assert_eq!(QueueHost::from(SqsKind::LocalStack), QueueHost::LocalStack);
    }

    #[test]
    fn the_queue_is_found_in_the_autoscalers_flags() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(interruption_queue(&args(&["--interruption-queue", "q"])), Some("q"));
        assert_eq!(interruption_queue(&args(&["--batch-idle-duration", "1s", "--interruption-queue=q2"])), Some("q2"));
        assert_eq!(interruption_queue(&args(&["--interruption-queue"])), None);
        assert_eq!(interruption_queue(&args(&["--interruption-queues", "q"])), None);
        assert_eq!(interruption_queue(&[]), None);
    }

    #[test]
    fn a_queue_url_is_rebased_on_the_endpoint_this_machine_reaches() {
        assert_eq!(
            reachable_queue_url(
                "http://sqs.us-west-2.localhost.localstack.cloud:4566/000000000000/karpenter-interruption",
                "http://127.0.0.1:32768/"
            ),
            "http://127.0.0.1:32768/000000000000/karpenter-interruption"
        );
        assert_eq!(
            reachable_queue_url("http://localhost:4566/queue/us-west-2/000000000000/q", "http://localhost:49153"),
            "http://localhost:49153/queue/us-west-2/000000000000/q"
        );
    }

    #[test]
    fn rules_feeding_the_queue_by_name_or_arn_are_pointed_at_its_url() {
        let rule = |name: &str, targets: &[&str]| {
            Rule::from_config(&RuleConfig {
                name: name.to_owned(),
                pattern: json!({"source": ["aws.ec2"]}),
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            })
            .unwrap()
        };
        let url = "http://127.0.0.1:5000/123456789012/karpenter-interruption";
        let mut rules = vec![
            rule("Spot", &["karpenter-interruption"]),
            rule("Health", &["arn:aws:sqs:us-west-2:123456789012:karpenter-interruption", "audit"]),
            rule("Other", &["audit"]),
            rule("Both", &["karpenter-interruption", "arn:aws:sqs:us-west-2:123456789012:karpenter-interruption"]),
        ];
        assert_eq!(retarget(&mut rules, "karpenter-interruption", url), 3);
        let targets: Vec<Vec<String>> = rules.iter().map(|r| r.targets.clone()).collect();
        assert_eq!(
            targets,
            [
                vec![url.to_owned()],
                vec![url.to_owned(), "audit".to_owned()],
                vec!["audit".to_owned()],
                vec![url.to_owned()]
            ]
        );
        assert_eq!(retarget(&mut rules, "karpenter-interruption", url), 0);
    }

    #[test]
    fn the_built_in_queue_and_an_existing_endpoint_need_nothing_from_this_machine() {
        assert_eq!(QueueHost::BuiltIn.unavailable(), None);
        assert_eq!(QueueHost::Endpoint("http://localhost:4566".into()).unavailable(), None);
    }
}
