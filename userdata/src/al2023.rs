//! Amazon Linux 2023: nodeadm's `NodeConfig` in a MIME multi-part document (Karpenter's
//! `bootstrap.Nodeadm`). Karpenter puts node labels in a `--node-labels` kubelet flag and the rest
//! (cluster DNS, max pods, taints, reservations, eviction) in the inline kubelet config.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

use crate::kubelet::{apply_flag_string, node_labels_flag};
use crate::mime::{self, Part};
use crate::yaml_out::scalar;
use crate::{Error, NODECONFIG_CONTENT_TYPE, NodeRegistration, SHELL_CONTENT_TYPE, Taint};

pub(crate) fn render(reg: &NodeRegistration, custom: Option<&str>) -> Result<String, Error> {
    let mut parts = match custom {
        Some(c) if mime::is_mime(c) => {
            mime::parse(c)?.into_iter().map(|p| Part::new(p.content_type(), p.body.clone())).collect()
        }
        Some(c) if is_yaml_object(c) => vec![Part::new(NODECONFIG_CONTENT_TYPE, c)],
        Some(c) => vec![Part::new(SHELL_CONTENT_TYPE, c)],
        None => Vec::new(),
    };
    parts.push(Part::new(NODECONFIG_CONTENT_TYPE, node_config(reg)));
    Ok(mime::write(&parts))
}

/// The user data without custom parts: never fails.
pub(crate) fn render_alone(reg: &NodeRegistration) -> String {
    mime::write(&[Part::new(NODECONFIG_CONTENT_TYPE, node_config(reg))])
}

/// What Karpenter's custom-user-data test accepts as YAML: a mapping, or nothing at all.
fn is_yaml_object(text: &str) -> bool {
    serde_saphyr::from_str::<Option<HashMap<String, IgnoredAny>>>(text).is_ok()
}

