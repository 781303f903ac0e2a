//! `DescribeInstanceTypes`: every fact EC2 reports about a type, shared by the XML and the filters.

use super::super::error::{Ec2Error, Ec2Result};
use super::super::filters::{self, Filterable, boolean, many, one};
use super::super::pagination::{self, Limits};
use super::super::{Call, Ec2Ctx};
use super::dbl;
use crate::world::catalog::InstanceType;
use crate::xml::XmlWriter;

/// `DescribeInstanceTypes`: MaxResults 5..100 (botocore); EC2 pages at 100 when it is absent.
const TYPE_LIMITS: Limits = Limits { min: 5, max: 100, default: Some(100) };

/// EBS-optimized performance of a type, as EC2 documents it per family and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EbsPerf {
    pub baseline_mbps: u32,
    pub max_mbps: u32,
    pub baseline_iops: u32,
    pub max_iops: u32,
}

/// (size, baseline Mbps, baseline IOPS) rows; sizes below the burst threshold burst to the class maximum.
type EbsRow = (&'static str, u32, u32);

const EBS_NITRO_V2: &[EbsRow] = &[
    ("large", 650, 3600),
    ("xlarge", 1150, 6000),
    ("2xlarge", 2300, 12000),
    ("4xlarge", 4750, 18750),
    ("8xlarge", 6800, 30000),
    ("9xlarge", 9500, 40000),
    ("12xlarge", 9500, 40000),
    ("16xlarge", 13600, 60000),
    ("18xlarge", 19000, 80000),
    ("24xlarge", 19000, 80000),
];
const EBS_GRAVITON2: &[EbsRow] = &[
    ("large", 630, 3600),
    ("xlarge", 1188, 6000),
    ("2xlarge", 2375, 12000),
    ("4xlarge", 4750, 20000),
    ("8xlarge", 9500, 40000),
    ("12xlarge", 14250, 50000),
    ("16xlarge", 19000, 80000),
];
const EBS_NITRO_V4: &[EbsRow] = &[
    ("large", 650, 3600),
    ("xlarge", 1250, 6000),
    ("2xlarge", 2500, 12000),
    ("4xlarge", 5000, 20000),
    ("8xlarge", 10000, 40000),
    ("12xlarge", 15000, 60000),
    ("16xlarge", 20000, 80000),
    ("24xlarge", 30000, 120000),
    ("32xlarge", 40000, 160000),
    ("48xlarge", 40000, 240000),
];

pub fn ebs_perf(t: &InstanceType) -> EbsPerf {
    if t.burstable() {
        return if t.size == "medium" {
            EbsPerf { baseline_mbps: 347, max_mbps: 2085, baseline_iops: 2000, max_iops: 11800 }
        } else {
            EbsPerf { baseline_mbps: 695, max_mbps: 2780, baseline_iops: 4000, max_iops: 15700 }
        };
    }
    let (table, burst_mbps, burst_iops) = if t.is_arm() && t.generation < 7 {
        (EBS_GRAVITON2, 4750, 20000)
    } else if t.generation >= 7 || (!t.is_arm() && t.generation >= 6) {
        (EBS_NITRO_V4, 10000, 40000)
    } else {
        (EBS_NITRO_V2, 4750, 18750)
    };
    let (_, mut mbps, iops) = table
        .iter()
        .find(|(s, _, _)| *s == t.size)
        .or_else(|| table.iter().find(|(_, m, _)| *m >= 4750))
        .copied()
        .unwrap_or(("", 650, 3600));
    // Graviton3 and later start a little lower at the smallest size.
    if t.is_arm() && t.size == "large" {
        mbps = 630;
    }
    EbsPerf { baseline_mbps: mbps, max_mbps: mbps.max(burst_mbps), baseline_iops: iops, max_iops: iops.max(burst_iops) }
}

/// One instance type with the facts EC2 derives from it, shared by the XML and the filters so
/// what a filter matches is exactly what the response says.
pub struct TypeInfo<'a>(pub &'a InstanceType);

