//! Loader of the socket-level load balancer (`ebpf/programs/src/sock_lb.rs`):
//! loads its four `cgroup/*4` programs, keeps its maps pinned on bpffs,
//! attaches the programs to a cgroup v2 directory through pinned links,
//! and gives typed access to the maps ([`LbMaps`]).
//!
//! Everything survives the agent: maps are pinned by name under the pin
//! directory (default [`DEFAULT_PIN_DIR`]) and reused on the next load, so
//! an agent restart reconciles instead of flushing; links are pinned under
//! `<pin dir>/links/` so the programs stay attached while no agent runs. A
//! new [`SockLb::attach`] attaches the freshly loaded programs and then
//! atomically renames their link pins over the old ones (bpffs supports
//! rename), which detaches the previous programs: for that instant both
//! run, which is harmless (the second sees an already-translated address).
//!
//! This module owns the pin directory's `LB_*` maps and `links/`; it never
//! touches the cgroup tree beyond attaching to the directory it is given,
//! and it does not decide what the maps contain (`proxy::maps` does).

use std::{
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    maps::{Array, HashMap, Map, MapData, MapError, MapInfo, MapType},
    programs::{CgroupAttachMode, CgroupSockAddr, links::FdLink},
};
use keelson_ebpf_common::flows::{
    BACKEND_SOCK_STATS_MAP, BACKEND_STATS_MAP, FLOW_DROPS_MAP, FLOWS_MAP, FlowCounters,
    MAP_NAMES as FLOW_MAP_NAMES, RING_BYTES, SVC_SOCK_STATS_MAP, SVC_STATS_MAP, SockCounters,
};
use keelson_ebpf_common::lb::{
    AFFINITY_MAP, AFFINITY_MATCH_MAP, AffinityKey, AffinityMatchKey, AffinityValue, BACKENDS_MAP,
    BackendValue, MAP_NAMES, MAX_AFFINITY, MAX_AFFINITY_MATCH, MAX_BACKENDS, MAX_REVNAT_SK,
    MAX_REVNAT_TCP, MAX_SERVICE_ENTRIES, PROGRAMS, REVNAT_SK_MAP, REVNAT_SOCK_MAP, REVNAT_TCP_MAP,
    RevNatConn, RevNatSkKey, RevNatSkValue, RevNatSock, SERVICES_MAP, ServiceKey, ServiceValue,
};
use tracing::{debug, info, warn};

use super::{BpfError, OBJECT, mmap::MmapArray, stats::RunStats};

/// Where the agent pins the load balancer's maps and links by default.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/keelson";
/// Subdirectory of the pin directory holding the programs' cgroup links.
pub const LINKS_DIR: &str = "links";

/// `BPF_F_NO_PREALLOC`, as the programs declare their user-written maps.
const BPF_F_NO_PREALLOC: u32 = 1;
/// `BPF_F_MMAPABLE`, as the programs declare the backend array.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Capacities of the maps user space writes (Cilium's `--bpf-lb-map-max`):
/// `services` bounds frontends × (1 + backends) entries of
/// [`SERVICES_MAP`], `backends` the backend ids of the [`BACKENDS_MAP`]
/// array (ids `1..backends`). The service hash allocates entries on demand;
/// the backend array and the per-CPU counter arrays (one slot per possible
/// service id and backend id) are allocated whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbCapacity {
    pub services: u32,
    pub backends: u32,
}

impl Default for LbCapacity {
    fn default() -> Self {
        Self {
            services: MAX_SERVICE_ENTRIES,
            backends: MAX_BACKENDS,
        }
    }
}

/// The loaded (not necessarily attached) socket load-balancing programs.
pub struct SockLb {
    ebpf: aya::Ebpf,
    pin_dir: PathBuf,
}

