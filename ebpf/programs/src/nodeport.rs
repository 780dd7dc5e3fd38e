//! NodePort, ExternalIP and LoadBalancer load balancing on the packet path
//! (Cilium's `bpf_host` nodeport role), IPv4, TCP and UDP, with an LRU
//! conntrack.
//!
//! Hook layout: one TC *ingress* classifier, `nodeport_ingress`, attached
//! to the node's external interface **and** to its backend-facing
//! interfaces. Every packet's 5-tuple is looked up in `NP_CT`:
//!
//! - a reply entry (backend → node): source back to the frontend
//!   (`nodeIP:nodePort`, external or load-balancer IP), destination back
//!   to the client;
//! - a forward entry (client → frontend): destination to the backend the
//!   flow already has (so endpoint changes never move an established
//!   flow), source to the SNAT address for `externalTrafficPolicy: Cluster`;
//! - otherwise, a NodePort/ExternalIP/LoadBalancer service entry of
//!   `LB_SERVICES` for the destination: a backend is chosen, both conntrack
//!   entries are created, and the packet is translated.
//!
//! Choosing a backend: `sessionAffinity: ClientIP` services first reuse the
//! client address's remembered backend (`LB_AFFINITY` keyed by address,
//! `AFFINITY_BY_ADDRESS`, fresh within the service's timeout and still a
//! member per `LB_AFF_MATCH` — the socket programs' rule, shared code);
//! `ALG_MAGLEV` services take the slot from their table in `NP_MAGLEV`
//! (indexed by the flow hash), falling back to random when the table is
//! missing or names a slot the service no longer has; others pick a random
//! slot. Conntrack keeps every flow on its first backend either way.
//!
//! Translation happens before routing, so the program returns `TC_ACT_OK`
//! and the kernel forwards the rewritten packet (the node needs
//! `ip_forward`, and `accept_local` on these interfaces because a SNATed
//! packet and a reverse-translated reply carry the node's own address as
//! source). The SNAT address is the frontend's for NodePorts (a node
//! address) and, for external and load-balancer IPs (which need not be the
//! node's), the address the node's routing table uses towards the backend
//! (`bpf_fib_lookup` with `BPF_FIB_LOOKUP_SRC`, as MASQUERADE would pick;
//! the frontend's when the lookup fails). The SNAT port is the client's
//! port unless another flow holds it, then a random one.
//!
//! Observability: the first packet of every new flow emits a `FlowRecord`
//! (`HOOK_TC_INGRESS`, 5-tuple before and after translation, service and
//! backend ids) into the socket programs' `LB_FLOWS` ring with verdict
//! FORWARDED, NO_BACKEND (service without backends: the packet passes
//! untouched and the node refuses it; recorded for UDP datagrams and TCP
//! SYNs) or DROPPED (slot or backend missing mid-update, no SNAT port);
//! decisions bump `LB_SVC_STATS`/`LB_BE_STATS` like the socket programs',
//! and every translated packet adds to their packet and byte counters
//! (forward and reply directions separately).
//!
//! TCP state, just enough to free conntrack early: a FIN marks the
//! direction in both entries (`CT_FLAG_FIN_*`; user space deletes flows
//! closed both ways after a short timeout), a SYN on the tuple of such a
//! closed flow starts a new flow, and an RST deletes both entries once
//! translated.
//!
//! ICMP errors (destination unreachable, time exceeded, parameter
//! problem) about a translated flow — a backend's "port unreachable" for a
//! UDP NodePort, a "fragmentation needed" on the way — are found by the
//! flow's reply entry (from the quoted packet) and translated back: the
//! outer destination to the client, the outer source to the frontend when
//! the backend itself sent it, and the quoted packet to the tuple the
//! client sent (client → frontend), with the outer IP, quoted IP and ICMP
//! checksums fixed, so the client's socket sees the error (ECONNREFUSED,
//! PMTU) as if the frontend had sent it.
//!
//! IP fragments: a first fragment is translated like any packet and its
//! ports are remembered by datagram (`NP_FRAGS`: addresses, protocol, IP
//! id); a later fragment takes them from there, so it finds the same
//! conntrack entry and gets the same addresses (only the IP header
//! changes: the L4 checksum, in the first fragment, covers the whole
//! datagram). Later fragments never open a flow; one arriving before its
//! first fragment passes untouched.
//!
//! Not handled (the packet passes untouched): IPv6.

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_FIB_LOOKUP_SKIP_NEIGH, BPF_FIB_LOOKUP_SRC, TC_ACT_OK, bpf_fib_lookup},
    helpers::generated::{bpf_fib_lookup as fib_lookup, bpf_get_prandom_u32, bpf_ktime_get_ns},
    macros::{classifier, map},
    maps::{HashMap, LruHashMap, PerCpuArray},
    programs::TcContext,
};
use keelson_ebpf_common::{
    flows::{FlowRecord, HOOK_TC_INGRESS, VERDICT_DROPPED, VERDICT_FORWARDED, VERDICT_NO_BACKEND},
    lb::{
        AF_INET, AFFINITY_BY_ADDRESS, ALG_MAGLEV, AffinityKey, BackendValue, IPPROTO_TCP,
        IPPROTO_UDP, KIND_CLUSTER_IP, KIND_NODE_PORT, SVC_FLAG_AFFINITY, SVC_FLAG_EXTERNAL_LOCAL,
        ServiceKey, ServiceValue,
    },
    nat::{
        CT_DIR_FORWARD, CT_DIR_REPLY, CT_FLAG_FIN_FORWARD, CT_FLAG_FIN_REPLY, CT_FLAG_SNAT, CtKey,
        CtValue, FragKey, FragPorts, MAGLEV_TABLE_SIZE, MAX_CT, MAX_FRAGS, MAX_MAGLEV_ENTRIES,
        MaglevKey, flow_hash,
    },
};

