//! The proxy as a running service (`keelson-node proxy`): loads the socket
//! load-balancing programs (reusing pinned maps and links), attaches them
//! to the cgroup v2 root, installs the service-CIDR `unreachable` route,
//! then follows Services and EndpointSlices through the Kubernetes API and
//! writes every new desired state into the maps.
//!
//! Alongside, it runs flow observability (`crate::flows`): a task reading
//! the `LB_FLOWS` ring buffer into the recent-flows hub, the flow socket
//! (`--flows-socket`), and a poller exporting the per-CPU service/backend
//! counters and map fill levels as metrics.
//!
//! It never flushes on start: the maps left by a previous run keep serving
//! until the first complete listing arrives and is reconciled, so
//! established connections survive an agent restart or upgrade.

use std::{collections::BTreeSet, net::TcpListener, path::PathBuf, sync::Arc, time::Instant};

use ipnet::Ipv4Net;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::{
    bpf::{
        self, BpfError,
        sock_lb::{LbCapacity, SockLb},
    },
    flows::server::{self as flows, FlowHub, FlowMetrics, FlowsError, ServiceNames},
    metrics::{self, ProxyMetrics},
    proxy::{
        datapath,
        desired::NodeContext,
        maps::{LbMapWriter, MapsError},
        model::{DesiredState, Frontend, FrontendKind},
        nodeport::MaglevWriteError,
        route::{self, RouteError},
        watch::{self, ProxyError, Update},
    },
};

