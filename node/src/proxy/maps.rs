//! The map writer: turns a [`DesiredState`] into the load balancer's BPF
//! map entries, incrementally, never exposing a half-written service.
//!
//! [`LbMapWriter`] keeps a mirror of what the maps hold. It is built by
//! reading the maps back ([`LbMapWriter::new`]), so an agent restart
//! reconciles against the pinned maps instead of flushing them. Each
//! [`LbMapWriter::apply`] computes the complete target content (keeping
//! service and backend ids that already exist, allocating new ids never in
//! use in the maps) and writes the difference in an order that keeps every
//! intermediate state valid for a program reading concurrently:
//!
//! 1. new or changed backends, then new affinity memberships;
//! 2. the backend slots of a new *revision* of each changed service (a
//!    service of at most [`INLINE_BACKENDS`] backends has no slots: its
//!    entry carries the backend ids);
//! 3. the service entries (slot 0) — the switch to the new revision or
//!    the new inline backend set, one atomic map update each;
//! 4. then removals: service entries of removed frontends, stale slots,
//!    stale affinity memberships, unreferenced backends.
//!
//! A failed write leaves the mirror equal to what was written so far, so the
//! next `apply` continues from there. This module talks to the maps only
//! through [`LbMapStore`] (implemented by [`crate::bpf::sock_lb::LbMaps`]);
//! it never loads programs and never touches the LRU maps the programs own
//! (affinity, reverse NAT).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::Duration,
};

use keelson_ebpf_common::lb::{
    ALG_MAGLEV, ALG_RANDOM, AffinityMatchKey, BACKEND_FLAG_TERMINATING, BackendValue,
    INLINE_BACKENDS, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, KIND_CLUSTER_IP, KIND_EXTERNAL_IP,
    KIND_LOAD_BALANCER, KIND_NODE_PORT, MAX_AFFINITY_MATCH, MAX_SLOTS, SVC_FLAG_AFFINITY,
    SVC_FLAG_EXTERNAL_LOCAL, ServiceKey, ServiceValue, ip_words, words_ip,
};
use thiserror::Error;
use tracing::debug;

use super::model::{
    Algorithm, BackendState, DesiredState, Frontend, FrontendKind, LbService, Protocol,
};
use crate::bpf::{
    BpfError,
    sock_lb::{LbCapacity, LbMaps},
};

/// The map operations the writer needs; [`LbMaps`] is the real one.
pub trait LbMapStore {
    fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, BpfError>;
    fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), BpfError>;
    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), BpfError>;
    fn backends(&self) -> Result<Vec<(u32, BackendValue)>, BpfError>;
    fn put_backend(&mut self, id: u32, value: &BackendValue) -> Result<(), BpfError>;
    fn delete_backend(&mut self, id: u32) -> Result<(), BpfError>;
    fn affinity_matches(&self) -> Result<Vec<AffinityMatchKey>, BpfError>;
    fn put_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError>;
    fn delete_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError>;
    /// Capacities of the service and backend maps.
    fn capacity(&self) -> LbCapacity {
        LbCapacity::default()
    }
    /// Zeroes the counters of a service id about to be handed out.
    fn reset_service_counters(&mut self, _id: u32) -> Result<(), BpfError> {
        Ok(())
    }
    /// Zeroes the counters of a backend id about to be handed out.
    fn reset_backend_counters(&mut self, _id: u32) -> Result<(), BpfError> {
        Ok(())
    }
}

impl LbMapStore for LbMaps {
    fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, BpfError> {
        LbMaps::services(self)
    }
    fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), BpfError> {
        LbMaps::put_service(self, key, value)
    }
    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), BpfError> {
        LbMaps::delete_service(self, key)
    }
    fn backends(&self) -> Result<Vec<(u32, BackendValue)>, BpfError> {
        LbMaps::backends(self)
    }
    fn put_backend(&mut self, id: u32, value: &BackendValue) -> Result<(), BpfError> {
        LbMaps::put_backend(self, id, value)
    }
    fn delete_backend(&mut self, id: u32) -> Result<(), BpfError> {
        LbMaps::delete_backend(self, id)
    }
    fn affinity_matches(&self) -> Result<Vec<AffinityMatchKey>, BpfError> {
        LbMaps::affinity_matches(self)
    }
    fn put_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError> {
        LbMaps::put_affinity_match(self, key)
    }
    fn delete_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError> {
        LbMaps::delete_affinity_match(self, key)
    }
    fn capacity(&self) -> LbCapacity {
        LbMaps::capacity(self)
    }
    fn reset_service_counters(&mut self, id: u32) -> Result<(), BpfError> {
        LbMaps::reset_service_counters(self, id)
    }
    fn reset_backend_counters(&mut self, id: u32) -> Result<(), BpfError> {
        LbMaps::reset_backend_counters(self, id)
    }
}

/// Failures of the map writer.
#[derive(Debug, Error)]
pub enum MapsError {
    #[error("reading the load-balancer maps: {0}")]
    Read(#[source] Box<BpfError>),
    #[error("writing {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: Box<BpfError>,
    },
    #[error("{frontend}: {count} backends exceed the {MAX_SLOTS} slots of a service entry")]
    TooManyBackends { frontend: String, count: usize },
    #[error("{map}: {need} entries exceed the map's capacity of {capacity}")]
    Capacity {
        map: &'static str,
        need: usize,
        capacity: u32,
    },
    #[error("no free {0} id left")]
    IdsExhausted(&'static str),
}

/// What one [`LbMapWriter::apply`] wrote and deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub backends_written: usize,
    pub matches_written: usize,
    pub slots_written: usize,
    pub services_written: usize,
    pub services_deleted: usize,
    pub slots_deleted: usize,
    pub matches_deleted: usize,
    pub backends_deleted: usize,
}

