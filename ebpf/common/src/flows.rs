//! Flow records and counters of the load balancer, shared by the programs
//! that emit them — `ebpf/programs/src/sock_lb.rs` (socket level) and
//! `ebpf/programs/src/nodeport.rs` (TC ingress) — and the node agent's
//! flow reader (`node/src/flows/`). Both programs write the same maps.
//!
//! - [`FLOWS_MAP`]: a BPF ring buffer of [`FlowRecord`]s, one per
//!   translated or refused VIP connection (connect4) or datagram (sendmsg4),
//!   and one per new NodePort/ExternalIP/LoadBalancer flow the TC program
//!   translates or finds without backends ([`HOOK_TC_INGRESS`]). Traffic to
//!   non-VIP addresses emits nothing. A full ring drops the record and
//!   bumps [`FLOW_DROPS_MAP`] (per-CPU array, one `u64`). The programs
//!   wake the reader only once [`FLOW_WAKEUP_BYTES`] wait; the reader also
//!   drains every [`FLOW_DRAIN_MS`], so a flow shows within that time.
//! - [`SVC_STATS_MAP`] / [`BACKEND_STATS_MAP`]: per-CPU arrays indexed by
//!   service id or backend id → [`FlowCounters`]: decisions of both
//!   programs, and the packets and bytes the TC program translates in each
//!   direction. Arrays, not hashes: the lookup is inlined by the verifier
//!   and never allocates; ids are small and dense (the map writer hands out
//!   the lowest free one), and user space zeroes an id's slot when it is
//!   freed. The loader sizes them from the service and backend capacities.
//! - [`SVC_SOCK_STATS_MAP`] / [`BACKEND_SOCK_STATS_MAP`]: the same, with
//!   [`SockCounters`] — the socket programs' per-connection and
//!   per-datagram counts, 16 bytes per id instead of 64, so the hot
//!   connect path touches a small, cache- and TLB-friendly array even with
//!   100 000 services. Refusals (rare) go to the full counters. Readers
//!   add both.
//!
//! Addresses use the encoding of [`crate::lb`] (`[u32; 4]`, network byte
//! order, IPv4 in word 0); ports are network byte order. Every type is
//! `#[repr(C)]` with explicit padding so no byte is uninitialised.

/// Ring buffer of [`FlowRecord`]s.
pub const FLOWS_MAP: &str = "LB_FLOWS";
/// Per-CPU array (one slot): records lost to a full ring.
pub const FLOW_DROPS_MAP: &str = "LB_FLOW_DROPS";
/// Per-CPU array: service id → [`FlowCounters`].
pub const SVC_STATS_MAP: &str = "LB_SVC_STATS";
/// Per-CPU array: backend id → [`FlowCounters`].
pub const BACKEND_STATS_MAP: &str = "LB_BE_STATS";
/// Per-CPU array: service id → [`SockCounters`].
pub const SVC_SOCK_STATS_MAP: &str = "LB_SVC_SOCK";
/// Per-CPU array: backend id → [`SockCounters`].
pub const BACKEND_SOCK_STATS_MAP: &str = "LB_BE_SOCK";

/// Every map of this family, pinned next to the load balancer's maps.
pub const MAP_NAMES: [&str; 6] = [
    FLOWS_MAP,
    FLOW_DROPS_MAP,
    SVC_STATS_MAP,
    BACKEND_STATS_MAP,
    SVC_SOCK_STATS_MAP,
    BACKEND_SOCK_STATS_MAP,
];

/// Size of [`FLOWS_MAP`] in bytes (a power of two, a multiple of the page size).
pub const RING_BYTES: u32 = 1 << 20;
/// The programs wake the ring's reader once this many bytes wait; below
/// that the reader drains every [`FLOW_DRAIN_MS`].
pub const FLOW_WAKEUP_BYTES: u64 = 64 << 10;
/// How often the reader drains the ring without a wakeup, in ms.
pub const FLOW_DRAIN_MS: u64 = 50;

/// [`FlowRecord::verdict`]: translated to a backend.
pub const VERDICT_FORWARDED: u8 = 1;
/// [`FlowRecord::verdict`]: the service has no backends (socket programs:
/// `ECONNREFUSED`; TC: the packet is left to the node's kernel, which
/// refuses it as nothing listens there).
pub const VERDICT_NO_BACKEND: u8 = 2;
/// [`FlowRecord::verdict`]: not translated because a slot or backend was
/// missing mid-update (socket programs: `EHOSTUNREACH`) or, at TC, no SNAT
/// port was free.
pub const VERDICT_DROPPED: u8 = 3;

