//! The instance-type catalog as the scheduler sees it: specs, Karpenter's well-known labels,
//! capacity and kubelet overhead, and the zones each type is offered in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, LocationType};
use tracing::debug;

use super::errors::CloudError;
use super::quantity::{format_bytes, format_millicores};
use crate::clock::SharedClock;
use crate::scheduling::{Requirement, Requirements, labels};

pub const INSTANCE_TYPES_TTL: Duration = Duration::from_secs(5 * 60);
/// Karpenter's `VM_MEMORY_OVERHEAD_PERCENT` default: memory the hypervisor and OS keep.
pub const VM_MEMORY_OVERHEAD_PERCENT: f64 = 0.075;
/// The AL2023 root volume Karpenter's default block device mapping asks for.
pub const DEFAULT_ROOT_VOLUME_GIB: u64 = 20;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceTypeInfo {
    pub name: String,
    pub category: String,
    pub family: String,
    pub generation: u32,
    pub size: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// `amd64` or `arm64`, as Kubernetes names them.
    pub arch: String,
    pub hypervisor: String,
    pub max_pods: u32,
    /// `cpu`, `memory`, `pods`, `ephemeral-storage` as Kubernetes quantities.
    pub capacity: BTreeMap<String, String>,
    /// kube-reserved plus the hard eviction thresholds, per resource.
    pub overhead: BTreeMap<String, String>,
    /// capacity less overhead: what pods can use.
    pub allocatable: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub zones: BTreeSet<String>,
    pub gpu: Option<Gpu>,
}

/// What the catalog needs from the raw EC2 description (also lets tests build types directly).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawInstanceType {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// EC2's name: `x86_64` or `arm64`.
    pub architecture: String,
    pub hypervisor: String,
    pub manufacturer: Option<String>,
    pub clock_ghz: Option<f64>,
    pub max_enis: u32,
    pub ipv4_per_eni: u32,
    pub encryption_in_transit: bool,
    pub ebs_bandwidth_mbps: Option<u32>,
    /// The type's GPUs when it has one kind of them (Karpenter labels only that case).
    pub gpu: Option<Gpu>,
    /// Total instance-store NVMe size in GB.
    pub local_nvme_gb: Option<u64>,
}

/// One kind of GPU, as EC2's `gpuInfo.gpus` item describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gpu {
    /// `A10G`, `T4`, ...
    pub name: String,
    /// `NVIDIA`, `AMD`, ...
    pub manufacturer: String,
    pub count: u32,
    pub memory_mib: u64,
}

impl Gpu {
    /// The extended resource a device plugin advertises for this GPU (`nvidia.com/gpu`).
    pub fn resource_name(&self) -> Option<&'static str> {
        match self.manufacturer.as_str() {
            "NVIDIA" => Some("nvidia.com/gpu"),
            "AMD" => Some("amd.com/gpu"),
            _ => None,
        }
    }
}

/// Karpenter's `lowerKabobCase`: `Radeon Pro V520` → `radeon-pro-v520`.
fn kebab(s: &str) -> String {
    s.to_lowercase().replace(' ', "-")
}

impl RawInstanceType {
    fn from_sdk(t: &aws_sdk_ec2::types::InstanceTypeInfo) -> Option<Self> {
        let name = t.instance_type()?.as_str().to_owned();
        let net = t.network_info();
        let proc = t.processor_info();
        Some(Self {
            vcpus: u32::try_from(t.v_cpu_info()?.default_v_cpus()?).ok()?,
            memory_mib: u64::try_from(t.memory_info()?.size_in_mib()?).ok()?,
            architecture: proc?.supported_architectures().first()?.as_str().to_owned(),
            hypervisor: t.hypervisor().map(|h| h.as_str().to_owned()).unwrap_or_default(),
            manufacturer: proc.and_then(|p| p.manufacturer()).map(str::to_owned),
            clock_ghz: proc.and_then(|p| p.sustained_clock_speed_in_ghz()),
            max_enis: net.and_then(|n| n.maximum_network_interfaces()).and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            ipv4_per_eni: net
                .and_then(|n| n.ipv4_addresses_per_interface())
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            encryption_in_transit: net.and_then(|n| n.encryption_in_transit_supported()).unwrap_or(false),
            ebs_bandwidth_mbps: t
                .ebs_info()
                .and_then(|e| e.ebs_optimized_info())
                .and_then(|o| o.maximum_bandwidth_in_mbps())
                .and_then(|v| u32::try_from(v).ok()),
            gpu: gpu_from_sdk(t),
            local_nvme_gb: t
                .instance_storage_info()
                .filter(|s| s.nvme_support() != Some(&aws_sdk_ec2::types::EphemeralNvmeSupport::Unsupported))
                .and_then(|s| s.total_size_in_gb())
                .and_then(|gb| u64::try_from(gb).ok()),
            name,
        })
    }
}