impl ApplyStats {
    /// Whether the maps already matched the desired state.
    pub fn is_noop(&self) -> bool {
        *self == Self::default()
    }
}

/// A frontend as the maps hold it, decoded (see [`live_services`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveService {
    pub service_id: u32,
    /// Backends in slot order.
    pub backends: Vec<(IpAddr, u16)>,
    pub affinity: Option<Duration>,
    pub revision: u8,
}

/// The complete content the writer wants in the maps.
#[derive(Debug, Default, PartialEq, Eq)]
struct Content {
    services: BTreeMap<ServiceKey, ServiceValue>,
    backends: BTreeMap<u32, BackendValue>,
    matches: BTreeSet<AffinityMatchKey>,
}

/// Writes desired states into the maps behind an [`LbMapStore`].
pub struct LbMapWriter<S> {
    store: S,
    /// What the maps hold, as far as this writer knows.
    mirror: Content,
}

impl<S: LbMapStore> LbMapWriter<S> {
    /// Reads the maps' current content back; nothing is written.
    pub fn new(store: S) -> Result<Self, MapsError> {
        let mirror = Content {
            services: store.services().map_err(read_err)?.into_iter().collect(),
            backends: store.backends().map_err(read_err)?.into_iter().collect(),
            matches: store
                .affinity_matches()
                .map_err(read_err)?
                .into_iter()
                .collect(),
        };
        debug!(
            entries = mirror.services.len(),
            backends = mirror.backends.len(),
            "read back the load-balancer maps"
        );
        Ok(Self { store, mirror })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// Makes the maps hold exactly `desired`, writing only differences.
    pub fn apply(&mut self, desired: &DesiredState) -> Result<ApplyStats, MapsError> {
        let target = plan(
            &self.mirror,
            desired.services.iter(),
            self.store.capacity(),
            0,
        )?;
        self.write(target, None, desired.services.len())
    }

    /// Makes the maps hold `desired` for the `changed` frontends only —
    /// what a watch event touched — leaving every other frontend as it is
    /// (the cost is that of the changed frontends, not of the whole
    /// state). Same write order and guarantees as [`Self::apply`]; a
    /// backend is removed once no slot or entry in the maps names it.
    pub fn apply_changes<'a>(
        &mut self,
        desired: &DesiredState,
        changed: impl IntoIterator<Item = &'a Frontend>,
    ) -> Result<ApplyStats, MapsError> {
        let changed: BTreeSet<Frontend> = changed.into_iter().copied().collect();
        let scope: BTreeSet<ServiceKey> = changed.iter().map(entry_key).collect();
        let in_scope = scope
            .iter()
            .map(|key| frontend_keys(&self.mirror.services, key).count())
            .sum::<usize>();
        let target = plan(
            &self.mirror,
            changed
                .iter()
                .filter_map(|f| Some((f, desired.services.get(f)?))),
            self.store.capacity(),
            self.mirror.services.len() - in_scope,
        )?;
        self.write(target, Some(&scope), desired.services.len())
    }

    /// Writes `target` (the content of every frontend, or of the frontends
    /// in `scope`'s service entries) in the safe order.
    fn write(
        &mut self,
        target: Content,
        scope: Option<&BTreeSet<ServiceKey>>,
        frontends: usize,
    ) -> Result<ApplyStats, MapsError> {
        let mut stats = ApplyStats::default();
        let Self { store, mirror } = self;
        // What the removals below may consider: everything, or the keys of
        // the scoped frontends (and their services' affinity memberships).
        let scoped_keys: Option<Vec<ServiceKey>> = scope.map(|scope| {
            scope
                .iter()
                .flat_map(|key| frontend_keys(&mirror.services, key).map(|(k, _)| *k))
                .collect()
        });
        let scoped_ids: Option<BTreeSet<u32>> = scoped_keys.as_ref().map(|keys| {
            keys.iter()
                .filter_map(|k| mirror.services.get(k).map(|v| v.service_id))
                .collect()
        });

        // 1. Backends and affinity memberships that the new slots need
        // (a new id's counters are zeroed first: its last user's are stale).
        for (id, value) in &target.backends {
            if mirror.backends.get(id) != Some(value) {
                if !mirror.backends.contains_key(id) {
                    store
                        .reset_backend_counters(*id)
                        .map_err(|source| write_err(format!("counters of backend {id}"), source))?;
                }
                store
                    .put_backend(*id, value)
                    .map_err(|source| write_err(format!("backend {id}"), source))?;
                mirror.backends.insert(*id, *value);
                stats.backends_written += 1;
            }
        }
        for key in &target.matches {
            if !mirror.matches.contains(key) {
                store
                    .put_affinity_match(key)
                    .map_err(|source| write_err(format!("affinity match {key:?}"), source))?;
                mirror.matches.insert(*key);
                stats.matches_written += 1;
            }
        }
        // Backends that replaced or removed entries named: freed below
        // once nothing in the maps names them.
        let mut orphan_candidates: BTreeSet<u32> = BTreeSet::new();
        // 2. Backend slots of new revisions, 3. then the switches.
        for slot_zero in [false, true] {
            for (key, value) in &target.services {
                if (key.slot == 0) != slot_zero || mirror.services.get(key) == Some(value) {
                    continue;
                }
                if slot_zero && !mirror.services.contains_key(key) {
                    store
                        .reset_service_counters(value.service_id)
                        .map_err(|source| {
                            write_err(format!("counters of {}", describe(key)), source)
                        })?;
                }
                store
                    .put_service(key, value)
                    .map_err(|source| write_err(describe(key), source))?;
                if let Some(old) = mirror.services.insert(*key, *value) {
                    orphan_candidates.extend(inline_ids(&old));
                }
                if slot_zero {
                    stats.services_written += 1;
                } else {
                    stats.slots_written += 1;
                }
            }
        }
        // 4. Removals: service entries first, so nothing live refers to
        // what goes next.
        for slot_zero in [true, false] {
            let stale: Vec<ServiceKey> = match &scoped_keys {
                None => mirror.services.keys().copied().collect(),
                Some(keys) => keys.clone(),
            }
            .into_iter()
            .filter(|k| (k.slot == 0) == slot_zero && !target.services.contains_key(k))
            .collect();
            for key in stale {
                if let Some(value) = mirror.services.get(&key) {
                    if key.slot != 0 {
                        orphan_candidates.insert(value.backend_id);
                    }
                    orphan_candidates.extend(inline_ids(value));
                }
                store
                    .delete_service(&key)
                    .map_err(|source| write_err(describe(&key), source))?;
                mirror.services.remove(&key);
                if slot_zero {
                    stats.services_deleted += 1;
                } else {
                    stats.slots_deleted += 1;
                }
            }
        }
        let stale: Vec<AffinityMatchKey> = mirror
            .matches
            .difference(&target.matches)
            .filter(|m| {
                scoped_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&m.service_id))
            })
            .copied()
            .collect();
        for key in stale {
            store
                .delete_affinity_match(&key)
                .map_err(|source| write_err(format!("affinity match {key:?}"), source))?;
            mirror.matches.remove(&key);
            stats.matches_deleted += 1;
        }
        let stale: Vec<u32> = match scope {
            None => mirror
                .backends
                .keys()
                .filter(|id| !target.backends.contains_key(id))
                .copied()
                .collect(),
            // Only backends a removed slot or entry named, and only when
            // no slot or entry anywhere still does.
            Some(_) => {
                let mut unused = orphan_candidates;
                if !unused.is_empty() {
                    for value in mirror.services.values() {
                        unused.remove(&value.backend_id);
                        for id in inline_ids(value) {
                            unused.remove(&id);
                        }
                    }
                }
                unused.into_iter().collect()
            }
        };
        for id in stale {
            store
                .delete_backend(id)
                .map_err(|source| write_err(format!("backend {id}"), source))?;
            mirror.backends.remove(&id);
            stats.backends_deleted += 1;
        }
        if stats.is_noop() {
            debug!(frontends, "maps already up to date");
        } else {
            debug!(frontends, ?stats, "load-balancer maps updated");
        }
        Ok(stats)
    }

    /// The service id the maps give `frontend`, if they serve it.
    pub fn service_id(&self, frontend: &Frontend) -> Option<u32> {
        self.mirror
            .services
            .get(&entry_key(frontend))
            .map(|v| v.service_id)
    }

    /// The frontends the maps currently serve, decoded from the mirror.
    pub fn live(&self) -> BTreeMap<Frontend, LiveService> {
        decode(&self.mirror.services, &self.mirror.backends)
    }
}

