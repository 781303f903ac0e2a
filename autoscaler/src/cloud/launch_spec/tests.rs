use base64::Engine as _;
use serde_json::json;

use super::*;

fn cluster() -> ClusterInfo {
    ClusterInfo {
        name: "fake-cluster".into(),
        endpoint: "https://127.0.0.1:6443".into(),
        ca_bundle: "Q0E=".into(),
        cidr: "10.100.0.0/16".into(),
        kubernetes_version: "1.34".into(),
        dns_ip: Some("10.100.0.10".into()),
    }
}

fn claim() -> NodeClaim {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": "default-abcde", "labels": {"karpenter.sh/nodepool": "default", "team": "a"}},
        "spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [],
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
        },
    }))
    .unwrap_or_else(|e| unreachable!("claim manifest: {e}"))
}

fn class(spec: serde_json::Value) -> EC2NodeClass {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "default"},
        "spec": spec,
    }))
    .unwrap_or_else(|e| unreachable!("class manifest: {e}"))
}

fn spec_for(class: &EC2NodeClass) -> LaunchTemplateSpec {
    launch_template_spec(&cluster(), &claim(), class, None, "ami-1", vec!["sg-1".into()])
        .unwrap_or_else(|e| unreachable!("launch template spec: {e}"))
}

#[test]
fn each_alias_family_writes_its_own_user_data() {
    for (alias, family) in [
        ("al2@latest", userdata::Family::Al2),
        ("al2023@latest", userdata::Family::Al2023),
        ("bottlerocket@latest", userdata::Family::Bottlerocket),
    ] {
        let spec = spec_for(&class(json!({
            "amiSelectorTerms": [{"alias": alias}],
            "kubelet": {"maxPods": 58, "kubeReserved": {"cpu": "100m"}},
        })));
        let (parsed, reg) =
            userdata::parse(&spec.user_data).unwrap_or_else(|e| unreachable!("{alias}: user data unreadable: {e}"));
        assert_eq!(parsed, family, "{alias}");
        assert_eq!(reg.cluster.name, "fake-cluster", "{alias}");
        assert_eq!(reg.cluster.api_server_endpoint, "https://127.0.0.1:6443", "{alias}");
        assert_eq!(reg.labels.get("team").map(String::as_str), Some("a"), "{alias}");
        assert_eq!(reg.max_pods, Some(58), "{alias}");
        assert_eq!(reg.kube_reserved.get("cpu").map(String::as_str), Some("100m"), "{alias}");
        let taints: Vec<&str> = reg.taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(taints, ["dedicated", "karpenter.sh/unregistered"], "{alias}");
        // Exactly what the userdata crate renders for the same registration (byte-exact with
        // Karpenter there).
        let reg = registration(&cluster(), &claim(), spec_for_kubelet());
        let expected = userdata::render_base64(family, &reg, None).unwrap_or_default();
        assert_eq!(spec.user_data, expected, "{alias}");
    }
}

fn spec_for_kubelet() -> Option<KubeletConfiguration> {
    Some(KubeletConfiguration {
        max_pods: Some(58),
        kube_reserved: Some([("cpu".to_owned(), "100m".to_owned())].into()),
        ..Default::default()
    })
}

#[test]
fn cluster_dns_comes_from_kube_dns_unless_the_kubelet_names_it() {
    let (_, reg) = userdata::parse(&spec_for(&class(json!({"amiFamily": "AL2"}))).user_data)
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(reg.cluster_dns, ["10.100.0.10"]);
    let own = class(json!({"amiFamily": "Bottlerocket", "kubelet": {"clusterDNS": ["10.0.0.53"]}}));
    let (_, reg) = userdata::parse(&spec_for(&own).user_data).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(reg.cluster_dns, ["10.0.0.53"]);
    assert_eq!(dns_ip_from_cidr("10.100.0.0/16").as_deref(), Some("10.100.0.10"));
    assert_eq!(dns_ip_from_cidr("172.20.0.0/16").as_deref(), Some("172.20.0.10"));
    assert_eq!(dns_ip_from_cidr("fd00::/108"), None);
}

#[test]
fn block_devices_default_per_family_and_the_class_wins() {
    let devices = |c: &EC2NodeClass| {
        spec_for(c).block_device_mappings.into_iter().map(|b| (b.device_name, b.volume_size_gib)).collect::<Vec<_>>()
    };
    assert_eq!(
        devices(&class(json!({"amiSelectorTerms": [{"alias": "al2@latest"}]}))),
        [("/dev/xvda".to_owned(), Some(20))]
    );
    assert_eq!(
        devices(&class(json!({"amiSelectorTerms": [{"alias": "bottlerocket@latest"}]}))),
        [("/dev/xvda".to_owned(), Some(4)), ("/dev/xvdb".to_owned(), Some(20))]
    );
    let own = class(json!({
        "amiFamily": "Bottlerocket",
        "blockDeviceMappings": [{"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "100Gi", "volumeType": "gp3"}}],
    }));
    assert_eq!(devices(&own), [("/dev/xvdb".to_owned(), Some(100))]);
}

#[test]
fn custom_family_passes_the_users_user_data_through() {
    let script = "#!/bin/bash\necho hello\n";
    let custom = class(json!({"amiFamily": "Custom", "amiSelectorTerms": [{"id": "ami-1"}], "userData": script}));
    let spec = spec_for(&custom);
    let decoded = base64::engine::general_purpose::STANDARD.decode(&spec.user_data).unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&decoded), script);
    assert!(spec.block_device_mappings.is_empty());
}

#[test]
fn al2_merges_the_users_mime_part_first() {
    let own = class(json!({
        "amiSelectorTerms": [{"alias": "al2@latest"}],
        "userData": "#!/bin/bash\necho before bootstrap\n",
    }));
    let decoded = base64::engine::general_purpose::STANDARD.decode(spec_for(&own).user_data).unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded);
    let (ours, theirs) = (text.find("/etc/eks/bootstrap.sh"), text.find("echo before bootstrap"));
    assert!(theirs.is_some() && theirs < ours, "{text}");
}

#[test]
fn unknown_families_are_invalid() {
    let bad = class(json!({"amiFamily": "Windows2022"}));
    let err = launch_template_spec(&cluster(), &claim(), &bad, None, "ami-1", vec![]).err();
    assert!(matches!(err, Some(CloudError::Invalid(ref m)) if m.contains("Windows2022")), "{err:?}");
}