fn gpu_from_sdk(t: &aws_sdk_ec2::types::InstanceTypeInfo) -> Option<Gpu> {
    let [gpu] = t.gpu_info()?.gpus() else { return None };
    Some(Gpu {
        name: gpu.name().unwrap_or_default().to_owned(),
        manufacturer: gpu.manufacturer().unwrap_or_default().to_owned(),
        count: gpu.count().and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        memory_mib: gpu.memory_info().and_then(|m| m.size_in_mib()).and_then(|m| u64::try_from(m).ok()).unwrap_or(0),
    })
}

/// Splits `m7i-flex.large` into category `m`, generation 7, family `m7i-flex`, size `large`
/// (Karpenter's `(^[a-z]+)(\-[0-9]+tb)?([0-9]+).*\.` scheme).
pub fn parse_name(name: &str) -> Option<(String, String, u32, String)> {
    let (family, size) = name.split_once('.')?;
    let category: String = family.chars().take_while(char::is_ascii_lowercase).collect();
    let mut rest = &family[category.len()..];
    // High-memory types: `u-6tb1` has generation 1.
    if let Some(after) = rest.strip_prefix('-')
        && let Some(tb) = after.find("tb")
        && after[..tb].chars().all(|c| c.is_ascii_digit())
    {
        rest = &after[tb + 2..];
    }
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if category.is_empty() || digits.is_empty() {
        return None;
    }
    Some((category, family.to_owned(), digits.parse().ok()?, size.to_owned()))
}

/// EKS's max-pods formula for the VPC CNI without prefix delegation.
pub fn eni_max_pods(max_enis: u32, ipv4_per_eni: u32) -> u32 {
    max_enis * ipv4_per_eni.saturating_sub(1) + 2
}

impl InstanceTypeInfo {
    pub fn from_raw(raw: &RawInstanceType, zones: BTreeSet<String>) -> Option<Self> {
        let (category, family, generation, size) = parse_name(&raw.name)?;
        let arch = match raw.architecture.as_str() {
            "x86_64" => "amd64",
            "arm64" => "arm64",
            _ => return None,
        };
        let max_pods = eni_max_pods(raw.max_enis, raw.ipv4_per_eni);
        let mut labels = BTreeMap::new();
        let mut label = |k: &str, v: String| {
            labels.insert(k.to_owned(), v);
        };
        label("node.kubernetes.io/instance-type", raw.name.clone());
        label("kubernetes.io/arch", arch.to_owned());
        label("kubernetes.io/os", "linux".to_owned());
        label("karpenter.k8s.aws/instance-category", category.clone());
        label("karpenter.k8s.aws/instance-family", family.clone());
        label("karpenter.k8s.aws/instance-generation", generation.to_string());
        label("karpenter.k8s.aws/instance-size", size.clone());
        label("karpenter.k8s.aws/instance-cpu", raw.vcpus.to_string());
        label("karpenter.k8s.aws/instance-memory", raw.memory_mib.to_string());
        label("karpenter.k8s.aws/instance-hypervisor", raw.hypervisor.clone());
        label("karpenter.k8s.aws/instance-encryption-in-transit-supported", raw.encryption_in_transit.to_string());
        if let Some(m) = &raw.manufacturer {
            label("karpenter.k8s.aws/instance-cpu-manufacturer", m.to_lowercase());
        }
        if let Some(ghz) = raw.clock_ghz {
            label("karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz", format!("{}", (ghz * 1000.0).round()));
        }
        if let Some(mbps) = raw.ebs_bandwidth_mbps {
            label("karpenter.k8s.aws/instance-ebs-bandwidth", mbps.to_string());
        }
        if let Some(gb) = raw.local_nvme_gb {
            label(labels::INSTANCE_LOCAL_NVME, gb.to_string());
        }
        if let Some(gpu) = &raw.gpu {
            label(labels::INSTANCE_GPU_NAME, kebab(&gpu.name));
            label(labels::INSTANCE_GPU_MANUFACTURER, kebab(&gpu.manufacturer));
            label(labels::INSTANCE_GPU_COUNT, gpu.count.to_string());
            label(labels::INSTANCE_GPU_MEMORY, gpu.memory_mib.to_string());
        }
        let mut info = Self {
            name: raw.name.clone(),
            category,
            family,
            generation,
            size,
            vcpus: raw.vcpus,
            memory_mib: raw.memory_mib,
            arch: arch.to_owned(),
            hypervisor: raw.hypervisor.clone(),
            max_pods,
            capacity: BTreeMap::new(),
            overhead: BTreeMap::new(),
            allocatable: BTreeMap::new(),
            labels,
            zones,
            gpu: raw.gpu.clone(),
        };
        info.set_root_volume(DEFAULT_ROOT_VOLUME_GIB * GIB);
        Some(info)
    }

