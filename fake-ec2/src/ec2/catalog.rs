//! The read-only catalog calls: instance types, where they are offered, spot price history and
//! zones. Karpenter makes the first three at start-up and every 12 hours, and refuses to start if
//! they fail, so their shapes follow the botocore `ec2/2016-11-15` model member for member.

use super::Call;
use super::error::{Ec2Error, Ec2Result};
use super::filters::{self, Filter, Filterable, boolean, many, one};
use super::pagination::{self, Limits};
use super::xml::XmlWriter;
use crate::world::World;
use crate::world::catalog::InstanceType;
use crate::world::clock::{self, Millis};

const DAY_MS: Millis = 86_400_000;

/// `DescribeInstanceTypes`: MaxResults 5..100 (botocore); EC2 pages at 100 when it is absent.
const TYPE_LIMITS: Limits = Limits { min: 5, max: 100, default: Some(100) };
/// `DescribeInstanceTypeOfferings`: MaxResults 5..1000 (botocore).
const OFFERING_LIMITS: Limits = Limits { min: 5, max: 1000, default: Some(1000) };
/// `DescribeSpotPriceHistory`: botocore sets no bounds and Karpenter asks for 2000, which EC2
/// accepts; pages default to 1000 rows.
const SPOT_LIMITS: Limits = Limits { min: 1, max: 10_000, default: Some(1000) };

/// The spot product descriptions the fake prices. Other operating systems have no spot market here.
const LINUX: &str = "Linux/UNIX";
const LINUX_VPC: &str = "Linux/UNIX (Amazon VPC)";

/// The Price List name of a region (`location` attribute), also the root of zone group long names.
pub fn region_location(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "ca-central-1" => "Canada (Central)",
        "eu-west-1" => "EU (Ireland)",
        "eu-west-2" => "EU (London)",
        "eu-west-3" => "EU (Paris)",
        "eu-central-1" => "EU (Frankfurt)",
        "eu-north-1" => "EU (Stockholm)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-northeast-2" => "Asia Pacific (Seoul)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "sa-east-1" => "South America (Sao Paulo)",
        _ => return None,
    })
}

/// `1.0` as `1.0` and `3.1` as `3.1`: how EC2 writes doubles.
fn dbl(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.1}") } else { format!("{v}") }
}

// ---------------------------------------------------------------------------------------------
// Instance types

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
        self.0.size.starts_with("metal")
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
    fn bandwidth_gbps(&self) -> (f64, f64) {
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
        if self.0.is_arm() { &["uefi"] } else { &["legacy-bios", "uefi"] }
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
            .elem("hypervisor", &t.hypervisor);
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
        x.bool("instanceStorageSupported", false);
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
            .elem("nvmeSupport", "required")
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
            .elem("enaSupport", "required")
            .bool("efaSupported", false)
            .bool("encryptionInTransitSupported", self.encryption_in_transit())
            .bool("enaSrdSupported", false)
            .close();
        x.open("placementGroupInfo").string_set("supportedStrategies", ["cluster", "partition", "spread"]).close();
        x.bool("hibernationSupported", self.hibernation())
            .bool("burstablePerformanceSupported", t.burstable())
            .bool("dedicatedHostsSupported", self.dedicated_hosts())
            .bool("autoRecoverySupported", true)
            .string_set("supportedBootModes", self.boot_modes().iter().copied())
            .elem("nitroEnclavesSupport", self.nitro_enclaves())
            .elem("nitroTpmSupport", "supported");
        x.open("nitroTpmInfo").string_set("supportedVersions", ["2.0"]).close();
    }
}