impl TypeInfo<'_> {
    fn free_tier(&self) -> bool {
        matches!(
            self.0.name.as_str(),
            "t2.micro" | "t3.micro" | "t3.small" | "t4g.micro" | "t4g.small" | "c7i-flex.large" | "m7i-flex.large"
        )
    }

    fn bare_metal(&self) -> bool {
        self.0.bare_metal
    }

    /// EC2 reports no hypervisor for bare metal (the element is absent, not empty).
    fn hypervisor(&self) -> Option<&str> {
        Some(self.0.hypervisor.as_str()).filter(|h| !h.is_empty())
    }

    /// EBS over NVMe, ENA and NitroTPM come with the Nitro system; Xen types (i3) have none of them.
    fn ebs_nvme(&self) -> &'static str {
        if self.0.xen() { "unsupported" } else { "required" }
    }

    fn ena(&self) -> &'static str {
        if self.0.xen() { "supported" } else { "required" }
    }

    fn nitro_tpm(&self) -> bool {
        self.hypervisor() == Some("nitro")
    }

    fn valid_cores(&self) -> Vec<u32> {
        let cores = self.0.cores().max(1);
        if self.0.is_arm() || cores <= 2 { (1..=cores).collect() } else { (1..=cores / 2).map(|i| i * 2).collect() }
    }

    fn valid_threads(&self) -> Vec<u32> {
        if self.0.threads_per_core() == 1 && self.0.is_arm() { vec![1] } else { vec![1, 2] }
    }

    fn supported_features(&self) -> Vec<&'static str> {
        // AMD SEV-SNP is offered on the third-generation EPYC families.
        if matches!(self.0.family.as_str(), "m6a" | "c6a" | "r6a") { vec!["amd-sev-snp"] } else { Vec::new() }
    }

    fn encryption_in_transit(&self) -> bool {
        let t = self.0;
        !t.burstable()
            && ((t.is_arm() && t.generation >= 7) || (!t.is_arm() && (t.generation >= 6 || t.family == "c5a")))
    }

    /// (baseline, peak) network bandwidth in Gbps; "Up to N" types burst above a per-vCPU baseline.
    pub(super) fn bandwidth_gbps(&self) -> (f64, f64) {
        let t = self.0;
        let perf = t.network_performance.trim();
        let up_to = perf.starts_with("Up to");
        let peak: f64 =
            perf.trim_start_matches("Up to").trim().trim_end_matches("Gigabit").trim().parse().unwrap_or(10.0);
        if !up_to {
            return (peak, peak);
        }
        let per_vcpu = if t.burstable() {
            0.128
        } else if t.is_arm() && t.generation >= 7 {
            0.468_75
        } else if !t.is_arm() && t.generation >= 6 {
            0.390_625
        } else {
            0.3125
        };
        ((f64::from(t.vcpu) * per_vcpu).min(peak), peak)
    }

    fn hibernation(&self) -> bool {
        // On-Demand hibernation needs RAM below 150 GiB.
        self.0.memory_mib < 150 * 1024 && !self.bare_metal()
    }

    fn dedicated_hosts(&self) -> bool {
        !self.0.burstable() || self.0.family == "t3"
    }

    fn boot_modes(&self) -> &'static [&'static str] {
        if self.0.is_arm() {
            &["uefi"]
        } else if self.0.xen() {
            &["legacy-bios"]
        } else {
            &["legacy-bios", "uefi"]
        }
    }

    fn nitro_enclaves(&self) -> &'static str {
        let t = self.0;
        let enough = if t.is_arm() { t.vcpu >= 2 } else { t.vcpu >= 4 };
        if !t.burstable() && enough && t.hypervisor == "nitro" { "supported" } else { "unsupported" }
    }

    fn ipv6_per_interface(&self) -> u32 {
        self.0.ipv4_per_eni
    }

    fn write(&self, x: &mut XmlWriter) {
        let t = self.0;
        let ebs = ebs_perf(t);
        let (base_gbps, peak_gbps) = self.bandwidth_gbps();
        x.elem("instanceType", &t.name)
            .bool("currentGeneration", t.current_generation())
            .bool("freeTierEligible", self.free_tier())
            .string_set("supportedUsageClasses", ["on-demand", "spot"])
            .string_set("supportedRootDeviceTypes", ["ebs"])
            .string_set("supportedVirtualizationTypes", ["hvm"])
            .bool("bareMetal", self.bare_metal())
            .opt("hypervisor", self.hypervisor());
        x.open("processorInfo").string_set("supportedArchitectures", [t.architecture.as_str()]);
        x.elem("sustainedClockSpeedInGhz", dbl(t.clock_ghz()));
        let features = self.supported_features();
        if !features.is_empty() {
            x.string_set("supportedFeatures", features);
        }
        x.elem("manufacturer", t.manufacturer()).close();
        x.open("vCpuInfo")
            .num("defaultVCpus", t.vcpu)
            .num("defaultCores", t.cores())
            .num("defaultThreadsPerCore", t.threads_per_core())
            .string_set("validCores", self.valid_cores().iter().map(u32::to_string))
            .string_set("validThreadsPerCore", self.valid_threads().iter().map(u32::to_string))
            .close();
        x.open("memoryInfo").num("sizeInMiB", t.memory_mib).close();
        x.bool("instanceStorageSupported", t.local_storage().is_some());
        if let Some(disks) = t.local_storage() {
            x.open("instanceStorageInfo")
                .num("totalSizeInGB", disks.total_gb)
                .item_set("disks", [disks], |x, d| {
                    x.num("sizeInGB", d.disk_gb()).num("count", d.disks).elem("type", "ssd");
                })
                .elem("nvmeSupport", "required")
                .elem("encryptionSupport", "required")
                .close();
        }
        x.open("ebsInfo")
            .elem("ebsOptimizedSupport", "default")
            .elem("encryptionSupport", "supported")
            .open("ebsOptimizedInfo")
            .num("baselineBandwidthInMbps", ebs.baseline_mbps)
            .elem("baselineThroughputInMBps", dbl(f64::from(ebs.baseline_mbps) / 8.0))
            .num("baselineIops", ebs.baseline_iops)
            .num("maximumBandwidthInMbps", ebs.max_mbps)
            .elem("maximumThroughputInMBps", dbl(f64::from(ebs.max_mbps) / 8.0))
            .num("maximumIops", ebs.max_iops)
            .close()
            .elem("nvmeSupport", self.ebs_nvme())
            .close();
        x.open("networkInfo")
            .elem("networkPerformance", &t.network_performance)
            .num("maximumNetworkInterfaces", t.max_enis)
            .num("maximumNetworkCards", 1)
            .num("defaultNetworkCardIndex", 0)
            .item_set("networkCards", [()], |x, ()| {
                x.num("networkCardIndex", 0)
                    .elem("networkPerformance", &t.network_performance)
                    .num("maximumNetworkInterfaces", t.max_enis)
                    .elem("baselineBandwidthInGbps", dbl(base_gbps))
                    .elem("peakBandwidthInGbps", dbl(peak_gbps));
            })
            .num("ipv4AddressesPerInterface", t.ipv4_per_eni)
            .num("ipv6AddressesPerInterface", self.ipv6_per_interface())
            .bool("ipv6Supported", true)
            .elem("enaSupport", self.ena())
            .bool("efaSupported", false)
            .bool("encryptionInTransitSupported", self.encryption_in_transit())
            .bool("enaSrdSupported", false)
            .close();
        if let Some(gpu) = &t.gpu {
            x.open("gpuInfo")
                .item_set("gpus", [gpu], |x, g| {
                    x.elem("name", g.ec2_name())
                        .elem("manufacturer", &g.manufacturer)
                        .num("count", g.count)
                        .open("memoryInfo")
                        .num("sizeInMiB", g.memory_mib)
                        .close();
                })
                .num("totalGpuMemoryInMiB", gpu.total_memory_mib())
                .close();
        }
        x.open("placementGroupInfo").string_set("supportedStrategies", ["cluster", "partition", "spread"]).close();
        x.bool("hibernationSupported", self.hibernation())
            .bool("burstablePerformanceSupported", t.burstable())
            .bool("dedicatedHostsSupported", self.dedicated_hosts())
            .bool("autoRecoverySupported", true)
            .string_set("supportedBootModes", self.boot_modes().iter().copied())
            .elem("nitroEnclavesSupport", self.nitro_enclaves())
            .elem("nitroTpmSupport", if self.nitro_tpm() { "supported" } else { "unsupported" });
        if self.nitro_tpm() {
            x.open("nitroTpmInfo").string_set("supportedVersions", ["2.0"]).close();
        }
    }
}

