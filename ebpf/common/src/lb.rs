//! Load-balancer maps shared by the socket-level programs
//! (`ebpf/programs/src/sock_lb.rs`) and the node agent's map writer
//! (`node/src/proxy/maps.rs`).
//!
//! The layout follows Cilium's `lb4_*` maps, made family-aware so IPv6 uses
//! the same maps (only IPv4 programs exist today):
//!
//! - [`SERVICES_MAP`]: [`ServiceKey`] → [`ServiceValue`]. Slot 0 of a
//!   frontend (address, port, protocol) is the *service entry*: backend
//!   count, flags, affinity timeout, and the *revision* its backend slots
//!   live in. Slots `1..=count` with that revision point at backend ids.
//!   A service of at most [`INLINE_BACKENDS`] backends also carries their
//!   ids in its entry ([`ServiceValue::backends`], slot `s` at index
//!   `s - 1`), so the programs find its backend with one hash lookup less;
//!   its slots are written all the same (user space reads them back).
//!   User space writes a new revision's slots first and switches the service
//!   entry last, so a program never sees a half-written backend set.
//! - [`BACKENDS_MAP`]: an array indexed by backend id (`u32`, never 0) →
//!   [`BackendValue`]; an unused id holds a zeroed value (family 0).
//! - [`AFFINITY_MAP`] (LRU): [`AffinityKey`] → [`AffinityValue`] for
//!   `sessionAffinity: ClientIP`.
//! - [`AFFINITY_MATCH_MAP`]: [`AffinityMatchKey`] → `u8`, the backends that
//!   currently belong to each affinity service, so a remembered backend that
//!   left the service is not reused.
//! - [`REVNAT_TCP_MAP`] (array, direct-mapped by socket cookie):
//!   [`RevNatConn`], a TCP socket's cookie, backend and the VIP it asked
//!   for, so `getpeername()` reports the service address. A store is one
//!   inlined array write (no allocation, no lock, nothing to free at
//!   close); an entry lives until a socket whose cookie maps to the same
//!   slot — [`MAX_REVNAT_TCP`] translated sockets later — takes it, as an
//!   LRU entry would be evicted. The reader checks the cookie, so it never
//!   reports another socket's VIP.
//! - [`REVNAT_SOCK_MAP`] (socket-local storage): [`RevNatSock`], a
//!   connected UDP socket's backend and the VIP it asked for, so every
//!   `recvfrom()` reports the service address for as long as the socket
//!   lives (resolvers compare the reply's source with the server asked).
//! - [`REVNAT_SK_MAP`] (LRU): [`RevNatSkKey`] → [`RevNatSkValue`], socket
//!   cookie + backend → VIP for unconnected UDP sockets, which may send to
//!   several services (one entry per destination).
//!
//! Addresses are `[u32; 4]` holding the address bytes in network order, as
//! the kernel stores them (`bpf_sock_addr.user_ip4` goes in word 0 for IPv4,
//! words 1..3 are zero); ports are `u16` in network byte order. Every type is
//! `#[repr(C)]` with explicit padding fields so no byte is uninitialised.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Services and backend slots (hash).
pub const SERVICES_MAP: &str = "LB_SERVICES";
/// Backends by id (hash).
pub const BACKENDS_MAP: &str = "LB_BACKENDS";
/// ClientIP session affinity (LRU hash).
pub const AFFINITY_MAP: &str = "LB_AFFINITY";
/// (backend id, service id) pairs of affinity services (hash).
pub const AFFINITY_MATCH_MAP: &str = "LB_AFF_MATCH";
/// Reverse translation for socket programs (LRU hash).
pub const REVNAT_SK_MAP: &str = "LB_REVNAT_SK";

/// Reverse translation of connected UDP sockets (socket-local storage).
pub const REVNAT_SOCK_MAP: &str = "LB_REVNAT_SOCK";
/// Reverse translation of TCP sockets (array, direct-mapped by cookie).
pub const REVNAT_TCP_MAP: &str = "LB_REVNAT_TCP";

/// Every map of this family, for pinning and pin compatibility checks.
pub const MAP_NAMES: [&str; 7] = [
    SERVICES_MAP,
    BACKENDS_MAP,
    AFFINITY_MAP,
    AFFINITY_MATCH_MAP,
    REVNAT_SK_MAP,
    REVNAT_SOCK_MAP,
    REVNAT_TCP_MAP,
];

