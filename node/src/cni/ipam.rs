//! The pod CIDR's address allocator: the only code that hands out or frees
//! pod IPs on this node. State is files, so it survives crashes and needs
//! no daemon:
//!
//! ```text
//! <dataDir>/networks/<name>/
//!   lock            flock'd exclusively around every read-modify-write
//!   last-reserved   the address handed out last (allocation goes round-robin)
//!   10.244.0.2      one file per allocated address: "<container id>\n<ifname>\n[<ns/pod>\n]"
//! ```
//!
//! The network, gateway (first) and broadcast addresses are never handed
//! out. An allocation is keyed by container id + interface name: allocating
//! again returns the same address (an ADD retried by the runtime), freeing
//! an unknown key frees nothing. A file is written whole (temp file, fsync,
//! rename) so a crash leaves either no allocation or a complete one. The
//! pure parts — [`Pool`] and the file format — are unit-tested here; the
//! store is exercised by the CNI integration tests' concurrent ADDs.

use std::{
    collections::HashSet,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use ipnet::Ipv4Net;
use thiserror::Error;
use tracing::{debug, warn};

use super::config::gateway_of;

const LOCK_FILE: &str = "lock";
const LAST_RESERVED_FILE: &str = "last-reserved";
const TMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Error)]
pub enum IpamError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the IPAM store {path} stayed locked for {waited:?}")]
    Busy { path: PathBuf, waited: Duration },
    #[error(
        "all {size} pod addresses of {cidr} are allocated (network, gateway {gateway} and broadcast are reserved)"
    )]
    Exhausted {
        cidr: Ipv4Net,
        gateway: Ipv4Addr,
        size: u32,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IpamError + use<> {
    let path = path.to_owned();
    move |source| IpamError::Io {
        action,
        path,
        source,
    }
}

/// The assignable addresses of a pod CIDR: everything but the network
/// address, the gateway (network + 1) and the broadcast address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    cidr: Ipv4Net,
}

impl Pool {
    /// `cidr` must be a /30 or larger (the config checks it); anything
    /// smaller yields an empty pool.
    pub fn new(cidr: Ipv4Net) -> Self {
        Self { cidr: cidr.trunc() }
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    pub fn gateway(&self) -> Ipv4Addr {
        gateway_of(self.cidr)
    }

    fn first(&self) -> u32 {
        u32::from(self.cidr.network()).saturating_add(2)
    }

    fn last(&self) -> u32 {
        u32::from(self.cidr.broadcast()).saturating_sub(1)
    }

    /// How many pods the pool can address.
    pub fn size(&self) -> u32 {
        (self.last() + 1).saturating_sub(self.first())
    }

    /// Whether `ip` may be handed to a pod.
    pub fn is_assignable(&self, ip: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(ip))
    }

    /// The first free address after `last_reserved` (wrapping round), or
    /// from the start of the pool without one.
    pub fn next_free(
        &self,
        last_reserved: Option<Ipv4Addr>,
        taken: &HashSet<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        let size = self.size();
        if size == 0 {
            return None;
        }
        let start = match last_reserved {
            Some(ip) if self.is_assignable(ip) => u32::from(ip) - self.first() + 1,
            _ => 0,
        };
        (0..size)
            .map(|i| Ipv4Addr::from(self.first() + (start + i) % size))
            .find(|ip| !taken.contains(ip))
    }
}

/// Who holds an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub container_id: String,
    pub ifname: String,
    /// `namespace/name`, for people reading the store.
    pub pod: Option<String>,
}

impl Owner {
    fn matches(&self, container_id: &str, ifname: &str) -> bool {
        self.container_id == container_id && self.ifname == ifname
    }

    /// The file's content.
    pub fn encode(&self) -> String {
        let mut s = format!("{}\n{}\n", self.container_id, self.ifname);
        if let Some(pod) = self.pod.as_deref().filter(|p| !p.contains(['\n', '\r'])) {
            s.push_str(pod);
            s.push('\n');
        }
        s
    }

    /// Parses a file's content; `None` for anything not written by
    /// [`Owner::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        let mut lines = s.lines();
        let container_id = lines.next().filter(|l| !l.is_empty())?.to_owned();
        let ifname = lines.next().filter(|l| !l.is_empty())?.to_owned();
        let pod = lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
        Some(Self {
            container_id,
            ifname,
            pod,
        })
    }
}

/// One network's directory of allocations.
pub struct Store {
    dir: PathBuf,
    pool: Pool,
}

impl Store {
    /// Opens (creating it when missing) the store in `dir`.
    pub fn open(dir: PathBuf, pool: Pool) -> Result<Self, IpamError> {
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        Ok(Self { dir, pool })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the store's exclusive lock, waiting up to `timeout` for
    /// another plugin process to finish.
    pub fn lock(&self, timeout: Duration) -> Result<Locked<'_>, IpamError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error("opening", &path))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Locked {
                        store: self,
                        _lock: file,
                    });
                }
                Err(fs::TryLockError::WouldBlock) if started.elapsed() < timeout => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(IpamError::Busy {
                        path,
                        waited: started.elapsed(),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_error("locking", &path)(e)),
            }
        }
    }
}