/// Reads and decodes the frontends a store serves right now.
pub fn live_services<S: LbMapStore>(
    store: &S,
) -> Result<BTreeMap<Frontend, LiveService>, MapsError> {
    let services = store.services().map_err(read_err)?.into_iter().collect();
    let backends = store.backends().map_err(read_err)?.into_iter().collect();
    Ok(decode(&services, &backends))
}

fn decode(
    services: &BTreeMap<ServiceKey, ServiceValue>,
    backends: &BTreeMap<u32, BackendValue>,
) -> BTreeMap<Frontend, LiveService> {
    let mut live = BTreeMap::new();
    for (key, value) in services.iter().filter(|(k, _)| k.slot == 0) {
        let (Some(ip), Some(protocol)) =
            (words_ip(key.family, key.address), protocol(key.protocol))
        else {
            continue;
        };
        let frontend = Frontend {
            ip,
            port: u16::from_be(key.port),
            protocol,
        };
        let backends = entry_slots(services, key, value)
            .into_iter()
            .flatten()
            .filter_map(|id| backends.get(&id))
            .filter_map(|b| Some((words_ip(b.family, b.address)?, u16::from_be(b.port))))
            .collect();
        let affinity = (value.flags & SVC_FLAG_AFFINITY != 0)
            .then(|| Duration::from_secs(u64::from(value.affinity_timeout)));
        live.insert(
            frontend,
            LiveService {
                service_id: value.service_id,
                backends,
                affinity,
                revision: value.revision,
            },
        );
    }
    live
}

/// The backend id of each slot `1..=count` of the service entry `value`
/// of `key`, as the programs find it: inline in the entry, or in the slot
/// of its revision (`None` for a missing slot or one of another service).
fn entry_slots(
    services: &BTreeMap<ServiceKey, ServiceValue>,
    key: &ServiceKey,
    value: &ServiceValue,
) -> Vec<Option<u32>> {
    (1..=value.count)
        .map(|slot| {
            value.inline_backend(slot).or_else(|| {
                services
                    .get(&key.with_slot(slot, value.revision))
                    .filter(|s| s.service_id == value.service_id)
                    .map(|s| s.backend_id)
            })
        })
        .collect()
}

/// The backend ids a service entry carries inline.
fn inline_ids(value: &ServiceValue) -> impl Iterator<Item = u32> + '_ {
    value.backends.iter().copied().filter(|id| *id != 0)
}

fn write_err(what: String, source: BpfError) -> MapsError {
    MapsError::Write {
        what,
        source: Box::new(source),
    }
}

fn read_err(source: BpfError) -> MapsError {
    MapsError::Read(Box::new(source))
}

fn describe(key: &ServiceKey) -> String {
    let ip = words_ip(key.family, key.address).map_or_else(|| "?".to_owned(), |ip| ip.to_string());
    format!(
        "service {ip}:{}/{} slot {} revision {}",
        u16::from_be(key.port),
        key.protocol,
        key.slot,
        key.revision
    )
}

const fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

const fn protocol(number: u8) -> Option<Protocol> {
    match number {
        IPPROTO_TCP => Some(Protocol::Tcp),
        IPPROTO_UDP => Some(Protocol::Udp),
        IPPROTO_SCTP => Some(Protocol::Sctp),
        _ => None,
    }
}