/// Capacity of [`SERVICES_MAP`]: service entries plus backend slots.
pub const MAX_SERVICE_ENTRIES: u32 = 65_536;
/// Capacity of [`BACKENDS_MAP`].
pub const MAX_BACKENDS: u32 = 65_536;
/// Capacity of [`AFFINITY_MAP`].
pub const MAX_AFFINITY: u32 = 65_536;
/// Capacity of [`AFFINITY_MATCH_MAP`].
pub const MAX_AFFINITY_MATCH: u32 = 65_536;
/// Capacity of [`REVNAT_SK_MAP`]: translated sockets remembered at once.
pub const MAX_REVNAT_SK: u32 = 262_144;
/// Slots of [`REVNAT_TCP_MAP`] (a power of two: the slot is
/// `cookie & (MAX_REVNAT_TCP - 1)`).
pub const MAX_REVNAT_TCP: u32 = 1 << 18;
/// Most backend slots one service entry can have (`count` is a `u16`).
pub const MAX_SLOTS: usize = u16::MAX as usize;
/// Backends whose ids a service entry carries inline (see
/// [`ServiceValue::backends`]).
pub const INLINE_BACKENDS: usize = 8;
const _: () = assert!(INLINE_BACKENDS.is_power_of_two());

/// `cgroup/connect4`: TCP and connected UDP.
pub const PROG_CONNECT4: &str = "sock4_connect";
/// `cgroup/sendmsg4`: unconnected UDP, per datagram.
pub const PROG_SENDMSG4: &str = "sock4_sendmsg";
/// `cgroup/recvmsg4`: UDP replies appear to come from the VIP.
pub const PROG_RECVMSG4: &str = "sock4_recvmsg";
/// `cgroup/getpeername4`: connected sockets report the VIP as their peer.
pub const PROG_GETPEERNAME4: &str = "sock4_getpeername";
/// Every program of this family, in attach order.
pub const PROGRAMS: [&str; 4] = [
    PROG_CONNECT4,
    PROG_SENDMSG4,
    PROG_RECVMSG4,
    PROG_GETPEERNAME4,
];

/// `AF_INET`, as in [`ServiceKey::family`] and friends.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: u8 = 132;

/// [`ServiceValue::flags`]: `sessionAffinity: ClientIP`.
pub const SVC_FLAG_AFFINITY: u8 = 1 << 0;
/// [`ServiceValue::flags`]: `externalTrafficPolicy: Local`.
pub const SVC_FLAG_EXTERNAL_LOCAL: u8 = 1 << 1;
/// [`ServiceValue::flags`]: `internalTrafficPolicy: Local`.
pub const SVC_FLAG_INTERNAL_LOCAL: u8 = 1 << 2;

/// [`ServiceValue::algorithm`]: uniformly random backend.
pub const ALG_RANDOM: u8 = 0;
/// [`ServiceValue::algorithm`]: Maglev consistent hashing (packet path;
/// the socket programs pick as for [`ALG_RANDOM`]).
pub const ALG_MAGLEV: u8 = 1;

/// [`ServiceValue::kind`] values.
pub const KIND_CLUSTER_IP: u8 = 0;
pub const KIND_NODE_PORT: u8 = 1;
pub const KIND_EXTERNAL_IP: u8 = 2;
pub const KIND_LOAD_BALANCER: u8 = 3;

/// [`ServiceKey::scope`]: the entry used for traffic from anywhere.
pub const SCOPE_EXTERNAL: u8 = 0;
/// [`ServiceKey::scope`]: the entry for in-cluster traffic when a traffic
/// policy splits the backend set (reserved; not written yet).
pub const SCOPE_INTERNAL: u8 = 1;

/// [`BackendValue::flags`]: the endpoint is serving but terminating.
pub const BACKEND_FLAG_TERMINATING: u8 = 1 << 0;

/// [`AffinityKey::source`]: `client` holds the client's network-namespace
/// cookie (socket programs: the source address is not known at connect).
pub const AFFINITY_BY_NETNS: u8 = 1;
/// [`AffinityKey::source`]: `client` holds the client's address.
pub const AFFINITY_BY_ADDRESS: u8 = 0;

/// Key of [`SERVICES_MAP`]: a frontend and a slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Frontend address (see the module docs for the encoding).
    pub address: [u32; 4],
    /// Frontend port, network byte order.
    pub port: u16,
    /// 0 = service entry; `1..=count` = backend slots.
    pub slot: u16,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// [`IPPROTO_TCP`], [`IPPROTO_UDP`] or [`IPPROTO_SCTP`].
    pub protocol: u8,
    /// [`SCOPE_EXTERNAL`] or [`SCOPE_INTERNAL`].
    pub scope: u8,
    /// Service entry: always 0. Backend slots: the revision they belong to
    /// (the service entry's [`ServiceValue::revision`] selects the live one).
    pub revision: u8,
}

impl ServiceKey {
    /// The service entry (slot 0) of a frontend.
    pub const fn service(address: [u32; 4], port: u16, family: u8, protocol: u8) -> Self {
        Self {
            address,
            port,
            slot: 0,
            family,
            protocol,
            scope: SCOPE_EXTERNAL,
            revision: 0,
        }
    }