use crate::sock_lb::{
    LB_BE_STATS, LB_FLOWS, LB_SERVICES, LB_SVC_STATS, affinity_backend, backend, count_ring_drop,
    remember_affinity, ring_wakeup, slot_backend,
};

#[map(name = "NP_CT")]
static NP_CT: LruHashMap<CtKey, CtValue> = LruHashMap::with_max_entries(MAX_CT, 0);

/// Written by user space (`proxy::nodeport`), RCU-freed elements.
#[map(name = "NP_MAGLEV")]
static NP_MAGLEV: HashMap<MaglevKey, u32> = HashMap::with_max_entries(MAX_MAGLEV_ENTRIES, 1);

/// Ports of fragmented datagrams, from their first fragment.
#[map(name = "NP_FRAGS")]
static NP_FRAGS: LruHashMap<FragKey, FragPorts> = LruHashMap::with_max_entries(MAX_FRAGS, 0);

/// This CPU's copy of the packet's flow (slot 0): conntrack values are
/// copied here rather than onto the 512-byte BPF stack. Not pinned; a TC
/// program runs to completion on one CPU, so nothing else uses the slot
/// meanwhile.
#[map(name = "NP_SCRATCH")]
static NP_SCRATCH: PerCpuArray<CtValue> = PerCpuArray::with_max_entries(1, 0);

const ETH_HLEN: usize = 14;
/// `htons(ETH_P_IP)` as the raw field reads on a little-endian machine.
const ETH_P_IP_BE: u16 = 0x0800u16.to_be();
/// `htons(IP_OFFSET)`: a fragment after the first.
const IP_FRAG_OFFSET_BE: u16 = 0x1fffu16.to_be();
/// `htons(IP_MF)`: more fragments follow.
const IP_MF_BE: u16 = 0x2000u16.to_be();
const IP_CSUM_OFF: usize = ETH_HLEN + 10;
const IP_SRC_OFF: usize = ETH_HLEN + 12;
const IP_DST_OFF: usize = ETH_HLEN + 16;
const BPF_F_PSEUDO_HDR: u64 = 0x10;
const BPF_F_MARK_MANGLED_0: u64 = 0x20;
const BPF_NOEXIST: u64 = 1;
/// Ephemeral range SNAT ports are drawn from when the client's is taken.
const SNAT_PORT_MIN: u32 = 32_768;
const SNAT_PORT_SPAN: u32 = 28_232;
const SNAT_TRIES: u32 = 4;
/// TCP header flags (byte 13).
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// What [`nodeport`] learned about a packet.
struct Packet {
    l4: usize,
    protocol: u8,
    /// TCP flags; 0 for UDP.
    tcp_flags: u8,
    saddr: u32,
    daddr: u32,
    sport: u16,
    dport: u16,
    /// A fragment after the first: no L4 header (ports from `NP_FRAGS`).
    later_fragment: bool,
}

impl Packet {
    /// A TCP connection request (SYN without ACK).
    #[inline(always)]
    fn is_syn(&self) -> bool {
        self.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
    }

    #[inline(always)]
    fn is_rst(&self) -> bool {
        self.tcp_flags & TCP_RST != 0
    }
}

#[classifier]
pub fn nodeport_ingress(ctx: TcContext) -> i32 {
    // Any failure (short packet, helper error) leaves the packet alone.
    let _ = nodeport(&ctx);
    TC_ACT_OK
}

