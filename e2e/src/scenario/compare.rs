//! `e2e compare`: placeholder.
use std::path::{Path, PathBuf};

pub struct CompareConfig {
    pub scenarios: Vec<String>,
    pub report_dir: PathBuf,
    pub out: PathBuf,
    pub backend: crate::cluster::Backend,
}

pub async fn run(_root: &Path, _cfg: CompareConfig) -> anyhow::Result<bool> {
    Ok(true)
}
