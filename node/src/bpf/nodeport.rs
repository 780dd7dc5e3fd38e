//! Loader of the NodePort TC program (`ebpf/programs/src/nodeport.rs`):
//! loads `nodeport_ingress` against the load balancer's pinned
//! `LB_SERVICES`/`LB_BACKENDS` (the ones [`super::sock_lb::SockLb`] pins
//! and `proxy::maps` writes) and its own pinned conntrack `NP_CT`, and
//! attaches it to TC ingress of named interfaces in the calling thread's
//! network namespace (TCX on kernels ≥ 6.6, clsact otherwise).
//!
//! Hook layout: the same program on ingress of the node's external
//! interface (client → NodePort: DNAT, SNAT for
//! `externalTrafficPolicy: Cluster`) and of every backend-facing interface
//! (backend → client replies: reverse translation from conntrack). The
//! node must forward IPv4 and accept its own address as a source on those
//! interfaces (`ip_forward`, `accept_local`, no strict `rp_filter`);
//! setting those sysctls is the caller's job.
//!
//! Links live as long as the [`NodePort`] value; maps stay pinned. This
//! module owns the `NP_CT` and `NP_MAGLEV` pins and gives typed access to
//! them ([`Conntrack`], [`MaglevMap`]); it never writes the service maps,
//! and what the Maglev tables hold is `proxy::nodeport`'s decision.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, Map, MapData, MapError, MapInfo, MapType},
    programs::SchedClassifier,
};
use keelson_ebpf_common::{
    lb::{BACKENDS_MAP, SERVICES_MAP},
    nat::{
        CT_MAP, CtKey, CtValue, MAGLEV_MAP, MAX_CT, MAX_MAGLEV_ENTRIES, MaglevKey, PROG_NODEPORT,
    },
};
use tracing::{info, warn};

use super::{BpfError, OBJECT};

/// The loaded NodePort program.
pub struct NodePort {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    attached: Vec<String>,
}

impl NodePort {
    /// Loads the program with its maps pinned under `pin_dir` (on a
    /// bpffs): the service maps are reused when pinned there (created and
    /// pinned otherwise), the conntrack is reused unless its layout differs
    /// from this build's, in which case it is recreated empty.
    pub fn load(pin_dir: &Path) -> Result<Self, BpfError> {
        std::fs::create_dir_all(pin_dir).map_err(|source| BpfError::Bpffs {
            path: pin_dir.display().to_string(),
            source,
        })?;
        drop_incompatible(
            pin_dir,
            CT_MAP,
            (
                Some(MapType::LruHash),
                size_of::<CtKey>(),
                size_of::<CtValue>(),
                MAX_CT,
            ),
        )?;
        drop_incompatible(
            pin_dir,
            MAGLEV_MAP,
            (
                Some(MapType::Hash),
                size_of::<MaglevKey>(),
                size_of::<u32>(),
                MAX_MAGLEV_ENTRIES,
            ),
        )?;
        let pins =
            [SERVICES_MAP, BACKENDS_MAP, CT_MAP, MAGLEV_MAP].map(|name| (name, pin_dir.join(name)));
        let mut loader = EbpfLoader::new();
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT)?;
        classifier(&mut ebpf)?
            .load()
            .map_err(|source| BpfError::Program {
                name: PROG_NODEPORT,
                source,
            })?;
        info!(pin_dir = %pin_dir.display(), "loaded the NodePort program");
        Ok(Self {
            ebpf,
            pin_dir: pin_dir.to_path_buf(),
            attached: Vec::new(),
        })
    }

    /// Attaches the program to `interface`'s TC ingress, in the calling
    /// thread's network namespace. Call it for the external interface and
    /// for every interface replies from backends arrive on.
    pub fn attach(&mut self, interface: &str) -> Result<(), BpfError> {
        super::attach_tc_ingress(classifier(&mut self.ebpf)?, interface)?;
        info!(interface, "attached the NodePort program to TC ingress");
        self.attached.push(interface.to_owned());
        Ok(())
    }

    /// Interfaces the program is attached to, in attach order.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Where the maps are pinned.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// The pinned conntrack table.
    pub fn conntrack(&self) -> Result<Conntrack, BpfError> {
        Conntrack::open(&self.pin_dir)
    }
}