    /// The type's labels as requirements, with Karpenter's `DoesNotExist` for the optional labels
    /// it lacks (a type without GPUs does not match `instance-gpu-count Exists`).
    pub fn requirements(&self) -> Requirements {
        let mut r = Requirements::from_labels(&self.labels);
        for key in labels::OPTIONAL_INSTANCE_LABELS {
            if !self.labels.contains_key(*key) {
                r.add(key, Requirement::does_not_exist());
            }
        }
        r
    }

    /// Recomputes capacity, overhead and allocatable for a NodeClass's root volume size.
    pub fn with_root_volume(mut self, bytes: u64) -> Self {
        self.set_root_volume(bytes);
        self
    }

    fn set_root_volume(&mut self, storage: u64) {
        let mut mem_mib = self.memory_mib;
        // Graviton keeps 64 MiB of CMA memory the kernel cannot hand out.
        if self.arch == "arm64" {
            mem_mib = mem_mib.saturating_sub(64);
        }
        let mem_mib = mem_mib - (mem_mib as f64 * VM_MEMORY_OVERHEAD_PERCENT).ceil() as u64;
        let memory = mem_mib * MIB;

        let reserved = userdata::default_kube_reserved(self.vcpus, self.max_pods);
        let reserved_of = |k: &str| reserved.get(k).and_then(|q| userdata::parse_quantity(q)).unwrap_or(0.0);
        let eviction = userdata::default_eviction_hard();
        let evict_memory = eviction.get("memory.available").and_then(|q| userdata::parse_quantity(q)).unwrap_or(0.0);
        let nodefs_percent =
            eviction.get("nodefs.available").and_then(|p| p.trim_end_matches('%').parse::<f64>().ok()).unwrap_or(0.0);
        let evict_storage = (storage as f64 * nodefs_percent / 100.0).ceil();

        let cpu_m = u64::from(self.vcpus) * 1000;
        let over_cpu_m = (reserved_of("cpu") * 1000.0).round() as u64;
        let over_mem = (reserved_of("memory") + evict_memory) as u64;
        let over_storage = (reserved_of("ephemeral-storage") + evict_storage) as u64;

        let map = |cpu: String, mem: String, pods: Option<String>, storage: String| {
            let mut m = BTreeMap::from([
                ("cpu".to_owned(), cpu),
                ("memory".to_owned(), mem),
                ("ephemeral-storage".to_owned(), storage),
            ]);
            if let Some(p) = pods {
                m.insert("pods".to_owned(), p);
            }
            m
        };
        self.capacity =
            map(self.vcpus.to_string(), format!("{mem_mib}Mi"), Some(self.max_pods.to_string()), format_bytes(storage));
        // What the device plugin advertises; zero-valued resources are left out, as Karpenter
        // leaves them out of a NodeClaim's capacity.
        if let Some(gpu) = self.gpu.as_ref().filter(|g| g.count > 0)
            && let Some(resource) = gpu.resource_name()
        {
            self.capacity.insert(resource.to_owned(), gpu.count.to_string());
        }
        self.overhead = map(format_millicores(over_cpu_m), format_bytes(over_mem), None, format_bytes(over_storage));
        self.allocatable = map(
            format_millicores(cpu_m.saturating_sub(over_cpu_m)),
            format_bytes(memory.saturating_sub(over_mem)),
            Some(self.max_pods.to_string()),
            format_bytes(storage.saturating_sub(over_storage)),
        );
    }
}

/// DescribeInstanceTypes + DescribeInstanceTypeOfferings, cached for 5 minutes.
#[derive(Debug)]
pub struct InstanceTypeProvider {
    ec2: aws_sdk_ec2::Client,
    clock: SharedClock,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<Vec<InstanceTypeInfo>>)>>,
}

