//! Proxy (b): Keelson's socket-level load balancer, loaded from the node
//! crate exactly as `keelson-node proxy` loads it (`SockLb`), attached to
//! the lab's cgroup, its maps pinned in a bench-owned bpffs directory, and
//! programmed through the agent's own code path from the API objects: the
//! watch's `ChangeTracker` (a full list, then one event at a time) and the
//! map writer (`apply` for the full state, `apply_changes` per event).
//! The agent's flow reader runs meanwhile (`flows::server::read_ring` on a
//! thread of its own), so every connection's flow record is produced,
//! consumed and decoded as on a node: observability is part of the cost.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use keelson_e2e::{bpffs::PinDir, cgroup::TestCgroup};
use keelson_ebpf_common::lb::{
    AF_INET, INLINE_BACKENDS, IPPROTO_TCP, PROG_CONNECT4, ServiceKey, ip_words,
};
use keelson_node::{
    bpf::{
        sock_lb::{LbCapacity, LbMaps, SockLb},
        stats::RunStats,
    },
    flows::server::{FlowHub, ServiceNames, read_ring},
    proxy::{desired::NodeContext, maps::LbMapWriter, tracker::ChangeTracker},
};

use crate::objects::{BACKENDS, Cluster, SERVICE_PORT, vip};

pub struct EbpfProxy {
    /// Stops the flow reader's runtime when dropped.
    _reader: FlowReader,
    writer: LbMapWriter<LbMaps>,
    tracker: ChangeTracker,
    // Dropped last: unpinning the links detaches the programs.
    lb: SockLb,
    pins: PinDir,
}

/// What programming the load balancer took.
#[derive(Clone, Copy, Debug)]
pub struct Programmed {
    /// Services + EndpointSlices → desired state.
    pub compute: Duration,
    /// Desired state → map writes (the writer's diff included).
    pub write: Duration,
}

impl EbpfProxy {
    /// Loads and attaches the programs with maps big enough for `services`
    /// services of [`BACKENDS`] endpoints each (as an operator would set
    /// `--lb-map-max`: one entry per service, plus one per backend slot
    /// for services past the inline limit), never below the default.
    pub fn load(cgroup: &TestCgroup, services: usize) -> Result<Self> {
        let pins = PinDir::new()?;
        let slots = if BACKENDS.len() > INLINE_BACKENDS {
            BACKENDS.len()
        } else {
            0
        };
        let entries = (services * (1 + slots)) as u32;
        let capacity = LbCapacity {
            services: entries
                .max(LbCapacity::default().services)
                .next_power_of_two(),
            ..LbCapacity::default()
        };
        let mut lb = SockLb::load_with(pins.path(), capacity)?;
        lb.attach(cgroup.path())?;
        let writer = LbMapWriter::new(lb.maps()?)?;
        let reader = FlowReader::start(pins.path())?;
        Ok(Self {
            _reader: reader,
            writer,
            tracker: ChangeTracker::new(NodeContext::new("bench-node", Vec::new())),
            lb,
            pins,
        })
    }

    /// Detaches the programs from the cgroup (maps and programs stay
    /// loaded): the client then runs with no proxy at all.
    pub fn detach(&mut self) -> Result<()> {
        keelson_node::bpf::sock_lb::detach_pinned(self.pins.path())?;
        Ok(())
    }

    /// Attaches the programs to `cgroup` again.
    pub fn attach(&mut self, cgroup: &TestCgroup) -> Result<()> {
        self.lb.attach(cgroup.path())?;
        Ok(())
    }

    /// connect4's run statistics so far (counted while enabled).
    pub fn connect4_stats(&self) -> Result<RunStats> {
        self.lb
            .run_stats()?
            .into_iter()
            .find(|(name, _)| *name == PROG_CONNECT4)
            .map(|(_, stats)| stats)
            .context("no connect4 program")
    }

    /// Programs `cluster` as the agent does after its initial lists: the
    /// tracker takes every object, the writer the full state.
    pub fn program(&mut self, cluster: &Cluster) -> Result<Programmed> {
        // The objects as the watch hands them over (owned, not timed).
        let services: Vec<_> = cluster.services.iter().cloned().map(Arc::new).collect();
        let slices: Vec<_> = cluster.slices.iter().cloned().map(Arc::new).collect();
        let started = Instant::now();
        self.tracker.reset_services(services);
        self.tracker.reset_slices(slices);
        let compute = started.elapsed();
        let started = Instant::now();
        self.writer.apply(self.tracker.state())?;
        Ok(Programmed {
            compute,
            write: started.elapsed(),
        })
    }

    /// One EndpointSlice watch event, handled as the agent handles it:
    /// the tracker recomputes its service, the writer writes the changed
    /// frontends.
    pub fn slice_event(&mut self, slice: &EndpointSlice) -> Result<()> {
        let changes = self.tracker.apply_slice(Arc::new(slice.clone()));
        let changed: Vec<_> = changes.iter().map(|(f, _)| *f).collect();
        self.writer.apply_changes(self.tracker.state(), &changed)?;
        Ok(())
    }

    /// Backend count service `i`'s entry holds right now (read from the
    /// kernel map, not from the writer's mirror).
    pub fn backends_of(&self, i: usize) -> Result<u16> {
        let (family, address) = ip_words(vip(i).into());
        let key = ServiceKey::service(address, SERVICE_PORT.to_be(), family, IPPROTO_TCP);
        ensure!(family == AF_INET, "IPv4 only");
        // The writer's store is the pinned maps themselves (a syscall per
        // read), held open rather than reopened on every poll.
        let value = self
            .writer
            .store()
            .service(&key)?
            .with_context(|| format!("service {i} is not in the map"))?;
        Ok(value.count)
    }
}

/// The agent's flow-ring reader on a thread of its own (a current-thread
/// tokio runtime, as one task of the agent would be).
struct FlowReader {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FlowReader {
    fn start(pin_dir: &std::path::Path) -> Result<Self> {
        let ring = keelson_node::bpf::flows::open_ring(pin_dir)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("flow reader runtime")?;
        let thread = std::thread::spawn(move || {
            let hub = Arc::new(FlowHub::new(keelson_node::flows::server::DEFAULT_KEEP));
            let names = ServiceNames::default();
            runtime.block_on(async move {
                tokio::select! {
                    result = read_ring(ring, hub, names) => {
                        if let Err(e) = result {
                            eprintln!("bench proxy: flow reader: {e}");
                        }
                    }
                    _ = stopped => {}
                }
            });
        });
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for FlowReader {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