impl Filterable for TypeInfo<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let t = self.0;
        let ebs = ebs_perf(t);
        let disks = t.local_storage();
        let nums = |v: Vec<u32>| many(v.into_iter().map(|n| n.to_string()));
        match name {
            "auto-recovery-supported" => boolean(true),
            "bare-metal" => boolean(self.bare_metal()),
            "burstable-performance-supported" => boolean(t.burstable()),
            "current-generation" => boolean(t.current_generation()),
            "dedicated-hosts-supported" => boolean(self.dedicated_hosts()),
            "ebs-info.attachment-limit-type" | "ebs-info.maximum-ebs-attachments" => Some(Vec::new()),
            "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps" => one(ebs.baseline_mbps.to_string()),
            "ebs-info.ebs-optimized-info.baseline-iops" => one(ebs.baseline_iops.to_string()),
            "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps" => one(dbl(f64::from(ebs.baseline_mbps) / 8.0)),
            "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps" => one(ebs.max_mbps.to_string()),
            "ebs-info.ebs-optimized-info.maximum-iops" => one(ebs.max_iops.to_string()),
            "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps" => one(dbl(f64::from(ebs.max_mbps) / 8.0)),
            "ebs-info.ebs-optimized-support" => one("default"),
            "ebs-info.encryption-support" => one("supported"),
            "ebs-info.nvme-support" => one(self.ebs_nvme()),
            "free-tier-eligible" => boolean(self.free_tier()),
            "hibernation-supported" => boolean(self.hibernation()),
            "hypervisor" => many(self.hypervisor()),
            "instance-storage-info.disk.count" => many(disks.map(|d| d.disks.to_string())),
            "instance-storage-info.disk.size-in-gb" => many(disks.map(|d| d.disk_gb().to_string())),
            "instance-storage-info.disk.type" => many(disks.map(|_| "ssd")),
            "instance-storage-info.encryption-support" | "instance-storage-info.nvme-support" => {
                many(disks.map(|_| "required"))
            }
            "instance-storage-info.total-size-in-gb" => many(disks.map(|d| d.total_gb.to_string())),
            "network-info.efa-info.maximum-efa-interfaces"
            | "network-info.bandwidth-weightings"
            | "network-info.flexible-ena-queues-support"
            | "reboot-migration-support" => Some(Vec::new()),
            "instance-storage-supported" => boolean(disks.is_some()),
            "instance-type" => one(&t.name),
            "memory-info.size-in-mib" => one(t.memory_mib.to_string()),
            "network-info.efa-supported" => boolean(false),
            "network-info.ena-support" => one(self.ena()),
            "network-info.encryption-in-transit-supported" => boolean(self.encryption_in_transit()),
            "network-info.ipv4-addresses-per-interface" => one(t.ipv4_per_eni.to_string()),
            "network-info.ipv6-addresses-per-interface" => one(self.ipv6_per_interface().to_string()),
            "network-info.ipv6-supported" => boolean(true),
            "network-info.maximum-network-cards" => one("1"),
            "network-info.maximum-network-interfaces" => one(t.max_enis.to_string()),
            "network-info.network-performance" => one(&t.network_performance),
            "nitro-enclaves-support" => one(self.nitro_enclaves()),
            "nitro-tpm-support" => one(if self.nitro_tpm() { "supported" } else { "unsupported" }),
            "nitro-tpm-info.supported-versions" => many(self.nitro_tpm().then_some("2.0")),
            "processor-info.supported-architecture" => one(&t.architecture),
            "processor-info.sustained-clock-speed-in-ghz" => one(dbl(t.clock_ghz())),
            "processor-info.supported-features" => many(self.supported_features()),
            "processor-info.manufacturer" => one(t.manufacturer()),
            "supported-boot-mode" => many(self.boot_modes().iter().copied()),
            "supported-root-device-type" => one("ebs"),
            "supported-usage-class" => many(["on-demand", "spot"]),
            "supported-virtualization-type" => one("hvm"),
            "vcpu-info.default-cores" => one(t.cores().to_string()),
            "vcpu-info.default-threads-per-core" => one(t.threads_per_core().to_string()),
            "vcpu-info.default-vcpus" => one(t.vcpu.to_string()),
            "vcpu-info.valid-cores" => nums(self.valid_cores()),
            "vcpu-info.valid-threads-per-core" => nums(self.valid_threads()),
            _ => None,
        }
    }
}

