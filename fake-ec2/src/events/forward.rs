//! Delivery to external SQS queues (LocalStack, moto_server, AWS): rule targets that are queue
//! URLs. The bus hands each message to a channel (never waiting under the world's lock); the
//! [`forward`] task sends them with aws-sdk-sqs and counts what it delivered and gave up on.

use serde::{Deserialize, Serialize};

/// Messages the forwarder sent to external SQS queues, and those it gave up on after its retries.
/// Atomics, so the forwarder counts without taking the world's lock.
#[derive(Debug, Default)]
pub struct ForwardCounters {
    queued: std::sync::atomic::AtomicU64,
    delivered: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

/// A reading of [`ForwardCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// Handed to the forwarder by the bus.
    pub queued: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl ForwardCounters {
    pub fn read(&self) -> Forwarded {
        use std::sync::atomic::Ordering::Relaxed;
        Forwarded {
            queued: self.queued.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }

    /// One more message handed to the forwarder.
    pub(super) fn queue(&self) {
        self.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn count(&self, delivered: bool) {
        let counter = if delivered { &self.delivered } else { &self.failed };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One message for a queue of an external SQS endpoint (LocalStack, moto_server, AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub queue_url: String,
    pub body: String,
}

/// Sends forwarded events to external SQS queues with aws-sdk-sqs, one at a time in the order
/// they happened (at-least-once: a failed send is retried a few times, then logged, counted in
/// `counters` and dropped). Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
/// else dummy ones (moto and LocalStack take any).
pub async fn forward(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Forward>,
    region: String,
    counters: std::sync::Arc<ForwardCounters>,
) {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "fake-ec2".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "fake-ec2".into());
    let mut clients: std::collections::BTreeMap<String, aws_sdk_sqs::Client> = std::collections::BTreeMap::new();
    while let Some(f) = rx.recv().await {
        let endpoint = match f.queue_url.match_indices('/').nth(2) {
            Some((i, _)) => f.queue_url[..i].to_owned(),
            None => f.queue_url.clone(),
        };
        let client = clients.entry(endpoint.clone()).or_insert_with(|| {
            let cfg = aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(region.clone()))
                .endpoint_url(&endpoint)
                .credentials_provider(Credentials::new(&key, &secret, None, None, "fake-ec2"))
                .build();
            aws_sdk_sqs::Client::from_conf(cfg)
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            match client.send_message().queue_url(&f.queue_url).message_body(&f.body).send().await {
                Ok(_) => {
                    counters.count(true);
                    break;
                }
                Err(e) if attempt < 5 => {
                    tracing::debug!(queue = %f.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "retrying a forwarded event");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(queue = %f.queue_url, attempts = attempt, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not forward an event");
                    counters.count(false);
                    break;
                }
            }
        }
    }
}
