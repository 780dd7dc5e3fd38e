//! NamespaceLifecycle admission's memory: which namespaces exist and which
//! are terminating, kept from the watch cache so a create in a healthy
//! namespace costs no store read. A namespace the index does not know (or
//! knows as terminating) is always re-checked against the store, so a
//! namespace created a moment ago is never refused.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde_json::Value;
use tracing::warn;

use crate::{
    apiserver::{
        meta,
        watch_cache::{Notification, WatchCache},
    },
    storage::{EventKind, Store, keys},
};

/// Namespace name → terminating?
#[derive(Default)]
pub struct NamespaceIndex {
    known: RwLock<HashMap<String, bool>>,
}

impl NamespaceIndex {
    /// True when the index knows `namespace` as existing and active.
    pub fn is_active(&self, namespace: &str) -> bool {
        self.known
            .read()
            .map(|k| k.get(namespace) == Some(&false))
            .unwrap_or(false)
    }

    fn set(&self, name: &str, terminating: Option<bool>) {
        if let Ok(mut known) = self.known.write() {
            match terminating {
                Some(t) => known.insert(name.to_owned(), t),
                None => known.remove(name),
            };
        }
    }

    /// Fills the index from the store, then follows the watch cache until
    /// it stops (re-filling after every interruption).
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, cache: Arc<WatchCache>) {
        let prefix = keys::prefix("", "namespaces", None);
        loop {
            let listed = match store.range(&prefix, None, None, None).await {
                Ok(listed) => listed,
                Err(e) => {
                    warn!(error = %e, "namespace index: listing namespaces");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut fresh = HashMap::new();
            for kv in &listed.kvs {
                if let Ok(ns) = serde_json::from_slice::<Value>(&kv.value) {
                    fresh.insert(meta::name(&ns).to_owned(), meta::is_terminating(&ns));
                }
            }
            if let Ok(mut known) = self.known.write() {
                *known = fresh;
            }
            if cache.wait_for(listed.revision).await.is_err() {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            let Ok(mut subscription) = cache.subscribe(&prefix, listed.revision) else {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            };
            while let Some(notification) = subscription.next().await {
                let Notification::Event(event) = notification else {
                    continue;
                };
                let name = event.kv.key.strip_prefix(&prefix).unwrap_or_default();
                match event.kind {
                    EventKind::Deleted => self.set(name, None),
                    EventKind::Added | EventKind::Modified => {
                        let terminating = serde_json::from_slice::<Value>(&event.kv.value)
                            .map(|ns| meta::is_terminating(&ns))
                            .unwrap_or(true);
                        self.set(name, Some(terminating));
                    }
                }
            }
        }
    }
}
