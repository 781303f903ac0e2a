//! The contract between the autoscaler and fake-ec2 about how a node registers.
//!
//! The autoscaler writes it into a launch template's user data; fake-ec2, playing the kubelet,
//! reads it back to register the Node with the same labels, taints and limits a real kubelet would.
//! The format is Amazon Linux 2023's `nodeadm` input: a MIME multi-part document holding a
//! `node.eks.aws/v1alpha1` `NodeConfig`, with labels and taints as kubelet flags (as Karpenter
//! writes them) or taints as `registerWithTaints` in the kubelet config (as users may).
//! Reference: https://awslabs.github.io/amazon-eks-ami/nodeadm/

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub const NODECONFIG_CONTENT_TYPE: &str = "application/node.eks.aws";
const BOUNDARY: &str = "//";

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
    pub eviction_hard: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_server_endpoint: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_authority: String,
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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("user data holds no NodeConfig (expected a {NODECONFIG_CONTENT_TYPE} part or a NodeConfig document)")]
    NoNodeConfig,
    #[error("NodeConfig is not valid YAML: {0}")]
    Yaml(String),
    #[error("kubelet flag {flag} is malformed: {why}")]
    BadFlag { flag: String, why: String },
    #[error("taint effect {0} is not NoSchedule, PreferNoSchedule or NoExecute")]
    BadEffect(String),
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeConfig {
    api_version: String,
    kind: String,
    spec: NodeConfigSpec,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct NodeConfigSpec {
    #[serde(default)]
    cluster: Cluster,
    #[serde(default)]
    kubelet: Kubelet,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Kubelet {
    #[serde(default, skip_serializing_if = "KubeletConfig::is_empty")]
    config: KubeletConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    flags: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_pods: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    register_with_taints: Vec<Taint>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    kube_reserved: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    system_reserved: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    eviction_hard: BTreeMap<String, String>,
}

impl KubeletConfig {
    fn is_empty(&self) -> bool {
        self.max_pods.is_none()
            && self.register_with_taints.is_empty()
            && self.kube_reserved.is_empty()
            && self.system_reserved.is_empty()
            && self.eviction_hard.is_empty()
    }
}

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

impl NodeRegistration {
    /// The MIME document to put (base64-encoded, as EC2 wants) in a launch template.
    pub fn to_user_data(&self) -> String {
        let mut flags = Vec::new();
        if !self.labels.is_empty() {
            let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            flags.push(format!("--node-labels={}", labels.join(",")));
        }
        let doc = NodeConfig {
            api_version: "node.eks.aws/v1alpha1".into(),
            kind: "NodeConfig".into(),
            spec: NodeConfigSpec {
                cluster: self.cluster.clone(),
                kubelet: Kubelet {
                    config: KubeletConfig {
                        max_pods: self.max_pods,
                        register_with_taints: self.taints.clone(),
                        kube_reserved: self.kube_reserved.clone(),
                        system_reserved: self.system_reserved.clone(),
                        eviction_hard: self.eviction_hard.clone(),
                    },
                    flags,
                },
            },
        };
        let yaml = serde_saphyr::to_string(&doc).unwrap_or_default();
        format!(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\n\n--{BOUNDARY}\nContent-Type: {NODECONFIG_CONTENT_TYPE}\n\n{yaml}\n--{BOUNDARY}--\n"
        )
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_user_data())
    }

    /// Reads user data as EC2 stores it (base64) or as text: MIME multi-part or a bare NodeConfig.
    pub fn from_user_data(user_data: &str) -> Result<Self, Error> {
        let text = decode_base64(user_data).unwrap_or_else(|| user_data.to_owned());
        let yaml = node_config_part(&text).ok_or(Error::NoNodeConfig)?;
        let doc: NodeConfig = serde_saphyr::from_str(&yaml).map_err(|e| Error::Yaml(e.to_string()))?;
        if doc.kind != "NodeConfig" {
            return Err(Error::NoNodeConfig);
        }
        let cfg = doc.spec.kubelet.config;
        let mut reg = Self {
            cluster: doc.spec.cluster,
            labels: BTreeMap::new(),
            taints: cfg.register_with_taints,
            max_pods: cfg.max_pods,
            kube_reserved: cfg.kube_reserved,
            system_reserved: cfg.system_reserved,
            eviction_hard: cfg.eviction_hard,
        };
        for flag in &doc.spec.kubelet.flags {
            reg.apply_flag(flag)?;
        }
        for t in &reg.taints {
            if !EFFECTS.contains(&t.effect.as_str()) {
                return Err(Error::BadEffect(t.effect.clone()));
            }
        }
        Ok(reg)
    }

    fn apply_flag(&mut self, flag: &str) -> Result<(), Error> {
        let bad = |why: &str| Error::BadFlag { flag: flag.to_owned(), why: why.to_owned() };
        let Some((name, value)) = flag.split_once('=') else { return Ok(()) };
        let value = value.trim_matches('"').trim_matches('\'');
        match name {
            "--node-labels" => {
                for pair in value.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').ok_or_else(|| bad("a label needs key=value"))?;
                    self.labels.insert(k.to_owned(), v.to_owned());
                }
            }
            "--register-with-taints" => {
                for t in value.split(',').filter(|p| !p.is_empty()) {
                    let (kv, effect) = t.rsplit_once(':').ok_or_else(|| bad("a taint needs key[=value]:Effect"))?;
                    let (key, value) = match kv.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (kv.to_owned(), None),
                    };
                    self.taints.push(Taint { key, value, effect: effect.to_owned() });
                }
            }
            "--max-pods" => {
                self.max_pods = Some(value.parse().map_err(|_| bad("--max-pods needs a number"))?);
            }
            _ => {}
        }
        Ok(())
    }
}

