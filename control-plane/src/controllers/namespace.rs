//! The namespace lifecycle controller: empties a terminating namespace —
//! deletes every namespaced object in it, waits for them to be gone — then
//! removes the `kubernetes` finalizer, which lets the namespace go.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::{
    apiserver::{
        meta,
        objects::{DeleteOptions, ListOptions, ObjectService, Scope, WriteOptions},
        status::ApiError,
        watch_cache::{Notification, WatchCache},
    },
    registry::{self, RESOURCES},
    storage::keys,
};

/// How often terminating namespaces are re-examined without events.
const RESYNC: Duration = Duration::from_secs(2);

/// Runs forever: reacts to namespace changes and resyncs periodically.
pub async fn run(objects: Arc<ObjectService>, cache: Arc<WatchCache>) {
    let prefix = keys::prefix("", "namespaces", None);
    let mut ticker = tokio::time::interval(RESYNC);
    loop {
        let mut subscription = match cache.subscribe(&prefix, cache.revision()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "namespace controller cannot watch; polling");
                None
            }
        };
        loop {
            let event = async {
                match subscription.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ticker.tick() => resync(&objects).await,
                n = event => match n {
                    Some(Notification::Event(event)) => {
                        if let Ok(ns) = serde_json::from_slice::<Value>(&event.kv.value)
                            && meta::is_terminating(&ns)
                        {
                            finalize(&objects, meta::name(&ns)).await;
                        }
                    }
                    Some(Notification::Progress(_)) => {}
                    None => break,
                },
            }
        }
    }
}

async fn resync(objects: &ObjectService) {
    let Some(resource) = registry::find("", "v1", "namespaces") else {
        return;
    };
    let scope = Scope {
        resource,
        namespace: None,
    };
    match objects.list_items(scope, &ListOptions::default()).await {
        Ok((items, _, _)) => {
            for ns in items.iter().filter(|ns| meta::is_terminating(ns)) {
                finalize(objects, meta::name(ns)).await;
            }
        }
        Err(e) => warn!(error = %e, "listing namespaces"),
    }
}

/// One pass over a terminating namespace.
async fn finalize(objects: &ObjectService, namespace: &str) {
    match try_finalize(objects, namespace).await {
        Ok(true) => info!(namespace, "namespace finalized"),
        Ok(false) => debug!(namespace, "namespace still has content"),
        Err(e) if e.code == 404 => {}
        Err(e) => warn!(namespace, error = %e, "finalizing namespace"),
    }
}

async fn try_finalize(objects: &ObjectService, namespace: &str) -> Result<bool, ApiError> {
    let background = DeleteOptions {
        propagation_policy: Some("Background".into()),
        ..DeleteOptions::default()
    };
    let mut remaining = 0;
    for resource in RESOURCES.iter().filter(|r| r.namespaced) {
        let scope = Scope {
            resource,
            namespace: Some(namespace),
        };
        let left = objects
            .delete_collection(scope, &ListOptions::default(), &background)
            .await?;
        remaining += left.len();
    }
    // Anything deleted with grace or finalizers is still there: recount.
    let mut still = 0;
    if remaining > 0 {
        for resource in RESOURCES.iter().filter(|r| r.namespaced) {
            let scope = Scope {
                resource,
                namespace: Some(namespace),
            };
            still += objects
                .list_items(scope, &ListOptions::default())
                .await?
                .0
                .len();
        }
    }
    if still > 0 {
        return Ok(false);
    }
    let Some(ns_resource) = registry::find("", "v1", "namespaces") else {
        return Ok(false);
    };
    let scope = Scope {
        resource: ns_resource,
        namespace: None,
    };
    let ns = objects.get(scope, namespace).await?;
    let finalizers: Vec<Value> = ns
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter(|f| f.as_str() != Some("kubernetes"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let body = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": namespace },
        "spec": { "finalizers": finalizers },
    });
    objects
        .update(
            scope,
            namespace,
            Some("finalize"),
            body,
            &WriteOptions::default(),
        )
        .await?;
    Ok(true)
}