/// Everything `keelson-node proxy` needs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub kubeconfig: PathBuf,
    pub node_name: String,
    /// Node-port addresses; empty → taken from the Node object.
    pub node_ips: Vec<std::net::IpAddr>,
    pub service_cidr: Ipv4Net,
    /// cgroup v2 directory the socket programs attach to.
    pub cgroup: PathBuf,
    /// bpffs directory for pinned maps and links.
    pub pin_dir: PathBuf,
    /// Where `/metrics` is served (`None` = not at all).
    pub metrics_bind: Option<String>,
    /// Install the `unreachable` route for the service CIDR.
    pub unreachable_route: bool,
    /// Unix socket serving flows (`None` = no flow socket; the counters
    /// are still exported).
    pub flows_socket: Option<PathBuf>,
    /// Interfaces the NodePort TC program attaches to (the node's external
    /// interface and every interface facing backends); empty → NodePort,
    /// ExternalIP and LoadBalancer frontends are not served at TC.
    pub devices: Vec<String>,
    /// Capacities of the service and backend maps.
    pub capacity: LbCapacity,
}

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("{0}")]
    Sysctl(#[source] std::io::Error),
    #[error(transparent)]
    Maglev(#[from] MaglevWriteError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Maps(#[from] MapsError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Api(#[from] ProxyError),
    #[error(transparent)]
    Flows(#[from] FlowsError),
    #[error("serving metrics on {addr}: {source}")]
    Metrics {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Unlinks the flow socket on drop.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts the ring-buffer reader, the flow socket and the counter poller.
fn start_flows(
    config: &AgentConfig,
    metrics: FlowMetrics,
    names: ServiceNames,
) -> Result<Option<SocketFile>, AgentError> {
    let hub = Arc::new(FlowHub::new(flows::DEFAULT_KEEP));
    let ring = bpf::flows::open_ring(&config.pin_dir)?;
    let reader_hub = hub.clone();
    let reader_names = names.clone();
    tokio::spawn(async move {
        if let Err(e) = flows::read_ring(ring, reader_hub, reader_names).await {
            error!(error = %e, "the flow reader stopped");
        }
    });
    let mut socket = None;
    if let Some(path) = &config.flows_socket {
        let listener = flows::bind(path)?;
        info!(socket = %path.display(), "serving flows");
        tokio::spawn(flows::serve(listener, hub));
        socket = Some(SocketFile(path.clone()));
    }
    let pin_dir = config.pin_dir.clone();
    tokio::spawn(async move {
        if let Err(e) =
            flows::poll_counters(pin_dir, metrics, names, std::time::Duration::from_secs(1)).await
        {
            error!(error = %e, "the flow counter poller stopped");
        }
    });
    Ok(socket)
}

/// What the queued updates changed.
#[derive(Default)]
struct Pending {
    /// A full state came: everything is to be written.
    full: bool,
    changed: BTreeSet<Frontend>,
}

impl Pending {
    fn fold(&mut self, update: Update, desired: &mut DesiredState) {
        match update {
            Update::Full(state) => {
                *desired = state;
                self.full = true;
                self.changed.clear();
            }
            Update::Changes(changes) => {
                if !self.full {
                    self.changed.extend(changes.iter().map(|(f, _)| *f));
                }
                Update::Changes(changes).apply_to(desired);
            }
        }
    }

    /// Whether node-port/external frontends may have changed (the only
    /// ones with Maglev tables); a removed frontend counts.
    fn touches_north_south(&self, desired: &DesiredState) -> bool {
        self.full
            || self.changed.iter().any(|f| {
                desired
                    .services
                    .get(f)
                    .is_none_or(|lb| lb.kind != FrontendKind::ClusterIp)
            })
    }
}

/// Service id → `namespace/name` for the flow printer: rebuilt after a
/// full write, patched for the changed frontends otherwise.
fn update_names<S: crate::proxy::maps::LbMapStore>(
    names: &ServiceNames,
    desired: &DesiredState,
    writer: &LbMapWriter<S>,
    pending: &Pending,
) {
    let mut map = names.write().unwrap_or_else(|p| p.into_inner());
    if pending.full {
        map.clear();
    }
    let frontends: Box<dyn Iterator<Item = &Frontend>> = if pending.full {
        Box::new(desired.services.keys())
    } else {
        Box::new(pending.changed.iter())
    };
    for frontend in frontends {
        if let (Some(lb), Some(id)) = (desired.services.get(frontend), writer.service_id(frontend))
        {
            map.insert(id, lb.service.to_string());
        }
    }
}

/// Runs the proxy until the API watch ends for good.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    if config.pin_dir.starts_with(bpf::BPFFS) {
        bpf::ensure_bpffs(std::path::Path::new(bpf::BPFFS))?;
    }
    let mut lb = SockLb::load_with(&config.pin_dir, config.capacity)?;
    lb.attach(&config.cgroup)?;
    let mut writer = LbMapWriter::new(lb.maps()?)?;
    // NodePort at TC (pinned links: it keeps serving while no agent runs).
    let mut nodeport = datapath::start_nodeport(&config)?;
    info!(
        cgroup = %config.cgroup.display(),
        pins = %config.pin_dir.display(),
        services = writer.live().len(),
        "socket load balancer attached (maps reused from pins)"
    );
    if config.unreachable_route {
        route::ensure_unreachable(config.service_cidr).await?;
    }

    let mut registry = Registry::default();
    let metrics = ProxyMetrics::register(&mut registry);
    let flow_metrics = FlowMetrics::register(&mut registry);
    let names: ServiceNames = ServiceNames::default();
    // Removes the flow socket when the agent stops (or its future is dropped).
    let _flow_socket = start_flows(&config, flow_metrics, names.clone())?;
    if let Some(addr) = &config.metrics_bind {
        let listener = TcpListener::bind(addr).map_err(|source| AgentError::Metrics {
            addr: addr.clone(),
            source,
        })?;
        let local = listener
            .local_addr()
            .map_err(|source| AgentError::Metrics {
                addr: addr.clone(),
                source,
            })?;
        info!(%local, "serving /metrics");
        let registry = Arc::new(registry);
        std::thread::spawn(move || metrics::serve(listener, registry));
    }

    let client = watch::client_from_kubeconfig(&config.kubeconfig).await?;
    let node_ips = if config.node_ips.is_empty() {
        let ips = watch::node_ips(&client, &config.node_name)
            .await
            .unwrap_or_default();
        if ips.is_empty() {
            warn!(node = %config.node_name, "no node addresses known; node ports are not served (pass --node-ip)");
        }
        ips
    } else {
        config.node_ips.clone()
    };
    let node = NodeContext::new(config.node_name.clone(), node_ips);
    // Nothing is applied before the first full state (both lists done).
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::run_updates(client, node, tx));
    let mut desired = DesiredState::default();
    let mut synced = false;
    while let Some(update) = rx.recv().await {
        // Everything queued meanwhile goes in one write.
        let mut pending = Pending::default();
        pending.fold(update, &mut desired);
        while let Ok(more) = rx.try_recv() {
            pending.fold(more, &mut desired);
        }
        synced |= pending.full;
        if !synced {
            continue;
        }
        // A failed write is retried (with the newest state, in full) until
        // it lands.
        loop {
            let started = Instant::now();
            let applied = if pending.full {
                writer.apply(&desired)
            } else {
                writer.apply_changes(&desired, &pending.changed)
            }
            .map_err(AgentError::from)
            .and_then(|stats| {
                if let Some((_, maglev)) = nodeport.as_mut()
                    && pending.touches_north_south(&desired)
                {
                    maglev.apply(&desired, &writer.live())?;
                }
                Ok(stats)
            });
            match applied {
                Ok(stats) => {
                    metrics.syncs.inc();
                    metrics
                        .sync_duration
                        .observe(started.elapsed().as_secs_f64());
                    metrics.frontends.set(desired.services.len() as i64);
                    metrics.backends.set(
                        desired
                            .services
                            .values()
                            .map(|s| s.backends.len() as i64)
                            .sum(),
                    );
                    update_names(&names, &desired, &writer, &pending);
                    if !stats.is_noop() {
                        info!(frontends = desired.services.len(), changed = pending.changed.len(), full = pending.full, ?stats, took = ?started.elapsed(), "load balancer updated");
                    }
                    break;
                }
                Err(e) => {
                    metrics.sync_errors.inc();
                    error!(error = %e, "writing the load-balancer maps; retrying in 1s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    pending.full = true;
                    while let Ok(more) = rx.try_recv() {
                        pending.fold(more, &mut desired);
                    }
                }
            }
        }
    }
    match watcher.await {
        Ok(result) => result.map_err(AgentError::from),
        Err(e) => {
            error!(error = %e, "the API watch task failed");
            Ok(())
        }
    }
}
