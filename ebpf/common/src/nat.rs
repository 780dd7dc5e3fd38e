//! NodePort NAT and conntrack types shared by the TC program
//! (`ebpf/programs/src/nodeport.rs`) and its loader
//! (`node/src/bpf/nodeport.rs`).
//!
//! The program balances traffic that does not come from a local socket (a
//! client outside the node reaching `nodeIP:nodePort`, an external IP or a
//! load-balancer IP). It reuses the socket load balancer's maps — the
//! service and backend maps and ClientIP affinity of [`crate::lb`]
//! (NodePort frontends are service entries with `kind = KIND_NODE_PORT`
//! and the node's address), the flow ring and counters of
//! [`crate::flows`] — and owns two:
//!
//! - [`CT_MAP`] (LRU hash): [`CtKey`] → [`CtValue`]. Every translated flow
//!   has two entries: the client's tuple as it reaches the node
//!   ([`CT_DIR_FORWARD`]) and the backend's reply tuple as it reaches the
//!   node ([`CT_DIR_REPLY`]). Both values carry the whole translation, so
//!   one lookup per packet decides the rewrite in either direction, and an
//!   established flow keeps its backend whatever happens to the service.
//!   TCP state is tracked just enough to free entries early (Cilium's
//!   approach): a FIN seen in a direction sets [`CT_FLAG_FIN_FORWARD`] or
//!   [`CT_FLAG_FIN_REPLY`] in both entries, and a flow with both is
//!   [`CtValue::is_closing`] — user space deletes it after a short close
//!   timeout, and a new SYN on its tuple starts a fresh flow; an RST
//!   deletes both entries at once. So closed flows never compete with live
//!   ones for LRU space.
//! - [`MAGLEV_MAP`] (hash): per-service Maglev lookup tables.
//!
//! and, unpinned (its entries live for a datagram's fragments only),
//! [`FRAG_MAP`] (LRU hash): [`FragKey`] → [`FragPorts`], the ports of an
//! IP datagram's first fragment, so its later fragments — which carry no
//! L4 header — find the same conntrack entry and get the same addresses.
//!
//! Addresses are `[u32; 4]` words in network byte order (IPv4 in word 0,
//! as in [`crate::lb`]); ports are `u16` in network byte order. IPv4 only
//! in the program today; the types are family-aware.

/// Conntrack (LRU hash).
pub const CT_MAP: &str = "NP_CT";
/// Capacity of [`CT_MAP`] (two entries per flow).
pub const MAX_CT: u32 = 65_536;
/// Maglev lookup tables of NodePort services (hash):
/// [`MaglevKey`] → backend slot (`u32`, `1..=count` of the service entry).
pub const MAGLEV_MAP: &str = "NP_MAGLEV";
/// Entries per Maglev table (`M`, prime; Cilium's default).
pub const MAGLEV_TABLE_SIZE: u32 = 16_381;
/// Maglev services the datapath holds tables for at once.
pub const MAX_MAGLEV_SERVICES: u32 = 64;
/// Capacity of [`MAGLEV_MAP`].
pub const MAX_MAGLEV_ENTRIES: u32 = MAGLEV_TABLE_SIZE * MAX_MAGLEV_SERVICES;
/// Ports of fragmented datagrams in flight (LRU hash, not pinned).
pub const FRAG_MAP: &str = "NP_FRAGS";
/// Capacity of [`FRAG_MAP`].
pub const MAX_FRAGS: u32 = 8_192;
/// The TC classifier, attached to ingress of the node's external and
/// backend-facing interfaces.
pub const PROG_NODEPORT: &str = "nodeport_ingress";

/// [`CtKey::direction`]: client → frontend, as the packet reaches the node.
pub const CT_DIR_FORWARD: u8 = 0;
/// [`CtKey::direction`]: backend → client (or → SNAT address), as the
/// reply reaches the node.
pub const CT_DIR_REPLY: u8 = 1;

/// [`CtValue::flags`]: the client's source was rewritten to
/// [`CtValue::snat`] (`externalTrafficPolicy: Cluster`).
pub const CT_FLAG_SNAT: u8 = 1 << 0;
/// [`CtValue::flags`] (TCP): the client sent its FIN.
pub const CT_FLAG_FIN_FORWARD: u8 = 1 << 1;
/// [`CtValue::flags`] (TCP): the backend sent its FIN.
pub const CT_FLAG_FIN_REPLY: u8 = 1 << 2;

/// Key of [`CT_MAP`]: a packet's 5-tuple as it arrives, and its direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtKey {
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
    /// `lb::AF_INET` or `lb::AF_INET6`.
    pub family: u8,
    /// `lb::IPPROTO_TCP` or `lb::IPPROTO_UDP`.
    pub protocol: u8,
    /// [`CT_DIR_FORWARD`] or [`CT_DIR_REPLY`].
    pub direction: u8,
    pub _pad: u8,
}