#[inline(always)]
fn nodeport(ctx: &TcContext) -> Result<(), i64> {
    let Some(pkt) = parse(ctx)? else {
        return icmp_error(ctx);
    };
    let mut key = CtKey {
        saddr: [pkt.saddr, 0, 0, 0],
        daddr: [pkt.daddr, 0, 0, 0],
        sport: pkt.sport,
        dport: pkt.dport,
        family: AF_INET,
        protocol: pkt.protocol,
        direction: CT_DIR_REPLY,
        _pad: 0,
    };
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(scratch) = NP_SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: this CPU's slot of the per-CPU array, used by nothing else
    // while this program runs.
    let ct = unsafe { &mut *scratch };
    if let Some(entry) = NP_CT.get_ptr_mut(&key) {
        // SAFETY: a valid pointer into the LRU map's value; racing writers
        // only race on `last_seen_ns` and flag bits.
        unsafe {
            (*entry).last_seen_ns = now;
            *ct = *entry;
        }
        rewrite(
            ctx,
            &pkt,
            ct.frontend[0],
            ct.frontend_port,
            ct.client[0],
            ct.client_port,
        )?;
        count_packet(ctx, ct, false);
        track_tcp(&pkt, ct, CT_FLAG_FIN_REPLY);
        return Ok(());
    }
    key.direction = CT_DIR_FORWARD;
    let mut established = false;
    if let Some(entry) = NP_CT.get_ptr_mut(&key) {
        // SAFETY: as above.
        unsafe {
            (*entry).last_seen_ns = now;
            *ct = *entry;
        }
        if pkt.is_syn() && ct.is_closing() {
            // The client reuses the tuple of a flow both sides closed:
            // a new connection, balanced afresh.
            forget(ct);
        } else {
            established = true;
        }
    }
    if !established {
        // A stray RST or a later fragment never opens a flow.
        if pkt.is_rst() || pkt.later_fragment || !new_flow(ctx, &pkt, &key, now, ct)? {
            return Ok(());
        }
    }
    rewrite(
        ctx,
        &pkt,
        ct.snat[0],
        ct.snat_port,
        ct.backend[0],
        ct.backend_port,
    )?;
    count_packet(ctx, ct, true);
    track_tcp(&pkt, ct, CT_FLAG_FIN_FORWARD);
    Ok(())
}

/// ICMP types that quote the packet they are about.
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;
const IPPROTO_ICMP: u8 = 1;

