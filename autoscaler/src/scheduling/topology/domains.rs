//! The domains each topology key can take.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::scheduling::instance_type::InstanceType;
use crate::scheduling::pod::{Taint, Toleration, tolerates};
use crate::scheduling::requirements::{Requirements, labels};

/// Every domain value each topology key can take, with the taint sets of the NodePools offering it
/// (for nodeTaintsPolicy Honor). Domains are worked out per key on first use: most label keys
/// (instance type, cpu…) are never a topology key, and 800 types × every key is not free.
#[derive(Clone, Debug, Default)]
pub struct DomainUniverse {
    pub(super) pools: Vec<PoolDomains>,
    pub(super) domains: BTreeMap<String, BTreeMap<String, Vec<Vec<Taint>>>>,
}

#[derive(Clone, Debug)]
pub(super) struct PoolDomains {
    pub(super) requirements: Requirements,
    pub(super) taints: Vec<Taint>,
    pub(super) types: Vec<Arc<InstanceType>>,
}

impl DomainUniverse {
    /// Adds a NodePool: `requirements` (template requirements + labels), its taints and its usable
    /// instance types (whose requirements and available offerings declare values).
    pub fn add_pool<'a>(
        &mut self,
        requirements: &Requirements,
        taints: &[Taint],
        instance_types: impl IntoIterator<Item = &'a Arc<InstanceType>>,
    ) {
        self.pools.push(PoolDomains {
            requirements: requirements.clone(),
            taints: taints.to_vec(),
            types: instance_types.into_iter().cloned().collect(),
        });
        self.domains.clear();
    }

    pub(super) fn ensure(&mut self, key: &str) {
        if self.domains.contains_key(key) {
            return;
        }
        let mut found: BTreeMap<String, Vec<Vec<Taint>>> = BTreeMap::new();
        for pool in &self.pools {
            let mut values: BTreeSet<&str> = BTreeSet::new();
            let pool_req = pool.requirements.get_defined(key);
            for it in &pool.types {
                if key == labels::ZONE || key == labels::CAPACITY_TYPE {
                    // From the offerings the pool could launch now: a zone whose offerings are all
                    // unavailable would hold a spread's minimum at zero.
                    for o in it.offerings.iter().filter(|o| o.available && o.compatible(&pool.requirements)) {
                        values.insert(if key == labels::ZONE { &o.zone } else { o.capacity_type.as_str() });
                    }
                } else if let Some(it_req) = it.requirements.get_defined(key)
                    && !it_req.is_complement()
                {
                    // Keys both sides define narrow each other.
                    values.extend(
                        it_req.values().iter().filter(|v| pool_req.is_none_or(|p| p.has(v))).map(String::as_str),
                    );
                }
            }
            if let Some(r) = pool_req.filter(|r| !r.is_complement()) {
                values.extend(r.values().iter().map(String::as_str));
            }
            for v in values {
                let sets = found.entry(v.to_string()).or_default();
                // An untainted pool makes the domain reachable for everyone; nothing else matters then.
                let open = sets.first().is_some_and(|s| s.is_empty());
                if pool.taints.is_empty() {
                    *sets = vec![Vec::new()];
                } else if !open && !sets.contains(&pool.taints) {
                    sets.push(pool.taints.clone());
                }
            }
        }
        self.domains.insert(key.to_string(), found);
    }

    pub(super) fn domains_for(&mut self, key: &str, tolerations: Option<&[Toleration]>) -> Vec<String> {
        self.ensure(key);
        let Some(domains) = self.domains.get(key) else { return Vec::new() };
        domains
            .iter()
            .filter(|(_, sets)| tolerations.is_none_or(|tols| sets.iter().any(|t| tolerates(tols, t).is_ok())))
            .map(|(d, _)| d.clone())
            .collect()
    }
}
