//! Prometheus metrics under Karpenter's names, so existing dashboards and alerts read them.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodePoolLabels {
    pub nodepool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeClaimLabels {
    pub nodepool: String,
    pub reason: String,
    pub capacity_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudErrorLabels {
    pub controller: String,
    pub method: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub nodepool: String,
    pub resource_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub message_type: String,
}

/// Karpenter's `interruption_actions_performed` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action_type: String,
    pub nodepool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisruptionLabels {
    pub nodepool: String,
    pub reason: String,
}

/// Every metric the autoscaler exports, registered once per process.
pub struct Metrics {
    pub registry: Registry,
    pub nodeclaims_created: Family<NodeClaimLabels, Counter>,
    pub nodeclaims_launched: Family<NodePoolLabels, Counter>,
    pub nodeclaims_registered: Family<NodePoolLabels, Counter>,
    pub nodeclaims_initialized: Family<NodePoolLabels, Counter>,
    pub nodeclaims_terminated: Family<NodeClaimLabels, Counter>,
    pub nodeclaims_disrupted: Family<DisruptionLabels, Counter>,
    pub nodes_created: Family<NodePoolLabels, Counter>,
    pub nodes_terminated: Family<NodePoolLabels, Counter>,
    pub cloudprovider_errors: Family<CloudErrorLabels, Counter>,
    pub scheduling_duration: Histogram,
    pub pods_scheduled: Counter,
    pub ignored_pods: Gauge,
    pub nodepool_usage: Family<ResourceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub nodepool_limit: Family<ResourceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub interruption_received: Family<MessageLabels, Counter>,
    pub interruption_deleted: Family<MessageLabels, Counter>,
    pub interruption_actions: Family<ActionLabels, Counter>,
    pub interruption_latency: Histogram,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let m = Metrics {
            nodeclaims_created: Family::default(),
            nodeclaims_launched: Family::default(),
            nodeclaims_registered: Family::default(),
            nodeclaims_initialized: Family::default(),
            nodeclaims_terminated: Family::default(),
            nodeclaims_disrupted: Family::default(),
            nodes_created: Family::default(),
            nodes_terminated: Family::default(),
            cloudprovider_errors: Family::default(),
            scheduling_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            pods_scheduled: Counter::default(),
            ignored_pods: Gauge::default(),
            nodepool_usage: Family::default(),
            nodepool_limit: Family::default(),
            interruption_received: Family::default(),
            interruption_deleted: Family::default(),
            interruption_actions: Family::default(),
            interruption_latency: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            registry: Registry::default(),
        };
        let k = registry.sub_registry_with_prefix("karpenter");
        k.register("nodeclaims_created", "NodeClaims created, by reason and nodepool", m.nodeclaims_created.clone());
        k.register("nodeclaims_launched", "NodeClaims launched", m.nodeclaims_launched.clone());
        k.register("nodeclaims_registered", "NodeClaims whose Node registered", m.nodeclaims_registered.clone());
        k.register("nodeclaims_initialized", "NodeClaims initialized", m.nodeclaims_initialized.clone());
        k.register("nodeclaims_terminated", "NodeClaims terminated, by reason", m.nodeclaims_terminated.clone());
        k.register("nodeclaims_disrupted", "NodeClaims disrupted, by reason", m.nodeclaims_disrupted.clone());
        k.register("nodes_created", "Nodes registered", m.nodes_created.clone());
        k.register("nodes_terminated", "Nodes deleted", m.nodes_terminated.clone());
        k.register("cloudprovider_errors", "Errors from the cloud provider", m.cloudprovider_errors.clone());
        k.register(
            "scheduler_scheduling_duration_seconds",
            "Time one scheduling simulation took",
            m.scheduling_duration.clone(),
        );
        k.register("provisioner_scheduled_pods", "Pods the provisioner placed", m.pods_scheduled.clone());
        k.register("scheduler_ignored_pods", "Pods the last simulation could not place", m.ignored_pods.clone());
        k.register("nodepools_usage", "Resources used by each nodepool's nodes", m.nodepool_usage.clone());
        k.register("nodepools_limit", "Limits of each nodepool", m.nodepool_limit.clone());
        k.register(
            "interruption_received_messages",
            "Interruption queue messages received, by type",
            m.interruption_received.clone(),
        );
        k.register(
            "interruption_deleted_messages",
            "Interruption queue messages deleted",
            m.interruption_deleted.clone(),
        );
        k.register(
            "interruption_actions_performed",
            "Actions taken on interruption messages",
            m.interruption_actions.clone(),
        );
        k.register(
            "interruption_message_queue_duration_seconds",
            "Time from the event to its handling",
            m.interruption_latency.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The text exposition format served at /metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl NodeClaimLabels {
    pub fn new(nodepool: &str, reason: &str, capacity_type: &str) -> Self {
        NodeClaimLabels {
            nodepool: nodepool.to_owned(),
            reason: reason.to_owned(),
            capacity_type: capacity_type.to_owned(),
        }
    }
}

impl NodePoolLabels {
    pub fn new(nodepool: &str) -> Self {
        NodePoolLabels { nodepool: nodepool.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_karpenter_metric_names() {
        let m = Metrics::new();
        m.nodeclaims_created.get_or_create(&NodeClaimLabels::new("default", "provisioning", "spot")).inc();
        let text = m.encode();
        assert!(text.contains(
            "karpenter_nodeclaims_created_total{nodepool=\"default\",reason=\"provisioning\",capacity_type=\"spot\"} 1"
        ));
        assert!(text.contains("# TYPE karpenter_scheduler_scheduling_duration_seconds histogram"));
    }
}