impl InstanceTypeProvider {
    pub fn new(ec2: aws_sdk_ec2::Client, clock: SharedClock) -> Self {
        Self { ec2, clock, ttl: INSTANCE_TYPES_TTL, cached: Mutex::new(None) }
    }

    /// Every usable type, by name, each with the zones it is offered in.
    pub async fn list(&self) -> Result<Arc<Vec<InstanceTypeInfo>>, CloudError> {
        let now = self.clock.now();
        if let Some((at, types)) = self.cached.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && now < *at + self.ttl
        {
            return Ok(Arc::clone(types));
        }
        let types = Arc::new(self.fetch().await?);
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some((now, Arc::clone(&types)));
        Ok(types)
    }

    pub fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn fetch(&self) -> Result<Vec<InstanceTypeInfo>, CloudError> {
        let raw = self.describe_instance_types().await?;
        let zones = self.describe_offerings().await?;
        let types: Vec<InstanceTypeInfo> = raw
            .iter()
            .filter_map(|r| {
                let z = zones.get(&r.name).cloned().unwrap_or_default();
                InstanceTypeInfo::from_raw(r, z)
            })
            .filter(|t| !t.zones.is_empty())
            .collect();
        debug!(count = types.len(), "discovered instance types");
        Ok(types)
    }

