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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    pub fn manufacturer(&self) -> &'static str {
        if self.is_arm() {
            "AWS"
        } else if self.family.ends_with('a') {
            "AMD"
        } else {
            "Intel"
        }
    }

    /// Sustained all-core clock speed as EC2 documents it for the family.
    pub fn clock_ghz(&self) -> f64 {
        match self.family.as_str() {
            "c5" => 3.4,
            "c5a" => 3.3,
            "c6i" | "m6i" | "r6i" => 3.5,
            "c6a" | "m6a" => 3.6,
            "c7i" | "m7i" => 3.2,
            "c6g" | "m6g" | "r6g" | "t4g" => 2.5,
            "c7g" | "m7g" | "r7g" => 2.6,
            "m5" | "r5" => 3.1,
            "m5a" | "r5a" => 2.5,
            "t3" => 2.5,
            _ => 3.0,
        }
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
        for t in &cfg.types {
            if !all.iter().any(|i| &i.name == t) {
                return Err(CatalogError::UnknownType(t.clone()));
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
