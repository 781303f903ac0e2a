//! Product documents shaped like the real EC2 price list: attributes, SKU and one OnDemand term
//! priced from the catalog.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::SERVICE_CODE;
use crate::ec2::catalog::{ebs_perf, region_location};
use crate::rng::{hash_str, mix};
use crate::world::World;
use crate::world::catalog::InstanceType;

/// The OnDemand offer term and hourly rate codes every real EC2 on-demand price uses.
const ON_DEMAND_TERM: &str = "JRTCKXETXF";
const HOURLY_RATE: &str = "6YS6EN2CT7";
/// A fixed publication, so documents are byte-identical across runs.
const PUBLICATION_DATE: &str = "2025-12-01T00:00:00Z";
const VERSION: &str = "20251201000000";
/// The price list files virtualised types and bare metal apart, and prices bare metal under
/// dedicated tenancy: Karpenter asks for (`Shared`, `Compute Instance`) and (`Dedicated`,
/// `Compute Instance (bare metal)`), and discards both answers when either is empty.
const COMPUTE: &str = "Compute Instance";
const COMPUTE_METAL: &str = "Compute Instance (bare metal)";

pub(super) struct Product {
    sku: String,
    family: &'static str,
    pub(super) instance_type: String,
    price: f64,
    pub(super) attributes: BTreeMap<&'static str, String>,
}

impl Product {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("productFamily") {
            return Some(self.family);
        }
        if name.eq_ignore_ascii_case("sku") {
            return Some(&self.sku);
        }
        self.attributes.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The product document, serialised as the string the API puts in `PriceList`.
    pub(super) fn document(&self) -> String {
        let term_key = format!("{}.{ON_DEMAND_TERM}", self.sku);
        let rate_code = format!("{term_key}.{HOURLY_RATE}");
        let dimension = json!({
            "unit": "Hrs",
            "endRange": "Inf",
            "description": format!("${} per On Demand Linux {} Instance Hour", short_price(self.price), self.instance_type),
            "appliesTo": [],
            "rateCode": rate_code,
            "beginRange": "0",
            "pricePerUnit": { "USD": format!("{:.10}", self.price) },
        });
        let term = json!({
            "priceDimensions": Value::Object(Map::from_iter([(rate_code, dimension)])),
            "sku": self.sku,
            "effectiveDate": PUBLICATION_DATE,
            "offerTermCode": ON_DEMAND_TERM,
            "termAttributes": {},
        });
        let attributes: Map<String, Value> =
            self.attributes.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
        json!({
            "product": { "productFamily": self.family, "attributes": attributes, "sku": self.sku },
            "serviceCode": SERVICE_CODE,
            "terms": { "OnDemand": Value::Object(Map::from_iter([(term_key, term)])) },
            "version": VERSION,
            "publicationDate": PUBLICATION_DATE,
        })
        .to_string()
    }
}

/// `$0.096`, `$2.04`: the price as the description text writes it.
pub(super) fn short_price(p: f64) -> String {
    let s = format!("{p:.4}");
    let t = s.trim_end_matches('0');
    match t.split_once('.') {
        Some((_, d)) if d.len() >= 2 => t.to_owned(),
        _ => format!("{p:.2}"),
    }
}

/// A 16-character SKU that depends only on the type and region.
pub(super) fn sku(instance_type: &str, region: &str) -> String {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut h = mix(&[hash_str("sku"), hash_str(instance_type), hash_str(region)]);
    let mut out = String::with_capacity(16);
    for i in 0..16 {
        if i == 8 {
            h = mix(&[h, hash_str(instance_type)]);
        }
        out.push(char::from(ALPHABET[(h % 36) as usize]));
        h /= 36;
    }
    out
}

fn usage_prefix(region: &str) -> String {
    match region {
        "us-east-1" => String::new(),
        "us-east-2" => "USE2-".into(),
        "us-west-1" => "USW1-".into(),
        "us-west-2" => "USW2-".into(),
        "ca-central-1" => "CAN1-".into(),
        "eu-west-1" => "EU-".into(),
        "eu-west-2" => "EUW2-".into(),
        "eu-west-3" => "EUW3-".into(),
        "eu-central-1" => "EUC1-".into(),
        "eu-north-1" => "EUN1-".into(),
        "ap-south-1" => "APS3-".into(),
        "ap-northeast-1" => "APN1-".into(),
        "ap-northeast-2" => "APN2-".into(),
        "ap-southeast-1" => "APS1-".into(),
        "ap-southeast-2" => "APS2-".into(),
        "sa-east-1" => "SAE1-".into(),
        other => format!("{}-", other.to_uppercase()),
    }
}

fn physical_processor(t: &InstanceType) -> &'static str {
    match t.family.as_str() {
        "c5" | "c5d" => "Intel Xeon Platinum 8124M",
        "m5" | "r5" | "m5d" | "r5d" | "i3en" => "Intel Xeon Platinum 8175",
        "c5a" | "g5" => "AMD EPYC 7R32",
        "m5a" | "r5a" | "t3a" => "AMD EPYC 7571",
        "c6i" | "m6i" | "r6i" | "i4i" => "Intel Xeon 8375C (Ice Lake)",
        "c6a" | "m6a" | "r6a" | "g6" => "AMD EPYC 7R13 Processor",
        "c7a" => "AMD EPYC 9R14 Processor",
        "c7i" | "m7i" | "r7i" => "Intel Xeon Scalable (Sapphire Rapids)",
        "c6g" | "m6g" | "r6g" | "t4g" | "im4gn" | "is4gen" => "AWS Graviton2 Processor",
        "c7g" | "m7g" | "r7g" => "AWS Graviton3 Processor",
        "t3" => "Intel Skylake E5 2686 v5",
        "i3" => "Intel Xeon E5-2686 v4 (Broadwell)",
        "g4dn" => "Intel Xeon Family",
        _ => match t.manufacturer() {
            "AWS" => "AWS Graviton Processor",
            "AMD" => "AMD EPYC Processor",
            _ => "Intel Xeon Family",
        },
    }
}