/// Reverse-translates an ICMP error about a translated flow (see the
/// module docs); anything else passes untouched. A BPF subprogram of its
/// own, off the main path's stack.
#[inline(never)]
fn icmp_error(ctx: &TcContext) -> Result<(), i64> {
    let ethertype: u16 = ctx.load(12)?;
    let vihl: u8 = ctx.load(ETH_HLEN)?;
    let frag: u16 = ctx.load(ETH_HLEN + 6)?;
    let protocol: u8 = ctx.load(ETH_HLEN + 9)?;
    if ethertype != ETH_P_IP_BE
        || vihl >> 4 != 4
        || frag & IP_FRAG_OFFSET_BE != 0
        || protocol != IPPROTO_ICMP
    {
        return Ok(());
    }
    let l4 = ETH_HLEN + usize::from(vihl & 0x0f) * 4;
    let icmp_type: u8 = ctx.load(l4)?;
    if icmp_type != ICMP_DEST_UNREACH
        && icmp_type != ICMP_TIME_EXCEEDED
        && icmp_type != ICMP_PARAMETERPROB
    {
        return Ok(());
    }
    // The quoted packet: the node → backend datagram or segment as
    // translated (IPv4 header, then at least 8 bytes: the ports).
    let inner = l4 + 8;
    let inner_vihl: u8 = ctx.load(inner)?;
    let inner_proto: u8 = ctx.load(inner + 9)?;
    if inner_vihl >> 4 != 4
        || inner_vihl & 0x0f < 5
        || (inner_proto != IPPROTO_TCP && inner_proto != IPPROTO_UDP)
    {
        return Ok(());
    }
    let inner_l4 = inner + usize::from(inner_vihl & 0x0f) * 4;
    // Backend → node/client is the flow's reply direction.
    let key = CtKey {
        saddr: [ctx.load(inner + 16)?, 0, 0, 0],
        daddr: [ctx.load(inner + 12)?, 0, 0, 0],
        sport: ctx.load(inner_l4 + 2)?,
        dport: ctx.load(inner_l4)?,
        family: AF_INET,
        protocol: inner_proto,
        direction: CT_DIR_REPLY,
        _pad: 0,
    };
    let Some(entry) = NP_CT.get_ptr(&key) else {
        return Ok(());
    };
    // Values are re-read where used (from the packet and the entry) rather
    // than kept: this subprogram's stack adds to the main program's.
    let icmp_csum = l4 + 2;
    // The outer header (the ICMP checksum does not cover it): to the
    // client, from the frontend when the backend itself sent it.
    // SAFETY (entry reads below): a valid pointer into the LRU map's value.
    let outer_src: u32 = ctx.load(IP_SRC_OFF)?;
    if outer_src == key.saddr[0] {
        outer_addr(ctx, IP_SRC_OFF, outer_src, unsafe { (*entry).frontend[0] })?;
    }
    let outer_dst: u32 = ctx.load(IP_DST_OFF)?;
    outer_addr(ctx, IP_DST_OFF, outer_dst, unsafe { (*entry).client[0] })?;
    // The quoted packet, whose bytes the ICMP checksum covers: its IP
    // checksum is fixed for its addresses, and the ICMP checksum for every
    // changed word, that IP checksum included.
    let inner_csum = inner + 10;
    let old_inner_csum: u16 = ctx.load(inner_csum)?;
    quoted_addr(ctx, inner + 12, inner_csum, icmp_csum, unsafe {
        (*entry).client[0]
    })?;
    quoted_addr(ctx, inner + 16, inner_csum, icmp_csum, unsafe {
        (*entry).frontend[0]
    })?;
    let new_inner_csum: u16 = ctx.load(inner_csum)?;
    if new_inner_csum != old_inner_csum {
        ctx.l4_csum_replace(
            icmp_csum,
            u64::from(old_inner_csum),
            u64::from(new_inner_csum),
            2,
        )?;
    }
    quoted_port(ctx, inner_l4, icmp_csum, unsafe { (*entry).client_port })?;
    quoted_port(ctx, inner_l4 + 2, icmp_csum, unsafe {
        (*entry).frontend_port
    })
}

/// Rewrites an address of the outer IPv4 header at `off` from `old`.
#[inline(always)]
fn outer_addr(ctx: &TcContext, off: usize, old: u32, new: u32) -> Result<(), i64> {
    if old == new {
        return Ok(());
    }
    ctx.l3_csum_replace(IP_CSUM_OFF, u64::from(old), u64::from(new), 4)?;
    ctx.store(off, &new, 0)
}

/// Rewrites an address of an ICMP error's quoted IP header at `off`,
/// fixing that header's checksum and the ICMP checksum.
#[inline(always)]
fn quoted_addr(
    ctx: &TcContext,
    off: usize,
    ip_csum: usize,
    icmp_csum: usize,
    new: u32,
) -> Result<(), i64> {
    let old: u32 = ctx.load(off)?;
    if old == new {
        return Ok(());
    }
    ctx.l3_csum_replace(ip_csum, u64::from(old), u64::from(new), 4)?;
    ctx.l4_csum_replace(icmp_csum, u64::from(old), u64::from(new), 4)?;
    ctx.store(off, &new, 0)
}

/// Rewrites a port of an ICMP error's quoted L4 header at `off`, fixing
/// the ICMP checksum (the quoted L4 checksum is left: nothing checks it).
#[inline(always)]
fn quoted_port(ctx: &TcContext, off: usize, icmp_csum: usize, new: u16) -> Result<(), i64> {
    let old: u16 = ctx.load(off)?;
    if old == new {
        return Ok(());
    }
    ctx.l4_csum_replace(icmp_csum, u64::from(old), u64::from(new), 2)?;
    ctx.store(off, &new, 0)
}

