//! One meaning for v1 and v1beta1 spellings, and Karpenter's defaults, read off the specs.

use std::time::Duration;

use super::common::{DurationError, parse_duration};
use super::ec2nodeclass::KubeletConfiguration;
use super::nodepool::{Budget, NodePoolSpec};

/// Karpenter's default `expireAfter` (720h).
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(720 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsolidationPolicy {
    WhenEmpty,
    /// v1's name for v1beta1's `WhenUnderutilized`.
    WhenEmptyOrUnderutilized,
}

impl ConsolidationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WhenEmpty => "WhenEmpty",
            Self::WhenEmptyOrUnderutilized => "WhenEmptyOrUnderutilized",
        }
    }
}

impl NodePoolSpec {
    /// `template.spec.expireAfter` (v1) or `disruption.expireAfter` (v1beta1); None is `Never`.
    pub fn expire_after(&self) -> Result<Option<Duration>, DurationError> {
        let text = self
            .template
            .spec
            .expire_after
            .as_deref()
            .or_else(|| self.disruption.as_ref().and_then(|d| d.expire_after.as_deref()));
        match text {
            Some(t) => parse_duration(t),
            None => Ok(Some(DEFAULT_EXPIRE_AFTER)),
        }
    }

    pub fn consolidation_policy(&self) -> ConsolidationPolicy {
        match self.disruption.as_ref().and_then(|d| d.consolidation_policy.as_deref()) {
            Some("WhenEmpty") => ConsolidationPolicy::WhenEmpty,
            _ => ConsolidationPolicy::WhenEmptyOrUnderutilized,
        }
    }

    /// None is `Never`. v1beta1's `WhenUnderutilized` had no consolidateAfter: it acted at once.
    pub fn consolidate_after(&self) -> Result<Option<Duration>, DurationError> {
        match self.disruption.as_ref().and_then(|d| d.consolidate_after.as_deref()) {
            Some(t) => parse_duration(t),
            None => Ok(Some(Duration::ZERO)),
        }
    }

    /// The configured budgets, or Karpenter's default `nodes: 10%`.
    pub fn budgets(&self) -> Vec<Budget> {
        match self.disruption.as_ref().and_then(|d| d.budgets.clone()) {
            Some(b) => b,
            None => vec![Budget { nodes: "10%".to_owned(), ..Default::default() }],
        }
    }

    pub fn weight(&self) -> i32 {
        self.weight.unwrap_or(0)
    }

    pub fn node_class_name(&self) -> &str {
        &self.template.spec.node_class_ref.name
    }

    /// v1beta1 pools carried kubelet settings; v1 moved them to the EC2NodeClass.
    pub fn kubelet<'a>(&'a self, node_class: Option<&'a KubeletConfiguration>) -> Option<&'a KubeletConfiguration> {
        node_class.or(self.template.spec.kubelet.as_ref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::apis::NodePool;

    fn pool(yaml: &str) -> NodePoolSpec {
        let np: NodePool = serde_saphyr::from_str(yaml).unwrap();
        np.spec
    }

    #[test]
    fn v1beta1_and_v1_spellings_mean_the_same() {
        let v1 = pool(
            r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: { name: default }
spec:
  template:
    spec:
      nodeClassRef: { group: karpenter.k8s.aws, kind: EC2NodeClass, name: default }
      expireAfter: 168h
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 1m
"#,
        );
        let beta = pool(
            r#"
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: { name: default }
spec:
  template:
    spec:
      nodeClassRef: { apiVersion: karpenter.k8s.aws/v1beta1, kind: EC2NodeClass, name: default }
  disruption:
    consolidationPolicy: WhenUnderutilized
    consolidateAfter: 1m
    expireAfter: 168h
"#,
        );
        for spec in [&v1, &beta] {
            assert_eq!(spec.expire_after().unwrap(), Some(Duration::from_secs(168 * 3600)));
            assert_eq!(spec.consolidation_policy(), ConsolidationPolicy::WhenEmptyOrUnderutilized);
            assert_eq!(spec.consolidate_after().unwrap(), Some(Duration::from_secs(60)));
            assert_eq!(spec.node_class_name(), "default");
        }
    }

    #[test]
    fn defaults_are_karpenters() {
        let spec = pool(
            "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      nodeClassRef: {name: d}\n",
        );
        assert_eq!(spec.expire_after().unwrap(), Some(DEFAULT_EXPIRE_AFTER));
        assert_eq!(spec.consolidation_policy(), ConsolidationPolicy::WhenEmptyOrUnderutilized);
        assert_eq!(spec.consolidate_after().unwrap(), Some(Duration::ZERO));
        assert_eq!(spec.budgets()[0].nodes, "10%");
        assert_eq!(spec.weight(), 0);
    }

    #[test]
    fn never_disables() {
        let spec = pool(
            "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      nodeClassRef: {name: d}\n      expireAfter: Never\n  disruption:\n    consolidateAfter: Never\n",
        );
        assert_eq!(spec.expire_after().unwrap(), None);
        assert_eq!(spec.consolidate_after().unwrap(), None);
    }
}
