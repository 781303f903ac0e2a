//! Launch templates: versions of raw `LaunchTemplateData.*` parameters, read back when launching.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchTemplateVersion {
    pub number: u32,
    pub description: Option<String>,
    pub created: Millis,
    /// `LaunchTemplateData.` parameters with that prefix removed (`ImageId`, `SecurityGroupId.1`, ...).
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub created: Millis,
    pub created_by: String,
    pub default_version: u32,
    pub versions: BTreeMap<u32, LaunchTemplateVersion>,
    pub tags: BTreeMap<String, String>,
}

impl LaunchTemplate {
    pub fn latest_version(&self) -> u32 {
        self.versions.keys().next_back().copied().unwrap_or(1)
    }

    /// Resolves `$Latest`, `$Default`, a number, or nothing (the default version).
    pub fn version(&self, v: Option<&str>) -> Option<&LaunchTemplateVersion> {
        let n = match v {
            None | Some("$Default") => self.default_version,
            Some("$Latest") => self.latest_version(),
            Some(n) => n.parse().ok()?,
        };
        self.versions.get(&n)
    }
}