/// Ethernet + IPv4 + TCP/UDP ports; `None` for anything else.
#[inline(always)]
fn parse(ctx: &TcContext) -> Result<Option<Packet>, i64> {
    let ethertype: u16 = ctx.load(12)?;
    if ethertype != ETH_P_IP_BE {
        return Ok(None);
    }
    let vihl: u8 = ctx.load(ETH_HLEN)?;
    if vihl >> 4 != 4 {
        return Ok(None);
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return Ok(None);
    }
    let frag: u16 = ctx.load(ETH_HLEN + 6)?;
    let protocol: u8 = ctx.load(ETH_HLEN + 9)?;
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return Ok(None);
    }
    let l4 = ETH_HLEN + ihl;
    let saddr: u32 = ctx.load(IP_SRC_OFF)?;
    let daddr: u32 = ctx.load(IP_DST_OFF)?;
    if frag & IP_FRAG_OFFSET_BE != 0 {
        // A later fragment: no L4 header; its first fragment's ports.
        let ports = later_fragment_ports(ctx, saddr, daddr, protocol);
        if ports == 0 {
            return Ok(None);
        }
        return Ok(Some(Packet {
            l4,
            protocol,
            tcp_flags: 0,
            saddr,
            daddr,
            sport: (ports >> 16) as u16,
            dport: ports as u16,
            later_fragment: true,
        }));
    }
    let tcp_flags = if protocol == IPPROTO_TCP {
        ctx.load::<u8>(l4 + 13)?
    } else {
        0
    };
    let sport: u16 = ctx.load(l4)?;
    let dport: u16 = ctx.load(l4 + 2)?;
    if frag & IP_MF_BE != 0 {
        // A first fragment: remember its ports for the later ones.
        remember_fragment(
            ctx,
            saddr,
            daddr,
            protocol,
            u32::from(sport) << 16 | u32::from(dport),
        );
    }
    Ok(Some(Packet {
        l4,
        protocol,
        tcp_flags,
        saddr,
        daddr,
        sport,
        dport,
        later_fragment: false,
    }))
}

/// The datagram a fragment belongs to.
#[inline(always)]
fn fragment_key(ctx: &TcContext, saddr: u32, daddr: u32, protocol: u8) -> Result<FragKey, i64> {
    let id: u16 = ctx.load(ETH_HLEN + 4)?;
    Ok(FragKey {
        saddr: [saddr, 0, 0, 0],
        daddr: [daddr, 0, 0, 0],
        id: u32::from(id),
        family: AF_INET,
        protocol,
        _pad: [0; 2],
    })
}

/// Remembers a first fragment's ports (`sport << 16 | dport`, network
/// order each). A BPF subprogram of its own (as [`later_fragment_ports`]):
/// the key stays off the main program's stack.
#[inline(never)]
fn remember_fragment(ctx: &TcContext, saddr: u32, daddr: u32, protocol: u8, ports: u32) {
    if let Ok(key) = fragment_key(ctx, saddr, daddr, protocol) {
        let ports = FragPorts {
            sport: (ports >> 16) as u16,
            dport: ports as u16,
        };
        // A full LRU evicts the oldest datagram; never fail the packet.
        let _ = NP_FRAGS.insert(&key, &ports, 0);
    }
}

/// A later fragment's ports from its first fragment: `1 << 32 | sport <<
/// 16 | dport`, or 0 when its first fragment was not seen.
#[inline(never)]
fn later_fragment_ports(ctx: &TcContext, saddr: u32, daddr: u32, protocol: u8) -> u64 {
    let Ok(key) = fragment_key(ctx, saddr, daddr, protocol) else {
        return 0;
    };
    match NP_FRAGS.get_ptr(&key) {
        // SAFETY: a valid pointer into the LRU map's value.
        Some(p) => unsafe { 1 << 32 | u64::from((*p).sport) << 16 | u64::from((*p).dport) },
        None => 0,
    }
}

