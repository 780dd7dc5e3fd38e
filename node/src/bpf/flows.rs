//! Typed access to the socket load balancer's flow maps
//! (`ebpf/common/src/flows.rs`): the `LB_FLOWS` ring buffer, the ring's
//! per-CPU drop counter, and the per-CPU service and backend counters.
//!
//! The maps are created and pinned by [`super::sock_lb::SockLb::load`];
//! this module only opens the pins and reads them. It does not decode or
//! interpret records (`crate::flows` does).

use std::path::Path;

use aya::maps::{Map, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use keelson_ebpf_common::{
    flows::{BACKEND_STATS_MAP, FLOW_DROPS_MAP, FLOWS_MAP, FlowCounters, SVC_STATS_MAP},
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

/// The per-CPU counters, summed over CPUs when read.
pub struct FlowStats {
    drops: PerCpuArray<MapData, u64>,
    services: PerCpuHashMap<MapData, u32, FlowCounters>,
    backends: PerCpuHashMap<MapData, u32, FlowCounters>,
}

impl FlowStats {
    /// Opens the counter maps pinned under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, BpfError> {
        let conv = |name: &'static str| move |source| BpfError::Map { name, source };
        Ok(Self {
            drops: PerCpuArray::try_from(open(pin_dir, FLOW_DROPS_MAP)?)
                .map_err(conv(FLOW_DROPS_MAP))?,
            services: PerCpuHashMap::try_from(open(pin_dir, SVC_STATS_MAP)?)
                .map_err(conv(SVC_STATS_MAP))?,
            backends: PerCpuHashMap::try_from(open(pin_dir, BACKEND_STATS_MAP)?)
                .map_err(conv(BACKEND_STATS_MAP))?,
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

    /// Counters per service id.
    pub fn services(&self) -> Result<Vec<(u32, FlowCounters)>, BpfError> {
        sum(&self.services, SVC_STATS_MAP)
    }

    /// Counters per backend id.
    pub fn backends(&self) -> Result<Vec<(u32, FlowCounters)>, BpfError> {
        sum(&self.backends, BACKEND_STATS_MAP)
    }
}

impl FlowStats {
    /// Removes the counters of service ids for which `keep` is false.
    pub fn forget_services(&mut self, keep: impl Fn(u32) -> bool) -> Result<usize, BpfError> {
        forget(&mut self.services, SVC_STATS_MAP, keep)
    }

    /// Removes the counters of backend ids for which `keep` is false.
    pub fn forget_backends(&mut self, keep: impl Fn(u32) -> bool) -> Result<usize, BpfError> {
        forget(&mut self.backends, BACKEND_STATS_MAP, keep)
    }
}

fn forget(
    map: &mut PerCpuHashMap<MapData, u32, FlowCounters>,
    name: &'static str,
    keep: impl Fn(u32) -> bool,
) -> Result<usize, BpfError> {
    let stale: Vec<u32> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|id| !keep(*id))
        .collect();
    for id in &stale {
        match map.remove(id) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => return Err(BpfError::Map { name, source }),
        }
    }
    Ok(stale.len())
}

fn sum(
    map: &PerCpuHashMap<MapData, u32, FlowCounters>,
    name: &'static str,
) -> Result<Vec<(u32, FlowCounters)>, BpfError> {
    map.iter()
        .map(|entry| {
            let (id, values) = entry.map_err(|source| BpfError::Map { name, source })?;
            let mut total = FlowCounters::default();
            for v in values.iter() {
                total.add(v);
            }
            Ok((id, total))
        })
        .collect()
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
