//! Proxy (b): Keelson's socket-level load balancer, loaded from the node
//! crate exactly as `keelson-node proxy` loads it (`SockLb`), attached to
//! the lab's cgroup, its maps pinned in a bench-owned bpffs directory, and
//! programmed through the agent's own code path from the API objects: the
//! watch's `ChangeTracker` (a full list, then one event at a time) and the
//! map writer (`apply` for the full state, `apply_changes` per event).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use keelson_e2e::{bpffs::PinDir, cgroup::TestCgroup};
use keelson_ebpf_common::lb::{AF_INET, IPPROTO_TCP, PROG_CONNECT4, ServiceKey, ip_words};
use keelson_node::{
    bpf::{
        sock_lb::{LbCapacity, LbMaps, SockLb},
        stats::RunStats,
    },
    proxy::{desired::NodeContext, maps::LbMapWriter, tracker::ChangeTracker},
};

use crate::objects::{Cluster, SERVICE_PORT, vip};

pub struct EbpfProxy {
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
    /// services of three endpoints (as an operator would set
    /// `--lb-map-max`).
    pub fn load(cgroup: &TestCgroup, services: usize) -> Result<Self> {
        let pins = PinDir::new()?;
        let capacity = LbCapacity {
            services: ((services * 4).max(65_536) as u32).next_power_of_two(),
            ..LbCapacity::default()
        };
        let mut lb = SockLb::load_with(pins.path(), capacity)?;
        lb.attach(cgroup.path())?;
        let writer = LbMapWriter::new(lb.maps()?)?;
        Ok(Self {
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
        let maps = LbMaps::open(self.pins.path())?;
        let (family, address) = ip_words(vip(i).into());
        let key = ServiceKey::service(address, SERVICE_PORT.to_be(), family, IPPROTO_TCP);
        ensure!(family == AF_INET, "IPv4 only");
        let value = maps
            .service(&key)?
            .with_context(|| format!("service {i} is not in the map"))?;
        Ok(value.count)
    }
}
