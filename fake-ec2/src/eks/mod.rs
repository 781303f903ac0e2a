//! EKS, as node autoscalers use it: `DescribeCluster` (the service CIDR, IP family, endpoint and
//! CA Karpenter reads) and `ListClusters`, for the one cluster the world file's `cluster` section
//! declares. The wire is [`api`] (REST-JSON, signed for `eks`).
//!
//! When fake-ec2 serves a real cluster (`serve --kubeconfig`), the endpoint and CA are that
//! cluster's API server's ([`Eks::serve_api_server`]); otherwise the world file's, or made-up ones
//! shaped like EKS's.

pub mod api;

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::Millis;
use crate::rng::{hash_str, mix};

/// The world file's `cluster` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// Kubernetes `major.minor`.
    #[serde(default = "default_version")]
    pub version: String,
    /// The API server URL; `https://<id>.gr7.<region>.eks.amazonaws.com` when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `certificateAuthority.data`: the base64 PEM of the cluster CA; a placeholder when absent.
    #[serde(default)]
    pub certificate_authority: Option<String>,
    #[serde(default = "default_service_cidr")]
    pub service_ipv4_cidr: String,
    /// For `ip_family: ipv6`.
    #[serde(default)]
    pub service_ipv6_cidr: Option<String>,
    /// `ipv4` or `ipv6`.
    #[serde(default = "default_ip_family")]
    pub ip_family: String,
    #[serde(default = "default_platform_version")]
    pub platform_version: String,
    /// The cluster's IAM role; `arn:aws:iam::<account>:role/<name>-cluster-role` when absent.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// RFC 3339.
    #[serde(default = "default_created_at")]
    pub created_at: String,
    /// The cluster's subnets; every subnet of the world when empty.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Extra security groups; the world's groups tagged `karpenter.sh/discovery: <name>` (other
    /// than the cluster's) when empty.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// The group EKS made for the cluster; the world's group tagged `aws:eks:cluster-name: <name>`
    /// when absent.
    #[serde(default)]
    pub cluster_security_group_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_version() -> String {
    "1.34".to_owned()
}
fn default_service_cidr() -> String {
    "10.100.0.0/16".to_owned()
}
fn default_ip_family() -> String {
    "ipv4".to_owned()
}
fn default_platform_version() -> String {
    "eks.10".to_owned()
}
fn default_created_at() -> String {
    "2025-11-01T00:00:00Z".to_owned()
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("cluster.name `{}` is not an EKS cluster name", self.name));
        }
        if !matches!(self.ip_family.as_str(), "ipv4" | "ipv6") {
            return Err(format!("cluster.ip_family `{}` must be ipv4 or ipv6", self.ip_family));
        }
        if chrono::DateTime::parse_from_rfc3339(&self.created_at).is_err() {
            return Err(format!("cluster.created_at `{}` is not an RFC 3339 time", self.created_at));
        }
        Ok(())
    }
}

/// What the cluster's network looks like in the world: its VPC, subnets and security groups.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    /// (id, tags) of every security group.
    pub security_groups: Vec<(String, BTreeMap<String, String>)>,
}

/// An error as EKS reports it (REST-JSON: `x-amzn-errortype` and `{"message": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EksError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl EksError {
    fn invalid(message: impl Into<String>) -> Self {
        Self { status: 400, kind: "InvalidParameterException", message: message.into() }
    }
}

#[derive(Debug, Clone)]
struct Cluster {
    cfg: ClusterConfig,
    arn: String,
    endpoint: String,
    certificate_authority: String,
    role_arn: String,
    created: Millis,
    /// The id in the endpoint and the OIDC issuer.
    id: String,
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
    cluster_security_group_id: Option<String>,
    vpc_id: String,
}

/// The account's clusters in the region: the one the world declares, or none.
#[derive(Debug, Default)]
pub struct Eks {
    region: String,
    cluster: Option<Cluster>,
}

/// A placeholder CA bundle for worlds that serve no real cluster.
const PLACEHOLDER_CA: &str = "-----BEGIN CERTIFICATE-----\nZmFrZS1lYzIgY2x1c3RlciBDQQ==\n-----END CERTIFICATE-----\n";

