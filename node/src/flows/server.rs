//! The agent side of flow observability, run inside `keelson-node proxy`:
//!
//! - [`read_ring`] consumes the `LB_FLOWS` ring buffer (aya `RingBuf`
//!   behind tokio's `AsyncFd`), decodes each record, names its service
//!   from [`ServiceNames`] (kept current by the agent after every map
//!   sync) and pushes it into the [`FlowHub`];
//! - [`FlowHub`] keeps the most recent flows (default [`DEFAULT_KEEP`]) and
//!   fans new ones out to followers;
//! - [`serve`] answers clients on a unix socket: one JSON request line in
//!   ([`FlowRequest`]), matching flows out as JSON lines, then — with
//!   `follow` — live ones until the client leaves;
//! - [`FlowMetrics`] / [`poll_counters`] export the per-CPU service and
//!   backend counters, ring drops and the LB maps' fill levels.
//!
//! It only reads BPF maps; it never writes them.

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use keelson_ebpf_common::{flows::FLOW_DRAIN_MS, lb::words_ip};
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use thiserror::Error;
use tokio::{
    io::unix::AsyncFd,
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::broadcast,
};
use tracing::{debug, info, warn};

use super::record::{Flow, FlowFilter, FlowRequest, boot_offset_ns, decode, parse_record};
use crate::bpf::{
    BpfError,
    flows::{FlowStats, map_fill},
    sock_lb::LbMaps,
};

/// Flows kept in memory for new clients.
pub const DEFAULT_KEEP: usize = 4096;
/// Longest request line accepted.
const MAX_REQUEST: u64 = 4096;
/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Map fill levels are counted every this many counter polls (walking the
/// large LRU maps is the expensive part).
const FILL_EVERY: u64 = 10;

/// Service id → `namespace/name`, shared between the map writer's loop and
/// the flow reader.
pub type ServiceNames = Arc<RwLock<HashMap<u32, String>>>;

#[derive(Debug, Error)]
pub enum FlowsError {
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error("flow socket {path}: {source}")]
    Socket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("polling the flow ring buffer: {0}")]
    Ring(#[source] std::io::Error),
}

/// The recent flows and the live feed.
pub struct FlowHub {
    recent: Mutex<VecDeque<Flow>>,
    keep: usize,
    live: broadcast::Sender<Flow>,
}

impl FlowHub {
    pub fn new(keep: usize) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            recent: Mutex::new(VecDeque::with_capacity(keep.min(DEFAULT_KEEP))),
            keep: keep.max(1),
            live,
        }
    }

    /// Adds a flow, forgetting the oldest beyond the limit.
    pub fn push(&self, flow: Flow) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() >= self.keep {
                recent.pop_front();
            }
            recent.push_back(flow.clone());
        }
        // No followers is fine.
        let _ = self.live.send(flow);
    }

    /// The last `last` (or all) kept flows that match, oldest first.
    pub fn recent(&self, filter: &FlowFilter, last: Option<usize>) -> Vec<Flow> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Flow> = recent
            .iter()
            .rev()
            .filter(|f| filter.matches(f))
            .take(last.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        out.reverse();
        out
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Flow> {
        self.live.subscribe()
    }
}

/// Consumes the ring buffer until it fails; each record becomes a flow.
/// Woken by the kernel once a batch waits, and every [`FLOW_DRAIN_MS`]
/// otherwise (the programs do not wake it per record).
pub async fn read_ring(
    ring: RingBuf<MapData>,
    hub: Arc<FlowHub>,
    names: ServiceNames,
) -> Result<(), FlowsError> {
    // SAFETY: `RingBuf` owns its map fd, never replaces or closes it while
    // the `AsyncFd` holds it, and always returns that same fd.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| FlowsError::Ring(e.into_parts().1))?;
    let offset = boot_offset_ns();
    info!("reading flow records from the ring buffer");
    let mut drain = tokio::time::interval(Duration::from_millis(FLOW_DRAIN_MS));
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let woken = tokio::select! {
            ready = fd.readable_mut() => Some(ready.map_err(FlowsError::Ring)?),
            _ = drain.tick() => None,
        };
        match woken {
            Some(mut guard) => {
                drain_ring(guard.get_inner_mut(), &hub, &names, offset);
                guard.clear_ready();
            }
            None => drain_ring(fd.get_mut(), &hub, &names, offset),
        }
    }
}