impl Filterable for TypeInfo<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        let t = self.0;
        let ebs = ebs_perf(t);
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
            "ebs-info.nvme-support" => one("required"),
            "free-tier-eligible" => boolean(self.free_tier()),
            "hibernation-supported" => boolean(self.hibernation()),
            "hypervisor" => one(&t.hypervisor),
            "instance-storage-info.disk.count"
            | "instance-storage-info.disk.size-in-gb"
            | "instance-storage-info.disk.type"
            | "instance-storage-info.encryption-support"
            | "instance-storage-info.nvme-support"
            | "instance-storage-info.total-size-in-gb"
            | "network-info.efa-info.maximum-efa-interfaces"
            | "network-info.bandwidth-weightings"
            | "network-info.flexible-ena-queues-support"
            | "reboot-migration-support" => Some(Vec::new()),
            "instance-storage-supported" => boolean(false),
            "instance-type" => one(&t.name),
            "memory-info.size-in-mib" => one(t.memory_mib.to_string()),
            "network-info.efa-supported" => boolean(false),
            "network-info.ena-support" => one("required"),
            "network-info.encryption-in-transit-supported" => boolean(self.encryption_in_transit()),
            "network-info.ipv4-addresses-per-interface" => one(t.ipv4_per_eni.to_string()),
            "network-info.ipv6-addresses-per-interface" => one(self.ipv6_per_interface().to_string()),
            "network-info.ipv6-supported" => boolean(true),
            "network-info.maximum-network-cards" => one("1"),
            "network-info.maximum-network-interfaces" => one(t.max_enis.to_string()),
            "network-info.network-performance" => one(&t.network_performance),
            "nitro-enclaves-support" => one(self.nitro_enclaves()),
            "nitro-tpm-support" => one("supported"),
            "nitro-tpm-info.supported-versions" => one("2.0"),
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
    }
}

pub fn describe_instance_types(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
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

struct Offering<'a> {
    instance_type: &'a str,
    location: String,
}

impl Filterable for Offering<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "instance-type" => one(self.instance_type),
            "location" => one(&self.location),
            _ => None,
        }
    }
}

pub fn describe_instance_type_offerings(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let location_type = p.str("LocationType").unwrap_or("region");
    if !matches!(location_type, "region" | "availability-zone" | "availability-zone-id" | "outpost") {
        return Err(Ec2Error::invalid_value(
            "LocationType",
            location_type,
            "Valid values are region, availability-zone, availability-zone-id and outpost.",
        ));
    }
    let fs = filters::parse(p)?;
    filters::validate(&fs, &Offering { instance_type: "", location: String::new() })?;
    pagination::page_size(p, OFFERING_LIMITS)?;
    call.dry_run(w)?;
    let mut rows = Vec::new();
    for t in w.catalog.all() {
        match location_type {
            "region" if w.cfg.zones.iter().any(|z| w.catalog.offered_in(&t.name, &z.name)) => {
                rows.push(Offering { instance_type: &t.name, location: w.cfg.region.clone() });
            }
            "availability-zone" | "availability-zone-id" => {
                for z in w.cfg.zones.iter().filter(|z| w.catalog.offered_in(&t.name, &z.name)) {
                    let location = if location_type == "availability-zone" { z.name.clone() } else { z.id.clone() };
                    rows.push(Offering { instance_type: &t.name, location });
                }
            }
            // Not offered anywhere, or an Outpost: the fake world has none.
            _ => {}
        }
    }
    rows.retain(|o| filters::matches(&fs, o));
    let key = |o: &Offering<'_>| format!("{}|{}", o.instance_type, o.location);
    rows.sort_by_key(key);
    let page = pagination::paginate(rows, p, OFFERING_LIMITS, key)?;
    let mut x = call.writer();
    x.item_set("instanceTypeOfferingSet", &page.items, |x, o| {
        x.elem("instanceType", o.instance_type).elem("locationType", location_type).elem("location", &o.location);
    });
    x.opt("nextToken", page.next_token.as_deref());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------
// Spot price history

struct SpotRow<'a> {
    instance_type: &'a str,
    zone: &'a str,
    zone_id: &'a str,
    description: &'static str,
    at: Millis,
    price: f64,
}

impl SpotRow<'_> {
    fn price_text(&self) -> String {
        format!("{:.6}", self.price)
    }

    /// Newest first, then type, zone and description: a key that sorts like the response.
    fn key(&self) -> String {
        format!("{:020}|{}|{}|{}", i64::MAX - self.at, self.instance_type, self.zone, self.description)
    }
}

impl Filterable for SpotRow<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "availability-zone" => one(self.zone),
            "availability-zone-id" => one(self.zone_id),
            "instance-type" => one(self.instance_type),
            "product-description" => one(self.description),
            "spot-price" => one(self.price_text()),
            // The documented form (`Wed Jan 01 00:00:00 UTC 2026`) and the ISO form the API returns.
            "timestamp" => {
                many([clock::to_datetime(self.at).format("%a %b %d %H:%M:%S UTC %Y").to_string(), clock::iso(self.at)])
            }
            _ => None,
        }
    }
}