    /// Backend slot `slot` (≥ 1) of revision `revision` of this frontend.
    pub const fn with_slot(self, slot: u16, revision: u8) -> Self {
        Self {
            slot,
            revision,
            ..self
        }
    }

    /// The service entry this key belongs to.
    pub const fn service_entry(self) -> Self {
        self.with_slot(0, 0)
    }
}

/// Value of [`SERVICES_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceValue {
    /// Backend slots: the backend id. Service entry: 0.
    pub backend_id: u32,
    /// Id of the frontend (scopes affinity and reverse NAT); same in the
    /// service entry and its slots.
    pub service_id: u32,
    /// Service entry: ClientIP affinity timeout in seconds.
    pub affinity_timeout: u32,
    /// Service entry: number of backend slots (0 → connections refused).
    pub count: u16,
    /// Service entry: `SVC_FLAG_*`.
    pub flags: u8,
    /// Service entry: `ALG_*`.
    pub algorithm: u8,
    /// Service entry: the revision whose slots are live.
    pub revision: u8,
    /// Service entry: `KIND_*`.
    pub kind: u8,
    pub _pad: [u8; 2],
    /// Service entry with `count <= INLINE_BACKENDS`: the backend id of
    /// slot `s` at index `s - 1` (the rest zero). Otherwise all zero, and
    /// the programs read the slots.
    pub backends: [u32; INLINE_BACKENDS],
}

impl ServiceValue {
    /// The backend id of `slot` (`1..=count`) when the entry carries it
    /// inline; `None` when the slot must be read from the map.
    #[inline(always)]
    pub fn inline_backend(&self, slot: u16) -> Option<u32> {
        if usize::from(self.count) > INLINE_BACKENDS || slot == 0 || slot > self.count {
            return None;
        }
        // The mask (a no-op here) keeps the index provably in bounds for
        // the BPF verifier, which does not follow the comparisons above.
        let id = self.backends[(usize::from(slot) - 1) & (INLINE_BACKENDS - 1)];
        (id != 0).then_some(id)
    }
}

/// Value of [`BACKENDS_MAP`] (key: backend id, `u32`, never 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendValue {
    pub address: [u32; 4],
    /// Network byte order.
    pub port: u16,
    pub family: u8,
    pub protocol: u8,
    /// `BACKEND_FLAG_*`.
    pub flags: u8,
    pub _pad: [u8; 3],
}

/// Key of [`AFFINITY_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AffinityKey {
    /// Client address, or (socket programs) the netns cookie in words 0
    /// (low) and 1 (high); see [`AffinityKey::source`].
    pub client: [u32; 4],
    pub service_id: u32,
    pub family: u8,
    /// [`AFFINITY_BY_NETNS`] or [`AFFINITY_BY_ADDRESS`].
    pub source: u8,
    pub _pad: [u8; 2],
}

/// Value of [`AFFINITY_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AffinityValue {
    /// `bpf_ktime_get_ns()` when the client last opened a flow.
    pub last_used_ns: u64,
    pub backend_id: u32,
    pub _pad: u32,
}

/// Key of [`AFFINITY_MATCH_MAP`] (value: `u8` 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AffinityMatchKey {
    pub backend_id: u32,
    pub service_id: u32,
}

/// Key of [`REVNAT_SK_MAP`]: a socket and the backend it was sent to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevNatSkKey {
    /// `bpf_get_socket_cookie()`.
    pub cookie: u64,
    pub address: [u32; 4],
    /// Network byte order.
    pub port: u16,
    pub family: u8,
    pub protocol: u8,
    pub _pad: u32,
}

/// Value of [`REVNAT_SK_MAP`]: the frontend the socket asked for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevNatSkValue {
    pub address: [u32; 4],
    /// Network byte order.
    pub port: u16,
    pub family: u8,
    pub _pad: u8,
    pub service_id: u32,
}

/// Value of [`REVNAT_TCP_MAP`]: a TCP socket (by cookie), the backend it
/// was translated to, and the frontend to report instead of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevNatConn {
    /// `bpf_get_socket_cookie()`; 0 = free slot.
    pub cookie: u64,
    pub sock: RevNatSock,
    pub _pad: u32,
}

/// Value of [`REVNAT_SOCK_MAP`]: the backend a connected socket was
/// translated to, and the frontend to report instead of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevNatSock {
    pub backend: [u32; 4],
    /// Network byte order.
    pub backend_port: u16,
    pub family: u8,
    pub protocol: u8,
    pub frontend: RevNatSkValue,
}

/// Encodes an IPv4 address as map words (word 0, network order bytes).
pub const fn ipv4_words(ip: Ipv4Addr) -> [u32; 4] {
    [u32::from_ne_bytes(ip.octets()), 0, 0, 0]
}

