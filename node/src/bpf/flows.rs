//! Typed access to the socket load balancer's flow maps
//! (`ebpf/common/src/flows.rs`): the `LB_FLOWS` ring buffer, the ring's
//! per-CPU drop counter, and the per-CPU service and backend counters.
//!
//! The maps are created and pinned by [`super::sock_lb::SockLb::load`];
//! this module only opens the pins and reads them. It does not decode or
//! interpret records (`crate::flows` does).

use std::path::Path;

use aya::maps::{Map, MapData, PerCpuArray, PerCpuValues, RingBuf};
use keelson_ebpf_common::{
    flows::{
        BACKEND_SOCK_STATS_MAP, BACKEND_STATS_MAP, FLOW_DROPS_MAP, FLOWS_MAP, FlowCounters,
        SVC_SOCK_STATS_MAP, SVC_STATS_MAP, SockCounters,
    },
    lb::{self, MAX_AFFINITY, MAX_AFFINITY_MATCH, MAX_REVNAT_SK},
};

use super::{BpfError, sock_lb::LbMaps};

fn open(pin_dir: &Path, name: &'static str) -> Result<Map, BpfError> {
    let err = |source| BpfError::Map { name, source };
    let data = MapData::from_pin(pin_dir.join(name)).map_err(err)?;
    Map::from_map_data(data).map_err(err)
}

/// Opens the pinned `LB_FLOWS` ring buffer for consuming records.
pub fn open_ring(pin_dir: &Path) -> Result<RingBuf<MapData>, BpfError> {
    RingBuf::try_from(open(pin_dir, FLOWS_MAP)?).map_err(|source| BpfError::Map {
        name: FLOWS_MAP,
        source,
    })
}

/// The per-CPU counters, summed over CPUs (and over the full and the
/// socket programs' compact arrays) when read.
pub struct FlowStats {
    drops: PerCpuArray<MapData, u64>,
    services: Counters,
    backends: Counters,
}

/// One id space's two counter arrays.
struct Counters {
    full: PerCpuArray<MapData, FlowCounters>,
    full_name: &'static str,
    sock: PerCpuArray<MapData, SockCounters>,
    sock_name: &'static str,
}

impl Counters {
    fn open(
        pin_dir: &Path,
        full_name: &'static str,
        sock_name: &'static str,
    ) -> Result<Self, BpfError> {
        let conv = |name: &'static str| move |source| BpfError::Map { name, source };
        Ok(Self {
            full: PerCpuArray::try_from(open(pin_dir, full_name)?).map_err(conv(full_name))?,
            full_name,
            sock: PerCpuArray::try_from(open(pin_dir, sock_name)?).map_err(conv(sock_name))?,
            sock_name,
        })
    }

    /// Sums each id's per-CPU values of both arrays; ids past the arrays'
    /// end (never counted) and all-zero counters are left out.
    fn sum(
        &self,
        ids: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<(u32, FlowCounters)>, BpfError> {
        let len = self.full.len().min(self.sock.len());
        let mut out = Vec::new();
        for id in ids.into_iter().filter(|id| *id < len) {
            let mut total = FlowCounters::default();
            let full = self.full.get(&id, 0).map_err(|source| BpfError::Map {
                name: self.full_name,
                source,
            })?;
            for v in full.iter() {
                total.add(v);
            }
            let sock = self.sock.get(&id, 0).map_err(|source| BpfError::Map {
                name: self.sock_name,
                source,
            })?;
            for v in sock.iter() {
                total.add_sock(v);
            }
            if total != FlowCounters::default() {
                out.push((id, total));
            }
        }
        Ok(out)
    }

    /// Zeroes `id` in both arrays.
    fn reset(&mut self, id: u32) -> Result<(), BpfError> {
        reset(&mut self.full, self.full_name, id)?;
        reset(&mut self.sock, self.sock_name, id)
    }
}

impl FlowStats {
    /// Opens the counter maps pinned under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, BpfError> {
        let conv = |name: &'static str| move |source| BpfError::Map { name, source };
        Ok(Self {
            drops: PerCpuArray::try_from(open(pin_dir, FLOW_DROPS_MAP)?)
                .map_err(conv(FLOW_DROPS_MAP))?,
            services: Counters::open(pin_dir, SVC_STATS_MAP, SVC_SOCK_STATS_MAP)?,
            backends: Counters::open(pin_dir, BACKEND_STATS_MAP, BACKEND_SOCK_STATS_MAP)?,
        })
    }

    /// Flow records lost to a full ring since the map was created.
    pub fn ring_drops(&self) -> Result<u64, BpfError> {
        let values = self.drops.get(&0, 0).map_err(|source| BpfError::Map {
            name: FLOW_DROPS_MAP,
            source,
        })?;
        Ok(values.iter().copied().fold(0u64, u64::wrapping_add))
    }

    /// The counters of each of the service `ids` that counted anything.
    pub fn services(
        &self,
        ids: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<(u32, FlowCounters)>, BpfError> {
        self.services.sum(ids)
    }

    /// The counters of each of the backend `ids` that counted anything.
    pub fn backends(
        &self,
        ids: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<(u32, FlowCounters)>, BpfError> {
        self.backends.sum(ids)
    }

    /// Zeroes service `id`'s counters (before the id is handed out again).
    pub fn reset_service(&mut self, id: u32) -> Result<(), BpfError> {
        self.services.reset(id)
    }

    /// Zeroes backend `id`'s counters (before the id is handed out again).
    pub fn reset_backend(&mut self, id: u32) -> Result<(), BpfError> {
        self.backends.reset(id)
    }
}

fn reset<T: aya::Pod + Default>(
    map: &mut PerCpuArray<MapData, T>,
    name: &'static str,
    id: u32,
) -> Result<(), BpfError> {
    if id >= map.len() {
        return Ok(());
    }
    let io = |source: std::io::Error| BpfError::Map {
        name,
        source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_update_elem",
            io_error: source,
        }),
    };
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| io(e))?;
    let zeros = PerCpuValues::try_from(vec![T::default(); cpus]).map_err(io)?;
    map.set(id, zeros, 0)
        .map_err(|source| BpfError::Map { name, source })
}

/// Entries and capacity of each load-balancer map, for fill-level gauges.
pub fn map_fill(maps: &LbMaps) -> Result<Vec<(&'static str, usize, u32)>, BpfError> {
    Ok(vec![
        (
            lb::SERVICES_MAP,
            maps.services()?.len(),
            maps.capacity().services,
        ),
        (
            lb::BACKENDS_MAP,
            maps.backends()?.len(),
            maps.capacity().backends,
        ),
        (lb::AFFINITY_MAP, maps.affinities()?.len(), MAX_AFFINITY),
        (
            lb::AFFINITY_MATCH_MAP,
            maps.affinity_matches()?.len(),
            MAX_AFFINITY_MATCH,
        ),
        (
            lb::REVNAT_SK_MAP,
            maps.revnat_entries()?.len(),
            MAX_REVNAT_SK,
        ),
    ])
}