fn instance_family(t: &InstanceType) -> &'static str {
    match t.category.as_str() {
        "c" => "Compute optimized",
        "r" | "x" | "z" => "Memory optimized",
        "i" | "im" | "is" | "d" | "h" => "Storage optimized",
        "p" | "g" | "f" | "inf" | "trn" => "Accelerated computing",
        _ => "General purpose",
    }
}

/// EC2's normalization factor: a `large` counts 4 and each doubling doubles it.
pub(super) fn size_factor(size: &str) -> String {
    let f = match size {
        "nano" => 0.25,
        "micro" => 0.5,
        "small" => 1.0,
        "medium" => 2.0,
        "large" => 4.0,
        "xlarge" => 8.0,
        s => s.strip_suffix("xlarge").and_then(|n| n.parse::<f64>().ok()).map_or(8.0, |n| n * 8.0),
    };
    if f.fract() == 0.0 { format!("{f:.0}") } else { format!("{f}") }
}

pub(super) fn gib(mib: u64) -> String {
    let g = mib as f64 / 1024.0;
    if g.fract() == 0.0 { format!("{g:.0} GiB") } else { format!("{g} GiB") }
}

pub(super) fn ghz(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0} GHz") } else { format!("{v} GHz") }
}

pub(super) fn product(t: &InstanceType, region: &str) -> Product {
    let ebs = ebs_perf(t);
    let intel = t.manufacturer() == "Intel";
    let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_owned();
    let mut a: BTreeMap<&'static str, String> = BTreeMap::new();
    a.insert("availabilityzone", "NA".into());
    a.insert("capacitystatus", "Used".into());
    a.insert("classicnetworkingsupport", "false".into());
    a.insert("clockSpeed", ghz(t.clock_ghz()));
    a.insert("currentGeneration", yes_no(t.current_generation()));
    a.insert(
        "dedicatedEbsThroughput",
        if ebs.baseline_mbps < ebs.max_mbps {
            format!("Up to {} Mbps", ebs.max_mbps)
        } else {
            format!("{} Mbps", ebs.baseline_mbps)
        },
    );
    a.insert("ecu", "NA".into());
    a.insert("enhancedNetworkingSupported", "Yes".into());
    if let Some(gpu) = &t.gpu {
        a.insert("gpu", gpu.count.to_string());
    }
    a.insert("gpuMemory", "NA".into());
    a.insert("instanceFamily", instance_family(t).into());
    a.insert("instanceType", t.name.clone());
    a.insert("intelAvx2Available", yes_no(intel));
    a.insert("intelAvxAvailable", yes_no(intel));
    a.insert("intelTurboAvailable", yes_no(intel));
    a.insert("licenseModel", "No License required".into());
    a.insert("location", region_location(region).unwrap_or(region).into());
    a.insert("locationType", "AWS Region".into());
    a.insert("marketoption", "OnDemand".into());
    a.insert("memory", gib(t.memory_mib));
    a.insert("networkPerformance", t.network_performance.clone());
    a.insert("normalizationSizeFactor", size_factor(&t.size));
    a.insert("operatingSystem", "Linux".into());
    a.insert("operation", "RunInstances".into());
    a.insert("physicalProcessor", physical_processor(t).into());
    a.insert("preInstalledSw", "NA".into());
    a.insert("processorArchitecture", "64-bit".into());
    match t.manufacturer() {
        "Intel" if t.burstable() => {
            a.insert("processorFeatures", "Intel AVX; Intel AVX2; Intel Turbo".into());
        }
        "Intel" => {
            a.insert("processorFeatures", "Intel AVX; Intel AVX2; Intel AVX512; Intel Turbo".into());
        }
        "AMD" => {
            a.insert("processorFeatures", "AVX; AVX2; AMD Turbo".into());
        }
        _ => {}
    }
    a.insert("regionCode", region.into());
    a.insert("servicecode", SERVICE_CODE.into());
    a.insert("servicename", "Amazon Elastic Compute Cloud".into());
    a.insert(
        "storage",
        t.local_storage().map_or("EBS only".into(), |d| format!("{} x {} NVMe SSD", d.disks, d.disk_gb())),
    );
    let (family, tenancy, usage) =
        if t.bare_metal { (COMPUTE_METAL, "Dedicated", "DedicatedUsage") } else { (COMPUTE, "Shared", "BoxUsage") };
    a.insert("tenancy", tenancy.into());
    a.insert("usagetype", format!("{}{usage}:{}", usage_prefix(region), t.name));
    a.insert("vcpu", t.vcpu.to_string());
    a.insert("vpcnetworkingsupport", "true".into());
    Product {
        sku: sku(&t.name, region),
        family,
        instance_type: t.name.clone(),
        price: t.on_demand_price,
        attributes: a,
    }
}

/// Every product the world prices, in instance-type order.
pub(super) fn products(w: &World) -> Vec<Product> {
    w.catalog.all().iter().map(|t| product(t, &w.cfg.region)).collect()
}
