//! The contract between the autoscaler and fake-ec2 about how a node registers.
//!
//! The autoscaler writes it into a launch template's user data; fake-ec2, playing the kubelet,
//! reads it back to register the Node with the same labels, taints and limits a real kubelet would.
//! A [`NodeRegistration`] is family-agnostic; [`render`] writes it as upstream Karpenter
//! (aws/karpenter-provider-aws v1.14.3, package `pkg/providers/amifamily/bootstrap`) writes user
//! data for each AMI [`Family`], byte for byte, and [`parse`] reads any of them back:
//!
//! - **AL2**: a MIME multi-part document (boundary `//`) whose last `text/x-shellscript` part runs
//!   `/etc/eks/bootstrap.sh` with `--b64-cluster-ca`, `--dns-cluster-ip`, `--use-max-pods false`
//!   and `--kubelet-extra-args` (node labels, taints, max pods, reserved resources, hard eviction).
//! - **AL2023**: a MIME multi-part document holding nodeadm's `node.eks.aws/v1alpha1` `NodeConfig`
//!   (labels as a `--node-labels` kubelet flag, the rest in the inline kubelet config).
//! - **Bottlerocket**: TOML `[settings.kubernetes]` (cluster, max pods, `node-labels`, `node-taints`
//!   as `"value:Effect"` arrays, reserved resources, hard eviction).
//!
//! A user's own user data is merged as Karpenter merges it: MIME parts (or a bare script or
//! NodeConfig) come before Karpenter's part; Bottlerocket settings are kept unless Karpenter sets
//! them. References: <https://awslabs.github.io/amazon-eks-ami/nodeadm/>,
//! <https://bottlerocket.dev/en/os/latest/api/settings/kubernetes/>.

mod al2;
mod al2023;
mod bottlerocket;
mod kubelet;
mod mime;
mod resources;
mod toml_out;
mod yaml_out;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use resources::{default_eviction_hard, default_kube_reserved, parse_quantity};

/// The MIME content type of a nodeadm `NodeConfig` part.
pub const NODECONFIG_CONTENT_TYPE: &str = "application/node.eks.aws";
/// The MIME content type Karpenter gives shell-script parts.
pub const SHELL_CONTENT_TYPE: &str = "text/x-shellscript; charset=\"us-ascii\"";

/// The AMI families whose user data Karpenter writes for Linux nodes (its `amiFamily` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Amazon Linux 2: `/etc/eks/bootstrap.sh` in a MIME multi-part shell script.
    Al2,
    /// Amazon Linux 2023: nodeadm's `NodeConfig` in a MIME multi-part document.
    Al2023,
    /// Bottlerocket: TOML settings.
    Bottlerocket,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Al2, Family::Al2023, Family::Bottlerocket];

    /// The name an EC2NodeClass's `amiFamily` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Al2 => "AL2",
            Family::Al2023 => "AL2023",
            Family::Bottlerocket => "Bottlerocket",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Family::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| Error::UnknownFamily(s.to_owned()))
    }
}

/// What a kubelet registers with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRegistration {
    pub cluster: Cluster,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub max_pods: Option<u32>,
    /// `cpu`, `memory`, `ephemeral-storage` quantities, as kubelet config takes them.
    pub kube_reserved: BTreeMap<String, String>,
    pub system_reserved: BTreeMap<String, String>,
    /// Eviction signal (`memory.available`, `nodefs.available`, ...) to threshold (`100Mi`, `10%`).
    pub eviction_hard: BTreeMap<String, String>,
    /// The cluster DNS service IPs (kubelet `clusterDNS`); Karpenter writes the first. An IPv6
    /// first address makes AL2's bootstrap.sh use `--ip-family ipv6`.
    pub cluster_dns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_server_endpoint: String,
    /// The cluster CA bundle, base64-encoded (EKS `certificateAuthority.data`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_authority: String,
    /// The service CIDR; only AL2023's NodeConfig carries it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: String,
}

impl Taint {
    /// The value, with an empty one read as none (Kubernetes does not tell them apart).
    fn value(&self) -> Option<&str> {
        self.value.as_deref().filter(|v| !v.is_empty())
    }