/// kube-reserved as EKS AMIs (and Karpenter's capacity estimates) set it when the user data does not:
/// CPU 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of the rest; memory
/// 11 MiB per pod plus 255 MiB; 1 GiB of ephemeral storage.
pub fn default_kube_reserved(vcpus: u32, max_pods: u32) -> BTreeMap<String, String> {
    let cores = f64::from(vcpus);
    let tiers = [(1.0, 0.06), (1.0, 0.01), (2.0, 0.005), (f64::MAX, 0.0025)];
    let mut left = cores;
    let mut millicores = 0.0;
    for (size, share) in tiers {
        let take = left.min(size);
        millicores += take * share * 1000.0;
        left -= take;
        if left <= 0.0 {
            break;
        }
    }
    BTreeMap::from([
        ("cpu".to_owned(), format!("{}m", millicores.round() as u64)),
        ("memory".to_owned(), format!("{}Mi", 11 * u64::from(max_pods) + 255)),
        ("ephemeral-storage".to_owned(), "1Gi".to_owned()),
    ])
}

/// The hard eviction thresholds a kubelet uses when none are configured.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("memory.available".to_owned(), "100Mi".to_owned()),
        ("nodefs.available".to_owned(), "10%".to_owned()),
    ])
}

/// A Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1G`, `2e3`) in base units (cores or bytes).
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

fn decode_base64(s: &str) -> Option<String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    String::from_utf8(bytes).ok()
}

/// The NodeConfig YAML inside a MIME multi-part document, or the text itself if it is one.
fn node_config_part(text: &str) -> Option<String> {
    let boundary = text.lines().find_map(|l| {
        let l = l.trim();
        let i = l.find("boundary=")?;
        Some(l[i + "boundary=".len()..].trim_matches('"').to_owned())
    });
    let Some(boundary) = boundary else {
        return text.contains("NodeConfig").then(|| text.to_owned());
    };
    let delimiter = format!("--{boundary}");
    for part in text.split(&delimiter).skip(1) {
        let part = part.trim_start_matches(['\r', '\n']);
        let (headers, body) = part.split_once("\n\n").or_else(|| part.split_once("\r\n\r\n"))?;
        if headers
            .lines()
            .any(|h| h.to_ascii_lowercase().starts_with("content-type:") && h.contains(NODECONFIG_CONTENT_TYPE))
        {
            return Some(body.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeRegistration {
        NodeRegistration {
            cluster: Cluster { name: "fake-cluster".into(), cidr: "10.96.0.0/12".into(), ..Default::default() },
            labels: BTreeMap::from([
                ("karpenter.sh/capacity-type".into(), "spot".into()),
                ("karpenter.sh/nodepool".into(), "default".into()),
            ]),
            taints: vec![Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoSchedule".into() }],
            max_pods: Some(29),
            kube_reserved: BTreeMap::from([("cpu".into(), "70m".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_through_base64_user_data() {
        let reg = sample();
        assert_eq!(NodeRegistration::from_user_data(&reg.to_base64()), Ok(reg.clone()));
        assert_eq!(NodeRegistration::from_user_data(&reg.to_user_data()), Ok(reg));
    }

    #[test]
    fn reads_karpenter_style_flags_and_bare_nodeconfig() {
        let yaml = r#"apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: c
  kubelet:
    config:
      maxPods: 110
    flags:
    - --node-labels="karpenter.sh/nodepool=default,team=a"
    - --register-with-taints=example.com/special=true:NoSchedule,only-key:NoExecute
"#;
        let reg = NodeRegistration::from_user_data(yaml).unwrap_or_default();
        assert_eq!(reg.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(reg.max_pods, Some(110));
        assert_eq!(
            reg.taints,
            [
                Taint { key: "example.com/special".into(), value: Some("true".into()), effect: "NoSchedule".into() },
                Taint { key: "only-key".into(), value: None, effect: "NoExecute".into() },
            ]
        );
    }

    #[test]
    fn default_reservations_follow_the_eks_formula() {
        // m5.large: 2 vCPUs, 29 pods -> 70m CPU, 574Mi memory (Karpenter's documented overhead).
        let r = default_kube_reserved(2, 29);
        assert_eq!(r.get("cpu").map(String::as_str), Some("70m"));
        assert_eq!(r.get("memory").map(String::as_str), Some("574Mi"));
        assert_eq!(default_kube_reserved(8, 58).get("cpu").map(String::as_str), Some("90m"));
        assert_eq!(default_kube_reserved(96, 737).get("cpu").map(String::as_str), Some("310m"));
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("250m"), Some(0.25));
        assert_eq!(parse_quantity("512Mi"), Some(536_870_912.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("10%"), None);
    }

    #[test]
    fn rejects_what_a_kubelet_would_reject() {
        assert_eq!(NodeRegistration::from_user_data("#!/bin/bash\necho hi"), Err(Error::NoNodeConfig));
        let bad = "kind: NodeConfig\napiVersion: x\nspec:\n  kubelet:\n    flags: [\"--register-with-taints=k=v:Sometimes\"]\n";
        assert_eq!(NodeRegistration::from_user_data(bad), Err(Error::BadEffect("Sometimes".into())));
        let bad = "kind: NodeConfig\napiVersion: x\nspec:\n  kubelet:\n    flags: [\"--node-labels=novalue\"]\n";
        assert!(matches!(NodeRegistration::from_user_data(bad), Err(Error::BadFlag { .. })));
    }
}