const fn kind_number(kind: FrontendKind) -> u8 {
    match kind {
        FrontendKind::ClusterIp => KIND_CLUSTER_IP,
        FrontendKind::NodePort => KIND_NODE_PORT,
        FrontendKind::ExternalIp => KIND_EXTERNAL_IP,
        FrontendKind::LoadBalancer => KIND_LOAD_BALANCER,
    }
}

/// The service-entry key of a frontend.
fn entry_key(frontend: &Frontend) -> ServiceKey {
    let (family, address) = ip_words(frontend.ip);
    ServiceKey::service(
        address,
        frontend.port.to_be(),
        family,
        protocol_number(frontend.protocol),
    )
}

/// Every key of the frontend whose service entry is `entry` (the entry and
/// its slots of every revision).
fn frontend_keys<'m>(
    services: &'m BTreeMap<ServiceKey, ServiceValue>,
    entry: &ServiceKey,
) -> impl Iterator<Item = (&'m ServiceKey, &'m ServiceValue)> {
    // Keys order by address, port, slot, …: one range holds a frontend's
    // slots (and those of other families/protocols on the same address
    // and port, filtered out).
    let low = ServiceKey {
        slot: 0,
        family: 0,
        protocol: 0,
        scope: 0,
        revision: 0,
        ..*entry
    };
    let high = ServiceKey {
        slot: u16::MAX,
        family: u8::MAX,
        protocol: u8::MAX,
        scope: u8::MAX,
        revision: u8::MAX,
        ..*entry
    };
    let entry = *entry;
    services.range(low..=high).filter(move |(k, _)| {
        k.family == entry.family && k.protocol == entry.protocol && k.scope == entry.scope
    })
}

/// Lowest free ids ≥ 1, never one in `used`.
struct Ids<'a> {
    used: Option<BTreeSet<u32>>,
    /// Computes `used` at the first allocation (collecting every id in use
    /// is the costly part, and most updates allocate nothing).
    init: Option<Box<dyn FnOnce() -> BTreeSet<u32> + 'a>>,
    next: u32,
    /// Ids handed out are below this.
    limit: u32,
    what: &'static str,
}

impl<'a> Ids<'a> {
    fn new(used: BTreeSet<u32>, what: &'static str) -> Self {
        Self {
            used: Some(used),
            init: None,
            next: 1,
            limit: u32::MAX,
            what,
        }
    }

    fn lazy(init: impl FnOnce() -> BTreeSet<u32> + 'a, what: &'static str) -> Self {
        Self {
            used: None,
            init: Some(Box::new(init)),
            next: 1,
            limit: u32::MAX,
            what,
        }
    }

    /// Hands out only ids below `limit` (the array they index).
    fn below(self, limit: u32) -> Self {
        Self { limit, ..self }
    }

    fn alloc(&mut self) -> Result<u32, MapsError> {
        let used = match (&mut self.used, self.init.take()) {
            (Some(used), _) => used,
            (used @ None, init) => used.insert(init.map(|f| f()).unwrap_or_default()),
        };
        while used.contains(&self.next) {
            self.next = self
                .next
                .checked_add(1)
                .ok_or(MapsError::IdsExhausted(self.what))?;
        }
        let id = self.next;
        if id >= self.limit {
            return Err(MapsError::IdsExhausted(self.what));
        }
        used.insert(id);
        Ok(id)
    }
}

/// Backend identity: family, address, port (network order), protocol.
type BackendIdentity = (u8, [u32; 4], u16, u8);

/// Computes the maps' complete target content for `desired`, reusing the
/// ids and (when unchanged) the slot revisions found in `mirror`.
/// The target content of `services` (all of them, or the changed ones;
/// `others` counts the service-map entries of frontends not planned here).
fn plan<'a>(
    mirror: &Content,
    services: impl Iterator<Item = (&'a Frontend, &'a LbService)>,
    capacity: LbCapacity,
    others: usize,
) -> Result<Content, MapsError> {
    // Ids in use anywhere in the maps are never handed out again here: a
    // slot still live may point at them until its service switches.
    // Backend ids index the backend array: `1..capacity`.
    let mut backend_ids =
        Ids::new(mirror.backends.keys().copied().collect(), "backend").below(capacity.backends);
    let mut service_ids = Ids::lazy(
        || mirror.services.values().map(|v| v.service_id).collect(),
        "service",
    );
    let mut known: BTreeMap<BackendIdentity, u32> = BTreeMap::new();
    for (id, b) in &mirror.backends {
        known
            .entry((b.family, b.address, b.port, b.protocol))
            .or_insert(*id);
    }

    let mut target = Content::default();
    for (frontend, svc) in services {
        let (family, address) = ip_words(frontend.ip);
        let proto = protocol_number(frontend.protocol);
        let key = ServiceKey::service(address, frontend.port.to_be(), family, proto);
        let current = mirror.services.get(&key);
        let service_id = match current {
            Some(value) => value.service_id,
            None => service_ids.alloc()?,
        };

        let distinct: BTreeSet<_> = svc
            .backends
            .iter()
            .map(|b| (ip_words(b.ip), b.port))
            .collect();
        if distinct.len() > MAX_SLOTS {
            return Err(MapsError::TooManyBackends {
                frontend: format!("{frontend:?}"),
                count: distinct.len(),
            });
        }
        let mut slots: Vec<u32> = Vec::with_capacity(svc.backends.len());
        let mut seen = BTreeSet::new();
        for backend in &svc.backends {
            let (b_family, b_address) = ip_words(backend.ip);
            let identity = (b_family, b_address, backend.port.to_be(), proto);
            if !seen.insert(identity) {
                continue;
            }
            let id = match known.get(&identity) {
                Some(id) => *id,
                None => {
                    let id = backend_ids.alloc()?;
                    known.insert(identity, id);
                    id
                }
            };
            let terminating = backend.state == BackendState::Terminating;
            let value = target.backends.entry(id).or_insert(BackendValue {
                address: b_address,
                port: backend.port.to_be(),
                family: b_family,
                protocol: proto,
                flags: BACKEND_FLAG_TERMINATING,
                _pad: [0; 3],
            });
            // Terminating only if every service sees it terminating.
            if !terminating {
                value.flags &= !BACKEND_FLAG_TERMINATING;
            }
            slots.push(id);
        }
        let live_slots = current.map(|value| entry_slots(&mirror.services, &key, value));
        let unchanged = live_slots.is_some_and(|live| {
            live.len() == slots.len() && live.iter().zip(&slots).all(|(l, s)| *l == Some(*s))
        });
        let revision = match current {
            Some(value) if unchanged => value.revision,
            Some(value) => value.revision.wrapping_add(1),
            None => 0,
        };

        let mut entry = service_entry(svc, service_id, slots.len() as u16, revision);
        let inline = slots.len() <= INLINE_BACKENDS;
        if inline {
            entry.backends[..slots.len()].copy_from_slice(&slots);
        }
        target.services.insert(key, entry);
        for (i, backend_id) in slots.iter().enumerate() {
            if !inline {
                target.services.insert(
                    key.with_slot(i as u16 + 1, revision),
                    ServiceValue {
                        backend_id: *backend_id,
                        service_id,
                        revision,
                        ..ServiceValue::default()
                    },
                );
            }
            if svc.affinity.is_some() {
                target.matches.insert(AffinityMatchKey {
                    backend_id: *backend_id,
                    service_id,
                });
            }
        }
    }
    check_capacity(
        "LB_SERVICES",
        others + target.services.len(),
        capacity.services,
    )?;
    // Id 0 is never used: the array holds `capacity - 1` backends.
    check_capacity(
        "LB_BACKENDS",
        target.backends.len(),
        capacity.backends.saturating_sub(1),
    )?;
    check_capacity("LB_AFF_MATCH", target.matches.len(), MAX_AFFINITY_MATCH)?;
    Ok(target)
}

