//! Feeding the desired state from the Kubernetes API: kube-rs watchers and
//! reflectors over every namespace's Services and EndpointSlices, and on
//! each change a recomputation of [`DesiredState`] (debounced by a few
//! milliseconds) sent to the consumer on a `tokio::sync::watch` channel.
//!
//! Owns the API side only: what the state is comes from [`super::desired`],
//! what the kernel gets is the map writer's business. Never writes to the
//! API.
//!
//! Guarantees of [`run`]:
//! - nothing is sent before both resources are fully listed (a state with
//!   Services but no endpoints yet would refuse every connection);
//! - the first state after the initial lists is always sent, even when it
//!   equals the channel's initial value, so a consumer can tell "synced and
//!   empty" from "not synced"; later states only when they differ;
//! - events are coalesced: a state goes out [`DEBOUNCE`] after the last of
//!   a burst of events, and at most [`MAX_DELAY`] after the first;
//! - watch errors (API server down, 410 Gone, …) are retried with kube-rs's
//!   default backoff, keeping the last good state meanwhile; re-lists swap
//!   the stores atomically;
//! - it returns `Ok(())` once every receiver is gone.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{
    core::v1::{Node, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    config::{KubeConfigOptions, Kubeconfig, KubeconfigError},
    runtime::{WatchStreamExt, reflector, watcher},
};
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::{sync::watch, time::Instant};
use tracing::{debug, info, warn};

use super::{
    desired::{NodeContext, desired_state_from},
    model::DesiredState,
};

/// Quiet time after an event before the state is recomputed.
pub const DEBOUNCE: Duration = Duration::from_millis(5);
/// Longest a change waits while events keep coming.
pub const MAX_DELAY: Duration = Duration::from_millis(50);

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

/// Which watch an event came from.
#[derive(Clone, Copy)]
enum Watched {
    Services,
    Slices,
}

/// What an event (already applied to its store by the reflector) means
/// for the state.
enum Effect {
    /// The store changed: recompute soon.
    Dirty,
    /// The store finished a (re-)list: synced, and recompute soon.
    Synced,
    /// Nothing visible yet (a re-list in progress) or an error.
    None,
}

fn effect<K: ResourceExt>(
    resource: &'static str,
    event: &watcher::Result<watcher::Event<K>>,
) -> Effect {
    match event {
        Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => {
            debug!(
                resource,
                namespace = obj.namespace().unwrap_or_default(),
                name = obj.name_any(),
                "changed"
            );
            Effect::Dirty
        }
        Ok(watcher::Event::InitDone) => {
            debug!(resource, "listed");
            Effect::Synced
        }
        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => Effect::None,
        Err(error) => {
            warn!(resource, %error, "watch failed; retrying with backoff");
            Effect::None
        }
    }
}

/// Drops what the proxy never reads, to keep the stores small.
fn slim<K: ResourceExt>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut().clear();
}

/// Watches Services and EndpointSlices in every namespace and sends each
/// new [`DesiredState`] on `tx` (see the module documentation for the
/// guarantees). Runs until every receiver of `tx` is dropped (`Ok`), or a
/// watch stream ends, which kube-rs's never do.
pub async fn run(
    client: Client,
    node: NodeContext,
    tx: watch::Sender<Arc<DesiredState>>,
) -> Result<(), ProxyError> {
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let config = watcher::Config::default();
    let service_events = reflector(
        services_writer,
        watcher(Api::<Service>::all(client.clone()), config.clone())
            .default_backoff()
            .modify(slim),
    )
    .map(|event| (Watched::Services, effect("services", &event)));
    let slice_events = reflector(
        slices_writer,
        watcher(Api::<EndpointSlice>::all(client), config)
            .default_backoff()
            .modify(slim),
    )
    .map(|event| (Watched::Slices, effect("endpointslices", &event)));
    let mut events = std::pin::pin!(stream::select(service_events, slice_events));

    let (mut services_synced, mut slices_synced) = (false, false);
    let mut pending = Debounce::default();
    let mut published = false;
    info!(node = %node.node_name, "watching Services and EndpointSlices");
    loop {
        let due = pending.due().filter(|_| services_synced && slices_synced);
        tokio::select! {
            biased;
            () = tx.closed() => {
                info!("desired-state consumer gone; stopping the watches");
                return Ok(());
            }
            () = sleep_until(due), if due.is_some() => {
                pending = Debounce::default();
                publish(&services, &slices, &node, &tx, &mut published);
            }
            change = events.next() => {
                let Some((watched, effect)) = change else {
                    return Err(ProxyError::WatchEnded { resource: "services/endpointslices" });
                };
                match (watched, &effect) {
                    (Watched::Services, Effect::Synced) => services_synced = true,
                    (Watched::Slices, Effect::Synced) => slices_synced = true,
                    _ => {}
                }
                if matches!(effect, Effect::Dirty | Effect::Synced) {
                    pending.event(Instant::now());
                }
            }
        }
    }
}

/// When to recompute: [`DEBOUNCE`] after the last event, but no later than
/// [`MAX_DELAY`] after the first unpublished one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Debounce {
    /// (first unpublished event, when to publish)
    pending: Option<(Instant, Instant)>,
}

impl Debounce {
    fn event(&mut self, now: Instant) {
        self.pending = Some(match self.pending {
            None => (now, now + DEBOUNCE),
            Some((first, _)) => (first, (now + DEBOUNCE).min(first + MAX_DELAY)),
        });
    }

    fn due(&self) -> Option<Instant> {
        self.pending.map(|(_, due)| due)
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

fn publish(
    services: &reflector::Store<Service>,
    slices: &reflector::Store<EndpointSlice>,
    node: &NodeContext,
    tx: &watch::Sender<Arc<DesiredState>>,
    published: &mut bool,
) {
    let started = std::time::Instant::now();
    let (services, slices) = (services.state(), slices.state());
    let state = desired_state_from(
        services.iter().map(Arc::as_ref),
        slices.iter().map(Arc::as_ref),
        node,
    );
    let frontends = state.services.len();
    let changed = if *published {
        tx.send_if_modified(|current| {
            if **current == state {
                false
            } else {
                *current = Arc::new(state);
                true
            }
        })
    } else {
        tx.send_replace(Arc::new(state));
        *published = true;
        true
    };
    debug!(
        services = services.len(),
        endpointslices = slices.len(),
        frontends,
        changed,
        took_us = started.elapsed().as_micros() as u64,
        "desired state recomputed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_waits_for_quiet_but_never_past_the_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::default();
        assert_eq!(d.due(), None);
        d.event(t0);
        assert_eq!(d.due(), Some(t0 + DEBOUNCE));
        // Events 1 ms apart keep pushing the deadline…
        for i in 1..=40 {
            d.event(t0 + ms(i));
            assert_eq!(d.due(), Some(t0 + ms(i) + DEBOUNCE));
        }
        // …until the cap: MAX_DELAY after the first event.
        for i in 46..=200 {
            d.event(t0 + ms(i));
            assert_eq!(d.due(), Some(t0 + MAX_DELAY), "{i}");
        }
        // After publishing, a fresh burst starts a fresh window.
        d = Debounce::default();
        d.event(t0 + ms(300));
        assert_eq!(d.due(), Some(t0 + ms(300) + DEBOUNCE));
    }
}