/// Value of [`CT_MAP`]: one flow's translation (same in both entries).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtValue {
    /// The client's address, as it reached the node.
    pub client: [u32; 4],
    /// The frontend the client asked for (node address of the NodePort).
    pub frontend: [u32; 4],
    /// The chosen backend.
    pub backend: [u32; 4],
    /// The source the backend sees: the node's address with
    /// [`CT_FLAG_SNAT`], the client's address without.
    pub snat: [u32; 4],
    /// `bpf_ktime_get_ns()` of the last packet seen on this entry.
    pub last_seen_ns: u64,
    pub backend_id: u32,
    pub service_id: u32,
    /// Network byte order, as are the other ports.
    pub client_port: u16,
    pub frontend_port: u16,
    pub backend_port: u16,
    pub snat_port: u16,
    /// `CT_FLAG_*`.
    pub flags: u8,
    pub family: u8,
    pub protocol: u8,
    pub _pad: [u8; 5],
}

/// Key of [`FRAG_MAP`]: one IP datagram (its fragments share these).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FragKey {
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    /// The IP identification (IPv4: 16 bits; IPv6: 32).
    pub id: u32,
    pub family: u8,
    pub protocol: u8,
    pub _pad: [u8; 2],
}

/// Value of [`FRAG_MAP`]: the first fragment's ports (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragPorts {
    pub sport: u16,
    pub dport: u16,
}

/// Key of [`MAGLEV_MAP`]: entry `index` (`< MAGLEV_TABLE_SIZE`) of the
/// table of service `service_id` (`lb::ServiceValue::service_id`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaglevKey {
    pub service_id: u32,
    pub index: u32,
}

/// The flow hash Maglev tables are indexed with (`% MAGLEV_TABLE_SIZE`):
/// a murmur3-style mix of the forward tuple as it reaches the node, so
/// every node maps a flow to the same entry. Addresses and ports are as
/// in the map keys (network byte order words).
pub const fn flow_hash(saddr: u32, daddr: u32, sport: u16, dport: u16, protocol: u8) -> u32 {
    const fn mix(mut x: u32) -> u32 {
        x = x.wrapping_mul(0x85eb_ca6b);
        x ^= x >> 13;
        x = x.wrapping_mul(0xc2b2_ae35);
        x ^ (x >> 16)
    }
    let mut h = mix(saddr ^ 0x9e37_79b9);
    h = mix(h ^ daddr);
    h = mix(h ^ (((sport as u32) << 16) | dport as u32));
    mix(h ^ protocol as u32)
}

impl CtValue {
    /// A TCP flow both sides have closed (FIN seen in each direction): its
    /// entries only serve the last ACKs and retransmissions now.
    pub const fn is_closing(&self) -> bool {
        let both = CT_FLAG_FIN_FORWARD | CT_FLAG_FIN_REPLY;
        self.flags & both == both
    }

    /// The key of this flow's forward entry.
    pub const fn forward_key(&self) -> CtKey {
        CtKey {
            saddr: self.client,
            daddr: self.frontend,
            sport: self.client_port,
            dport: self.frontend_port,
            family: self.family,
            protocol: self.protocol,
            direction: CT_DIR_FORWARD,
            _pad: 0,
        }
    }

    /// The key of this flow's reply entry.
    pub const fn reply_key(&self) -> CtKey {
        CtKey {
            saddr: self.backend,
            daddr: self.snat,
            sport: self.backend_port,
            dport: self.snat_port,
            family: self.family,
            protocol: self.protocol,
            direction: CT_DIR_REPLY,
            _pad: 0,
        }
    }
}

// SAFETY: `#[repr(C)]`, `Copy`, integers only, explicit padding (checked
// by the layout test): every bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for MaglevKey {}

#[cfg(test)]
mod tests {
    use core::mem::size_of;

    use super::*;

    #[test]
    fn layouts_have_no_padding_holes() {
        assert_eq!(size_of::<CtKey>(), 32 + 4 + 4);
        assert_eq!(size_of::<FragKey>(), 32 + 4 + 4);
        assert_eq!(size_of::<FragPorts>(), 4);
        assert_eq!(size_of::<CtValue>(), 64 + 8 + 8 + 8 + 8);
    }

    #[test]
    fn map_name_fits_the_kernel_limit() {
        // Program names are truncated by the loader; map names are looked
        // up by their full name and must fit BPF_OBJ_NAME_LEN.
        assert!(CT_MAP.len() < 16);
        assert!(MAGLEV_MAP.len() < 16);
    }

    #[test]
    fn keys_of_a_flow_mirror_each_other() {
        let value = CtValue {
            client: [1, 0, 0, 0],
            frontend: [2, 0, 0, 0],
            backend: [3, 0, 0, 0],
            snat: [2, 0, 0, 0],
            client_port: 10,
            frontend_port: 20,
            backend_port: 30,
            snat_port: 40,
            family: 2,
            protocol: 6,
            ..CtValue::default()
        };
        let fwd = value.forward_key();
        assert_eq!(
            (fwd.saddr, fwd.sport, fwd.daddr, fwd.dport),
            ([1, 0, 0, 0], 10, [2, 0, 0, 0], 20)
        );
        let rep = value.reply_key();
        assert_eq!(
            (rep.saddr, rep.sport, rep.daddr, rep.dport),
            ([3, 0, 0, 0], 30, [2, 0, 0, 0], 40)
        );
        assert_eq!(rep.direction, CT_DIR_REPLY);
    }
}