/// The pinned NodePort conntrack (`NP_CT`), for inspection and flushing.
pub struct Conntrack {
    map: HashMap<MapData, CtKey, CtValue>,
}

impl Conntrack {
    /// Opens the table pinned under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, BpfError> {
        let data = MapData::from_pin(pin_dir.join(CT_MAP)).map_err(map_err)?;
        let map = Map::from_map_data(data).map_err(map_err)?;
        Ok(Self {
            map: HashMap::try_from(map).map_err(map_err)?,
        })
    }

    /// Every entry (two per flow: forward and reply).
    pub fn entries(&self) -> Result<Vec<(CtKey, CtValue)>, BpfError> {
        self.map
            .iter()
            .map(|entry| entry.map_err(map_err))
            .collect()
    }

    /// Removes one entry; an absent one is not an error.
    pub fn remove(&mut self, key: &CtKey) -> Result<(), BpfError> {
        match self.map.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(map_err(source)),
        }
    }
}

/// The Maglev tables of NodePort services (`NP_MAGLEV`).
pub struct MaglevMap {
    map: HashMap<MapData, MaglevKey, u32>,
}

impl MaglevMap {
    /// Opens the map pinned under `pin_dir` (by [`NodePort::load`]).
    pub fn open(pin_dir: &Path) -> Result<Self, BpfError> {
        let err = |source| BpfError::Map {
            name: MAGLEV_MAP,
            source,
        };
        let data = MapData::from_pin(pin_dir.join(MAGLEV_MAP)).map_err(err)?;
        let map = Map::from_map_data(data).map_err(err)?;
        Ok(Self {
            map: HashMap::try_from(map).map_err(err)?,
        })
    }

    /// Every entry: (service id, index) → slot.
    pub fn entries(&self) -> Result<Vec<(MaglevKey, u32)>, BpfError> {
        self.map
            .iter()
            .map(|entry| {
                entry.map_err(|source| BpfError::Map {
                    name: MAGLEV_MAP,
                    source,
                })
            })
            .collect()
    }

    pub fn put(&mut self, key: &MaglevKey, slot: u32) -> Result<(), BpfError> {
        self.map
            .insert(key, slot, 0)
            .map_err(|source| BpfError::Map {
                name: MAGLEV_MAP,
                source,
            })
    }

    /// Removes one entry; an absent one is not an error.
    pub fn delete(&mut self, key: &MaglevKey) -> Result<(), BpfError> {
        match self.map.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(BpfError::Map {
                name: MAGLEV_MAP,
                source,
            }),
        }
    }
}

/// (type, key size, value size, capacity) of a pinned map.
type Layout = (Option<MapType>, usize, usize, u32);

/// Unpins `pin_dir/name` when pinned by a build with another layout.
fn drop_incompatible(pin_dir: &Path, name: &'static str, want: Layout) -> Result<(), BpfError> {
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
    );
    if found == want {
        return Ok(());
    }
    warn!(map = name, path = %path.display(), ?found, "pinned map has another layout; recreating it empty");
    std::fs::remove_file(&path).map_err(|source| BpfError::Bpffs {
        path: path.display().to_string(),
        source,
    })
}

fn classifier(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, BpfError> {
    ebpf.program_mut(PROG_NODEPORT)
        .ok_or(BpfError::MissingProgram(PROG_NODEPORT))?
        .try_into()
        .map_err(|source| BpfError::Program {
            name: PROG_NODEPORT,
            source,
        })
}

fn map_err(source: MapError) -> BpfError {
    BpfError::Map {
        name: CT_MAP,
        source,
    }
}