    pub async fn describe_instance_types(&self) -> Result<Vec<RawInstanceType>, CloudError> {
        let pages = self
            .ec2
            .describe_instance_types()
            .max_results(100)
            .filters(Filter::builder().name("supported-virtualization-type").values("hvm").build())
            .filters(
                Filter::builder()
                    .name("processor-info.supported-architecture")
                    .values("x86_64")
                    .values("arm64")
                    .build(),
            )
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| CloudError::api("DescribeInstanceTypes", e))?;
        let mut by_name = BTreeMap::new();
        for t in pages.iter().flat_map(|p| p.instance_types()) {
            if let Some(r) = RawInstanceType::from_sdk(t) {
                by_name.insert(r.name.clone(), r);
            }
        }
        Ok(by_name.into_values().collect())
    }

    /// Zones per instance type; their union is every zone the autoscaler knows.
    pub async fn describe_offerings(&self) -> Result<BTreeMap<String, BTreeSet<String>>, CloudError> {
        let pages = self
            .ec2
            .describe_instance_type_offerings()
            .location_type(LocationType::AvailabilityZone)
            .max_results(1000)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| CloudError::api("DescribeInstanceTypeOfferings", e))?;
        let mut zones: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for o in pages.iter().flat_map(|p| p.instance_type_offerings()) {
            if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
                zones.entry(t.as_str().to_owned()).or_default().insert(z.to_owned());
            }
        }
        Ok(zones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m5_large() -> RawInstanceType {
        RawInstanceType {
            name: "m5.large".into(),
            vcpus: 2,
            memory_mib: 8192,
            architecture: "x86_64".into(),
            hypervisor: "nitro".into(),
            manufacturer: Some("Intel".into()),
            clock_ghz: Some(3.1),
            max_enis: 3,
            ipv4_per_eni: 10,
            encryption_in_transit: false,
            ebs_bandwidth_mbps: Some(4750),
            gpu: None,
            local_nvme_gb: None,
        }
    }

    fn info(raw: &RawInstanceType) -> InstanceTypeInfo {
        InstanceTypeInfo::from_raw(raw, BTreeSet::from(["us-west-2a".into()]))
            .unwrap_or_else(|| unreachable!("{} parses", raw.name))
    }

    fn g5_xlarge() -> RawInstanceType {
        RawInstanceType {
            name: "g5.xlarge".into(),
            vcpus: 4,
            memory_mib: 16384,
            manufacturer: Some("AMD".into()),
            max_enis: 4,
            ipv4_per_eni: 15,
            gpu: Some(Gpu { name: "A10G".into(), manufacturer: "NVIDIA".into(), count: 1, memory_mib: 24576 }),
            local_nvme_gb: Some(250),
            ..m5_large()
        }
    }

    #[test]
    fn gpu_types_carry_karpenters_gpu_labels_and_capacity() {
        let t = info(&g5_xlarge());
        let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
        assert_eq!(get(&t.labels, labels::INSTANCE_GPU_NAME), "a10g");
        assert_eq!(get(&t.labels, labels::INSTANCE_GPU_MANUFACTURER), "nvidia");
        assert_eq!(get(&t.labels, labels::INSTANCE_GPU_COUNT), "1");
        assert_eq!(get(&t.labels, labels::INSTANCE_GPU_MEMORY), "24576");
        assert_eq!(get(&t.capacity, "nvidia.com/gpu"), "1");
        // Capacity keeps the GPU after the root volume is resized for a NodeClass.
        assert_eq!(get(&t.clone().with_root_volume(100 * GIB).capacity, "nvidia.com/gpu"), "1");
        assert!(t.requirements().get(labels::INSTANCE_GPU_COUNT).has("1"));
    }

    #[test]
    fn local_nvme_is_labelled_in_gb() {
        let t = info(&g5_xlarge());
        assert_eq!(t.labels.get(labels::INSTANCE_LOCAL_NVME).map(String::as_str), Some("250"));
    }

    #[test]
    fn types_without_gpus_or_nvme_require_those_labels_absent() {
        let t = info(&m5_large());
        assert!(!t.capacity.contains_key("nvidia.com/gpu"));
        let reqs = t.requirements();
        for key in labels::OPTIONAL_INSTANCE_LABELS {
            assert_eq!(reqs.get(key), &Requirement::does_not_exist(), "{key}");
        }
        // A pod asking for any GPU does not fit an m5.
        let wants_gpu = Requirements::new().with(labels::INSTANCE_GPU_COUNT, Requirement::exists());
        assert!(reqs.intersects(&wants_gpu).is_err());
        assert!(info(&g5_xlarge()).requirements().intersects(&wants_gpu).is_ok());
    }

    #[test]
    fn amd_gpus_advertise_amd_resource() {
        let raw = RawInstanceType {
            name: "g4ad.xlarge".into(),
            gpu: Some(Gpu { name: "Radeon Pro V520".into(), manufacturer: "AMD".into(), count: 1, memory_mib: 8192 }),
            ..m5_large()
        };
        let t = info(&raw);
        assert_eq!(t.labels.get(labels::INSTANCE_GPU_NAME).map(String::as_str), Some("radeon-pro-v520"));
        assert_eq!(t.capacity.get("amd.com/gpu").map(String::as_str), Some("1"));
    }

    #[test]
    fn bare_metal_types_are_usable() {
        let raw = RawInstanceType {
            name: "c5.metal".into(),
            vcpus: 96,
            memory_mib: 196_608,
            hypervisor: String::new(),
            max_enis: 15,
            ipv4_per_eni: 50,
            ..m5_large()
        };
        let t = info(&raw);
        assert_eq!(t.labels.get("karpenter.k8s.aws/instance-size").map(String::as_str), Some("metal"));
        assert_eq!(t.labels.get("karpenter.k8s.aws/instance-hypervisor").map(String::as_str), Some(""));
        assert_eq!(t.max_pods, 737);
    }

    #[test]
    fn parses_names() {
        let p = |n: &str| parse_name(n).map(|(c, f, g, s)| format!("{c} {f} {g} {s}"));
        assert_eq!(p("m5.large").as_deref(), Some("m m5 5 large"));
        assert_eq!(p("m7i-flex.2xlarge").as_deref(), Some("m m7i-flex 7 2xlarge"));
        assert_eq!(p("u-6tb1.metal").as_deref(), Some("u u-6tb1 1 metal"));
        assert_eq!(p("c6gd.metal").as_deref(), Some("c c6gd 6 metal"));
        assert_eq!(p("nope"), None);
    }

    #[test]
    fn m5_large_matches_what_the_kubelet_registers() {
        let t = InstanceTypeInfo::from_raw(&m5_large(), BTreeSet::from(["us-west-2a".into()])).unwrap_or_else(|| {
            unreachable!("m5.large parses");
        });
        assert_eq!(t.max_pods, 29);
        let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
        assert_eq!(get(&t.capacity, "memory"), "7577Mi");
        assert_eq!(get(&t.capacity, "ephemeral-storage"), "20Gi");
        assert_eq!(get(&t.overhead, "cpu"), "70m");
        assert_eq!(get(&t.overhead, "memory"), "674Mi");
        assert_eq!(get(&t.overhead, "ephemeral-storage"), "3Gi");
        assert_eq!(get(&t.allocatable, "cpu"), "1930m");
        assert_eq!(get(&t.allocatable, "pods"), "29");
        assert_eq!(get(&t.labels, "karpenter.k8s.aws/instance-cpu-manufacturer"), "intel");
    }
}
