//! Loader of the NodePort TC program (`ebpf/programs/src/nodeport.rs`):
//! loads `nodeport_ingress` against the load balancer's pinned maps (the
//! ones [`super::sock_lb::SockLb`] pins and `proxy::maps` writes: services,
//! backends, affinity; and the flow ring and counters it shares with the
//! socket programs) and its own pinned conntrack `NP_CT` and Maglev tables
//! `NP_MAGLEV`, and attaches it to TC ingress of named interfaces in the
//! calling thread's network namespace.
//!
//! Hook layout: the same program on ingress of the node's external
//! interface (client → NodePort: DNAT, SNAT for
//! `externalTrafficPolicy: Cluster`) and of every backend-facing interface
//! (backend → client replies: reverse translation from conntrack). The
//! node must forward IPv4 and accept its own address as a source on those
//! interfaces (`ip_forward`, `accept_local`, no strict `rp_filter`);
//! setting those sysctls is the caller's job.
//!
//! Everything outlives the agent. Maps are pinned by name in the pin
//! directory; on TCX kernels (≥ 6.6) each interface's link is pinned at
//! `<pin dir>/links/nodeport_<interface>` ([`link_pin`]), so NodePort keeps
//! working while no agent runs. A new [`NodePort::attach`] updates the
//! pinned link in place (`BPF_LINK_UPDATE`: never two copies, never none);
//! only a link whose device is gone is replaced by a new one.
//! [`detach_pinned`] removes every such link (`keelson-node proxy
//! --cleanup`), [`NodePort::detach_others`] those of interfaces no longer
//! served. Before TCX the links are clsact filters that live as long as
//! the [`NodePort`] value.
//!
//! This module owns the `NP_CT` and `NP_MAGLEV` pins and the `nodeport_*`
//! link pins and gives typed access to the maps ([`Conntrack`],
//! [`MaglevMap`]); it never writes the service maps, and what the Maglev
//! tables hold is `proxy::nodeport`'s decision.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, Map, MapData, MapError, MapInfo, MapType},
    programs::SchedClassifier,
};
use keelson_ebpf_common::{
    flows::MAP_NAMES as FLOW_MAP_NAMES,
    lb::MAP_NAMES as LB_MAP_NAMES,
    nat::{
        CT_MAP, CtKey, CtValue, MAGLEV_MAP, MAX_CT, MAX_MAGLEV_ENTRIES, MaglevKey, PROG_NODEPORT,
    },
};
use tracing::{debug, info, warn};

use super::{BpfError, OBJECT, TcAttach, sock_lb::LINKS_DIR};

/// Prefix of the NodePort link pins in `<pin dir>/links/`.
pub const LINK_PREFIX: &str = "nodeport_";

/// Where the NodePort link of `interface` is pinned: `<pin dir>/links/
/// nodeport_<interface>`, with every byte outside `[A-Za-z0-9_-]` written
/// as `%XX` (bpffs refuses dots, which interface names may hold).
pub fn link_pin(pin_dir: &Path, interface: &str) -> PathBuf {
    let mut name = String::from(LINK_PREFIX);
    for byte in interface.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02x}"));
        }
    }
    pin_dir.join(LINKS_DIR).join(name)
}