/// Filters that depend only on the pool, so whole pools can be skipped before reading history.
const POOL_FILTERS: &[&str] = &["availability-zone", "availability-zone-id", "instance-type"];

pub fn describe_spot_price_history(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let types = p.strings("InstanceType")?;
    let asked = p.strings("ProductDescription")?;
    let zone_param = p.str("AvailabilityZone");
    let zone_id_param = p.str("AvailabilityZoneId");
    let start = p.time("StartTime")?;
    let end = p.time("EndTime")?;
    let fs = filters::parse(p)?;
    let sample = SpotRow { instance_type: "", zone: "", zone_id: "", description: LINUX, at: 0, price: 0.0 };
    filters::validate(&fs, &sample)?;
    pagination::page_size(p, SPOT_LIMITS)?;
    call.dry_run(w)?;

    // The window: EndTime defaults to now and never passes it; StartTime defaults to EndTime and
    // reaches back at most `history_days`. Karpenter sends StartTime = its own wall clock, which
    // may be ahead of world time: that still answers with the price in effect now.
    let now = w.now();
    let earliest = now - w.pools.spot_config().history_days.max(0) * DAY_MS;
    let to = end.map_or(now, |t| t.timestamp_millis()).min(now);
    let from = start.map_or(to, |t| t.timestamp_millis()).clamp(earliest.min(to), to);

    let descriptions: Vec<&'static str> = if asked.is_empty() {
        vec![LINUX]
    } else {
        [LINUX, LINUX_VPC].into_iter().filter(|d| asked.contains(d)).collect()
    };
    let pool_fs: Vec<Filter> = fs.iter().filter(|f| POOL_FILTERS.contains(&f.name.as_str())).cloned().collect();

    let mut rows = Vec::new();
    if to >= earliest && !descriptions.is_empty() {
        for t in w.catalog.all().iter().filter(|t| types.is_empty() || types.contains(&t.name.as_str())) {
            for z in &w.cfg.zones {
                if zone_param.is_some_and(|want| want != z.name)
                    || zone_id_param.is_some_and(|want| want != z.id)
                    || !w.catalog.offered_in(&t.name, &z.name)
                {
                    continue;
                }
                let probe = SpotRow { instance_type: &t.name, zone: &z.name, zone_id: &z.id, ..sample };
                if !filters::matches(&pool_fs, &probe) {
                    continue;
                }
                let Some(pool) = w.pool_of(&t.name, &z.name) else {
                    continue;
                };
                for (at, price) in w.pools.spot_history(pool, from, to) {
                    for d in &descriptions {
                        let row = SpotRow {
                            instance_type: &t.name,
                            zone: &z.name,
                            zone_id: &z.id,
                            description: d,
                            at,
                            price,
                        };
                        if filters::matches(&fs, &row) {
                            rows.push(row);
                        }
                    }
                }
            }
        }
    }
    let mut keyed: Vec<(String, SpotRow<'_>)> = rows.into_iter().map(|r| (r.key(), r)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let page = pagination::paginate(keyed, p, SPOT_LIMITS, |(k, _)| k.clone())?;
    let mut x = call.writer();
    x.item_set("spotPriceHistorySet", &page.items, |x, (_, r)| {
        x.elem("instanceType", r.instance_type)
            .elem("productDescription", r.description)
            .elem("spotPrice", r.price_text())
            .elem("timestamp", clock::iso(r.at))
            .elem("availabilityZone", r.zone)
            .elem("availabilityZoneId", r.zone_id);
    });
    // EC2 sends an empty token on the last page of this call.
    x.elem("nextToken", page.next_token.as_deref().unwrap_or_default());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------
// Availability zones

struct ZoneView<'a> {
    name: &'a str,
    id: &'a str,
    region: &'a str,
    group_name: String,
    group_long_name: Option<String>,
}

impl ZoneView<'_> {
    fn new<'a>(w: &'a World, name: &'a str, id: &'a str) -> ZoneView<'a> {
        let region = w.cfg.region.as_str();
        let group_long_name = region_location(region).map(|l| format!("{} 1", l.replace("EU (", "Europe (")));
        ZoneView { name, id, region, group_name: format!("{region}-zg-1"), group_long_name }
    }
}

