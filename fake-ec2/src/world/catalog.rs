//! The instance-type catalog: real specs and us-west-2 on-demand prices
//! (`fixtures/catalog/ec2-instance-types-us-west-2.json`, sources in `SOURCES.md` beside it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::CatalogConfig;

pub const BUILTIN_CATALOG: &str = include_str!("../../../fixtures/catalog/ec2-instance-types-us-west-2.json");

/// Whether a name is an EC2 instance type at all: one of the built-in catalog's, or shaped like
/// `family.size` with a size EC2 uses. A real type a world leaves out is `Unsupported`; a name
/// that is no type is `InvalidParameterValue`.
pub fn is_ec2_type(name: &str) -> bool {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        serde_json::from_str::<Vec<InstanceType>>(BUILTIN_CATALOG)
            .map(|v| v.into_iter().map(|t| t.name).collect())
            .unwrap_or_default()
    });
    if names.iter().any(|n| n == name) {
        return true;
    }
    const SIZES: [&str; 20] = [
        "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge", "3xlarge", "4xlarge", "6xlarge", "8xlarge",
        "9xlarge", "10xlarge", "12xlarge", "16xlarge", "18xlarge", "24xlarge", "32xlarge", "48xlarge", "metal",
    ];
    name.split_once('.').is_some_and(|(family, size)| {
        family.len() >= 2
            && family.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && family.chars().any(|c| c.is_ascii_digit())
            && family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && (SIZES.contains(&size) || size.starts_with("metal-"))
    })
}

/// The GPUs of a GPU type (all alike), as the catalog records them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Gpu {
    pub count: u32,
    /// Karpenter's lower-case label form (`t4`, `a10g`, `l4`).
    pub name: String,
    /// As EC2 spells it (`NVIDIA`).
    pub manufacturer: String,
    /// Per GPU.
    pub memory_mib: u64,
}

impl Gpu {
    /// The name as EC2 spells it (`T4`, `A10G`, `L4`): the label form upper-cased.
    pub fn ec2_name(&self) -> String {
        self.name.to_uppercase()
    }

    pub fn total_memory_mib(&self) -> u64 {
        u64::from(self.count) * self.memory_mib
    }
}

/// The instance store: equal NVMe disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStorage {
    pub total_gb: u64,
    pub disks: u32,
}

impl LocalStorage {
    pub fn disk_gb(&self) -> u64 {
        self.total_gb / u64::from(self.disks.max(1))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    pub name: String,
    pub family: String,
    pub category: String,
    pub generation: u32,
    pub size: String,
    pub vcpu: u32,
    pub memory_mib: u64,
    pub architecture: String,
    pub hypervisor: String,
    pub max_enis: u32,
    pub ipv4_per_eni: u32,
    pub max_pods: u32,
    pub network_performance: String,
    #[serde(rename = "on_demand_usd_per_hour_us_west_2")]
    pub on_demand_price: f64,
    /// `.metal` sizes: no hypervisor.
    #[serde(default)]
    pub bare_metal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
    /// Instance-store NVMe, total GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_nvme_gib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_nvme_disks: Option<u32>,
}

impl InstanceType {
    pub fn is_arm(&self) -> bool {
        self.architecture == "arm64"
    }

    pub fn burstable(&self) -> bool {
        self.category == "t"
    }

    /// Graviton has one thread per core; Intel and AMD have two.
    pub fn threads_per_core(&self) -> u32 {
        if self.is_arm() || self.vcpu == 1 { 1 } else { 2 }
    }

    pub fn cores(&self) -> u32 {
        self.vcpu / self.threads_per_core()
    }

    /// The CPU maker as EC2 spells it (Karpenter's `instance-cpu-manufacturer` label, lower-cased):
    /// Graviton is AWS's; the `a` families and the g5/g6 GPU hosts run AMD EPYC.
    pub fn manufacturer(&self) -> &'static str {
        if self.is_arm() {
            "AWS"
        } else if self.family.ends_with('a') || matches!(self.family.as_str(), "g5" | "g6") {
            "AMD"
        } else {
            "Intel"
        }
    }

