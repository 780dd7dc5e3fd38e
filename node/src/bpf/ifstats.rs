//! Loader and reader for the `ifstats` TC ingress classifier: attaches it
//! to interfaces and sums its per-CPU counters per interface.
//!
//! Attaching uses TCX on kernels that have it (≥ 6.6), otherwise a clsact
//! qdisc and a netlink filter. Links live as long as the [`IfStats`] value:
//! dropping it detaches the program everywhere it was attached.

use std::{collections::BTreeMap, path::Path};

use aya::{
    Ebpf,
    maps::{MapData, PerCpuHashMap},
    programs::SchedClassifier,
};
use keelson_ebpf_common::ifstats::{IfCounters, MAP_NAME, PROGRAM_NAME};
use tracing::{debug, info};

use super::{BpfError, OBJECT};

/// Per-interface totals, keyed by ifindex.
pub type Totals = BTreeMap<u32, IfCounters>;

/// The loaded `ifstats` program and its map.
pub struct IfStats {
    ebpf: Ebpf,
    attached: Vec<String>,
}

impl IfStats {
    /// Loads the program into the kernel (not yet attached anywhere).
    pub fn load() -> Result<Self, BpfError> {
        let mut ebpf = Ebpf::load(OBJECT)?;
        classifier(&mut ebpf)?
            .load()
            .map_err(|source| BpfError::Program {
                name: PROGRAM_NAME,
                source,
            })?;
        Ok(Self {
            ebpf,
            attached: Vec::new(),
        })
    }

    /// Attaches the classifier to `interface`'s ingress, in the calling
    /// thread's network namespace.
    pub fn attach(&mut self, interface: &str) -> Result<(), BpfError> {
        super::attach_tc_ingress(classifier(&mut self.ebpf)?, interface)?;
        info!(interface, "attached ifstats to TC ingress");
        self.attached.push(interface.to_owned());
        Ok(())
    }

    /// Interfaces this program is attached to, in attach order.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Pins the counter map at `path` (on a bpffs) so other processes can
    /// read it with [`read_pinned`]; the pin outlives this value until the
    /// file is removed.
    pub fn pin_map(&self, path: &Path) -> Result<(), BpfError> {
        let map = self
            .ebpf
            .map(MAP_NAME)
            .ok_or(BpfError::MissingMap(MAP_NAME))?;
        map.pin(path).map_err(|source| BpfError::Pin {
            path: path.display().to_string(),
            source,
        })?;
        debug!(path = %path.display(), "pinned {MAP_NAME}");
        Ok(())
    }

    /// Current totals per ifindex, summed over CPUs.
    pub fn totals(&self) -> Result<Totals, BpfError> {
        let map = self
            .ebpf
            .map(MAP_NAME)
            .ok_or(BpfError::MissingMap(MAP_NAME))?;
        let map: PerCpuHashMap<&MapData, u32, IfCounters> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        sum(&map)
    }
}

/// Reads the totals from a map pinned by [`IfStats::pin_map`].
pub fn read_pinned(path: &Path) -> Result<Totals, BpfError> {
    let data = MapData::from_pin(path).map_err(map_err)?;
    let map = aya::maps::Map::PerCpuHashMap(data);
    let map: PerCpuHashMap<MapData, u32, IfCounters> =
        PerCpuHashMap::try_from(map).map_err(map_err)?;
    sum(&map)
}

fn sum<T: std::borrow::Borrow<MapData>>(
    map: &PerCpuHashMap<T, u32, IfCounters>,
) -> Result<Totals, BpfError> {
    let mut totals = Totals::new();
    for entry in map.iter() {
        let (ifindex, per_cpu) = entry.map_err(map_err)?;
        let total = totals.entry(ifindex).or_default();
        for counters in per_cpu.iter() {
            total.merge(counters);
        }
    }
    Ok(totals)
}

fn classifier(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, BpfError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or(BpfError::MissingProgram(PROGRAM_NAME))?
        .try_into()
        .map_err(|source| BpfError::Program {
            name: PROGRAM_NAME,
            source,
        })
}

fn map_err(source: aya::maps::MapError) -> BpfError {
    BpfError::Map {
        name: MAP_NAME,
        source,
    }
}