impl Filterable for ZoneView<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "group-long-name" => many(self.group_long_name.clone()),
            "group-name" => one(&self.group_name),
            "message" | "parent-zone-id" | "parent-zone-name" => Some(Vec::new()),
            "opt-in-status" => one("opt-in-not-required"),
            "region-name" => one(self.region),
            "state" => one("available"),
            "zone-id" => one(self.id),
            "zone-name" => one(self.name),
            "zone-type" => one("availability-zone"),
            _ => None,
        }
    }
}

pub fn describe_availability_zones(w: &mut World, call: &Call<'_>) -> Ec2Result<String> {
    let p = &call.params;
    let names = p.strings("ZoneName")?;
    let ids = p.strings("ZoneId")?;
    p.bool("AllAvailabilityZones")?;
    let fs = filters::parse(p)?;
    filters::validate(&fs, &ZoneView::new(w, "", ""))?;
    if let Some(bad) = names.iter().find(|n| !w.cfg.zones.iter().any(|z| z.name == **n)) {
        return Err(Ec2Error::client("InvalidParameterValue", format!("Invalid availability zone: [{bad}]")));
    }
    if let Some(bad) = ids.iter().find(|n| !w.cfg.zones.iter().any(|z| z.id == **n)) {
        return Err(Ec2Error::client("InvalidParameterValue", format!("Invalid availability zone ID: [{bad}]")));
    }
    call.dry_run(w)?;
    let zones: Vec<ZoneView<'_>> = w
        .cfg
        .zones
        .iter()
        .filter(|z| {
            (names.is_empty() && ids.is_empty()) || names.contains(&z.name.as_str()) || ids.contains(&z.id.as_str())
        })
        .map(|z| ZoneView::new(w, &z.name, &z.id))
        .filter(|z| filters::matches(&fs, z))
        .collect();
    let mut x = call.writer();
    x.item_set("availabilityZoneInfo", &zones, |x, z| {
        x.elem("zoneName", z.name)
            .elem("zoneState", "available")
            .elem("regionName", z.region)
            .open("messageSet")
            .close()
            .elem("zoneId", z.id)
            .elem("groupName", &z.group_name)
            .elem("optInStatus", "opt-in-not-required")
            .elem("networkBorderGroup", z.region)
            .elem("zoneType", "availability-zone");
        x.opt("groupLongName", z.group_long_name.as_deref());
    });
    Ok(call.finish(x))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ok, run, texts};
    use super::*;
    use crate::world::tests::test_world;

    fn code(r: Ec2Result<String>) -> Option<(u16, String)> {
        r.err().map(|e| (e.status, e.code))
    }

    #[test]
    fn instance_type_renders_the_botocore_shape() {
        let mut w = test_world(1);
        let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "InstanceType.1=m5.large"));
        assert_eq!(texts(&xml, "instanceType"), ["m5.large"]);
        for (tag, want) in [
            ("defaultVCpus", "2"),
            ("defaultCores", "1"),
            ("defaultThreadsPerCore", "2"),
            ("sizeInMiB", "8192"),
            ("hypervisor", "nitro"),
            ("manufacturer", "Intel"),
            ("sustainedClockSpeedInGhz", "3.1"),
            ("maximumNetworkInterfaces", "3"),
            ("ipv4AddressesPerInterface", "10"),
            ("ipv6AddressesPerInterface", "10"),
            ("baselineBandwidthInMbps", "650"),
            ("maximumBandwidthInMbps", "4750"),
            ("baselineThroughputInMBps", "81.25"),
            ("enaSupport", "required"),
            ("nvmeSupport", "required"),
            ("burstablePerformanceSupported", "false"),
            ("freeTierEligible", "false"),
        ] {
            assert!(texts(&xml, tag).iter().any(|v| v == want), "{tag} = {want} in {xml}");
        }
        assert!(xml.contains("<supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>"));
        assert!(xml.contains("<supportedArchitectures><item>x86_64</item></supportedArchitectures>"));
        assert!(xml.contains("<supportedBootModes><item>legacy-bios</item><item>uefi</item></supportedBootModes>"));
        assert!(xml.contains("<networkCards><item><networkCardIndex>0</networkCardIndex>"));
        assert!(!xml.contains("<nextToken>"));

        let arm = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "InstanceType.1=m7g.large"));
        assert!(arm.contains("<supportedBootModes><item>uefi</item></supportedBootModes>"));
        assert_eq!(texts(&arm, "manufacturer"), ["AWS"]);
        assert_eq!(texts(&arm, "defaultThreadsPerCore"), ["1"]);
    }

    #[test]
    fn instance_types_filter_like_karpenter_asks() {
        let mut w = test_world(1);
        let q = "Filter.1.Name=supported-virtualization-type&Filter.1.Value.1=hvm\
                 &Filter.2.Name=processor-info.supported-architecture&Filter.2.Value.1=arm64";
        let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", q));
        let names = texts(&xml, "instanceType");
        let arm = w.catalog.all().iter().filter(|t| t.is_arm()).count();
        assert_eq!(names.len(), arm.min(100));
        assert!(names.iter().all(|n| w.catalog.get(n).is_some_and(InstanceType::is_arm)));

        let q = "Filter.1.Name=instance-type&Filter.1.Value.1=m5.*&Filter.2.Name=vcpu-info.default-vcpus&Filter.2.Value.1=4";
        let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", q));
        assert_eq!(texts(&xml, "instanceType"), ["m5.xlarge"]);

        let q = "Filter.1.Name=burstable-performance-supported&Filter.1.Value.1=true";
        let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", q));
        let names = texts(&xml, "instanceType");
        assert!(!names.is_empty() && names.iter().all(|n| n.starts_with('t')));
    }

    #[test]
    fn instance_types_page_through_every_type_once() {
        let mut w = test_world(1);
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let q =
                if token.is_empty() { "MaxResults=37".to_owned() } else { format!("MaxResults=37&NextToken={token}") };
            let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", &q));
            seen.extend(texts(&xml, "instanceType"));
            match texts(&xml, "nextToken").pop() {
                Some(t) => token = t,
                None => break,
            }
        }
        let all: Vec<String> = w.catalog.all().iter().map(|t| t.name.clone()).collect();
        assert_eq!(seen, all);
        // Without MaxResults, EC2 still pages at 100.
        let xml = ok(run(describe_instance_types, &mut w, "DescribeInstanceTypes", ""));
        assert_eq!(texts(&xml, "instanceType").len(), 100.min(all.len()));
    }

    #[test]
    fn instance_type_errors() {
        let mut w = test_world(1);
        let r = run(
            describe_instance_types,
            &mut w,
            "DescribeInstanceTypes",
            "InstanceType.1=m5.large&InstanceType.2=m5.huge",
        );
        let e = r.err();
        assert_eq!(e.as_ref().map(|e| e.code.as_str()), Some("InvalidInstanceType"));
        assert_eq!(e.map(|e| e.message), Some("The following supplied instance types do not exist: [m5.huge]".into()));
        assert_eq!(
            code(run(
                describe_instance_types,
                &mut w,
                "DescribeInstanceTypes",
                "Filter.1.Name=bogus&Filter.1.Value.1=x"
            )),
            Some((400, "InvalidParameterValue".into()))
        );
        assert_eq!(
            code(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "MaxResults=101")),
            Some((400, "InvalidParameterValue".into()))
        );
        assert_eq!(
            code(run(describe_instance_types, &mut w, "DescribeInstanceTypes", "DryRun=true")),
            Some((412, "DryRunOperation".into()))
        );
    }

    #[test]
    fn offerings_cover_every_offered_zone() {
        let mut w = test_world(1);
        let types = w.catalog.all().len();
        let xml = ok(run(
            describe_instance_type_offerings,
            &mut w,
            "DescribeInstanceTypeOfferings",
            "LocationType=availability-zone&MaxResults=1000",
        ));
        assert_eq!(texts(&xml, "location").len(), types * w.cfg.zones.len());
        assert!(texts(&xml, "locationType").iter().all(|l| l == "availability-zone"));

        let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", ""));
        assert_eq!(texts(&xml, "location").len(), types);
        assert!(texts(&xml, "location").iter().all(|l| l == "us-west-2"));

        let q = "LocationType=availability-zone-id&Filter.1.Name=instance-type&Filter.1.Value.1=m5.l*\
                 &Filter.2.Name=location&Filter.2.Value.1=usw2-az2";
        let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", q));
        assert_eq!(texts(&xml, "instanceType"), ["m5.large"]);
        assert_eq!(texts(&xml, "location"), ["usw2-az2"]);

        assert_eq!(
            code(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", "LocationType=planet")),
            Some((400, "InvalidParameterValue".into()))
        );
        assert_eq!(
            code(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", "DryRun=true")),
            Some((412, "DryRunOperation".into()))
        );
    }

    #[test]
    fn offerings_respect_not_offered_zones() {
        let mut cfg = test_world(1).cfg;
        cfg.catalog.not_offered.insert("m5.large".into(), vec!["us-west-2c".into()]);
        let mut w = World::new(cfg, 1, std::path::Path::new(".")).unwrap_or_else(|e| unreachable!("{e}"));
        let q = "LocationType=availability-zone&Filter.1.Name=instance-type&Filter.1.Value.1=m5.large";
        let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", q));
        assert_eq!(texts(&xml, "location"), ["us-west-2a", "us-west-2b"]);
    }

    #[test]
    fn offerings_page_without_loss() {
        let mut w = test_world(1);
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let mut q = "LocationType=availability-zone&MaxResults=50".to_owned();
            if !token.is_empty() {
                q.push_str(&format!("&NextToken={token}"));
            }
            let xml = ok(run(describe_instance_type_offerings, &mut w, "DescribeInstanceTypeOfferings", &q));
            let t = texts(&xml, "instanceType");
            let l = texts(&xml, "location");
            seen.extend(t.into_iter().zip(l));
            match texts(&xml, "nextToken").pop() {
                Some(t) => token = t,
                None => break,
            }
        }
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), seen.len());
        assert_eq!(seen.len(), w.catalog.all().len() * w.cfg.zones.len());
    }

    #[test]
    fn spot_history_answers_karpenters_call_with_one_row_per_pool_and_description() {
        let mut w = test_world(1);
        // Karpenter's StartTime is its wall clock, far ahead of the manual world clock.
        let q = "ProductDescription.1=Linux%2FUNIX&ProductDescription.2=Linux%2FUNIX+%28Amazon+VPC%29\
                 &StartTime=2030-01-01T00:00:00Z&MaxResults=2000";
        let xml = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", q));
        let pools = w.catalog.all().len() * w.cfg.zones.len();
        let types = texts(&xml, "instanceType");
        assert_eq!(types.len(), pools * 2);
        assert_eq!(texts(&xml, "productDescription").iter().filter(|d| *d == "Linux/UNIX (Amazon VPC)").count(), pools);
        assert_eq!(texts(&xml, "nextToken"), [""]);
        // The price shown is the one in effect now, with six decimals.
        let pool = w.pool_of("m5.large", "us-west-2a").unwrap_or_default();
        let (at, price) = w.pools.spot_price_at(pool, w.now());
        let want = format!(
            "<item><instanceType>m5.large</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>{price:.6}</spotPrice><timestamp>{}</timestamp><availabilityZone>us-west-2a</availabilityZone><availabilityZoneId>usw2-az1</availabilityZoneId></item>",
            clock::iso(at)
        );
        assert!(xml.contains(&want), "{want}");
        let prices = texts(&xml, "spotPrice");
        assert!(prices.iter().all(|p| p.split_once('.').is_some_and(|(_, d)| d.len() == 6)));
    }

    #[test]
    fn spot_history_is_newest_first_within_the_window_and_pages_cleanly() {
        let mut w = test_world(2);
        w.clock.advance(10 * DAY_MS);
        let q = "InstanceType.1=m5.large&InstanceType.2=c5.large&StartTime=2026-01-05T00:00:00Z\
                 &Filter.1.Name=availability-zone&Filter.1.Value.1=us-west-2b";
        let xml = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", q));
        let stamps = texts(&xml, "timestamp");
        assert!(stamps.len() > 4, "a few days of hourly ticks change the price: {stamps:?}");
        assert!(stamps.windows(2).all(|p| p[0] >= p[1]), "newest first");
        assert!(texts(&xml, "availabilityZone").iter().all(|z| z == "us-west-2b"));
        let mut types = texts(&xml, "instanceType");
        types.sort();
        types.dedup();
        assert_eq!(types, ["c5.large", "m5.large"]);

        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let mut q2 = format!("{q}&MaxResults=7");
            if !token.is_empty() {
                q2.push_str(&format!("&NextToken={token}"));
            }
            let page = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", &q2));
            let items: Vec<_> = texts(&page, "item");
            assert!(items.len() <= 7);
            paged.extend(items);
            token = texts(&page, "nextToken").pop().unwrap_or_default();
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(paged, texts(&xml, "item"));
    }

    #[test]
    fn spot_history_descriptions_and_errors() {
        let mut w = test_world(3);
        let xml = ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "InstanceType.1=m5.large"));
        assert_eq!(texts(&xml, "productDescription"), ["Linux/UNIX"; 3]);
        let xml =
            ok(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "ProductDescription.1=Windows"));
        assert!(texts(&xml, "item").is_empty());
        let xml = ok(run(
            describe_spot_price_history,
            &mut w,
            "DescribeSpotPriceHistory",
            "AvailabilityZone=us-west-2c&InstanceType.1=c5.large",
        ));
        assert_eq!(texts(&xml, "availabilityZone"), ["us-west-2c"]);
        assert_eq!(
            code(run(
                describe_spot_price_history,
                &mut w,
                "DescribeSpotPriceHistory",
                "Filter.1.Name=cheapness&Filter.1.Value.1=x"
            )),
            Some((400, "InvalidParameterValue".into()))
        );
        assert_eq!(
            code(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "DryRun=true")),
            Some((412, "DryRunOperation".into()))
        );
        assert_eq!(
            code(run(describe_spot_price_history, &mut w, "DescribeSpotPriceHistory", "StartTime=soon")),
            Some((400, "InvalidParameterValue".into()))
        );
    }

    #[test]
    fn zones_describe_and_reject_unknown_names() {
        let mut w = test_world(1);
        let xml = ok(run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", ""));
        assert_eq!(texts(&xml, "zoneName"), ["us-west-2a", "us-west-2b", "us-west-2c"]);
        assert_eq!(texts(&xml, "zoneId"), ["usw2-az1", "usw2-az2", "usw2-az3"]);
        assert!(texts(&xml, "zoneState").iter().all(|s| s == "available"));
        assert!(texts(&xml, "optInStatus").iter().all(|s| s == "opt-in-not-required"));
        assert_eq!(texts(&xml, "groupLongName").first().map(String::as_str), Some("US West (Oregon) 1"));

        let xml = ok(run(
            describe_availability_zones,
            &mut w,
            "DescribeAvailabilityZones",
            "Filter.1.Name=zone-id&Filter.1.Value.1=usw2-az3",
        ));
        assert_eq!(texts(&xml, "zoneName"), ["us-west-2c"]);
        let xml = ok(run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", "ZoneName.1=us-west-2b"));
        assert_eq!(texts(&xml, "zoneName"), ["us-west-2b"]);

        let e = run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", "ZoneName.1=us-west-2z").err();
        assert_eq!(
            e.map(|e| (e.code, e.message)),
            Some(("InvalidParameterValue".into(), "Invalid availability zone: [us-west-2z]".into()))
        );
        assert_eq!(
            code(run(
                describe_availability_zones,
                &mut w,
                "DescribeAvailabilityZones",
                "Filter.1.Name=zone&Filter.1.Value.1=x"
            )),
            Some((400, "InvalidParameterValue".into()))
        );
        assert_eq!(
            code(run(describe_availability_zones, &mut w, "DescribeAvailabilityZones", "DryRun=true")),
            Some((412, "DryRunOperation".into()))
        );
    }

    #[test]
    fn ebs_and_bandwidth_tables_are_plausible() {
        let w = test_world(1);
        for t in w.catalog.all() {
            let e = ebs_perf(t);
            assert!(e.baseline_mbps > 0 && e.baseline_mbps <= e.max_mbps, "{}", t.name);
            assert!(e.baseline_iops <= e.max_iops, "{}", t.name);
            let (base, peak) = TypeInfo(t).bandwidth_gbps();
            assert!(base > 0.0 && base <= peak, "{}: {base} {peak}", t.name);
        }
    }
}