/// Encodes an IPv6 address as map words (network order bytes).
pub const fn ipv6_words(ip: Ipv6Addr) -> [u32; 4] {
    let o = ip.octets();
    [
        u32::from_ne_bytes([o[0], o[1], o[2], o[3]]),
        u32::from_ne_bytes([o[4], o[5], o[6], o[7]]),
        u32::from_ne_bytes([o[8], o[9], o[10], o[11]]),
        u32::from_ne_bytes([o[12], o[13], o[14], o[15]]),
    ]
}

/// Encodes an address as (family, map words).
pub const fn ip_words(ip: IpAddr) -> (u8, [u32; 4]) {
    match ip {
        IpAddr::V4(v4) => (AF_INET, ipv4_words(v4)),
        IpAddr::V6(v6) => (AF_INET6, ipv6_words(v6)),
    }
}

/// Decodes (family, map words); `None` for an unknown family.
pub const fn words_ip(family: u8, words: [u32; 4]) -> Option<IpAddr> {
    match family {
        AF_INET => {
            let o = words[0].to_ne_bytes();
            Some(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
        }
        AF_INET6 => {
            let mut o = [0u8; 16];
            let mut i = 0;
            while i < 4 {
                let w = words[i].to_ne_bytes();
                o[4 * i] = w[0];
                o[4 * i + 1] = w[1];
                o[4 * i + 2] = w[2];
                o[4 * i + 3] = w[3];
                i += 1;
            }
            Some(IpAddr::V6(Ipv6Addr::from_octets(o)))
        }
        _ => None,
    }
}

// SAFETY (all impls below): each type is `#[repr(C)]`, `Copy`, built only
// from integers and integer arrays, with explicit padding fields and no
// implicit padding (checked by the layout tests), so every bit pattern the
// kernel hands back is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ServiceKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ServiceValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for BackendValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AffinityKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AffinityValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AffinityMatchKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RevNatSkKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RevNatSkValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RevNatSock {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RevNatConn {}

#[cfg(test)]
mod tests {
    use core::mem::{align_of, size_of};

    use super::*;

    /// Size equals the sum of the fields' sizes: no implicit padding.
    #[test]
    fn layouts_have_no_padding_holes() {
        assert_eq!(size_of::<ServiceKey>(), 16 + 2 + 2 + 4);
        assert_eq!(
            size_of::<ServiceValue>(),
            4 * 3 + 2 + 4 + 2 + 4 * INLINE_BACKENDS
        );
        assert_eq!(size_of::<BackendValue>(), 16 + 2 + 3 + 3);
        assert_eq!(size_of::<AffinityKey>(), 16 + 4 + 2 + 2);
        assert_eq!(size_of::<AffinityValue>(), 8 + 4 + 4);
        assert_eq!(size_of::<AffinityMatchKey>(), 8);
        assert_eq!(size_of::<RevNatSkKey>(), 8 + 16 + 2 + 2 + 4);
        assert_eq!(size_of::<RevNatSkValue>(), 16 + 2 + 2 + 4);
        assert_eq!(size_of::<RevNatSock>(), 16 + 2 + 1 + 1 + 24);
        assert_eq!(size_of::<RevNatConn>(), 8 + 44 + 4);
        assert!(MAX_REVNAT_TCP.is_power_of_two());
        assert_eq!(align_of::<RevNatSkKey>(), 8);
        assert_eq!(align_of::<ServiceKey>(), 4);
    }

    #[test]
    fn map_names_fit_the_kernel_limit() {
        for name in MAP_NAMES {
            assert!(name.len() < 16, "{name}");
        }
    }

    #[test]
    fn addresses_round_trip_in_network_order() {
        let ip = Ipv4Addr::new(10, 96, 0, 1);
        let words = ipv4_words(ip);
        // The kernel's user_ip4 holds the bytes in wire order.
        assert_eq!(words[0].to_ne_bytes(), [10, 96, 0, 1]);
        assert_eq!(words_ip(AF_INET, words), Some(IpAddr::V4(ip)));
        let v6: Ipv6Addr = "fd00::1:2".parse().unwrap();
        let (family, words) = ip_words(IpAddr::V6(v6));
        assert_eq!(family, AF_INET6);
        assert_eq!(words_ip(family, words), Some(IpAddr::V6(v6)));
        assert_eq!(words_ip(7, words), None);
    }

    #[test]
    fn slot_keys_share_the_frontend() {
        let svc = ServiceKey::service(
            ipv4_words(Ipv4Addr::new(10, 96, 0, 1)),
            80u16.to_be(),
            AF_INET,
            IPPROTO_TCP,
        );
        let slot = svc.with_slot(3, 7);
        assert_eq!(slot.slot, 3);
        assert_eq!(slot.revision, 7);
        assert_eq!(slot.service_entry(), svc);
    }
}