/// The interface a link pin name stands for (the inverse of [`link_pin`]);
/// `None` for other names, staged pins included.
fn pinned_interface(name: &str) -> Option<String> {
    let escaped = name.strip_prefix(LINK_PREFIX)?;
    let mut bytes = Vec::new();
    let mut rest = escaped.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The loaded NodePort program.
pub struct NodePort {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    attached: Vec<String>,
}

impl NodePort {
    /// Loads the program with its maps pinned under `pin_dir` (on a
    /// bpffs): the load balancer's maps are reused when pinned there
    /// (created and pinned otherwise — load [`super::sock_lb::SockLb`]
    /// first: it recreates pins whose layout changed), the conntrack and
    /// Maglev tables are reused unless their layout differs from this
    /// build's, in which case they are recreated empty.
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
        // Every shared map, so the programs of both loaders meet in one
        // set (and no unpinned duplicate of a large map is created).
        let pins: Vec<(&'static str, PathBuf)> = LB_MAP_NAMES
            .iter()
            .chain(FLOW_MAP_NAMES.iter())
            .chain([CT_MAP, MAGLEV_MAP].iter())
            .map(|name| (*name, pin_dir.join(name)))
            .collect();
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
    /// thread's network namespace, through the link pinned for it (see
    /// the module docs). Call it for the external interface and for every
    /// interface replies from backends arrive on.
    pub fn attach(&mut self, interface: &str) -> Result<TcAttach, BpfError> {
        let pin = link_pin(&self.pin_dir, interface);
        let links = self.pin_dir.join(LINKS_DIR);
        std::fs::create_dir_all(&links).map_err(|source| BpfError::Bpffs {
            path: links.display().to_string(),
            source,
        })?;
        let how = super::attach_tc_ingress_pinned(
            classifier(&mut self.ebpf)?,
            PROG_NODEPORT,
            interface,
            &pin,
        )?;
        info!(interface, pin = %pin.display(), ?how, "attached the NodePort program to TC ingress");
        self.attached.push(interface.to_owned());
        Ok(how)
    }

    /// Detaches the NodePort links pinned for interfaces this value did
    /// not attach to (a previous agent served them); returns their names.
    pub fn detach_others(&self) -> Result<Vec<String>, BpfError> {
        let stale: Vec<String> = pinned_links(&self.pin_dir)?
            .into_iter()
            .filter(|interface| !self.attached.contains(interface))
            .collect();
        for interface in &stale {
            unpin(&link_pin(&self.pin_dir, interface))?;
            info!(
                interface,
                "detached the NodePort program from an interface no longer served"
            );
        }
        Ok(stale)
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

/// The entries of the link pin directory under `pin_dir`; `None` when
/// nothing was ever pinned there.
fn link_pins(pin_dir: &Path) -> Result<Option<std::fs::ReadDir>, BpfError> {
    let links = pin_dir.join(LINKS_DIR);
    match std::fs::read_dir(&links) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BpfError::Bpffs {
            path: links.display().to_string(),
            source,
        }),
    }
}

/// Interfaces with a NodePort link pinned under `pin_dir`.
pub fn pinned_links(pin_dir: &Path) -> Result<Vec<String>, BpfError> {
    let Some(entries) = link_pins(pin_dir)? else {
        return Ok(Vec::new());
    };
    let mut interfaces: Vec<String> = entries
        .flatten()
        .filter_map(|e| pinned_interface(&e.file_name().to_string_lossy()))
        .collect();
    interfaces.sort();
    Ok(interfaces)
}

/// Detaches the NodePort program from every interface by removing its
/// link pins under `pin_dir` (staged ones included); maps stay pinned.
/// Returns the interfaces it was detached from. Missing pins are fine.
pub fn detach_pinned(pin_dir: &Path) -> Result<Vec<String>, BpfError> {
    let Some(entries) = link_pins(pin_dir)? else {
        return Ok(Vec::new());
    };
    let mut detached = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(LINK_PREFIX) {
            continue;
        }
        unpin(&entry.path())?;
        if let Some(interface) = pinned_interface(&name) {
            detached.push(interface);
        }
    }
    detached.sort();
    Ok(detached)
}

/// Removes one pin; an absent one is fine.
fn unpin(path: &Path) -> Result<(), BpfError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            debug!(path = %path.display(), "unpinned link");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BpfError::Bpffs {
            path: path.display().to_string(),
            source,
        }),
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

    /// The last-seen time of one entry (`None` when absent).
    pub fn last_seen(&self, key: &CtKey) -> Result<Option<u64>, BpfError> {
        match self.map.get(key, 0) {
            Ok(value) => Ok(Some(value.last_seen_ns)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(None)
            }
            Err(source) => Err(map_err(source)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pins_escape_names_bpffs_refuses_and_round_trip() {
        let dir = Path::new("/sys/fs/bpf/keelson");
        let pin = link_pin(dir, "eth0.100");
        assert_eq!(pin, dir.join("links/nodeport_eth0%2e100"));
        assert_eq!(
            pinned_interface("nodeport_eth0%2e100").as_deref(),
            Some("eth0.100")
        );
        for name in ["eth0", "kt123a4", "a%b", "x_y-z", "br.0%2e"] {
            let pin = link_pin(dir, name);
            let file = pin.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!file.contains('.'), "{file}");
            assert_eq!(pinned_interface(&file).as_deref(), Some(name));
        }
        // Staged pins, other programs' pins and broken escapes are not links.
        assert_eq!(pinned_interface("nodeport_eth0%new"), None);
        assert_eq!(pinned_interface("sock4_connect"), None);
        assert_eq!(pinned_interface("nodeport_eth0%4"), None);
    }
}
