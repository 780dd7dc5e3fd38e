//! Feeding the desired state from the Kubernetes API: kube-rs watchers over
//! every namespace's Services and EndpointSlices, folded into a
//! [`ChangeTracker`] so that each event recomputes only the Service it
//! concerns.
//!
//! Owns the API side only: what the state is comes from [`super::desired`]
//! (through the tracker), what the kernel gets is the map writer's
//! business. Never writes to the API.
//!
//! Guarantees of [`run_updates`] (the agent's feed) and [`run`] (whole
//! states, for tools and tests):
//! - nothing is sent before both resources are fully listed (a state with
//!   Services but no endpoints yet would refuse every connection);
//! - the first state after the initial lists is always sent, even when
//!   empty or equal to what a consumer holds, so a consumer can tell
//!   "synced and empty" from "not synced"; later only real changes;
//! - an event goes out as soon as it is processed, as the frontends it
//!   changed (no debounce; a busy consumer applies queued updates together);
//! - watch errors (API server down, 410 Gone, …) are retried with kube-rs's
//!   default backoff, keeping the last good state meanwhile; a re-list
//!   replaces that resource's objects at once and sends a full state;
//! - they return `Ok(())` once the consumer is gone.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{
    core::v1::{Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    config::{KubeConfigOptions, Kubeconfig, KubeconfigError},
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::{
    desired::{NodeContext, desired_state_from},
    model::DesiredState,
    tracker::{ChangeTracker, Changes},
};

/// Errors of the proxy's API side.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("reading the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("building a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("listing {resource}: {source}")]
    List {
        resource: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("reading node {node}: {source}")]
    Node {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading pod {pod}: {source}")]
    Pod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("pod {0} not found")]
    PodNotFound(String),
    #[error("pod {0} has no IP address yet")]
    PodWithoutIp(String),
    #[error("the {resource} watch stream ended")]
    WatchEnded { resource: &'static str },
}

/// A client for the cluster and user of the kubeconfig's current context.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, ProxyError> {
    let kubeconfig_error = |source| ProxyError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_error)?;
    Client::try_from(config).map_err(ProxyError::Client)
}

/// The addresses of Node `name` (`status.addresses` of type `InternalIP`
/// and `ExternalIP`), as kube-proxy finds its node IPs; `Ok(empty)` when
/// the Node does not exist.
pub async fn node_ips(client: &Client, name: &str) -> Result<Vec<IpAddr>, ProxyError> {
    let node = Api::<Node>::all(client.clone())
        .get_opt(name)
        .await
        .map_err(|source| ProxyError::Node {
            node: name.to_owned(),
            source,
        })?;
    let mut ips: Vec<IpAddr> = node
        .and_then(|n| n.status)
        .and_then(|s| s.addresses)
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect();
    ips.sort_unstable();
    ips.dedup();
    Ok(ips)
}

/// The addresses of Pod `namespace/name` (`status.podIPs`, else
/// `status.podIP`), for naming a pod in flow filters.
pub async fn pod_ips(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<IpAddr>, ProxyError> {
    let pod_name = format!("{namespace}/{name}");
    let pod = Api::<Pod>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| ProxyError::Pod {
            pod: pod_name.clone(),
            source,
        })?
        .ok_or_else(|| ProxyError::PodNotFound(pod_name.clone()))?;
    let status = pod.status.unwrap_or_default();
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .into_iter()
        .flatten()
        .map(|p| p.ip)
        .chain(status.pod_ip)
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort_unstable();
    ips.dedup();
    if ips.is_empty() {
        return Err(ProxyError::PodWithoutIp(pod_name));
    }
    Ok(ips)
}

/// Lists Services and EndpointSlices once (paged) and computes the state:
/// what [`run`] would send first. For `keelson-node lb desired`.
pub async fn snapshot(client: &Client, node: &NodeContext) -> Result<DesiredState, ProxyError> {
    let services: Vec<Service> = list_all(Api::all(client.clone()), "services").await?;
    let slices: Vec<EndpointSlice> = list_all(Api::all(client.clone()), "endpointslices").await?;
    Ok(desired_state_from(&services, &slices, node))
}

async fn list_all<K>(api: Api<K>, resource: &'static str) -> Result<Vec<K>, ProxyError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| ProxyError::List { resource, source })?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(items),
        }
    }
}

/// What [`run_updates`] sends.
#[derive(Debug)]
pub enum Update {
    /// The complete state: after the initial lists, and after any re-list.
    Full(DesiredState),
    /// Frontends one event changed (new value, `None` = removed).
    Changes(Changes),
}

impl Update {
    /// Folds this update into `state`; `true` when `state` changed.
    pub fn apply_to(self, state: &mut DesiredState) -> bool {
        match self {
            Update::Full(full) => {
                let changed = *state != full;
                *state = full;
                changed
            }
            Update::Changes(changes) => {
                let changed = !changes.is_empty();
                for (frontend, value) in changes {
                    match value {
                        Some(lb) => state.services.insert(frontend, lb),
                        None => state.services.remove(&frontend),
                    };
                }
                changed
            }
        }
    }
}

/// One watch event, from either watch (short-lived, one at a time).
#[allow(clippy::large_enum_variant)]
enum Watched {
    Services(watcher::Result<watcher::Event<Service>>),
    Slices(watcher::Result<watcher::Event<EndpointSlice>>),
}