/// The store while this process holds its lock (released on drop, or by
/// the kernel when the process dies).
pub struct Locked<'a> {
    store: &'a Store,
    _lock: File,
}

impl Locked<'_> {
    /// Every allocation file: its address and owner (`None` when the file
    /// cannot be read as one — such an address is still treated as taken).
    pub fn allocations(&self) -> Result<Vec<(Ipv4Addr, Option<Owner>)>, IpamError> {
        let dir = &self.store.dir;
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
            let entry = entry.map_err(io_error("listing", dir))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let owner = match fs::read_to_string(&path) {
                Ok(content) => Owner::decode(&content),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("reading", &path)(e)),
            };
            if owner.is_none() {
                warn!(%ip, path = %path.display(), "unreadable IPAM entry; keeping the address reserved");
            }
            out.push((ip, owner));
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }

    /// The address held by `container_id` + `ifname`, if any.
    pub fn find(&self, container_id: &str, ifname: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        Ok(self
            .allocations()?
            .into_iter()
            .find(|(_, o)| o.as_ref().is_some_and(|o| o.matches(container_id, ifname)))
            .map(|(ip, _)| ip))
    }

    /// Allocates an address for `owner`, or returns the one it holds.
    pub fn allocate(&self, owner: &Owner) -> Result<Ipv4Addr, IpamError> {
        let allocations = self.allocations()?;
        if let Some((ip, _)) = allocations.iter().find(|(_, o)| {
            o.as_ref()
                .is_some_and(|o| o.matches(&owner.container_id, &owner.ifname))
        }) {
            debug!(%ip, "address already allocated to this container");
            return Ok(*ip);
        }
        let taken: HashSet<Ipv4Addr> = allocations.iter().map(|(ip, _)| *ip).collect();
        let pool = self.store.pool;
        let ip = pool
            .next_free(self.last_reserved(), &taken)
            .ok_or(IpamError::Exhausted {
                cidr: pool.cidr(),
                gateway: pool.gateway(),
                size: pool.size(),
            })?;
        self.write_atomically(&ip.to_string(), owner.encode().as_bytes())?;
        self.write_atomically(LAST_RESERVED_FILE, ip.to_string().as_bytes())?;
        Ok(ip)
    }

    /// Frees whatever `container_id` + `ifname` holds; returns the freed
    /// addresses (none for an unknown container).
    pub fn release(&self, container_id: &str, ifname: &str) -> Result<Vec<Ipv4Addr>, IpamError> {
        let mut freed = Vec::new();
        for (ip, owner) in self.allocations()? {
            if owner.is_some_and(|o| o.matches(container_id, ifname)) {
                let path = self.store.dir.join(ip.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => freed.push(ip),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("removing", &path)(e)),
                }
            }
        }
        if !freed.is_empty() {
            self.sync_dir()?;
        }
        Ok(freed)
    }

    fn last_reserved(&self) -> Option<Ipv4Addr> {
        fs::read_to_string(self.store.dir.join(LAST_RESERVED_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Writes `name` whole or not at all: a temp file, fsync, rename over,
    /// fsync of the directory.
    fn write_atomically(&self, name: &str, content: &[u8]) -> Result<(), IpamError> {
        let dir = &self.store.dir;
        let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
        let path = dir.join(name);
        let mut file = File::create(&tmp).map_err(io_error("creating", &tmp))?;
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .map_err(io_error("writing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_error("renaming", &tmp))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), IpamError> {
        let dir = &self.store.dir;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("syncing", dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> Pool {
        Pool::new(cidr.parse().unwrap())
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn pool_skips_network_gateway_and_broadcast() {
        let p = pool("10.244.0.0/24");
        assert_eq!(p.gateway(), ip("10.244.0.1"));
        assert_eq!(p.size(), 253);
        assert!(!p.is_assignable(ip("10.244.0.0")));
        assert!(!p.is_assignable(ip("10.244.0.1")));
        assert!(p.is_assignable(ip("10.244.0.2")));
        assert!(p.is_assignable(ip("10.244.0.254")));
        assert!(!p.is_assignable(ip("10.244.0.255")));
        assert!(!p.is_assignable(ip("10.244.1.2")));
        let tiny = pool("10.0.0.0/30");
        assert_eq!(tiny.size(), 1);
        assert_eq!(tiny.next_free(None, &HashSet::new()), Some(ip("10.0.0.2")));
        assert_eq!(pool("10.0.0.0/31").size(), 0);
        assert_eq!(pool("10.0.0.0/32").next_free(None, &HashSet::new()), None);
    }

    #[test]
    fn next_free_goes_round_robin_and_wraps() {
        let p = pool("10.0.0.0/29"); // .2 … .6
        let mut taken = HashSet::new();
        assert_eq!(p.next_free(None, &taken), Some(ip("10.0.0.2")));
        assert_eq!(
            p.next_free(Some(ip("10.0.0.2")), &taken),
            Some(ip("10.0.0.3"))
        );
        // After the last address it wraps to the first.
        assert_eq!(
            p.next_free(Some(ip("10.0.0.6")), &taken),
            Some(ip("10.0.0.2"))
        );
        // A marker outside the pool (the CIDR changed) starts over.
        assert_eq!(
            p.next_free(Some(ip("192.168.0.9")), &taken),
            Some(ip("10.0.0.2"))
        );
        taken.extend([ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.5")]);
        assert_eq!(
            p.next_free(Some(ip("10.0.0.3")), &taken),
            Some(ip("10.0.0.4"))
        );
        assert_eq!(
            p.next_free(Some(ip("10.0.0.5")), &taken),
            Some(ip("10.0.0.6"))
        );
        taken.insert(ip("10.0.0.6"));
        assert_eq!(
            p.next_free(Some(ip("10.0.0.6")), &taken),
            Some(ip("10.0.0.4"))
        );
        taken.insert(ip("10.0.0.4"));
        assert_eq!(p.next_free(Some(ip("10.0.0.4")), &taken), None);
    }

    #[test]
    fn every_address_is_handed_out_once_before_exhaustion() {
        let p = pool("10.9.0.0/26");
        let mut taken = HashSet::new();
        let mut last = None;
        while let Some(next) = p.next_free(last, &taken) {
            assert!(p.is_assignable(next));
            assert!(taken.insert(next), "{next} handed out twice");
            last = Some(next);
        }
        assert_eq!(taken.len() as u32, p.size());
        assert_eq!(taken.len(), 64 - 3);
    }

    #[test]
    fn owner_file_round_trips() {
        let owner = Owner {
            container_id: "abc".into(),
            ifname: "eth0".into(),
            pod: Some("shop/web-0".into()),
        };
        assert_eq!(owner.encode(), "abc\neth0\nshop/web-0\n");
        assert_eq!(Owner::decode(&owner.encode()), Some(owner.clone()));
        let bare = Owner { pod: None, ..owner };
        assert_eq!(Owner::decode(&bare.encode()), Some(bare));
        // host-local's CRLF style reads too; junk does not.
        assert_eq!(
            Owner::decode("abc\r\neth0").map(|o| o.ifname),
            Some("eth0".into())
        );
        assert_eq!(Owner::decode(""), None);
        assert_eq!(Owner::decode("only-one-line"), None);
        let odd = Owner {
            container_id: "c".into(),
            ifname: "eth0".into(),
            pod: Some("bad\nname".into()),
        };
        assert_eq!(odd.encode(), "c\neth0\n");
    }

    #[test]
    fn store_allocates_idempotently_and_frees() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("networks/t"), pool("10.0.0.0/29")).unwrap();
        let owner = |id: &str| Owner {
            container_id: id.into(),
            ifname: "eth0".into(),
            pod: None,
        };
        let locked = store.lock(Duration::from_secs(1)).unwrap();
        let a = locked.allocate(&owner("a")).unwrap();
        assert_eq!(a, ip("10.0.0.2"));
        assert_eq!(locked.allocate(&owner("a")).unwrap(), a);
        assert_eq!(locked.find("a", "eth0").unwrap(), Some(a));
        assert_eq!(locked.find("a", "eth1").unwrap(), None);
        let b = locked.allocate(&owner("b")).unwrap();
        assert_eq!(b, ip("10.0.0.3"));
        assert_eq!(
            fs::read_to_string(store.dir().join("10.0.0.3")).unwrap(),
            "b\neth0\n"
        );
        assert_eq!(locked.release("a", "eth0").unwrap(), vec![a]);
        assert!(locked.release("a", "eth0").unwrap().is_empty());
        assert!(locked.release("nobody", "eth0").unwrap().is_empty());
        // Round-robin: the freed .2 comes back only after the rest.
        for (id, want) in [
            ("c", "10.0.0.4"),
            ("d", "10.0.0.5"),
            ("e", "10.0.0.6"),
            ("f", "10.0.0.2"),
        ] {
            assert_eq!(locked.allocate(&owner(id)).unwrap(), ip(want));
        }
        assert!(matches!(
            locked.allocate(&owner("g")),
            Err(IpamError::Exhausted { size: 5, .. })
        ));
        // An unreadable entry keeps its address reserved.
        drop(locked);
        fs::write(store.dir().join("10.0.0.9"), "").unwrap();
        let locked = store.lock(Duration::from_secs(1)).unwrap();
        assert!(
            locked
                .allocations()
                .unwrap()
                .contains(&(ip("10.0.0.9"), None))
        );
    }

    #[test]
    fn a_held_lock_makes_others_wait_then_give_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_owned(), pool("10.0.0.0/29")).unwrap();
        let other = Store::open(dir.path().to_owned(), pool("10.0.0.0/29")).unwrap();
        let held = store.lock(Duration::from_secs(1)).unwrap();
        assert!(matches!(
            other.lock(Duration::from_millis(50)),
            Err(IpamError::Busy { .. })
        ));
        drop(held);
        other.lock(Duration::from_millis(50)).unwrap();
    }
}