    fn checked(self) -> Result<Self, Error> {
        if EFFECTS.contains(&self.effect.as_str()) { Ok(self) } else { Err(Error::BadEffect(self.effect)) }
    }
}

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "user data is none of AL2 (a script running /etc/eks/bootstrap.sh), AL2023 (a nodeadm NodeConfig) or Bottlerocket (TOML settings)"
    )]
    Unrecognized,
    #[error("unknown AMI family {0:?}: expected AL2, AL2023 or Bottlerocket")]
    UnknownFamily(String),
    #[error("user data is not a valid MIME multi-part document: {0}")]
    Mime(String),
    #[error("NodeConfig is not valid YAML: {0}")]
    Yaml(String),
    #[error("Bottlerocket user data is not valid TOML: {0}")]
    Toml(String),
    #[error("Bottlerocket setting {key} {why}")]
    BadSetting { key: String, why: String },
    #[error("/etc/eks/bootstrap.sh command is malformed: {0}")]
    BadBootstrap(String),
    #[error("kubelet flag {flag} is malformed: {why}")]
    BadFlag { flag: String, why: String },
    #[error("taint effect {0} is not NoSchedule, PreferNoSchedule or NoExecute")]
    BadEffect(String),
}

/// The user data Karpenter writes for `family`, as text (EC2 wants it base64-encoded: see
/// [`render_base64`]). `custom_user_data` is the EC2NodeClass's own `userData`, merged as Karpenter
/// merges it; it fails where Karpenter fails (unreadable MIME, invalid Bottlerocket TOML).
pub fn render(
    family: Family,
    registration: &NodeRegistration,
    custom_user_data: Option<&str>,
) -> Result<String, Error> {
    let custom = custom_user_data.filter(|c| !c.is_empty());
    match family {
        Family::Al2 => al2::render(registration, custom),
        Family::Al2023 => al2023::render(registration, custom),
        Family::Bottlerocket => bottlerocket::render(registration, custom),
    }
}

/// [`render`], base64-encoded as a launch template's `UserData` takes it.
pub fn render_base64(
    family: Family,
    registration: &NodeRegistration,
    custom_user_data: Option<&str>,
) -> Result<String, Error> {
    render(family, registration, custom_user_data).map(|text| base64::engine::general_purpose::STANDARD.encode(text))
}

/// Reads user data of any family, as EC2 stores it (base64) or as text, and tells which family
/// wrote it. A bare bootstrap script or NodeConfig (not wrapped in MIME) is read too.
pub fn parse(user_data: &str) -> Result<(Family, NodeRegistration), Error> {
    let decoded = decode_base64(user_data);
    let text = decoded.as_deref().unwrap_or(user_data);
    if mime::is_mime(text) {
        let parts = mime::parse(text)?;
        if parts.iter().any(|p| p.media_type() == NODECONFIG_CONTENT_TYPE) {
            return al2023::parse_parts(&parts).map(|r| (Family::Al2023, r));
        }
        let script =
            parts.iter().rev().find(|p| p.media_type() == "text/x-shellscript" && al2::runs_bootstrap(&p.body));
        return match script {
            Some(p) => al2::parse_script(&p.body).map(|r| (Family::Al2, r)),
            None => Err(Error::Unrecognized),
        };
    }
    if let Some(settings) = bottlerocket::settings(text) {
        return bottlerocket::parse(&settings?).map(|r| (Family::Bottlerocket, r));
    }
    if let Some(registration) = al2023::parse_bare(text) {
        return registration.map(|r| (Family::Al2023, r));
    }
    if al2::runs_bootstrap(text) {
        return al2::parse_script(text).map(|r| (Family::Al2, r));
    }
    Err(Error::Unrecognized)
}

impl NodeRegistration {
    /// The AL2023 user data (Karpenter's nodeadm NodeConfig) for a launch template.
    pub fn to_user_data(&self) -> String {
        al2023::render_alone(self)
    }

    /// [`Self::to_user_data`], base64-encoded as EC2 wants it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_user_data())
    }

    /// Reads user data of any family (see [`parse`]).
    pub fn from_user_data(user_data: &str) -> Result<Self, Error> {
        parse(user_data).map(|(_, registration)| registration)
    }
}

fn decode_base64(s: &str) -> Option<String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests;