impl SockLb {
    /// Loads the programs, creating their maps pinned under `pin_dir` or
    /// reusing the maps already pinned there. A pinned map whose type, key
    /// or value size, capacity or flags differ from this build's is
    /// unpinned and recreated (empty), as after a layout change.
    pub fn load(pin_dir: &Path) -> Result<Self, BpfError> {
        Self::load_with(pin_dir, LbCapacity::default())
    }

    /// [`SockLb::load`] with other capacities for the service and backend
    /// maps; pinned maps of another capacity are recreated (empty).
    pub fn load_with(pin_dir: &Path, capacity: LbCapacity) -> Result<Self, BpfError> {
        prepare_pin_dir(pin_dir)?;
        for name in MAP_NAMES.iter().chain(FLOW_MAP_NAMES.iter()) {
            drop_incompatible_pin(pin_dir, name, capacity)?;
        }
        let pins: Vec<(&'static str, PathBuf)> = MAP_NAMES
            .iter()
            .chain(FLOW_MAP_NAMES.iter())
            .map(|name| (*name, pin_dir.join(name)))
            .collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        loader
            .map_max_entries(SERVICES_MAP, capacity.services)
            .map_max_entries(BACKENDS_MAP, capacity.backends)
            .map_max_entries(SVC_STATS_MAP, capacity.services)
            .map_max_entries(BACKEND_STATS_MAP, capacity.backends)
            .map_max_entries(SVC_SOCK_STATS_MAP, capacity.services)
            .map_max_entries(BACKEND_SOCK_STATS_MAP, capacity.backends);
        let mut ebpf = loader.load(OBJECT)?;
        for name in PROGRAMS {
            program(&mut ebpf, name)?
                .load()
                .map_err(|source| BpfError::Program { name, source })?;
        }
        info!(pin_dir = %pin_dir.display(), "loaded the socket load-balancing programs");
        Ok(Self {
            ebpf,
            pin_dir: pin_dir.to_path_buf(),
        })
    }

    /// Where the maps and links are pinned.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Attaches the four programs to the cgroup v2 directory `cgroup` (the
    /// v2 root for a node agent; a test's own child cgroup in tests) and
    /// pins the links, replacing — and so detaching — any links pinned by a
    /// previous load.
    pub fn attach(&mut self, cgroup: &Path) -> Result<(), BpfError> {
        let links = self.pin_dir.join(LINKS_DIR);
        std::fs::create_dir_all(&links).map_err(|source| BpfError::Bpffs {
            path: links.display().to_string(),
            source,
        })?;
        for name in PROGRAMS {
            let file = File::open(cgroup).map_err(|source| BpfError::Cgroup {
                path: cgroup.display().to_string(),
                source,
            })?;
            let prog = program(&mut self.ebpf, name)?;
            let attach_err = |source| BpfError::CgroupAttach {
                program: name,
                cgroup: cgroup.display().to_string(),
                source,
            };
            // Links are always multi-attach; the mode must be 0 for them.
            let id = prog
                .attach(file, CgroupAttachMode::Single)
                .map_err(attach_err)?;
            let link: FdLink =
                prog.take_link(id)
                    .map_err(attach_err)?
                    .try_into()
                    .map_err(|source| BpfError::Link {
                        program: name,
                        source,
                    })?;
            // bpffs refuses names with dots.
            let staged = links.join(format!("{name}_new"));
            let live = links.join(name);
            // A crash between pin and rename leaves a staged pin behind.
            let _ = std::fs::remove_file(&staged);
            let pinned = link.pin(&staged).map_err(|source| BpfError::Pin {
                path: staged.display().to_string(),
                source,
            })?;
            std::fs::rename(&staged, &live).map_err(|source| BpfError::Bpffs {
                path: live.display().to_string(),
                source,
            })?;
            // Closing our fd leaves the link held by its pin alone.
            drop(pinned);
            debug!(program = name, cgroup = %cgroup.display(), "attached and pinned");
        }
        info!(cgroup = %cgroup.display(), "socket load balancing attached");
        Ok(())
    }

    /// Each program's run statistics (counted only while BPF statistics
    /// are enabled: see [`super::stats`]).
    pub fn run_stats(&self) -> Result<Vec<(&'static str, RunStats)>, BpfError> {
        PROGRAMS
            .iter()
            .map(|&name| {
                let prog: &CgroupSockAddr = self
                    .ebpf
                    .program(name)
                    .ok_or(BpfError::MissingProgram(name))?
                    .try_into()
                    .map_err(|source| BpfError::Program { name, source })?;
                let fd = prog
                    .fd()
                    .map_err(|source| BpfError::Program { name, source })?;
                let stats = super::stats::run_stats(fd.as_fd())
                    .map_err(|source| BpfError::Stats { name, source })?;
                Ok((name, stats))
            })
            .collect()
    }

    /// Typed handles on the pinned maps.
    pub fn maps(&self) -> Result<LbMaps, BpfError> {
        LbMaps::open(&self.pin_dir)
    }
}

/// Detaches the programs attached by [`SockLb::attach`] from `pin_dir` by
/// removing their link pins (maps stay pinned). Missing pins are fine.
pub fn detach_pinned(pin_dir: &Path) -> Result<(), BpfError> {
    for name in PROGRAMS {
        for file in [name.to_owned(), format!("{name}_new")] {
            let path = pin_dir.join(LINKS_DIR).join(file);
            match std::fs::remove_file(&path) {
                Ok(()) => debug!(program = name, path = %path.display(), "unpinned link"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(BpfError::Bpffs {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The mount point of the cgroup v2 hierarchy, found the way kubelets do:
/// `/sys/fs/cgroup` itself on a pure (unified) v2 host, the `unified`
/// mount on a hybrid host (`/sys/fs/cgroup/unified` by convention), any
/// other `cgroup2` mount otherwise; `None` on a v1-only host, where socket
/// load balancing is unavailable.
pub fn cgroup2_mount() -> std::io::Result<Option<PathBuf>> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    Ok(pick_cgroup2_mount(&mounts))
}

fn pick_cgroup2_mount(mounts: &str) -> Option<PathBuf> {
    let cgroup2: Vec<&str> = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount_point, fstype) = (fields.next(), fields.next()?, fields.next()?);
            (fstype == "cgroup2").then_some(mount_point)
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|want| cgroup2.contains(want))
        .or_else(|| cgroup2.first().copied())
        .map(PathBuf::from)
}

/// Creates the pin directory, refusing one that is not on bpffs.
fn prepare_pin_dir(pin_dir: &Path) -> Result<(), BpfError> {
    let err = |source| BpfError::Bpffs {
        path: pin_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(pin_dir).map_err(err)?;
    let stat = nix::sys::statfs::statfs(pin_dir).map_err(|e| err(e.into()))?;
    if stat.filesystem_type() != nix::sys::statfs::BPF_FS_MAGIC {
        return Err(BpfError::NotBpffs(pin_dir.display().to_string()));
    }
    Ok(())
}

/// What this build expects of each pinned map: (type, key, value,
/// capacity, flags).
fn expected_map(name: &str, capacity: LbCapacity) -> Option<(MapType, usize, usize, u32, u32)> {
    use std::mem::size_of;
    Some(match name {
        SERVICES_MAP => (
            MapType::Hash,
            size_of::<ServiceKey>(),
            size_of::<ServiceValue>(),
            capacity.services,
            BPF_F_NO_PREALLOC,
        ),
        BACKENDS_MAP => (
            MapType::Array,
            size_of::<u32>(),
            size_of::<BackendValue>(),
            capacity.backends,
            BPF_F_MMAPABLE,
        ),
        AFFINITY_MAP => (
            MapType::LruHash,
            size_of::<AffinityKey>(),
            size_of::<AffinityValue>(),
            MAX_AFFINITY,
            0,
        ),
        AFFINITY_MATCH_MAP => (
            MapType::Hash,
            size_of::<AffinityMatchKey>(),
            size_of::<u8>(),
            MAX_AFFINITY_MATCH,
            BPF_F_NO_PREALLOC,
        ),
        REVNAT_SK_MAP => (
            MapType::LruHash,
            size_of::<RevNatSkKey>(),
            size_of::<RevNatSkValue>(),
            MAX_REVNAT_SK,
            0,
        ),
        REVNAT_TCP_MAP => (
            MapType::Array,
            size_of::<u32>(),
            size_of::<RevNatConn>(),
            MAX_REVNAT_TCP,
            0,
        ),
        // Socket storage: int key, no capacity, never preallocated.
        REVNAT_SOCK_MAP => (
            MapType::SkStorage,
            size_of::<i32>(),
            size_of::<RevNatSock>(),
            0,
            BPF_F_NO_PREALLOC,
        ),
        FLOWS_MAP => (MapType::RingBuf, 0, 0, RING_BYTES, 0),
        FLOW_DROPS_MAP => (MapType::PerCpuArray, 4, 8, 1, 0),
        SVC_STATS_MAP => (
            MapType::PerCpuArray,
            4,
            size_of::<FlowCounters>(),
            capacity.services,
            0,
        ),
        BACKEND_STATS_MAP => (
            MapType::PerCpuArray,
            4,
            size_of::<FlowCounters>(),
            capacity.backends,
            0,
        ),
        SVC_SOCK_STATS_MAP => (
            MapType::PerCpuArray,
            4,
            size_of::<SockCounters>(),
            capacity.services,
            0,
        ),
        BACKEND_SOCK_STATS_MAP => (
            MapType::PerCpuArray,
            4,
            size_of::<SockCounters>(),
            capacity.backends,
            0,
        ),
        _ => return None,
    })
}

/// Unpins `pin_dir/name` when the map pinned there does not match this
/// build's definition, so the loader creates a fresh one.
fn drop_incompatible_pin(
    pin_dir: &Path,
    name: &'static str,
    capacity: LbCapacity,
) -> Result<(), BpfError> {
    let path = pin_dir.join(name);
    if !path.exists() {
        return Ok(());
    }
    let info = MapInfo::from_pin(&path).map_err(|source| BpfError::Map { name, source })?;
    let found = (
        info.map_type().ok(),
        info.key_size() as usize,
        info.value_size() as usize,
        info.max_entries(),
        info.map_flags(),
    );
    let Some((kind, key, value, max, flags)) = expected_map(name, capacity) else {
        return Ok(());
    };
    if found == (Some(kind), key, value, max, flags) {
        return Ok(());
    }
    warn!(
        map = name,
        path = %path.display(),
        ?found,
        "pinned map has another layout; recreating it empty"
    );
    std::fs::remove_file(&path).map_err(|source| BpfError::Bpffs {
        path: path.display().to_string(),
        source,
    })
}

fn program<'a>(
    ebpf: &'a mut aya::Ebpf,
    name: &'static str,
) -> Result<&'a mut CgroupSockAddr, BpfError> {
    ebpf.program_mut(name)
        .ok_or(BpfError::MissingProgram(name))?
        .try_into()
        .map_err(|source| BpfError::Program { name, source })
}

/// Typed handles on the load balancer's pinned maps. Opening them needs
/// only the pins, not a loaded [`SockLb`].
pub struct LbMaps {
    services: HashMap<MapData, ServiceKey, ServiceValue>,
    /// Written through syscalls, read through `backends_view`.
    backends: Array<MapData, BackendValue>,
    backends_view: MmapArray<BackendValue>,
    affinity: HashMap<MapData, AffinityKey, AffinityValue>,
    affinity_match: HashMap<MapData, AffinityMatchKey, u8>,
    revnat: HashMap<MapData, RevNatSkKey, RevNatSkValue>,
    revnat_tcp: Array<MapData, RevNatConn>,
    /// The per-id counters, zeroed when an id is handed out again.
    counters: super::flows::FlowStats,
    capacity: LbCapacity,
}

impl LbMaps {
    /// Opens the maps pinned under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, BpfError> {
        let max_entries = |name: &'static str| {
            MapInfo::from_pin(pin_dir.join(name))
                .map(|info| info.max_entries())
                .map_err(|source| map_err(name, source))
        };
        let capacity = LbCapacity {
            services: max_entries(SERVICES_MAP)?,
            backends: max_entries(BACKENDS_MAP)?,
        };
        Ok(Self {
            capacity,
            services: open_hash(pin_dir, SERVICES_MAP)?,
            backends: open_array(pin_dir, BACKENDS_MAP)?,
            backends_view: MmapArray::open(&pin_dir.join(BACKENDS_MAP), BACKENDS_MAP)?,
            affinity: open_hash(pin_dir, AFFINITY_MAP)?,
            affinity_match: open_hash(pin_dir, AFFINITY_MATCH_MAP)?,
            revnat: open_hash(pin_dir, REVNAT_SK_MAP)?,
            revnat_tcp: open_array(pin_dir, REVNAT_TCP_MAP)?,
            counters: super::flows::FlowStats::open(pin_dir)?,
        })
    }

    /// The capacities the pinned service and backend maps were created with.
    pub fn capacity(&self) -> LbCapacity {
        self.capacity
    }

    /// Every service entry and backend slot.
    pub fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, BpfError> {
        collect(&self.services, SERVICES_MAP)
    }

    /// One entry, `None` when absent.
    pub fn service(&self, key: &ServiceKey) -> Result<Option<ServiceValue>, BpfError> {
        match self.services.get(key, 0) {
            Ok(value) => Ok(Some(value)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(map_err(SERVICES_MAP, source)),
        }
    }

    pub fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), BpfError> {
        self.services
            .insert(key, value, 0)
            .map_err(|source| map_err(SERVICES_MAP, source))
    }

    /// Removes an entry; an absent one is not an error.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), BpfError> {
        absent_ok(self.services.remove(key), SERVICES_MAP)
    }

    /// Every backend by id (the array's used slots, read from memory).
    pub fn backends(&self) -> Result<Vec<(u32, BackendValue)>, BpfError> {
        Ok(self.backends_view.collect(|b| b.family != 0))
    }

    /// Writes backend `id` (`1..capacity`).
    pub fn put_backend(&mut self, id: u32, value: &BackendValue) -> Result<(), BpfError> {
        self.backends
            .set(id, value, 0)
            .map_err(|source| map_err(BACKENDS_MAP, source))
    }

    /// Frees backend `id` (zeroes its slot); an id past the end is absent.
    pub fn delete_backend(&mut self, id: u32) -> Result<(), BpfError> {
        if id >= self.capacity.backends {
            return Ok(());
        }
        self.backends
            .set(id, BackendValue::default(), 0)
            .map_err(|source| map_err(BACKENDS_MAP, source))
    }

    /// Zeroes service `id`'s flow counters.
    pub fn reset_service_counters(&mut self, id: u32) -> Result<(), BpfError> {
        self.counters.reset_service(id)
    }

    /// Zeroes backend `id`'s flow counters.
    pub fn reset_backend_counters(&mut self, id: u32) -> Result<(), BpfError> {
        self.counters.reset_backend(id)
    }

    /// Every (backend, service) membership of affinity services.
    pub fn affinity_matches(&self) -> Result<Vec<AffinityMatchKey>, BpfError> {
        Ok(collect(&self.affinity_match, AFFINITY_MATCH_MAP)?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    pub fn put_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError> {
        self.affinity_match
            .insert(key, 1, 0)
            .map_err(|source| map_err(AFFINITY_MATCH_MAP, source))
    }

    pub fn delete_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError> {
        absent_ok(self.affinity_match.remove(key), AFFINITY_MATCH_MAP)
    }

    /// Affinity entries the programs recorded (for inspection and tests).
    pub fn affinities(&self) -> Result<Vec<(AffinityKey, AffinityValue)>, BpfError> {
        collect(&self.affinity, AFFINITY_MAP)
    }

    /// Overwrites an affinity entry (operators and tests; the programs
    /// maintain these themselves).
    pub fn put_affinity(
        &mut self,
        key: &AffinityKey,
        value: &AffinityValue,
    ) -> Result<(), BpfError> {
        self.affinity
            .insert(key, value, 0)
            .map_err(|source| map_err(AFFINITY_MAP, source))
    }

    /// The TCP reverse entry in the slot of socket `cookie` — whichever
    /// socket holds the slot now (for inspection and tests).
    pub fn revnat_tcp_slot(&self, cookie: u64) -> Result<RevNatConn, BpfError> {
        self.revnat_tcp
            .get(&revnat_tcp_slot(cookie), 0)
            .map_err(|source| map_err(REVNAT_TCP_MAP, source))
    }

    /// Overwrites the TCP reverse entry in the slot of socket `cookie`, as
    /// a later socket whose cookie maps there would (tests).
    pub fn put_revnat_tcp_slot(&mut self, cookie: u64, value: &RevNatConn) -> Result<(), BpfError> {
        self.revnat_tcp
            .set(revnat_tcp_slot(cookie), value, 0)
            .map_err(|source| map_err(REVNAT_TCP_MAP, source))
    }

    /// Reverse-NAT entries the programs recorded (for inspection and tests).
    pub fn revnat_entries(&self) -> Result<Vec<(RevNatSkKey, RevNatSkValue)>, BpfError> {
        collect(&self.revnat, REVNAT_SK_MAP)
    }
}

fn open_hash<K: aya::Pod, V: aya::Pod>(
    pin_dir: &Path,
    name: &'static str,
) -> Result<HashMap<MapData, K, V>, BpfError> {
    let data = MapData::from_pin(pin_dir.join(name)).map_err(|source| map_err(name, source))?;
    let map = Map::from_map_data(data).map_err(|source| map_err(name, source))?;
    HashMap::try_from(map).map_err(|source| map_err(name, source))
}

/// The `LB_REVNAT_TCP` slot of a socket cookie, as the programs compute it.
fn revnat_tcp_slot(cookie: u64) -> u32 {
    (cookie as u32) & (MAX_REVNAT_TCP - 1)
}

fn open_array<V: aya::Pod>(
    pin_dir: &Path,
    name: &'static str,
) -> Result<Array<MapData, V>, BpfError> {
    let data = MapData::from_pin(pin_dir.join(name)).map_err(|source| map_err(name, source))?;
    let map = Map::from_map_data(data).map_err(|source| map_err(name, source))?;
    Array::try_from(map).map_err(|source| map_err(name, source))
}

fn collect<K: aya::Pod, V: aya::Pod>(
    map: &HashMap<MapData, K, V>,
    name: &'static str,
) -> Result<Vec<(K, V)>, BpfError> {
    map.iter()
        .map(|entry| entry.map_err(|source| map_err(name, source)))
        .collect()
}

fn absent_ok(result: Result<(), MapError>, name: &'static str) -> Result<(), BpfError> {
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(source) => Err(map_err(name, source)),
    }
}

fn map_err(name: &'static str, source: MapError) -> BpfError {
    BpfError::Map { name, source }
}

#[cfg(test)]
mod tests {
    use super::pick_cgroup2_mount;

    #[test]
    fn cgroup2_mount_is_found_in_each_mode() {
        let pure = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(
            pick_cgroup2_mount(pure).unwrap().to_str(),
            Some("/sys/fs/cgroup")
        );
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            pick_cgroup2_mount(hybrid).unwrap().to_str(),
            Some("/sys/fs/cgroup/unified")
        );
        let odd = "none /run/cg2 cgroup2 rw 0 0\n";
        assert_eq!(pick_cgroup2_mount(odd).unwrap().to_str(), Some("/run/cg2"));
        let v1 = "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n";
        assert_eq!(pick_cgroup2_mount(v1), None);
    }
}