impl Eks {
    pub fn new(cfg: Option<&ClusterConfig>, region: &str, account: &str, network: &Network) -> Self {
        let cluster = cfg.map(|c| {
            let id = format!("{:016X}{:016X}", mix(&[hash_str(account), hash_str(&c.name)]), hash_str(region));
            let tagged = |key: &'static str| {
                network
                    .security_groups
                    .iter()
                    .filter(move |(_, tags)| tags.get(key) == Some(&c.name))
                    .map(|(id, _)| id.clone())
            };
            let cluster_sg = c.cluster_security_group_id.clone().or_else(|| tagged("aws:eks:cluster-name").next());
            let security_group_ids = if c.security_group_ids.is_empty() {
                tagged("karpenter.sh/discovery").filter(|g| Some(g) != cluster_sg.as_ref()).collect()
            } else {
                c.security_group_ids.clone()
            };
            Cluster {
                arn: format!("arn:aws:eks:{region}:{account}:cluster/{}", c.name),
                endpoint: c.endpoint.clone().unwrap_or_else(|| format!("https://{id}.gr7.{region}.eks.amazonaws.com")),
                certificate_authority: c
                    .certificate_authority
                    .clone()
                    .unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode(PLACEHOLDER_CA)),
                role_arn: c
                    .role_arn
                    .clone()
                    .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{}-cluster-role", c.name)),
                created: chrono::DateTime::parse_from_rfc3339(&c.created_at).map(|t| t.timestamp_millis()).unwrap_or(0),
                subnet_ids: if c.subnet_ids.is_empty() { network.subnet_ids.clone() } else { c.subnet_ids.clone() },
                security_group_ids,
                cluster_security_group_id: cluster_sg,
                vpc_id: network.vpc_id.clone(),
                id,
                cfg: c.clone(),
            }
        });
        Self { region: region.to_owned(), cluster }
    }

    /// The served cluster's API server (from the kubeconfig fake-ec2 serves with) becomes the
    /// cluster's endpoint, and its CA bundle (base64 PEM), when known, the cluster's CA.
    pub fn serve_api_server(&mut self, endpoint: &str, certificate_authority: Option<&str>) {
        if let Some(c) = &mut self.cluster {
            endpoint.clone_into(&mut c.endpoint);
            if let Some(ca) = certificate_authority {
                ca.clone_into(&mut c.certificate_authority);
            }
        }
    }

    /// The cluster's name, if the world declares one.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.cfg.name.as_str())
    }

    /// `DescribeCluster`'s `cluster`, as EKS shapes it.
    pub fn describe(&self, name: &str) -> Result<Value, EksError> {
        let c = self.cluster.as_ref().filter(|c| c.cfg.name == name).ok_or_else(|| EksError {
            status: 404,
            kind: "ResourceNotFoundException",
            message: format!("No cluster found for name: {name}."),
        })?;
        let mut network = json!({"ipFamily": c.cfg.ip_family, "elasticLoadBalancing": {"enabled": false}});
        if let Some(o) = network.as_object_mut() {
            if c.cfg.ip_family == "ipv4" {
                o.insert("serviceIpv4Cidr".into(), json!(c.cfg.service_ipv4_cidr));
            }
            if let Some(v6) = &c.cfg.service_ipv6_cidr {
                o.insert("serviceIpv6Cidr".into(), json!(v6));
            }
        }
        let mut vpc = json!({
            "subnetIds": c.subnet_ids,
            "securityGroupIds": c.security_group_ids,
            "vpcId": c.vpc_id,
            "endpointPublicAccess": true,
            "endpointPrivateAccess": true,
            "publicAccessCidrs": ["0.0.0.0/0"],
        });
        if let (Some(o), Some(sg)) = (vpc.as_object_mut(), &c.cluster_security_group_id) {
            o.insert("clusterSecurityGroupId".into(), json!(sg));
        }
        Ok(json!({
            "name": c.cfg.name,
            "arn": c.arn,
            "createdAt": c.created as f64 / 1000.0,
            "version": c.cfg.version,
            "endpoint": c.endpoint,
            "roleArn": c.role_arn,
            "resourcesVpcConfig": vpc,
            "kubernetesNetworkConfig": network,
            "logging": {"clusterLogging": [{
                "types": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
                "enabled": false,
            }]},
            "identity": {"oidc": {"issuer": format!("https://oidc.eks.{}.amazonaws.com/id/{}", self.region, c.id)}},
            "status": "ACTIVE",
            "certificateAuthority": {"data": c.certificate_authority},
            "platformVersion": c.cfg.platform_version,
            "tags": c.cfg.tags,
            "health": {"issues": []},
            "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
            "upgradePolicy": {"supportType": "STANDARD"},
        }))
    }

    /// `ListClusters`: a page of names (1 to 100, 100 when absent) from `next_token`.
    pub fn list(&self, max_results: Option<&str>, next_token: Option<&str>) -> Result<Value, EksError> {
        let max = match max_results {
            None => 100,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|m| (1..=100).contains(m))
                .ok_or_else(|| EksError::invalid("maxResults must be between 1 and 100."))?,
        };
        let names: Vec<&str> = self.cluster_name().into_iter().collect();
        let start = match next_token {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|s| *s <= names.len())
                .ok_or_else(|| EksError::invalid("The nextToken is not valid."))?,
        };
        let page: Vec<&str> = names.iter().skip(start).take(max).copied().collect();
        let mut out = json!({ "clusters": page });
        if start + max < names.len()
            && let Some(o) = out.as_object_mut()
        {
            o.insert("nextToken".into(), json!((start + max).to_string()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eks() -> Eks {
        let cfg: ClusterConfig = serde_saphyr::from_str("name: fake-cluster").unwrap_or_else(|e| unreachable!("{e}"));
        let network = Network {
            vpc_id: "vpc-1".into(),
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            security_groups: vec![
                (
                    "sg-cluster".into(),
                    BTreeMap::from([
                        ("aws:eks:cluster-name".into(), "fake-cluster".into()),
                        ("karpenter.sh/discovery".into(), "fake-cluster".into()),
                    ]),
                ),
                ("sg-node".into(), BTreeMap::from([("karpenter.sh/discovery".into(), "fake-cluster".into())])),
                ("sg-default".into(), BTreeMap::new()),
            ],
        };
        Eks::new(Some(&cfg), "us-west-2", "123456789012", &network)
    }

    #[test]
    fn describes_the_declared_cluster_only() {
        let e = eks();
        let c = e.describe("fake-cluster").unwrap_or_default();
        assert_eq!(c["kubernetesNetworkConfig"]["serviceIpv4Cidr"], "10.100.0.0/16");
        assert_eq!(c["kubernetesNetworkConfig"]["ipFamily"], "ipv4");
        assert_eq!(c["arn"], "arn:aws:eks:us-west-2:123456789012:cluster/fake-cluster");
        assert_eq!(c["resourcesVpcConfig"]["clusterSecurityGroupId"], "sg-cluster");
        assert_eq!(c["resourcesVpcConfig"]["securityGroupIds"], json!(["sg-node"]));
        assert_eq!(c["status"], "ACTIVE");
        assert!(c["endpoint"].as_str().is_some_and(|e| e.ends_with(".gr7.us-west-2.eks.amazonaws.com")));
        let err = e.describe("other").err();
        assert_eq!(err.map(|e| (e.status, e.message)), Some((404, "No cluster found for name: other.".into())));
    }

    #[test]
    fn a_served_cluster_gives_its_endpoint_and_ca() {
        let mut e = eks();
        e.serve_api_server("https://127.0.0.1:6443", Some("Q0E="));
        let c = e.describe("fake-cluster").unwrap_or_default();
        assert_eq!(
            (c["endpoint"].as_str(), c["certificateAuthority"]["data"].as_str()),
            (Some("https://127.0.0.1:6443"), Some("Q0E="))
        );
    }

    #[test]
    fn lists_with_bounds() {
        let e = eks();
        assert_eq!(e.list(None, None).ok(), Some(json!({"clusters": ["fake-cluster"]})));
        assert_eq!(e.list(Some("1"), None).ok(), Some(json!({"clusters": ["fake-cluster"]})));
        assert_eq!(e.list(Some("0"), None).map_err(|e| e.kind), Err("InvalidParameterException"));
        assert_eq!(e.list(None, Some("x")).map_err(|e| e.status), Err(400));
        assert_eq!(Eks::default().list(None, None).ok(), Some(json!({"clusters": []})));
    }
}