/// [`FlowRecord::hook`]: `cgroup/connect4`.
pub const HOOK_CONNECT4: u8 = 1;
/// [`FlowRecord::hook`]: `cgroup/sendmsg4`.
pub const HOOK_SENDMSG4: u8 = 2;
/// [`FlowRecord::hook`]: the NodePort classifier on TC ingress (first
/// packet of a client → frontend flow arriving at the node).
pub const HOOK_TC_INGRESS: u8 = 3;

/// One load-balancing decision.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC).
    pub timestamp_ns: u64,
    /// `bpf_get_socket_cookie()` of the client socket (0 at TC).
    pub socket_cookie: u64,
    /// `bpf_get_netns_cookie()` of the client's network namespace (0 at TC).
    pub netns_cookie: u64,
    /// Socket programs: the socket's bound source address when known, else
    /// 0. TC: the client's address as the packet arrived.
    pub src_address: [u32; 4],
    /// The frontend (VIP, node address, external or load-balancer IP) the
    /// client asked for.
    pub orig_address: [u32; 4],
    /// The backend it was sent to (zero when refused).
    pub xlate_address: [u32; 4],
    /// TC: the source the backend sees — the node with SNAT
    /// (`externalTrafficPolicy: Cluster`), the client without. Zero for
    /// the socket programs (the source is the socket's own) and refusals.
    pub xlate_src_address: [u32; 4],
    pub service_id: u32,
    /// 0 when refused.
    pub backend_id: u32,
    /// Source port (network order) when known; 0 at connect of an unbound socket.
    pub src_port: u16,
    /// Network byte order.
    pub orig_port: u16,
    /// Network byte order; 0 when refused.
    pub xlate_port: u16,
    /// Network byte order; the port of [`FlowRecord::xlate_src_address`].
    pub xlate_src_port: u16,
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    pub protocol: u8,
    /// `VERDICT_*`.
    pub verdict: u8,
    /// `HOOK_*`.
    pub hook: u8,
    pub _pad: [u8; 4],
}

/// Value of [`SVC_STATS_MAP`] and [`BACKEND_STATS_MAP`] (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Connections translated: TCP/connected-UDP sockets (connect4) and
    /// new TCP or UDP flows at TC (one per conntrack flow).
    pub connections: u64,
    /// Unconnected UDP datagrams translated (sendmsg4).
    pub datagrams: u64,
    /// Refused: no backends.
    pub refused: u64,
    /// Refused: inconsistent entry mid-update (or no SNAT port at TC).
    pub dropped: u64,
    /// TC: client → backend packets translated (every packet of a flow).
    pub packets: u64,
    /// TC: bytes of those packets as TC sees them (Ethernet header included).
    pub bytes: u64,
    /// TC: backend → client replies reverse-translated.
    pub reply_packets: u64,
    /// TC: bytes of those replies.
    pub reply_bytes: u64,
}

/// Value of [`SVC_SOCK_STATS_MAP`] and [`BACKEND_SOCK_STATS_MAP`] (per
/// CPU): the socket programs' translations.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockCounters {
    /// As [`FlowCounters::connections`], from connect4.
    pub connections: u64,
    /// As [`FlowCounters::datagrams`], from sendmsg4.
    pub datagrams: u64,
}

impl FlowCounters {
    /// Adds socket-program counts.
    pub fn add_sock(&mut self, other: &SockCounters) {
        self.connections = self.connections.wrapping_add(other.connections);
        self.datagrams = self.datagrams.wrapping_add(other.datagrams);
    }

    /// Adds another CPU's counters.
    pub fn add(&mut self, other: &Self) {
        self.connections = self.connections.wrapping_add(other.connections);
        self.datagrams = self.datagrams.wrapping_add(other.datagrams);
        self.refused = self.refused.wrapping_add(other.refused);
        self.dropped = self.dropped.wrapping_add(other.dropped);
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
        self.reply_packets = self.reply_packets.wrapping_add(other.reply_packets);
        self.reply_bytes = self.reply_bytes.wrapping_add(other.reply_bytes);
    }
}

// SAFETY: `#[repr(C)]`, `Copy`, integers only, explicit padding (checked
// by the layout test): every bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowRecord {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowCounters {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for SockCounters {}

#[cfg(test)]
mod tests {
    use core::mem::size_of;

    use super::*;

    #[test]
    fn layouts_have_no_padding_holes() {
        assert_eq!(
            size_of::<FlowRecord>(),
            8 * 3 + 16 * 4 + 4 * 2 + 2 * 4 + 4 + 4
        );
        assert_eq!(size_of::<FlowRecord>() % 8, 0);
        assert_eq!(size_of::<FlowCounters>(), 64);
        assert_eq!(size_of::<SockCounters>(), 16);
    }

    #[test]
    fn map_names_fit_the_kernel_limit() {
        for name in MAP_NAMES {
            assert!(name.len() < 16, "{name}");
        }
    }
}