/// Turns every record waiting in `ring` into a flow of `hub`.
fn drain_ring(ring: &mut RingBuf<MapData>, hub: &FlowHub, names: &ServiceNames, offset: i128) {
    while let Some(item) = ring.next() {
        let record = match parse_record(&item) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "skipping a malformed flow record");
                continue;
            }
        };
        let service = names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&record.service_id)
            .cloned();
        match decode(&record, offset, service) {
            Ok(flow) => hub.push(flow),
            Err(e) => warn!(error = %e, "skipping an undecodable flow record"),
        }
    }
}

/// Binds the flow socket at `path`, creating its directory and replacing
/// a stale socket file left by a previous run. A socket some live process
/// still answers on is left alone (`AddrInUse`).
pub fn bind(path: &Path) -> Result<UnixListener, FlowsError> {
    let err = |source| FlowsError::Socket {
        path: path.display().to_string(),
        source,
    };
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another agent serves flows here",
        )));
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => debug!(path = %path.display(), "removed a stale flow socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    UnixListener::bind(path).map_err(err)
}

/// Answers flow clients on `listener` forever.
pub async fn serve(listener: UnixListener, hub: Arc<FlowHub>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let hub = hub.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &hub).await {
                        debug!(error = %e, "flow client");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "accepting a flow client");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(stream: UnixStream, hub: &FlowHub) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let read_request = reader.read_line(&mut line);
    // A client that never sends its request does not hold a task forever.
    tokio::time::timeout(REQUEST_TIMEOUT, read_request)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request line"))??;
    let request = serde_json::from_str::<FlowRequest>(line.trim())
        .map_err(|e| e.to_string())
        .and_then(|r| r.filter().map(|f| (r, f)).map_err(|e| e.to_string()));
    let (request, filter) = match request {
        Ok(ok) => ok,
        Err(e) => {
            let msg = serde_json::json!({ "error": e }).to_string();
            write.write_all(format!("{msg}\n").as_bytes()).await?;
            return Ok(());
        }
    };
    // Subscribe before the snapshot so nothing falls between the two.
    let mut live = hub.subscribe();
    let recent = hub.recent(&filter, request.last);
    let mut seen = recent.last().map(|f| (f.ktime_ns, f.socket_cookie));
    let mut out = String::new();
    for flow in &recent {
        out.push_str(&serde_json::to_string(flow).map_err(std::io::Error::other)?);
        out.push('\n');
    }
    write.write_all(out.as_bytes()).await?;
    if !request.follow {
        return write.shutdown().await;
    }
    loop {
        match live.recv().await {
            Ok(flow) => {
                if let Some(last) = seen {
                    if (flow.ktime_ns, flow.socket_cookie) <= last {
                        continue;
                    }
                    seen = None;
                }
                if filter.matches(&flow) {
                    let mut line = serde_json::to_string(&flow).map_err(std::io::Error::other)?;
                    line.push('\n');
                    write.write_all(line.as_bytes()).await?;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "a flow follower is too slow; flows skipped");
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

type Labels = Vec<(String, String)>;

/// Prometheus metrics of the flow counters (under `keelson_proxy_`).
#[derive(Clone, Default)]
pub struct FlowMetrics {
    /// `service_connections_total{service, verdict}`: connect4 flows
    /// forwarded; refusals (`no_backend`, `dropped`) of both hooks.
    pub service_connections: Family<Labels, Counter>,
    /// `service_datagrams_total{service}`: sendmsg4 datagrams forwarded.
    pub service_datagrams: Family<Labels, Counter>,
    /// `backend_connections_total{backend}`: connect4 and TC flows per backend.
    pub backend_connections: Family<Labels, Counter>,
    /// `service_packets_total{service, direction}` and
    /// `service_bytes_total{…}`: packets the TC program translated,
    /// `direction` = `forward` (client → backend) or `reply`.
    pub service_packets: Family<Labels, Counter>,
    pub service_bytes: Family<Labels, Counter>,
    /// `backend_packets_total{backend, direction}`, `backend_bytes_total{…}`.
    pub backend_packets: Family<Labels, Counter>,
    pub backend_bytes: Family<Labels, Counter>,
    /// `flow_ring_drops_total`: records lost to a full ring.
    pub ring_drops: Counter,
    /// `map_entries{map}` and `map_capacity{map}`.
    pub map_entries: Family<Labels, Gauge>,
    pub map_capacity: Family<Labels, Gauge>,
}

impl FlowMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let sub = registry.sub_registry_with_prefix("keelson_proxy");
        sub.register(
            "service_connections",
            "Connections to a service by load-balancer verdict (refusals of both hooks)",
            m.service_connections.clone(),
        );
        sub.register(
            "service_datagrams",
            "Unconnected UDP datagrams forwarded per service",
            m.service_datagrams.clone(),
        );
        sub.register(
            "backend_connections",
            "Connections forwarded per backend",
            m.backend_connections.clone(),
        );
        sub.register(
            "service_packets",
            "Packets translated at TC per service (NodePort, external and load-balancer IPs)",
            m.service_packets.clone(),
        );
        sub.register(
            "service_bytes",
            "Bytes translated at TC per service",
            m.service_bytes.clone(),
        );
        sub.register(
            "backend_packets",
            "Packets translated at TC per backend",
            m.backend_packets.clone(),
        );
        sub.register(
            "backend_bytes",
            "Bytes translated at TC per backend",
            m.backend_bytes.clone(),
        );
        sub.register(
            "flow_ring_drops",
            "Flow records lost because the ring buffer was full",
            m.ring_drops.clone(),
        );
        sub.register(
            "map_entries",
            "Entries in a load-balancer BPF map",
            m.map_entries.clone(),
        );
        sub.register(
            "map_capacity",
            "Capacity of a load-balancer BPF map",
            m.map_capacity.clone(),
        );
        m
    }
}

/// Moves a counter up to the kernel's total (counters never go down; a
/// recreated map restarts below it and is followed from there).
fn raise(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Raises the `{direction}` packet and byte series of `who` from TC
/// counters; nothing for services and backends without TC traffic.
fn raise_traffic(
    packets: &Family<Labels, Counter>,
    bytes: &Family<Labels, Counter>,
    who: (&str, &str),
    c: &keelson_ebpf_common::flows::FlowCounters,
) {
    for (direction, n, b) in [
        ("forward", c.packets, c.bytes),
        ("reply", c.reply_packets, c.reply_bytes),
    ] {
        if n == 0 {
            continue;
        }
        let l = labels(&[who, ("direction", direction)]);
        raise(&packets.get_or_create(&l), n);
        raise(&bytes.get_or_create(&l), b);
    }
}

/// Reads the per-CPU counters and map fill levels into `metrics` every
/// `every`, forever.
pub async fn poll_counters(
    pin_dir: std::path::PathBuf,
    metrics: FlowMetrics,
    names: ServiceNames,
    every: Duration,
) -> Result<(), FlowsError> {
    let mut stats = FlowStats::open(&pin_dir)?;
    let maps = LbMaps::open(&pin_dir)?;
    let mut ticker = tokio::time::interval(every);
    let mut polls = 0u64;
    loop {
        ticker.tick().await;
        if let Err(e) = poll_once(
            &mut stats,
            &maps,
            &metrics,
            &names,
            polls.is_multiple_of(FILL_EVERY),
        ) {
            warn!(error = %e, "reading the flow counters");
        }
        polls = polls.wrapping_add(1);
    }
}

fn poll_once(
    stats: &mut FlowStats,
    maps: &LbMaps,
    metrics: &FlowMetrics,
    names: &ServiceNames,
    fill: bool,
) -> Result<(), BpfError> {
    raise(&metrics.ring_drops, stats.ring_drops()?);
    let names = names.read().unwrap_or_else(|p| p.into_inner()).clone();
    // Only live ids are read: the map writer zeroes an id's counters before
    // handing it out again, and a gone service's Prometheus series keeps
    // its last value.
    let name = |id: u32| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("id:{id}"))
    };
    for (id, c) in stats.services(names.keys().copied())? {
        let service = name(id);
        for (verdict, total) in [
            ("forwarded", c.connections),
            ("no_backend", c.refused),
            ("dropped", c.dropped),
        ] {
            raise(
                &metrics
                    .service_connections
                    .get_or_create(&labels(&[("service", &service), ("verdict", verdict)])),
                total,
            );
        }
        if c.datagrams > 0 {
            raise(
                &metrics
                    .service_datagrams
                    .get_or_create(&labels(&[("service", &service)])),
                c.datagrams,
            );
        }
        raise_traffic(
            &metrics.service_packets,
            &metrics.service_bytes,
            ("service", &service),
            &c,
        );
    }
    let backends: HashMap<u32, String> = maps
        .backends()?
        .into_iter()
        .filter_map(|(id, b)| {
            let ip = words_ip(b.family, b.address)?;
            Some((
                id,
                std::net::SocketAddr::new(ip, u16::from_be(b.port)).to_string(),
            ))
        })
        .collect();
    for (id, c) in stats.backends(backends.keys().copied())? {
        let backend = backends
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("id:{id}"));
        raise(
            &metrics
                .backend_connections
                .get_or_create(&labels(&[("backend", &backend)])),
            c.connections,
        );
        raise_traffic(
            &metrics.backend_packets,
            &metrics.backend_bytes,
            ("backend", &backend),
            &c,
        );
    }
    if !fill {
        return Ok(());
    }
    for (map, entries, capacity) in map_fill(maps)? {
        let l = labels(&[("map", map)]);
        metrics.map_entries.get_or_create(&l).set(entries as i64);
        metrics
            .map_capacity
            .get_or_create(&l)
            .set(i64::from(capacity));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use keelson_ebpf_common::{
        flows::{FlowRecord, HOOK_CONNECT4, VERDICT_FORWARDED, VERDICT_NO_BACKEND},
        lb::{AF_INET, IPPROTO_TCP, ipv4_words},
    };
    use tokio::io::AsyncBufReadExt;

    use super::*;

    fn flow(n: u64, verdict: u8, service: &str) -> Flow {
        let record = FlowRecord {
            timestamp_ns: n,
            socket_cookie: n,
            orig_address: ipv4_words("10.96.0.10".parse().unwrap()),
            xlate_address: ipv4_words("10.215.0.2".parse().unwrap()),
            orig_port: 80u16.to_be(),
            xlate_port: 8080u16.to_be(),
            family: AF_INET,
            protocol: IPPROTO_TCP,
            verdict,
            hook: HOOK_CONNECT4,
            ..Default::default()
        };
        decode(&record, 0, Some(service.to_owned())).unwrap()
    }

    #[test]
    fn the_hub_keeps_the_newest_and_filters() {
        let hub = FlowHub::new(3);
        for n in 1..=5 {
            hub.push(flow(n, VERDICT_FORWARDED, "default/web"));
        }
        let all = FlowFilter::default();
        let kept: Vec<u64> = hub.recent(&all, None).iter().map(|f| f.ktime_ns).collect();
        assert_eq!(kept, [3, 4, 5]);
        let last: Vec<u64> = hub
            .recent(&all, Some(2))
            .iter()
            .map(|f| f.ktime_ns)
            .collect();
        assert_eq!(last, [4, 5]);
        let other = FlowFilter {
            service: Some("default/db".into()),
            ..Default::default()
        };
        assert!(hub.recent(&other, None).is_empty());
    }

    async fn request(path: &Path, line: &str) -> tokio::io::Lines<BufReader<UnixStream>> {
        let mut stream = UnixStream::connect(path).await.unwrap();
        stream.write_all(line.as_bytes()).await.unwrap();
        BufReader::new(stream).lines()
    }

    #[tokio::test]
    async fn the_socket_serves_recent_then_live_flows_and_refuses_bad_requests() {
        let dir = std::env::temp_dir().join(format!("keelson-flows-unit-{}", std::process::id()));
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = Cleanup(dir.clone());
        let path = dir.join("flows.sock");
        let listener = bind(&path).unwrap();
        // A second agent on a live socket is refused.
        assert!(bind(&path).is_err());
        let hub = Arc::new(FlowHub::new(16));
        hub.push(flow(1, VERDICT_FORWARDED, "default/web"));
        hub.push(flow(2, VERDICT_NO_BACKEND, "default/web"));
        hub.push(flow(3, VERDICT_FORWARDED, "default/db"));
        tokio::spawn(serve(listener, hub.clone()));

        let mut lines = request(&path, "{\"verdict\":\"forwarded\",\"last\":1}\n").await;
        let first: Flow = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(first.ktime_ns, 3);
        assert_eq!(lines.next_line().await.unwrap(), None);

        let mut follow = request(&path, "{\"follow\":true,\"service\":\"default/web\"}\n").await;
        for want in [1, 2] {
            let f: Flow =
                serde_json::from_str(&follow.next_line().await.unwrap().unwrap()).unwrap();
            assert_eq!(f.ktime_ns, want);
        }
        hub.push(flow(4, VERDICT_FORWARDED, "default/db"));
        hub.push(flow(5, VERDICT_FORWARDED, "default/web"));
        let live: Flow = serde_json::from_str(&follow.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(live.ktime_ns, 5);

        let mut bad = request(&path, "{\"verdict\":\"sideways\"}\n").await;
        let answer = bad.next_line().await.unwrap().unwrap();
        assert!(
            answer.contains("error") && answer.contains("sideways"),
            "{answer}"
        );
    }
}