/// Picks a backend for a new flow to a NodePort/ExternalIP/LoadBalancer
/// frontend, records both conntrack entries and the flow, and leaves its
/// translation in `ct`; `false` when the destination is not such a
/// frontend or the flow cannot be translated.
#[inline(always)]
fn new_flow(
    ctx: &TcContext,
    pkt: &Packet,
    fwd: &CtKey,
    now: u64,
    ct: &mut CtValue,
) -> Result<bool, i64> {
    let skey = ServiceKey::service(fwd.daddr, fwd.dport, AF_INET, fwd.protocol);
    let Some(svc) = LB_SERVICES.get_ptr(&skey) else {
        return Ok(false);
    };
    // SAFETY: a valid pointer into the map's value; elements are RCU-freed
    // (BPF_F_NO_PREALLOC) and a user-space update replaces the element, so
    // it stays whole and valid while the program runs. Not copied: the
    // entry (inline backend ids included) would crowd the 512-byte stack.
    let svc: &ServiceValue = unsafe { &*svc };
    if svc.kind == KIND_CLUSTER_IP {
        // ClusterIPs are the socket programs' business.
        return Ok(false);
    }
    if svc.count == 0 {
        // Left to the kernel (nothing listens: RST/ICMP); recorded once
        // per connection attempt, not for stray segments.
        if pkt.protocol == IPPROTO_UDP || pkt.is_syn() {
            refused(fwd, svc, VERDICT_NO_BACKEND, now);
        }
        return Ok(false);
    }
    let Some((backend_id, backend)) = pick(&skey, fwd, svc, now) else {
        refused(fwd, svc, VERDICT_DROPPED, now);
        return Ok(false);
    };
    let snat = svc.flags & SVC_FLAG_EXTERNAL_LOCAL == 0;
    let snat_address = if !snat {
        fwd.saddr[0]
    } else if svc.kind == KIND_NODE_PORT {
        fwd.daddr[0]
    } else {
        route_source(ctx, fwd, &backend).unwrap_or(fwd.daddr[0])
    };
    ct.client = fwd.saddr;
    ct.frontend = fwd.daddr;
    ct.backend = backend.address;
    ct.snat = [snat_address, 0, 0, 0];
    ct.last_seen_ns = now;
    ct.backend_id = backend_id;
    ct.service_id = svc.service_id;
    ct.client_port = fwd.sport;
    ct.frontend_port = fwd.dport;
    ct.backend_port = backend.port;
    ct.snat_port = fwd.sport;
    ct.flags = if snat { CT_FLAG_SNAT } else { 0 };
    ct.family = AF_INET;
    ct.protocol = fwd.protocol;
    ct._pad = [0; 5];
    // Claim the reply tuple first: with SNAT, two clients may share a
    // source port, and the reply tuple must name exactly one flow.
    let mut claimed = false;
    let mut i = 0;
    while i < SNAT_TRIES {
        if NP_CT.insert(&ct.reply_key(), &*ct, BPF_NOEXIST).is_ok() {
            claimed = true;
            break;
        }
        if !snat {
            // Without SNAT the reply tuple is the client's own: a stale
            // entry of an earlier flow with the same tuple; replace it.
            NP_CT.insert(&ct.reply_key(), &*ct, 0)?;
            claimed = true;
            break;
        }
        // SAFETY: a plain helper call.
        let r = unsafe { bpf_get_prandom_u32() };
        ct.snat_port = ((SNAT_PORT_MIN + r % SNAT_PORT_SPAN) as u16).to_be();
        i += 1;
    }
    if !claimed {
        refused(fwd, &svc, VERDICT_DROPPED, now);
        return Ok(false);
    }
    if NP_CT.insert(fwd, &*ct, BPF_NOEXIST).is_err() {
        // Another CPU created this flow meanwhile (and recorded it): use
        // its translation.
        let _ = NP_CT.remove(&ct.reply_key());
        let Some(theirs) = NP_CT.get_ptr(fwd) else {
            return Ok(false);
        };
        // SAFETY: a valid pointer into the LRU map's value.
        unsafe { *ct = *theirs };
        return Ok(true);
    }
    add_counter(false, svc.service_id, Counter::Connections, 1);
    add_counter(true, backend_id, Counter::Connections, 1);
    emit(now, fwd, svc.service_id, VERDICT_FORWARDED, ct);
    Ok(true)
}

/// The backend of a new flow: the client's remembered one for ClientIP
/// affinity services, else the service's Maglev or random choice (then
/// remembered for affinity). `None` when a slot or backend is missing.
#[inline(always)]
fn pick(
    skey: &ServiceKey,
    fwd: &CtKey,
    svc: &ServiceValue,
    now: u64,
) -> Option<(u32, BackendValue)> {
    let affinity = svc.flags & SVC_FLAG_AFFINITY != 0;
    let aff_key = AffinityKey {
        client: fwd.saddr,
        service_id: svc.service_id,
        family: AF_INET,
        source: AFFINITY_BY_ADDRESS,
        _pad: [0; 2],
    };
    if affinity && let Some(found) = affinity_backend(&aff_key, svc) {
        return Some(found);
    }
    let slot = select_slot(fwd, svc);
    let backend_id = slot_backend(skey, svc, slot)?;
    let backend = backend(backend_id)?;
    if affinity {
        remember_affinity(&aff_key, backend_id, now);
    }
    Some((backend_id, backend))
}

/// Slot in `1..=count`: from the service's Maglev table when it has one
/// that names a live slot, uniformly random otherwise.
#[inline(always)]
fn select_slot(fwd: &CtKey, svc: &ServiceValue) -> u16 {
    let count = u32::from(svc.count);
    if svc.algorithm == ALG_MAGLEV {
        let hash = flow_hash(
            fwd.saddr[0],
            fwd.daddr[0],
            fwd.sport,
            fwd.dport,
            fwd.protocol,
        );
        let key = MaglevKey {
            service_id: svc.service_id,
            index: hash % MAGLEV_TABLE_SIZE,
        };
        if let Some(slot) = NP_MAGLEV.get_ptr(&key) {
            // SAFETY: a valid pointer into the map's value (RCU-freed).
            let slot = unsafe { *slot };
            if slot >= 1 && slot <= count {
                return slot as u16;
            }
        }
    }
    // SAFETY: a plain helper call.
    (unsafe { bpf_get_prandom_u32() }
        .checked_rem(count)
        .unwrap_or(0)
        + 1) as u16
}