/// Drops what the proxy never reads, to keep what it holds small.
fn slim<K: ResourceExt>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut().clear();
}

/// Watches Services and EndpointSlices in every namespace and sends what
/// changes (see the module documentation for the guarantees): one
/// [`Update::Full`] once both are listed (and after every re-list), then
/// for each event that changes the state an [`Update::Changes`] with only
/// the frontends it changed, computed by a [`ChangeTracker`] — no debounce:
/// a consumer that falls behind finds several updates queued and applies
/// them together. Runs until `tx`'s receiver is dropped (`Ok`), or a watch
/// stream ends, which kube-rs's never do.
pub async fn run_updates(
    client: Client,
    node: NodeContext,
    tx: mpsc::UnboundedSender<Update>,
) -> Result<(), ProxyError> {
    let config = watcher::Config::default();
    let service_events = watcher(Api::<Service>::all(client.clone()), config.clone())
        .default_backoff()
        .modify(slim)
        .map(Watched::Services);
    let slice_events = watcher(Api::<EndpointSlice>::all(client), config)
        .default_backoff()
        .modify(slim)
        .map(Watched::Slices);
    let mut events = std::pin::pin!(stream::select(service_events, slice_events));

    info!(node = %node.node_name, "watching Services and EndpointSlices");
    let mut tracker = ChangeTracker::new(node);
    let (mut services_synced, mut slices_synced) = (false, false);
    let mut listing_services: Vec<Arc<Service>> = Vec::new();
    let mut listing_slices: Vec<Arc<EndpointSlice>> = Vec::new();
    loop {
        let event = tokio::select! {
            biased;
            () = tx.closed() => {
                info!("desired-state consumer gone; stopping the watches");
                return Ok(());
            }
            event = events.next() => event,
        };
        let Some(event) = event else {
            return Err(ProxyError::WatchEnded {
                resource: "services/endpointslices",
            });
        };
        let started = std::time::Instant::now();
        let mut relisted = false;
        let changes = match event {
            Watched::Services(Ok(event)) => match event {
                watcher::Event::Init => {
                    listing_services.clear();
                    Changes::new()
                }
                watcher::Event::InitApply(obj) => {
                    listing_services.push(Arc::new(obj));
                    Changes::new()
                }
                watcher::Event::InitDone => {
                    debug!(services = listing_services.len(), "services listed");
                    tracker.reset_services(listing_services.drain(..));
                    services_synced = true;
                    relisted = true;
                    Changes::new()
                }
                watcher::Event::Apply(obj) => tracker.apply_service(Arc::new(obj)),
                watcher::Event::Delete(obj) => tracker.delete_service(&obj),
            },
            Watched::Slices(Ok(event)) => match event {
                watcher::Event::Init => {
                    listing_slices.clear();
                    Changes::new()
                }
                watcher::Event::InitApply(obj) => {
                    listing_slices.push(Arc::new(obj));
                    Changes::new()
                }
                watcher::Event::InitDone => {
                    debug!(
                        endpointslices = listing_slices.len(),
                        "endpointslices listed"
                    );
                    tracker.reset_slices(listing_slices.drain(..));
                    slices_synced = true;
                    relisted = true;
                    Changes::new()
                }
                watcher::Event::Apply(obj) => tracker.apply_slice(Arc::new(obj)),
                watcher::Event::Delete(obj) => tracker.delete_slice(&obj),
            },
            Watched::Services(Err(error)) | Watched::Slices(Err(error)) => {
                warn!(%error, "watch failed; retrying with backoff");
                Changes::new()
            }
        };
        if !(services_synced && slices_synced) {
            continue;
        }
        let update = if relisted {
            Update::Full(tracker.state().clone())
        } else if changes.is_empty() {
            continue;
        } else {
            Update::Changes(changes)
        };
        debug!(
            frontends = tracker.state().services.len(),
            full = relisted,
            took_us = started.elapsed().as_micros() as u64,
            "desired state updated"
        );
        if tx.send(update).is_err() {
            info!("desired-state consumer gone; stopping the watches");
            return Ok(());
        }
    }
}

/// [`run_updates`] for consumers that want whole states: keeps the state
/// and sends it on a `tokio::sync::watch` channel — always once after the
/// initial lists (so "synced and empty" differs from "not synced"), then
/// whenever it changed (updates queued meanwhile are folded in first).
/// Returns `Ok(())` once every receiver is gone.
pub async fn run(
    client: Client,
    node: NodeContext,
    tx: watch::Sender<Arc<DesiredState>>,
) -> Result<(), ProxyError> {
    let (updates_tx, mut updates) = mpsc::unbounded_channel();
    let mut watching = std::pin::pin!(run_updates(client, node, updates_tx));
    let mut state = DesiredState::default();
    let mut published = false;
    loop {
        tokio::select! {
            biased;
            () = tx.closed() => return Ok(()),
            result = &mut watching => return result,
            update = updates.recv() => {
                let Some(update) = update else { continue };
                let mut changed = update.apply_to(&mut state);
                while let Ok(more) = updates.try_recv() {
                    changed |= more.apply_to(&mut state);
                }
                if changed || !published {
                    tx.send_replace(Arc::new(state.clone()));
                    published = true;
                }
            }
        }
    }
}
