//! The Karpenter API kinds, as Rust types the CRDs are generated from.
//!
//! `karpenter.sh/v1` NodePool and NodeClaim, `karpenter.k8s.aws/v1` EC2NodeClass. Each CRD also
//! serves `v1beta1` with the same (superset) schema and no conversion, so manifests from older
//! guides apply unchanged; [`normalize`] gives both spellings one meaning.

pub mod common;
pub mod crdgen;
pub mod ec2nodeclass;
pub mod nodeclaim;
pub mod nodepool;
pub mod normalize;

pub use common::{NodeClassReference, NodeSelectorRequirementWithMinValues};
pub use ec2nodeclass::{EC2NodeClass, EC2NodeClassSpec, EC2NodeClassStatus};
pub use nodeclaim::{NodeClaim, NodeClaimSpec, NodeClaimStatus};
pub use nodepool::{NodePool, NodePoolSpec, NodePoolStatus};

/// Well-known label, annotation, taint and finalizer names Karpenter uses.
pub mod labels {
    pub const NODEPOOL: &str = "karpenter.sh/nodepool";
    pub const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
    pub const INITIALIZED: &str = "karpenter.sh/initialized";
    pub const REGISTERED: &str = "karpenter.sh/registered";
    pub const NODECLASS: &str = "karpenter.k8s.aws/ec2nodeclass";
    pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
    pub const ZONE: &str = "topology.kubernetes.io/zone";
    pub const HOSTNAME: &str = "kubernetes.io/hostname";
    pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
    pub const NODEPOOL_HASH: &str = "karpenter.sh/nodepool-hash";
    pub const NODEPOOL_HASH_VERSION: &str = "karpenter.sh/nodepool-hash-version";
    pub const NODECLASS_HASH: &str = "karpenter.k8s.aws/ec2nodeclass-hash";
    pub const TERMINATION_TIMESTAMP: &str = "karpenter.sh/nodeclaim-termination-timestamp";
    pub const UNREGISTERED_TAINT: &str = "karpenter.sh/unregistered";
    pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
    pub const TERMINATION_FINALIZER: &str = "karpenter.sh/termination";
    pub const NODECLASS_FINALIZER: &str = "karpenter.k8s.aws/termination";
}