/// The source address the node's routing table picks towards `backend`
/// for a packet that arrived on this interface (what MASQUERADE would
/// use); `None` when the lookup fails or gives nothing better than the
/// client's own address (kernels before 6.8 lack `BPF_FIB_LOOKUP_SRC`).
/// A BPF subprogram of its own: its lookup buffer is off the main stack.
#[inline(never)]
fn route_source(ctx: &TcContext, fwd: &CtKey, backend: &BackendValue) -> Option<u32> {
    // SAFETY: an all-zero `bpf_fib_lookup` is a valid value (integers only).
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.l4_protocol = fwd.protocol;
    params.sport = fwd.sport;
    params.dport = backend.port;
    // SAFETY: `skb` is the context pointer the kernel passed in.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    params.__bindgen_anon_3.ipv4_src = fwd.saddr[0];
    params.__bindgen_anon_4.ipv4_dst = backend.address[0];
    // SAFETY: a helper call with the valid context and a stack buffer of
    // the size passed.
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            &mut params,
            size_of::<bpf_fib_lookup>() as i32,
            BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: reading the integer the helper wrote into the union.
    let source = unsafe { params.__bindgen_anon_3.ipv4_src };
    (source != 0 && source != fwd.saddr[0]).then_some(source)
}

/// Records a new flow that was not translated, and counts it.
#[inline(always)]
fn refused(fwd: &CtKey, svc: &ServiceValue, verdict: u8, now: u64) {
    let counter = if verdict == VERDICT_NO_BACKEND {
        Counter::Refused
    } else {
        Counter::Dropped
    };
    add_counter(false, svc.service_id, counter, 1);
    emit(now, fwd, svc.service_id, verdict, core::ptr::null());
}

/// One [`FlowRecord`] into the shared ring (or a counted loss when full),
/// written in place; `ct` is the flow's translation, null when refused.
/// A BPF subprogram of its own (off the main stack).
#[inline(never)]
fn emit(now: u64, fwd: &CtKey, service_id: u32, verdict: u8, ct: *const CtValue) {
    let Some(mut entry) = LB_FLOWS.reserve::<FlowRecord>(0) else {
        count_ring_drop();
        return;
    };
    let r = entry.as_mut_ptr();
    // SAFETY: `r` points at a reserved, writable record-sized ring slot;
    // every field is written before the record is submitted. `ct` is null
    // or points at the caller's live value.
    unsafe {
        (*r).timestamp_ns = now;
        (*r).socket_cookie = 0;
        (*r).netns_cookie = 0;
        (*r).src_address = fwd.saddr;
        (*r).orig_address = fwd.daddr;
        (*r).service_id = service_id;
        (*r).src_port = fwd.sport;
        (*r).orig_port = fwd.dport;
        (*r).family = AF_INET;
        (*r).protocol = fwd.protocol;
        (*r).verdict = verdict;
        (*r).hook = HOOK_TC_INGRESS;
        (*r)._pad = [0; 4];
        match ct.as_ref() {
            Some(ct) => {
                (*r).xlate_address = ct.backend;
                (*r).xlate_src_address = ct.snat;
                (*r).backend_id = ct.backend_id;
                (*r).xlate_port = ct.backend_port;
                (*r).xlate_src_port = ct.snat_port;
            }
            None => {
                (*r).xlate_address = [0; 4];
                (*r).xlate_src_address = [0; 4];
                (*r).backend_id = 0;
                (*r).xlate_port = 0;
                (*r).xlate_src_port = 0;
            }
        }
    }
    entry.submit(ring_wakeup());
}

/// A field of [`FlowCounters`](keelson_ebpf_common::flows::FlowCounters).
#[derive(Clone, Copy)]
enum Counter {
    Connections,
    Refused,
    Dropped,
    Packets,
    ReplyPackets,
}