    /// Sustained all-core clock speed as DescribeInstanceTypes reports it (Karpenter's
    /// `instance-cpu-sustained-clock-speed-mhz` label on its instance-types reference page):
    /// per family, except the largest c5/c5d sizes, which run Cascade Lake parts at 3.6 GHz.
    pub fn clock_ghz(&self) -> f64 {
        let cascade_lake = matches!(self.size.as_str(), "12xlarge" | "24xlarge" | "metal");
        match self.family.as_str() {
            "c5" | "c5d" if cascade_lake => 3.6,
            "c5" | "c5d" => 3.4,
            "c5a" | "g5" => 3.3,
            "c6i" | "m6i" | "r6i" | "i4i" => 3.5,
            "c6a" | "m6a" | "r6a" => 3.6,
            "c7a" => 3.7,
            "c7i" | "m7i" => 3.2,
            "c6g" | "m6g" | "r6g" | "t4g" | "im4gn" | "is4gen" => 2.5,
            "c7g" | "m7g" | "r7g" => 2.6,
            "m5" | "r5" | "m5d" | "r5d" | "i3en" => 3.1,
            "m5a" | "r5a" | "t3" | "g4dn" => 2.5,
            "g6" => 3.4,
            "i3" => 2.3,
            "t3a" => 2.2,
            _ => 3.0,
        }
    }

    /// Xen-based (i3): no NVMe EBS, no Nitro features.
    pub fn xen(&self) -> bool {
        self.hypervisor == "xen"
    }

    pub fn local_storage(&self) -> Option<LocalStorage> {
        let total_gb = self.local_nvme_gib.filter(|g| *g > 0)?;
        Some(LocalStorage { total_gb, disks: self.local_nvme_disks.unwrap_or(1).max(1) })
    }