/// A type for checking filter names when nothing else is at hand.
fn sample_type() -> InstanceType {
    InstanceType {
        name: "m5.large".into(),
        family: "m5".into(),
        category: "m".into(),
        generation: 5,
        size: "large".into(),
        vcpu: 2,
        memory_mib: 8192,
        architecture: "x86_64".into(),
        hypervisor: "nitro".into(),
        max_enis: 3,
        ipv4_per_eni: 10,
        max_pods: 29,
        network_performance: "Up to 10 Gigabit".into(),
        on_demand_price: 0.096,
        ..Default::default()
    }
}

pub fn describe_instance_types(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let w = &*cx.world;
    let p = &call.params;
    let wanted = p.strings("InstanceType")?;
    let fs = filters::parse(p)?;
    filters::validate(&fs, &TypeInfo(&sample_type()))?;
    pagination::page_size(p, TYPE_LIMITS)?;
    p.bool("IncludeUnsupportedInRegion")?;
    let unknown: Vec<&str> = wanted.iter().copied().filter(|n| w.catalog.get(n).is_none()).collect();
    if !unknown.is_empty() {
        return Err(Ec2Error::client(
            "InvalidInstanceType",
            format!("The following supplied instance types do not exist: [{}]", unknown.join(", ")),
        ));
    }
    call.dry_run(w)?;
    let rows: Vec<TypeInfo<'_>> = w
        .catalog
        .all()
        .iter()
        .filter(|t| wanted.is_empty() || wanted.contains(&t.name.as_str()))
        .map(TypeInfo)
        .filter(|i| filters::matches(&fs, i))
        .collect();
    let page = pagination::paginate(rows, p, TYPE_LIMITS, |i| i.0.name.clone())?;
    let mut x = call.writer();
    x.item_set("instanceTypeSet", &page.items, |x, i| i.write(x));
    x.opt("nextToken", page.next_token.as_deref());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------
// Instance type offerings