/// Adds `n` to `counter` of service `id` (or backend `id`), and for packet
/// counters `bytes` to the matching byte counter, in this CPU's slot of
/// the per-CPU array (an id past its end loses the count). A BPF
/// subprogram of its own: callers pass scalars.
#[inline(never)]
fn add_counter(backend: bool, id: u32, counter: Counter, bytes: u64) {
    let map = if backend { &LB_BE_STATS } else { &LB_SVC_STATS };
    if let Some(c) = map.get_ptr_mut(id) {
        // SAFETY: this CPU's slot of the per-CPU array; no other writer.
        unsafe {
            match counter {
                Counter::Connections => (*c).connections += 1,
                Counter::Refused => (*c).refused += 1,
                Counter::Dropped => (*c).dropped += 1,
                Counter::Packets => {
                    (*c).packets += 1;
                    (*c).bytes += bytes;
                }
                Counter::ReplyPackets => {
                    (*c).reply_packets += 1;
                    (*c).reply_bytes += bytes;
                }
            }
        }
    }
}

/// Adds one translated packet to its service's and backend's counters.
#[inline(always)]
fn count_packet(ctx: &TcContext, ct: &CtValue, forward: bool) {
    let len = u64::from(ctx.len());
    let counter = if forward {
        Counter::Packets
    } else {
        Counter::ReplyPackets
    };
    add_counter(false, ct.service_id, counter, len);
    add_counter(true, ct.backend_id, counter, len);
}

/// TCP teardown: an RST ends the flow at once; a FIN marks its direction
/// (`fin`) in both entries, so user space can free a flow closed both ways.
#[inline(always)]
fn track_tcp(pkt: &Packet, ct: &CtValue, fin: u8) {
    if pkt.is_rst() {
        forget(ct);
    } else if pkt.tcp_flags & TCP_FIN != 0 && ct.flags & fin == 0 {
        for key in [ct.forward_key(), ct.reply_key()] {
            if let Some(entry) = NP_CT.get_ptr_mut(&key) {
                // SAFETY: a valid pointer into the LRU map's value; a racing
                // update of the byte may lose a bit, delaying the clean-up.
                unsafe { (*entry).flags |= fin };
            }
        }
    }
}

/// Deletes both conntrack entries of a flow.
#[inline(always)]
fn forget(ct: &CtValue) {
    let _ = NP_CT.remove(&ct.forward_key());
    let _ = NP_CT.remove(&ct.reply_key());
}

/// Rewrites the packet's source and destination (address and port),
/// fixing the IPv4 and L4 checksums incrementally.
#[inline(always)]
fn rewrite(
    ctx: &TcContext,
    pkt: &Packet,
    saddr: u32,
    sport: u16,
    daddr: u32,
    dport: u16,
) -> Result<(), i64> {
    if pkt.later_fragment {
        // Only the IP header: the ports and the L4 checksum (over the
        // whole datagram) are in the first fragment.
        if saddr != pkt.saddr {
            outer_addr(ctx, IP_SRC_OFF, pkt.saddr, saddr)?;
        }
        if daddr != pkt.daddr {
            outer_addr(ctx, IP_DST_OFF, pkt.daddr, daddr)?;
        }
        return Ok(());
    }
    let (csum_off, mangled) = if pkt.protocol == IPPROTO_TCP {
        (pkt.l4 + 16, 0)
    } else {
        (pkt.l4 + 6, BPF_F_MARK_MANGLED_0)
    };
    if saddr != pkt.saddr {
        set_addr(ctx, IP_SRC_OFF, csum_off, mangled, pkt.saddr, saddr)?;
    }
    if daddr != pkt.daddr {
        set_addr(ctx, IP_DST_OFF, csum_off, mangled, pkt.daddr, daddr)?;
    }
    if sport != pkt.sport {
        set_port(ctx, pkt.l4, csum_off, mangled, pkt.sport, sport)?;
    }
    if dport != pkt.dport {
        set_port(ctx, pkt.l4 + 2, csum_off, mangled, pkt.dport, dport)?;
    }
    Ok(())
}

#[inline(always)]
fn set_addr(
    ctx: &TcContext,
    off: usize,
    csum_off: usize,
    mangled: u64,
    old: u32,
    new: u32,
) -> Result<(), i64> {
    ctx.l4_csum_replace(
        csum_off,
        u64::from(old),
        u64::from(new),
        BPF_F_PSEUDO_HDR | mangled | 4,
    )?;
    ctx.l3_csum_replace(IP_CSUM_OFF, u64::from(old), u64::from(new), 4)?;
    ctx.store(off, &new, 0)
}

#[inline(always)]
fn set_port(
    ctx: &TcContext,
    off: usize,
    csum_off: usize,
    mangled: u64,
    old: u16,
    new: u16,
) -> Result<(), i64> {
    ctx.l4_csum_replace(csum_off, u64::from(old), u64::from(new), mangled | 2)?;
    ctx.store(off, &new, 0)
}