    /// EC2 reports bare-metal and the largest size as "current generation" alike; every type in
    /// the catalog is current generation.
    pub fn current_generation(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    types: Vec<InstanceType>,
    by_name: BTreeMap<String, usize>,
    /// (type, zone) pairs that are not offered.
    not_offered: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("failed to read catalog file {0}")]
    Read(String, #[source] std::io::Error),
    #[error("catalog file {0} is not valid JSON in the catalog format")]
    Parse(String, #[source] serde_json::Error),
    #[error("catalog selection leaves no instance types")]
    Empty,
    #[error("catalog selection names unknown instance type {0}")]
    UnknownType(String),
    #[error("catalog.on_demand_prices: {0} must be a positive price")]
    BadPrice(String),
}

impl Catalog {
    pub fn load(cfg: &CatalogConfig, base_dir: &std::path::Path) -> Result<Self, CatalogError> {
        let text = match &cfg.file {
            None => BUILTIN_CATALOG.to_owned(),
            Some(f) => {
                let path = base_dir.join(f);
                std::fs::read_to_string(&path).map_err(|e| CatalogError::Read(path.display().to_string(), e))?
            }
        };
        let mut all: Vec<InstanceType> = serde_json::from_str(&text)
            .map_err(|e| CatalogError::Parse(cfg.file.clone().unwrap_or_else(|| "builtin".into()), e))?;
        for t in cfg.types.iter().chain(cfg.on_demand_prices.keys()) {
            if !all.iter().any(|i| &i.name == t) {
                return Err(CatalogError::UnknownType(t.clone()));
            }
        }
        for t in &mut all {
            if let Some(price) = cfg.on_demand_prices.get(&t.name) {
                if !(price.is_finite() && *price > 0.0) {
                    return Err(CatalogError::BadPrice(t.name.clone()));
                }
                t.on_demand_price = *price;
            }
        }
        all.retain(|t| {
            (cfg.families.is_empty() || cfg.families.contains(&t.family))
                && (cfg.types.is_empty() || cfg.types.contains(&t.name))
                && !cfg.exclude.contains(&t.name)
        });
        if all.is_empty() {
            return Err(CatalogError::Empty);
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = all.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(Self { types: all, by_name, not_offered: cfg.not_offered.clone() })
    }

    pub fn all(&self) -> &[InstanceType] {
        &self.types
    }

    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.by_name.get(name).map(|i| &self.types[*i])
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn offered_in(&self, name: &str, zone: &str) -> bool {
        self.by_name.contains_key(name) && !self.not_offered.get(name).is_some_and(|zs| zs.iter().any(|z| z == zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_breadth_the_world_needs() {
        let c = Catalog::load(&CatalogConfig::default(), std::path::Path::new(".")).unwrap_or_default();
        assert!(c.all().len() >= 60);
        let m5 = c.get("m5.large").cloned();
        assert_eq!(m5.as_ref().map(|t| (t.vcpu, t.memory_mib, t.max_pods)), Some((2, 8192, 29)));
        assert!(c.all().iter().any(|t| t.is_arm()) && c.all().iter().any(|t| !t.is_arm()));
        for g in 5..=7 {
            assert!(c.all().iter().any(|t| t.generation == g), "generation {g}");
        }
        for cat in ["c", "m", "r", "t"] {
            assert!(c.all().iter().any(|t| t.category == cat), "category {cat}");
        }
    }

    #[test]
    fn on_demand_price_overrides_replace_the_list_price() {
        let mut cfg = CatalogConfig::default();
        cfg.on_demand_prices.insert("m5.large".into(), 0.5);
        let c = Catalog::load(&cfg, std::path::Path::new(".")).unwrap_or_default();
        assert_eq!(c.get("m5.large").map(|t| t.on_demand_price), Some(0.5));
        assert_eq!(c.get("m5.xlarge").map(|t| t.on_demand_price), Some(0.192));
        cfg.on_demand_prices.insert("m5.large".into(), 0.0);
        assert!(matches!(Catalog::load(&cfg, std::path::Path::new(".")), Err(CatalogError::BadPrice(_))));
        let unknown = CatalogConfig { on_demand_prices: [("m5.huge".into(), 1.0)].into(), ..Default::default() };
        assert!(matches!(Catalog::load(&unknown, std::path::Path::new(".")), Err(CatalogError::UnknownType(_))));
    }

    #[test]
    fn loads_metal_gpu_and_instance_store_facts() {
        let c = Catalog::load(&CatalogConfig::default(), std::path::Path::new(".")).unwrap_or_default();
        let metal = c.get("m5.metal").cloned().unwrap_or_default();
        assert!(metal.bare_metal && metal.hypervisor.is_empty());
        let g5 = c.get("g5.48xlarge").cloned().unwrap_or_default();
        let gpu = g5.gpu.clone().unwrap_or_default();
        assert_eq!((gpu.ec2_name(), gpu.count, gpu.total_memory_mib()), ("A10G".to_owned(), 8, 8 * 22888));
        let disks = g5.local_storage();
        assert_eq!(disks.map(|d| (d.total_gb, d.disks, d.disk_gb())), Some((7600, 2, 3800)));
        assert_eq!(c.get("m5.large").and_then(InstanceType::local_storage), None);
        assert_eq!(c.get("g5.xlarge").map(InstanceType::manufacturer), Some("AMD"));
        assert_eq!(c.get("c5.24xlarge").map(InstanceType::clock_ghz), Some(3.6));
        assert_eq!(c.get("c5.large").map(InstanceType::clock_ghz), Some(3.4));
    }

    #[test]
    fn tells_real_types_from_made_up_names() {
        assert!(is_ec2_type("m5.large") && is_ec2_type("p5.48xlarge") && is_ec2_type("m7i.metal-24xl"));
        assert!(!is_ec2_type("m5.huge") && !is_ec2_type("bogus") && !is_ec2_type("x.large"));
    }

    #[test]
    fn selection_filters_and_rejects_unknown_types() {
        let cfg = CatalogConfig { families: vec!["m5".into()], ..Default::default() };
        let c = Catalog::load(&cfg, std::path::Path::new(".")).unwrap_or_default();
        assert!(c.all().iter().all(|t| t.family == "m5"));
        let bad = CatalogConfig { types: vec!["m5.huge".into()], ..Default::default() };
        assert!(matches!(Catalog::load(&bad, std::path::Path::new(".")), Err(CatalogError::UnknownType(_))));
    }
}