fn service_entry(svc: &LbService, service_id: u32, count: u16, revision: u8) -> ServiceValue {
    let mut flags = 0;
    if svc.affinity.is_some() {
        flags |= SVC_FLAG_AFFINITY;
    }
    if svc.external_local {
        flags |= SVC_FLAG_EXTERNAL_LOCAL;
    }
    let affinity_timeout = svc.affinity.map_or(0, |timeout| {
        u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX).max(1)
    });
    ServiceValue {
        backend_id: 0,
        service_id,
        affinity_timeout,
        count,
        flags,
        algorithm: match svc.algorithm {
            Algorithm::Random => ALG_RANDOM,
            Algorithm::Maglev => ALG_MAGLEV,
        },
        revision,
        kind: kind_number(svc.kind),
        _pad: [0; 2],
        backends: [0; INLINE_BACKENDS],
    }
}

fn check_capacity(map: &'static str, need: usize, capacity: u32) -> Result<(), MapsError> {
    if need > capacity as usize {
        return Err(MapsError::Capacity {
            map,
            need,
            capacity,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use aya::maps::MapError;

    use super::*;
    use crate::proxy::model::{Backend, ServiceName};

    /// An in-memory store that checks, after every single write, that a
    /// program reading at that moment would find every service whole.
    #[derive(Default)]
    struct Fake {
        services: BTreeMap<ServiceKey, ServiceValue>,
        backends: BTreeMap<u32, BackendValue>,
        matches: BTreeSet<AffinityMatchKey>,
        writes: usize,
        fail_at: Option<usize>,
        /// The decoded frontends after every write.
        history: Vec<BTreeMap<Frontend, LiveService>>,
        broken: Vec<String>,
    }

    impl Fake {
        fn write(&mut self) -> Result<(), BpfError> {
            self.writes += 1;
            if self.fail_at == Some(self.writes) {
                return Err(BpfError::Map {
                    name: "fake",
                    source: MapError::KeyNotFound,
                });
            }
            Ok(())
        }

        fn check(&mut self) {
            for (key, value) in self.services.iter().filter(|(k, _)| k.slot == 0) {
                for slot in 1..=value.count {
                    // What the programs read: the inline id, else the slot.
                    if usize::from(value.count) <= INLINE_BACKENDS {
                        match value.inline_backend(slot) {
                            None => self
                                .broken
                                .push(format!("{key:?}: inline slot {slot} empty")),
                            Some(id) if !self.backends.contains_key(&id) => self
                                .broken
                                .push(format!("{key:?}: inline backend {id} missing")),
                            Some(id)
                                if value.flags & SVC_FLAG_AFFINITY != 0
                                    && !self.matches.contains(&AffinityMatchKey {
                                        backend_id: id,
                                        service_id: value.service_id,
                                    }) =>
                            {
                                self.broken.push(format!("{key:?}: affinity match missing"))
                            }
                            Some(_) => {}
                        }
                        continue;
                    }
                    match self.services.get(&key.with_slot(slot, value.revision)) {
                        None => self.broken.push(format!("{key:?}: slot {slot} missing")),
                        Some(s) if s.service_id != value.service_id => self
                            .broken
                            .push(format!("{key:?}: slot {slot} of another service")),
                        Some(s) if !self.backends.contains_key(&s.backend_id) => self
                            .broken
                            .push(format!("{key:?}: backend {} missing", s.backend_id)),
                        Some(s)
                            if value.flags & SVC_FLAG_AFFINITY != 0
                                && !self.matches.contains(&AffinityMatchKey {
                                    backend_id: s.backend_id,
                                    service_id: value.service_id,
                                }) =>
                        {
                            self.broken.push(format!("{key:?}: affinity match missing"))
                        }
                        Some(_) => {}
                    }
                }
            }
            self.history.push(decode(&self.services, &self.backends));
        }
    }

    impl LbMapStore for Fake {
        fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, BpfError> {
            Ok(self.services.iter().map(|(k, v)| (*k, *v)).collect())
        }
        fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), BpfError> {
            self.write()?;
            self.services.insert(*key, *value);
            self.check();
            Ok(())
        }
        fn delete_service(&mut self, key: &ServiceKey) -> Result<(), BpfError> {
            self.write()?;
            self.services.remove(key);
            self.check();
            Ok(())
        }
        fn backends(&self) -> Result<Vec<(u32, BackendValue)>, BpfError> {
            Ok(self.backends.iter().map(|(k, v)| (*k, *v)).collect())
        }
        fn put_backend(&mut self, id: u32, value: &BackendValue) -> Result<(), BpfError> {
            self.write()?;
            self.backends.insert(id, *value);
            self.check();
            Ok(())
        }
        fn delete_backend(&mut self, id: u32) -> Result<(), BpfError> {
            self.write()?;
            self.backends.remove(&id);
            self.check();
            Ok(())
        }
        fn affinity_matches(&self) -> Result<Vec<AffinityMatchKey>, BpfError> {
            Ok(self.matches.iter().copied().collect())
        }
        fn put_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError> {
            self.write()?;
            self.matches.insert(*key);
            self.check();
            Ok(())
        }
        fn delete_affinity_match(&mut self, key: &AffinityMatchKey) -> Result<(), BpfError> {
            self.write()?;
            self.matches.remove(key);
            self.check();
            Ok(())
        }
    }

    fn vip(last: u8, port: u16, protocol: Protocol) -> Frontend {
        Frontend {
            ip: IpAddr::V4(Ipv4Addr::new(10, 96, 0, last)),
            port,
            protocol,
        }
    }

    fn ep(last: u8) -> Backend {
        Backend {
            ip: IpAddr::V4(Ipv4Addr::new(10, 244, 0, last)),
            port: 8080,
            state: BackendState::Active,
            node_name: None,
        }
    }

    fn svc(name: &str, backends: Vec<Backend>) -> LbService {
        LbService {
            service: ServiceName {
                namespace: "default".into(),
                name: name.into(),
            },
            port_name: String::new(),
            kind: FrontendKind::ClusterIp,
            backends,
            algorithm: Algorithm::Random,
            affinity: None,
            external_local: false,
        }
    }

    fn state(entries: Vec<(Frontend, LbService)>) -> DesiredState {
        DesiredState {
            services: entries.into_iter().collect(),
        }
    }

    fn addrs(backends: &[Backend]) -> Vec<(IpAddr, u16)> {
        backends.iter().map(|b| (b.ip, b.port)).collect()
    }

    #[test]
    fn incremental_changes_end_where_full_applies_do() {
        // Random desired states over a few frontends and backends; each
        // step is applied incrementally (only the frontends that differ)
        // to one writer and fully to another: the maps must hold the same
        // frontends with the same backends, no orphan backend may remain,
        // and no intermediate state may be broken.
        let mut rng = 0x2545_f491_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut incremental = LbMapWriter::new(Fake::default()).unwrap();
        let mut full = LbMapWriter::new(Fake::default()).unwrap();
        let mut previous = DesiredState::default();
        for step in 0..300 {
            let mut desired = previous.clone();
            for _ in 0..1 + next(3) {
                let frontend = vip(1 + next(6) as u8, 80, Protocol::Tcp);
                if next(4) == 0 {
                    desired.services.remove(&frontend);
                } else {
                    // Up to 13 of 16 endpoints: services both within and
                    // past the inline limit (slots), and moving between.
                    let backends = (0..next(14)).map(|_| ep(1 + next(16) as u8)).collect();
                    let mut lb = svc("web", backends);
                    if next(3) == 0 {
                        lb.affinity = Some(Duration::from_secs(60));
                    }
                    desired.services.insert(frontend, lb);
                }
            }
            let changed: Vec<Frontend> = desired
                .services
                .keys()
                .chain(previous.services.keys())
                .filter(|f| desired.services.get(f) != previous.services.get(f))
                .copied()
                .collect();
            incremental.apply_changes(&desired, &changed).unwrap();
            full.apply(&desired).unwrap();
            let live = live_services(incremental.store()).unwrap();
            let want: BTreeMap<Frontend, Vec<(IpAddr, u16)>> = full
                .live()
                .into_iter()
                .map(|(f, l)| (f, l.backends))
                .collect();
            let got: BTreeMap<Frontend, Vec<(IpAddr, u16)>> =
                live.into_iter().map(|(f, l)| (f, l.backends)).collect();
            assert_eq!(got, want, "step {step}");
            let store = incremental.store();
            let referenced: BTreeSet<u32> = store
                .services
                .iter()
                .filter(|(k, _)| k.slot != 0)
                .map(|(_, v)| v.backend_id)
                .chain(
                    store
                        .services
                        .values()
                        .flat_map(|v| inline_ids(v).collect::<Vec<_>>()),
                )
                .collect();
            let present: BTreeSet<u32> = store.backends.keys().copied().collect();
            assert_eq!(
                present, referenced,
                "step {step}: orphan or missing backends"
            );
            assert!(store.broken.is_empty(), "step {step}: {:?}", store.broken);
            // Same sequence from empty maps: the same entries, ids and
            // revisions (no stale slot left behind either).
            assert_eq!(store.services, full.store().services, "step {step}");
            assert_eq!(store.matches, full.store().matches, "step {step}");
            previous = desired;
        }
    }

    #[test]
    fn first_apply_writes_everything_then_nothing() {
        let desired = state(vec![
            (
                vip(1, 80, Protocol::Tcp),
                svc("web", vec![ep(1), ep(2), ep(3)]),
            ),
            (vip(1, 53, Protocol::Udp), svc("dns", vec![ep(4)])),
        ]);
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        let stats = writer.apply(&desired).unwrap();
        assert_eq!(stats.backends_written, 4);
        assert_eq!(
            stats.slots_written, 0,
            "small services carry their backends inline"
        );
        assert_eq!(stats.services_written, 2);
        assert!(writer.apply(&desired).unwrap().is_noop());
        let live = live_services(writer.store()).unwrap();
        assert_eq!(live, writer.live());
        let web = &live[&vip(1, 80, Protocol::Tcp)];
        assert_eq!(web.backends, addrs(&[ep(1), ep(2), ep(3)]));
        assert_eq!(web.affinity, None);
        assert!(
            writer.store().broken.is_empty(),
            "{:?}",
            writer.store().broken
        );
    }

    #[test]
    fn every_intermediate_state_is_the_old_or_the_new_service() {
        let web = vip(1, 80, Protocol::Tcp);
        let gone = vip(2, 80, Protocol::Tcp);
        let new = vip(3, 443, Protocol::Tcp);
        let before = state(vec![
            (web, svc("web", vec![ep(1), ep(2), ep(3)])),
            (gone, svc("gone", vec![ep(3)])),
        ]);
        let after = state(vec![
            (web, svc("web", vec![ep(2), ep(3), ep(5)])),
            (new, svc("new", vec![ep(5), ep(6)])),
        ]);
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        writer.apply(&before).unwrap();
        let first = writer.store().history.len();
        let stats = writer.apply(&after).unwrap();
        assert_eq!(stats.services_deleted, 1);
        assert_eq!(stats.backends_deleted, 1, "ep(1) is unused now");
        let store = writer.store();
        assert!(store.broken.is_empty(), "{:?}", store.broken);
        let old_web = addrs(&before.services[&web].backends);
        let new_web = addrs(&after.services[&web].backends);
        for (n, live) in store.history[first..].iter().enumerate() {
            let seen = &live[&web].backends;
            assert!(
                *seen == old_web || *seen == new_web,
                "write {n}: web served {seen:?}"
            );
            if let Some(s) = live.get(&new) {
                assert_eq!(s.backends, addrs(&after.services[&new].backends));
            }
            if let Some(s) = live.get(&gone) {
                assert_eq!(s.backends, addrs(&before.services[&gone].backends));
            }
        }
        // The new revision replaced the old one; no stale slot is left.
        let live = writer.live();
        assert_eq!(live[&web].revision, 1);
        assert_eq!(live[&web].backends, new_web);
        assert!(!live.contains_key(&gone));
        // Two entries, their backends inline: no slots.
        assert_eq!(writer.store().services.len(), 2);
        assert_eq!(writer.store().backends.len(), 4);
    }

    #[test]
    fn a_restarted_writer_reconciles_without_flushing() {
        let desired = state(vec![(
            vip(1, 80, Protocol::Tcp),
            svc("web", vec![ep(1), ep(2)]),
        )]);
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        writer.apply(&desired).unwrap();
        let before = writer.live();
        let store = writer.into_store();

        let mut writer = LbMapWriter::new(store).unwrap();
        assert_eq!(writer.live(), before);
        assert!(writer.apply(&desired).unwrap().is_noop());

        let mut changed = desired.clone();
        changed
            .services
            .get_mut(&vip(1, 80, Protocol::Tcp))
            .unwrap()
            .backends
            .push(ep(3));
        let stats = writer.apply(&changed).unwrap();
        assert_eq!(stats.backends_written, 1);
        assert_eq!(stats.slots_written, 0, "inline: the entry switches alone");
        assert_eq!(stats.services_written, 1);
        assert_eq!(stats.slots_deleted, 0);
        let live = writer.live();
        assert_eq!(
            live[&vip(1, 80, Protocol::Tcp)].service_id,
            before[&vip(1, 80, Protocol::Tcp)].service_id
        );
    }

    #[test]
    fn backend_ids_are_shared_kept_and_not_reused_at_once() {
        let a = vip(1, 80, Protocol::Tcp);
        let b = vip(2, 80, Protocol::Tcp);
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        writer
            .apply(&state(vec![
                (a, svc("a", vec![ep(1), ep(2)])),
                (b, svc("b", vec![ep(2)])),
            ]))
            .unwrap();
        let ids: BTreeMap<u32, BackendValue> = writer.store().backends.clone();
        assert_eq!(ids.len(), 2, "ep(2) is one backend for both services");
        let id_of = |backends: &BTreeMap<u32, BackendValue>, last: u8| {
            backends
                .iter()
                .find(|(_, v)| v.address[0].to_ne_bytes()[3] == last)
                .map(|(id, _)| *id)
        };
        let ep1 = id_of(&ids, 1).unwrap();
        let ep2 = id_of(&ids, 2).unwrap();

        // ep(1) leaves and ep(7) arrives in the same apply: ep(7) must not
        // take ep(1)'s id while old slots may still point at it.
        writer
            .apply(&state(vec![
                (a, svc("a", vec![ep(2), ep(7)])),
                (b, svc("b", vec![ep(2)])),
            ]))
            .unwrap();
        let ids = writer.store().backends.clone();
        assert_eq!(id_of(&ids, 2), Some(ep2));
        assert_eq!(id_of(&ids, 1), None);
        assert_ne!(id_of(&ids, 7), Some(ep1));
        assert!(
            writer.store().broken.is_empty(),
            "{:?}",
            writer.store().broken
        );

        // A backend also used by another protocol is another backend.
        writer
            .apply(&state(vec![
                (a, svc("a", vec![ep(2)])),
                (vip(1, 80, Protocol::Udp), svc("a-udp", vec![ep(2)])),
            ]))
            .unwrap();
        assert_eq!(writer.store().backends.len(), 2);
    }

    #[test]
    fn affinity_memberships_follow_the_backends() {
        let a = vip(1, 80, Protocol::Tcp);
        let mut sticky = svc("a", vec![ep(1), ep(2)]);
        sticky.affinity = Some(Duration::from_secs(10_800));
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        writer.apply(&state(vec![(a, sticky.clone())])).unwrap();
        assert_eq!(writer.store().matches.len(), 2);
        let entry = writer
            .store()
            .services
            .iter()
            .find(|(k, _)| k.slot == 0)
            .map(|(_, v)| *v)
            .unwrap();
        assert_eq!(entry.affinity_timeout, 10_800);
        assert_eq!(entry.flags & SVC_FLAG_AFFINITY, SVC_FLAG_AFFINITY);

        sticky.backends = vec![ep(2)];
        writer.apply(&state(vec![(a, sticky.clone())])).unwrap();
        assert_eq!(writer.store().matches.len(), 1);
        sticky.affinity = None;
        let stats = writer.apply(&state(vec![(a, sticky)])).unwrap();
        assert_eq!(stats.matches_deleted, 1);
        assert_eq!(stats.slots_written, 0, "only the service entry changes");
        assert_eq!(stats.services_written, 1);
        assert!(
            writer.store().broken.is_empty(),
            "{:?}",
            writer.store().broken
        );
    }

    #[test]
    fn a_service_without_backends_has_count_zero() {
        let a = vip(1, 80, Protocol::Tcp);
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        writer
            .apply(&state(vec![(a, svc("a", vec![ep(1)]))]))
            .unwrap();
        writer.apply(&state(vec![(a, svc("a", vec![]))])).unwrap();
        let store = writer.store();
        assert_eq!(store.services.len(), 1);
        assert_eq!(store.services.values().next().unwrap().count, 0);
        assert!(store.backends.is_empty());
    }

    #[test]
    fn a_failed_write_is_finished_by_the_next_apply() {
        let a = vip(1, 80, Protocol::Tcp);
        let b = vip(2, 80, Protocol::Tcp);
        let before = state(vec![
            (a, svc("a", vec![ep(1), ep(2)])),
            (b, svc("b", vec![ep(3)])),
        ]);
        let after = state(vec![(a, svc("a", vec![ep(4), ep(2)]))]);
        let served = |live: BTreeMap<Frontend, LiveService>| {
            live.into_iter()
                .map(|(f, s)| (f, s.backends))
                .collect::<BTreeMap<_, _>>()
        };
        // Fail each write of the change in turn: a retry by the same writer
        // and a restarted writer both converge, and no state in between
        // was ever half-written.
        for fail in 1.. {
            let mut writer = LbMapWriter::new(Fake::default()).unwrap();
            writer.apply(&before).unwrap();
            writer.store.fail_at = Some(writer.store.writes + fail);
            let first = writer.apply(&after);
            let retry = writer.apply(&after).unwrap();
            assert!(
                writer.store().broken.is_empty(),
                "{:?}",
                writer.store().broken
            );
            assert_eq!(
                served(writer.live()),
                served(live_services(writer.store()).unwrap())
            );
            assert_eq!(
                served(writer.live()),
                BTreeMap::from([(a, addrs(&after.services[&a].backends))])
            );
            let mut restarted = LbMapWriter::new(writer.into_store()).unwrap();
            assert!(restarted.apply(&after).unwrap().is_noop());
            if first.is_ok() {
                assert!(retry.is_noop());
                assert!(fail > 5, "the change took only {} writes", fail - 1);
                break;
            }
        }
    }

    #[test]
    fn a_service_past_the_inline_limit_switches_to_new_slots() {
        let many = |n: u8| (1..=n).map(ep).collect::<Vec<_>>();
        let web = vip(1, 80, Protocol::Tcp);
        let big = INLINE_BACKENDS as u8 + 2;
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        let stats = writer
            .apply(&state(vec![(web, svc("web", many(big)))]))
            .unwrap();
        assert_eq!(stats.slots_written, usize::from(big));
        let entry = writer.store().services[&entry_key(&web)];
        assert_eq!(
            entry.backends, [0; INLINE_BACKENDS],
            "no inline ids past the limit"
        );
        assert_eq!(writer.live()[&web].backends, addrs(&many(big)));
        // Shrinking to an inline set: the entry switches, the slots go.
        let stats = writer
            .apply(&state(vec![(web, svc("web", many(3)))]))
            .unwrap();
        assert_eq!(stats.slots_written, 0);
        assert_eq!(stats.slots_deleted, usize::from(big));
        assert_eq!(writer.live()[&web].backends, addrs(&many(3)));
        // And back: a new revision's slots first, then the entry.
        let first = writer.store().history.len();
        writer
            .apply(&state(vec![(web, svc("web", many(big)))]))
            .unwrap();
        let store = writer.store();
        assert!(store.broken.is_empty(), "{:?}", store.broken);
        for live in &store.history[first..] {
            let seen = &live[&web].backends;
            assert!(
                *seen == addrs(&many(3)) || *seen == addrs(&many(big)),
                "{seen:?}"
            );
        }
        assert_eq!(store.services.len(), 1 + usize::from(big));
        assert_eq!(store.backends.len(), usize::from(big));
    }

    #[test]
    fn too_many_backends_are_refused_before_any_write() {
        let backends = (0..=MAX_SLOTS as u32)
            .map(|n| Backend {
                ip: IpAddr::V4(Ipv4Addr::from(0x0af4_0000 + n)),
                port: 80,
                state: BackendState::Active,
                node_name: None,
            })
            .collect();
        let mut writer = LbMapWriter::new(Fake::default()).unwrap();
        let err = writer
            .apply(&state(vec![(
                vip(1, 80, Protocol::Tcp),
                svc("big", backends),
            )]))
            .unwrap_err();
        assert!(matches!(err, MapsError::TooManyBackends { .. }), "{err}");
        assert_eq!(writer.store().writes, 0);
    }
}
