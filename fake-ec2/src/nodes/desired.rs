//! The Node a kubelet would register for an instance: pure, from the instance, its type and its
//! user data (the `userdata` crate's contract), whichever AMI family wrote it: AL2's bootstrap.sh
//! arguments, AL2023's nodeadm NodeConfig or Bottlerocket's TOML settings.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus, NodeSystemInfo, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use userdata::{Family, NodeRegistration, default_eviction_hard, default_kube_reserved, parse_quantity};

use crate::world::catalog::InstanceType;
use crate::world::instances::Instance;

/// Marks Nodes this process owns, and tells the kwok controller to play their kubelet.
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";
pub const KWOK_MANAGED: &str = "fake";
/// kwok stops heartbeating a node whose annotation no longer selects it: a stopped kubelet.
pub const KWOK_STOPPED: &str = "stopped";
pub const MANAGED_BY_LABEL: &str = "spotbench.dev/managed-by";
pub const MANAGED_BY: &str = "fake-ec2";

/// The share of nominal memory the OS and hypervisor keep (what kubelet's capacity lacks); the
/// figure Karpenter uses by default (`VM_MEMORY_OVERHEAD_PERCENT`).
const VM_MEMORY_OVERHEAD: f64 = 0.075;
const ROOT_VOLUME_GIB_DEFAULT: i64 = 20;

pub fn provider_id(i: &Instance) -> String {
    format!("aws:///{}/{}", i.zone, i.id)
}

/// The instance id from an `aws:///<zone>/<id>` providerID.
pub fn instance_id(provider_id: &str) -> Option<&str> {
    provider_id.strip_prefix("aws:///")?.split('/').nth(1).filter(|id| id.starts_with("i-"))
}

fn q(s: impl Into<String>) -> Quantity {
    Quantity(s.into())
}

fn mib(bytes: f64) -> String {
    format!("{}Ki", (bytes / 1024.0).floor() as i64)
}

/// What the instance's kubelet reads from its user data: the AMI family that wrote it and what
/// the node registers with. `None` without user data (the kubelet's defaults apply).
pub fn read_user_data(i: &Instance) -> Result<Option<(Family, NodeRegistration)>, userdata::Error> {
    i.user_data.as_deref().map(userdata::parse).transpose()
}

/// What a node of each family reports about itself (`status.nodeInfo`).
struct OsInfo {
    image: &'static str,
    kernel: &'static str,
    /// Amazon Linux kernels name the architecture (`...amzn2023.x86_64`), Bottlerocket's do not.
    kernel_names_arch: bool,
    container_runtime: &'static str,
}

fn os_info(family: Family) -> OsInfo {
    match family {
        Family::Al2 => OsInfo {
            image: "Amazon Linux 2",
            kernel: "5.10.240-238.959.amzn2",
            kernel_names_arch: true,
            container_runtime: "containerd://1.7.27",
        },
        Family::Al2023 => OsInfo {
            image: "Amazon Linux 2023.9.20251120",
            kernel: "6.12.46-66.121.amzn2023",
            kernel_names_arch: true,
            container_runtime: "containerd://2.1.4",
        },
        Family::Bottlerocket => OsInfo {
            image: "Bottlerocket OS 1.49.0 (aws-k8s-1.34)",
            kernel: "6.12.46",
            kernel_names_arch: false,
            container_runtime: "containerd://2.1.4+bottlerocket",
        },
    }
}

/// The Node for a running instance of an AL2023 image. `registration` comes from its user data
/// (defaults if none).
pub fn node_for(i: &Instance, t: &InstanceType, region: &str, registration: &NodeRegistration) -> Node {
    node_for_family(i, t, region, Family::Al2023, registration)
}

