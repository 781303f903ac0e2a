//! Watch-fed caches for observing thousands of objects: a LIST of 10,000 pods every second would
//! cost the harness (decoding it) and the API server more than the autoscaler under test does.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// A reflector's store, its watch stopped when dropped.
pub struct Watched<K: Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    task: JoinHandle<()>,
}

impl<K> Watched<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    /// Watches `api` (objects with `labels`, when given) and waits until the first list is in.
    pub async fn start(api: Api<K>, labels: Option<&str>) -> anyhow::Result<Self> {
        let (store, writer) = reflector::store();
        let cfg = match labels {
            Some(l) => watcher::Config::default().labels(l),
            None => watcher::Config::default(),
        };
        let stream = watcher(api, cfg).default_backoff().reflect(writer).applied_objects();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    tracing::debug!(error = %e, "perf watch error (retrying with back-off)");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), store.wait_until_ready())
            .await
            .map_err(|_| anyhow::anyhow!("the watch did not list within 60 s"))??;
        Ok(Watched { store, task })
    }

    pub fn all(&self) -> Vec<Arc<K>> {
        self.store.state()
    }
}

impl<K: Resource + 'static> Drop for Watched<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}
