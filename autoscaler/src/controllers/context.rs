//! What every controller shares: clients, the cluster caches, the cloud provider, metrics, the
//! event recorder, options and the one clock they all read time from.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::runtime::events::Recorder;

use super::state::ClusterState;
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::options::Options;
use crate::provider::CloudProvider;

pub struct Context {
    pub client: Client,
    pub state: ClusterState,
    pub cloud: Arc<CloudProvider>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Karpenter's dedupe and rate limit for pod events.
    pub event_gate: std::sync::Mutex<super::event_gate::EventGate>,
    pub options: Options,
    /// For the interruption queue.
    pub sqs: aws_sdk_sqs::Client,
    pub clock: SharedClock,
}

impl Context {
    /// Now, as a condition's transition time.
    pub fn now(&self) -> Time {
        Time(self.clock.timestamp())
    }

    /// How long ago `t` was, in whole seconds; zero when unknown or in the future.
    pub fn age(&self, t: Option<&Time>) -> Duration {
        let now = self.clock.timestamp().as_second();
        t.map(|t| Duration::from_secs(u64::try_from(now.saturating_sub(t.0.as_second())).unwrap_or(0)))
            .unwrap_or_default()
    }
}