/// The Node for a running instance whose user data `family` wrote.
pub fn node_for_family(
    i: &Instance,
    t: &InstanceType,
    region: &str,
    family: Family,
    registration: &NodeRegistration,
) -> Node {
    let name = i.private_dns_name.clone();
    let arch = if t.is_arm() { "arm64" } else { "amd64" };
    let os = os_info(family);
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    // What a kubelet and the AWS cloud controller put on every node.
    for (k, v) in [
        ("kubernetes.io/arch", arch.to_owned()),
        ("kubernetes.io/os", "linux".to_owned()),
        ("kubernetes.io/hostname", name.clone()),
        ("node.kubernetes.io/instance-type", t.name.clone()),
        ("topology.kubernetes.io/region", region.to_owned()),
        ("topology.kubernetes.io/zone", i.zone.clone()),
        ("topology.k8s.aws/zone-id", i.zone_id.clone()),
        ("karpenter.sh/capacity-type", i.capacity_type.as_str().to_owned()),
        ("karpenter.k8s.aws/instance-category", t.category.clone()),
        ("karpenter.k8s.aws/instance-family", t.family.clone()),
        ("karpenter.k8s.aws/instance-generation", t.generation.to_string()),
        ("karpenter.k8s.aws/instance-size", t.size.clone()),
        ("karpenter.k8s.aws/instance-cpu", t.vcpu.to_string()),
        ("karpenter.k8s.aws/instance-cpu-manufacturer", t.manufacturer().to_lowercase()),
        ("karpenter.k8s.aws/instance-memory", t.memory_mib.to_string()),
        ("karpenter.k8s.aws/instance-hypervisor", t.hypervisor.clone()),
        (
            "karpenter.k8s.aws/instance-encryption-in-transit-supported",
            (t.generation >= 6 || t.family.ends_with('n')).to_string(),
        ),
        (MANAGED_BY_LABEL, MANAGED_BY.to_owned()),
    ] {
        labels.insert(k.to_owned(), v);
    }
    labels.extend(registration.labels.clone());

    let max_pods = registration.max_pods.unwrap_or(t.max_pods);
    let root_gib = i.block_devices.first().map_or(ROOT_VOLUME_GIB_DEFAULT, |b| b.volume_size_gib);
    let memory_bytes = t.memory_mib as f64 * 1024.0 * 1024.0 * (1.0 - VM_MEMORY_OVERHEAD);
    let storage_bytes = root_gib as f64 * 1024.0 * 1024.0 * 1024.0;
    let capacity = BTreeMap::from([
        ("cpu".to_owned(), q(t.vcpu.to_string())),
        ("memory".to_owned(), q(mib(memory_bytes))),
        ("pods".to_owned(), q(max_pods.to_string())),
        ("ephemeral-storage".to_owned(), q(mib(storage_bytes))),
        ("hugepages-1Gi".to_owned(), q("0")),
        ("hugepages-2Mi".to_owned(), q("0")),
    ]);
    let kube_reserved = if registration.kube_reserved.is_empty() {
        default_kube_reserved(t.vcpu, max_pods)
    } else {
        registration.kube_reserved.clone()
    };
    let eviction = if registration.eviction_hard.is_empty() {
        default_eviction_hard()
    } else {
        registration.eviction_hard.clone()
    };
    let reserved = |name: &str| -> f64 {
        [&kube_reserved, &registration.system_reserved]
            .iter()
            .filter_map(|m| m.get(name))
            .filter_map(|v| parse_quantity(v))
            .sum()
    };
    let evict = |name: &str, total: f64| -> f64 {
        match eviction.get(name) {
            Some(v) if v.ends_with('%') => v.trim_end_matches('%').parse::<f64>().map_or(0.0, |p| total * p / 100.0),
            Some(v) => parse_quantity(v).unwrap_or(0.0),
            None => 0.0,
        }
    };
    let cpu_m = (f64::from(t.vcpu) - reserved("cpu")).max(0.0) * 1000.0;
    let mem = (memory_bytes - reserved("memory") - evict("memory.available", memory_bytes)).max(0.0);
    let storage = (storage_bytes - reserved("ephemeral-storage") - evict("nodefs.available", storage_bytes)).max(0.0);
    let allocatable = BTreeMap::from([
        ("cpu".to_owned(), q(format!("{}m", cpu_m.floor() as i64))),
        ("memory".to_owned(), q(mib(mem))),
        ("pods".to_owned(), q(max_pods.to_string())),
        ("ephemeral-storage".to_owned(), q(mib(storage))),
        ("hugepages-1Gi".to_owned(), q("0")),
        ("hugepages-2Mi".to_owned(), q("0")),
    ]);
    let taints: Vec<Taint> = registration
        .taints
        .iter()
        .map(|t| Taint { key: t.key.clone(), value: t.value.clone(), effect: t.effect.clone(), time_added: None })
        .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([
                (KWOK_ANNOTATION.to_owned(), KWOK_MANAGED.to_owned()),
                ("alpha.kubernetes.io/provided-node-ip".to_owned(), i.private_ip.to_string()),
                ("node.alpha.kubernetes.io/ttl".to_owned(), "0".to_owned()),
            ])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(provider_id(i)),
            taints: (!taints.is_empty()).then_some(taints),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: Some(capacity),
            allocatable: Some(allocatable),
            addresses: Some(vec![
                NodeAddress { type_: "InternalIP".into(), address: i.private_ip.to_string() },
                NodeAddress { type_: "InternalDNS".into(), address: name.clone() },
                NodeAddress { type_: "Hostname".into(), address: name },
            ]),
            node_info: Some(NodeSystemInfo {
                architecture: arch.into(),
                operating_system: "linux".into(),
                os_image: os.image.into(),
                kernel_version: match (os.kernel_names_arch, t.is_arm()) {
                    (false, _) => os.kernel.to_owned(),
                    (true, true) => format!("{}.aarch64", os.kernel),
                    (true, false) => format!("{}.x86_64", os.kernel),
                },
                container_runtime_version: os.container_runtime.into(),
                kubelet_version: "v1.34.10-eks-fake".into(),
                kube_proxy_version: String::new(),
                machine_id: i.id.clone(),
                system_uuid: i.id.clone(),
                boot_id: i.id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::pools::CapacityType;
    use crate::world::tests::test_world;
    use crate::world::{LaunchSpec, World};

    fn launched(w: &mut World, t: &str, ct: CapacityType, user_data: Option<String>) -> Instance {
        let spec = LaunchSpec {
            instance_type: t.into(),
            subnet_id: "subnet-0b2b2b2b2b2b2b2b2".into(),
            image_id: if w.catalog.get(t).is_some_and(InstanceType::is_arm) {
                "ami-0a0b0c0d0e0f20222"
            } else {
                "ami-0a0b0c0d0e0f10111"
            }
            .into(),
            capacity_type: Some(ct),
            user_data,
            reservation_id: "r-1".into(),
            ..Default::default()
        };
        let now = w.cfg.clock.start_millis();
        let id = w.launch(&spec, now, &mut crate::rng::Streams::new(w.seed), &mut ());
        assert!(id.is_ok(), "{id:?}");
        w.instance(&id.unwrap_or_default()).cloned().unwrap_or_else(Instance::sample)
    }

    fn quantity(n: &Node, which: &str, key: &str) -> String {
        let s = n
            .status
            .as_ref()
            .and_then(|s| if which == "capacity" { s.capacity.clone() } else { s.allocatable.clone() });
        s.and_then(|m| m.get(key).map(|q| q.0.clone())).unwrap_or_default()
    }

    #[test]
    fn registers_like_an_eks_node_with_karpenters_labels() {
        let mut w = test_world(1);
        let i = launched(&mut w, "m5.large", CapacityType::Spot, None);
        let t = w.catalog.get("m5.large").cloned().unwrap_or_else(|| unreachable!());
        let n = node_for(&i, &t, "us-west-2", &NodeRegistration::default());
        assert_eq!(n.metadata.name.as_deref(), Some(i.private_dns_name.as_str()));
        assert_eq!(n.spec.as_ref().and_then(|s| s.provider_id.clone()), Some(format!("aws:///us-west-2b/{}", i.id)));
        let labels = n.metadata.labels.clone().unwrap_or_default();
        for (k, v) in [
            ("kubernetes.io/arch", "amd64"),
            ("node.kubernetes.io/instance-type", "m5.large"),
            ("topology.kubernetes.io/zone", "us-west-2b"),
            ("karpenter.sh/capacity-type", "spot"),
            ("karpenter.k8s.aws/instance-family", "m5"),
            ("karpenter.k8s.aws/instance-memory", "8192"),
        ] {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(quantity(&n, "capacity", "pods"), "29");
        assert_eq!(quantity(&n, "allocatable", "cpu"), "1930m");
        // 8192Mi less 7.5% = 7577.6Mi; allocatable less 574Mi kube-reserved and 100Mi eviction.
        assert_eq!(quantity(&n, "capacity", "memory"), "7759462Ki");
        assert_eq!(quantity(&n, "allocatable", "memory"), "7069286Ki");
        assert_eq!(instance_id(&provider_id(&i)), Some(i.id.as_str()));
    }

    #[test]
    fn takes_labels_taints_and_max_pods_from_user_data() {
        let mut w = test_world(2);
        let reg = NodeRegistration {
            labels: BTreeMap::from([("karpenter.sh/nodepool".into(), "default".into())]),
            taints: vec![userdata::Taint {
                key: "karpenter.sh/unregistered".into(),
                value: None,
                effect: "NoExecute".into(),
            }],
            max_pods: Some(110),
            ..Default::default()
        };
        let i = launched(&mut w, "m7g.large", CapacityType::OnDemand, Some(reg.to_base64()));
        let t = w.catalog.get("m7g.large").cloned().unwrap_or_else(|| unreachable!());
        let parsed = read_user_data(&i);
        assert!(matches!(parsed, Ok(Some((Family::Al2023, _)))), "{parsed:?} from {:?}", i.user_data);
        let parsed = parsed.ok().flatten().map(|(_, r)| r).unwrap_or_default();
        let n = node_for(&i, &t, "us-west-2", &parsed);
        let labels = n.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("karpenter.sh/nodepool").map(String::as_str), Some("default"));
        assert_eq!(labels.get("kubernetes.io/arch").map(String::as_str), Some("arm64"));
        assert_eq!(quantity(&n, "capacity", "pods"), "110");
        let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "karpenter.sh/unregistered");
    }

    /// Karpenter's own user data for each family (userdata's goldens, written by Karpenter
    /// v1.14.3's bootstrap package) for the same NodeClaim: 4 labels, 4 taints (one valueless,
    /// one NoExecute), 110 pods, kube-reserved 200m/1Gi/2Gi, system-reserved 100m/512Mi, eviction
    /// at 200Mi memory and 10% disk.
    const KARPENTER_USER_DATA: [(Family, &str); 3] = [
        (Family::Al2, include_str!("../../../userdata/tests/golden/al2-full.txt")),
        (Family::Al2023, include_str!("../../../userdata/tests/golden/al2023-full.txt")),
        (Family::Bottlerocket, include_str!("../../../userdata/tests/golden/bottlerocket-full.txt")),
    ];

    #[test]
    fn registers_what_karpenters_user_data_says_in_every_family() {
        use base64::Engine as _;
        for (family, text) in KARPENTER_USER_DATA {
            let mut w = test_world(3);
            let user_data = base64::engine::general_purpose::STANDARD.encode(text);
            let i = launched(&mut w, "m5.xlarge", CapacityType::OnDemand, Some(user_data));
            let t = w.catalog.get("m5.xlarge").cloned().unwrap_or_else(|| unreachable!());
            let read = read_user_data(&i);
            let Ok(Some((read_family, reg))) = read else { unreachable!("{family}: {read:?}") };
            assert_eq!(read_family, family);
            let n = node_for_family(&i, &t, "us-west-2", read_family, &reg);

            let labels = n.metadata.labels.clone().unwrap_or_default();
            for (k, v) in [("karpenter.sh/nodepool", "gpu"), ("team", "ml"), ("kubernetes.io/arch", "amd64")] {
                assert_eq!(labels.get(k).map(String::as_str), Some(v), "{family}: {k}");
            }
            let mut taints: Vec<(String, Option<String>, String)> = n
                .spec
                .clone()
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value, t.effect))
                .collect();
            taints.sort();
            let own = |k: &str, v: Option<&str>, e: &str| (k.to_owned(), v.map(str::to_owned), e.to_owned());
            let mut expected = vec![
                own("dedicated", Some("ml"), "NoExecute"),
                own("karpenter.sh/unregistered", None, "NoExecute"),
                own("nvidia.com/gpu", Some("true"), "NoSchedule"),
                own("spot-only", None, "PreferNoSchedule"),
            ];
            if family == Family::Bottlerocket {
                // Bottlerocket's node-taints table holds several effects for one key.
                expected.insert(1, own("dedicated", Some("ml"), "NoSchedule"));
            }
            assert_eq!(taints, expected, "{family}");

            assert_eq!(quantity(&n, "capacity", "pods"), "110", "{family}");
            // 4 vCPUs less 200m kube-reserved and 100m system-reserved.
            assert_eq!(quantity(&n, "allocatable", "cpu"), "3700m", "{family}");
            // 16384Mi less 7.5% = 15155.2Mi; less 1Gi + 512Mi reserved and 200Mi eviction = 13419.2Mi.
            assert_eq!(quantity(&n, "capacity", "memory"), "15518924Ki", "{family}");
            assert_eq!(quantity(&n, "allocatable", "memory"), "13741260Ki", "{family}");
            let info = n.status.and_then(|s| s.node_info).unwrap_or_default();
            assert_eq!(info.os_image, os_info(family).image, "{family}");
        }
    }

    #[test]
    fn bad_user_data_is_an_error_the_bridge_can_report() {
        let mut w = test_world(4);
        let i =
            launched(&mut w, "m5.large", CapacityType::Spot, Some("[settings.kubernetes]\nmax-pods = 'x'\n".into()));
        assert!(matches!(read_user_data(&i), Err(userdata::Error::BadSetting { .. })));
        let i = launched(&mut w, "m5.large", CapacityType::Spot, None);
        assert_eq!(read_user_data(&i), Ok(None));
    }
}
