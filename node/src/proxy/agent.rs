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

use std::{net::TcpListener, path::PathBuf, sync::Arc, time::Instant};

use ipnet::Ipv4Net;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::sync::watch as channel;
use tracing::{error, info, warn};

use crate::{
    bpf::{self, BpfError, sock_lb::SockLb},
    flows::server::{self as flows, FlowHub, FlowMetrics, FlowsError, ServiceNames},
    metrics::{self, ProxyMetrics},
    proxy::{
        datapath,
        desired::NodeContext,
        maps::{LbMapWriter, MapsError},
        model::DesiredState,
        nodeport::MaglevWriteError,
        route::{self, RouteError},
        watch::{self, ProxyError},
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

/// Service id → `namespace/name` from the state just written.
fn update_names(
    names: &ServiceNames,
    desired: &DesiredState,
    live: &std::collections::BTreeMap<
        crate::proxy::model::Frontend,
        crate::proxy::maps::LiveService,
    >,
) {
    let fresh: std::collections::HashMap<u32, String> = live
        .iter()
        .filter_map(|(frontend, l)| {
            let svc = desired.services.get(frontend)?;
            Some((l.service_id, svc.service.to_string()))
        })
        .collect();
    *names.write().unwrap_or_else(|p| p.into_inner()) = fresh;
}

/// Runs the proxy until the API watch ends for good.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    if config.pin_dir.starts_with(bpf::BPFFS) {
        bpf::ensure_bpffs(std::path::Path::new(bpf::BPFFS))?;
    }
    let mut lb = SockLb::load(&config.pin_dir)?;
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
    // The initial (empty) value is never applied: only states the watch
    // publishes after a complete listing are.
    let (tx, mut rx) = channel::channel(Arc::new(DesiredState::default()));
    let watcher = tokio::spawn(watch::run(client, node, tx));

    while rx.changed().await.is_ok() {
        let mut desired = rx.borrow_and_update().clone();
        // A failed write is retried (with the newest state) until it lands.
        loop {
            let started = Instant::now();
            let applied = writer
                .apply(&desired)
                .map_err(AgentError::from)
                .and_then(|stats| {
                    if let Some((_, maglev)) = nodeport.as_mut() {
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
                    let live = writer.live();
                    metrics.frontends.set(live.len() as i64);
                    metrics.backends.set(
                        desired
                            .services
                            .values()
                            .map(|s| s.backends.len() as i64)
                            .sum(),
                    );
                    update_names(&names, &desired, &live);
                    if !stats.is_noop() {
                        info!(frontends = live.len(), ?stats, took = ?started.elapsed(), "load balancer updated");
                    }
                    break;
                }
                Err(e) => {
                    metrics.sync_errors.inc();
                    error!(error = %e, "writing the load-balancer maps; retrying in 1s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    if rx.has_changed().unwrap_or(false) {
                        desired = rx.borrow_and_update().clone();
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