/// The NodeConfig YAML as Karpenter writes it: JSON field names, keys sorted, empty sections as `{}`.
fn node_config(reg: &NodeRegistration) -> String {
    let mut y = String::from(
        "# Karpenter Generated NodeConfig\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nmetadata: {}\nspec:\n",
    );
    let c = &reg.cluster;
    // nodeadm holds the CA as bytes: Karpenter decodes the bundle and the YAML re-encodes it.
    let ca = base64::engine::general_purpose::STANDARD
        .decode(&c.certificate_authority)
        .map_or_else(|_| c.certificate_authority.clone(), |b| base64::engine::general_purpose::STANDARD.encode(b));
    let cluster: Vec<(&str, &str)> = [
        ("apiServerEndpoint", c.api_server_endpoint.as_str()),
        ("certificateAuthority", &ca),
        ("cidr", &c.cidr),
        ("name", &c.name),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    if cluster.is_empty() {
        y.push_str("  cluster: {}\n");
    } else {
        y.push_str("  cluster:\n");
        for (k, v) in cluster {
            y.push_str(&format!("    {k}: {}\n", scalar(v)));
        }
    }
    y.push_str("  containerd: {}\n  instance:\n    localStorage: {}\n  kubelet:\n    config:\n");
    if !reg.cluster_dns.is_empty() {
        y.push_str("      clusterDNS:\n");
        for ip in &reg.cluster_dns {
            y.push_str(&format!("      - {}\n", scalar(ip)));
        }
    }
    push_map(&mut y, "evictionHard", &reg.eviction_hard);
    push_map(&mut y, "kubeReserved", &reg.kube_reserved);
    if let Some(max_pods) = reg.max_pods {
        y.push_str(&format!("      maxPods: {max_pods}\n"));
    }
    if reg.taints.is_empty() {
        y.push_str("      registerWithTaints: null\n");
    } else {
        y.push_str("      registerWithTaints:\n");
        for t in &reg.taints {
            y.push_str(&format!("      - effect: {}\n        key: {}\n", scalar(&t.effect), scalar(&t.key)));
            if let Some(v) = t.value() {
                y.push_str(&format!("        value: {}\n", scalar(v)));
            }
        }
    }
    push_map(&mut y, "systemReserved", &reg.system_reserved);
    if let Some(flag) = node_labels_flag(&reg.labels) {
        y.push_str(&format!("    flags:\n    - {}\n", scalar(&flag)));
    }
    y
}

fn push_map(y: &mut String, name: &str, m: &BTreeMap<String, String>) {
    if m.is_empty() {
        return;
    }
    y.push_str(&format!("      {name}:\n"));
    for (k, v) in m {
        y.push_str(&format!("        {}: {}\n", scalar(k), scalar(v)));
    }
}

/// The registration from every NodeConfig part, later parts overriding earlier ones as nodeadm
/// merges them (Karpenter's part comes last).
pub(crate) fn parse_parts(parts: &[Part]) -> Result<NodeRegistration, Error> {
    let mut reg = NodeRegistration::default();
    for part in parts.iter().filter(|p| p.media_type() == NODECONFIG_CONTENT_TYPE) {
        let doc: NodeConfig = serde_saphyr::from_str(&part.body).map_err(|e| Error::Yaml(e.to_string()))?;
        doc.apply(&mut reg)?;
    }
    Ok(reg)
}

/// A NodeConfig not wrapped in MIME, if the text is one.
pub(crate) fn parse_bare(text: &str) -> Option<Result<NodeRegistration, Error>> {
    match serde_saphyr::from_str::<NodeConfig>(text) {
        Ok(doc) if doc.kind.as_deref() == Some("NodeConfig") => {
            let mut reg = NodeRegistration::default();
            Some(doc.apply(&mut reg).map(|()| reg))
        }
        Ok(_) => None,
        Err(e) => text.contains("kind: NodeConfig").then(|| Err(Error::Yaml(e.to_string()))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NodeConfig {
    kind: Option<String>,
    spec: Option<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    cluster: Option<ClusterDetails>,
    kubelet: Option<KubeletOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClusterDetails {
    name: Option<Scalar>,
    api_server_endpoint: Option<Scalar>,
    certificate_authority: Option<Scalar>,
    cidr: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KubeletOptions {
    config: Option<KubeletConfig>,
    flags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct KubeletConfig {
    #[serde(rename = "clusterDNS")]
    cluster_dns: Option<Vec<Scalar>>,
    max_pods: Option<u32>,
    register_with_taints: Option<Vec<TaintDoc>>,
    kube_reserved: Option<BTreeMap<String, Scalar>>,
    system_reserved: Option<BTreeMap<String, Scalar>>,
    eviction_hard: Option<BTreeMap<String, Scalar>>,
}

#[derive(Debug, Deserialize)]
struct TaintDoc {
    key: Scalar,
    #[serde(default)]
    value: Option<Scalar>,
    effect: Scalar,
}

impl NodeConfig {
    fn apply(self, reg: &mut NodeRegistration) -> Result<(), Error> {
        let spec = self.spec.unwrap_or_default();
        if let Some(c) = spec.cluster {
            for (field, value) in [
                (&mut reg.cluster.name, c.name),
                (&mut reg.cluster.api_server_endpoint, c.api_server_endpoint),
                (&mut reg.cluster.certificate_authority, c.certificate_authority),
                (&mut reg.cluster.cidr, c.cidr),
            ] {
                if let Some(Scalar(v)) = value.filter(|v| !v.0.is_empty()) {
                    *field = v;
                }
            }
        }
        let kubelet = spec.kubelet.unwrap_or_default();
        let config = kubelet.config.unwrap_or_default();
        if let Some(dns) = config.cluster_dns.filter(|d| !d.is_empty()) {
            reg.cluster_dns = dns.into_iter().map(|s| s.0).collect();
        }
        if config.max_pods.is_some() {
            reg.max_pods = config.max_pods;
        }
        if let Some(taints) = config.register_with_taints {
            reg.taints = taints
                .into_iter()
                .map(|t| {
                    Taint { key: t.key.0, value: t.value.map(|v| v.0).filter(|v| !v.is_empty()), effect: t.effect.0 }
                        .checked()
                })
                .collect::<Result<_, _>>()?;
        }
        for (target, source) in [
            (&mut reg.kube_reserved, config.kube_reserved),
            (&mut reg.system_reserved, config.system_reserved),
            (&mut reg.eviction_hard, config.eviction_hard),
        ] {
            target.extend(source.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        }
        for flag in kubelet.flags.unwrap_or_default() {
            apply_flag_string(reg, &flag)?;
        }
        Ok(())
    }
}

/// A YAML scalar read as the string it spells (`maxPods`-style numbers and booleans included).
#[derive(Debug, Default)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_nodeconfig_yaml_from_scripts_as_karpenter_does() {
        assert!(is_yaml_object("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n"));
        assert!(is_yaml_object("#!/bin/bash\n# only comments: YAML null\n"));
        assert!(!is_yaml_object("#!/bin/bash\necho hello\n"));
    }

    #[test]
    fn reads_a_bare_nodeconfig_with_flags_and_numbers() {
        let yaml = "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n    name: c\n  kubelet:\n    config:\n      maxPods: 110\n      kubeReserved:\n        cpu: 1\n    flags:\n    - --node-labels \"karpenter.sh/nodepool=default,team=a\"\n    - --register-with-taints=example.com/special=true:NoSchedule,only-key:NoExecute\n";
        let reg = parse_bare(yaml).and_then(Result::ok).unwrap_or_default();
        assert_eq!(reg.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(reg.max_pods, Some(110));
        assert_eq!(reg.kube_reserved.get("cpu").map(String::as_str), Some("1"));
        assert_eq!(reg.taints.len(), 2);
        assert_eq!(reg.taints[1], Taint { key: "only-key".into(), value: None, effect: "NoExecute".into() });
        assert!(parse_bare("kind: Other\n").is_none());
        assert!(matches!(parse_bare("kind: NodeConfig\nspec: [\n"), Some(Err(Error::Yaml(_)))));
    }
}
