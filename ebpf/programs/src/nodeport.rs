//! NodePort load balancing on the packet path (Cilium's `bpf_host`
//! nodeport role), IPv4, TCP and UDP, with an LRU conntrack.
//!
//! Hook layout: one TC *ingress* classifier, `nodeport_ingress`, attached
//! to the node's external interface **and** to its backend-facing
//! interfaces. Every packet's 5-tuple is looked up in `NP_CT`:
//!
//! - a reply entry (backend → node): source back to `nodeIP:nodePort`,
//!   destination back to the client;
//! - a forward entry (client → `nodeIP:nodePort`): destination to the
//!   backend the flow already has (so endpoint changes never move an
//!   established flow), source to the SNAT address for
//!   `externalTrafficPolicy: Cluster`;
//! - otherwise, a NodePort/ExternalIP/LoadBalancer service entry of
//!   `LB_SERVICES` for the destination: a random backend slot is picked,
//!   both conntrack entries are created, and the packet is translated.
//!
//! Translation happens before routing, so the program returns `TC_ACT_OK`
//! and the kernel forwards the rewritten packet (the node needs
//! `ip_forward`, and `accept_local` on these interfaces because a SNATed
//! packet and a reverse-translated reply carry the node's own address as
//! source). The SNAT address is the frontend's (the node) address; the
//! SNAT port is the client's port unless another flow holds it, then a
//! random one. Services with `ALG_MAGLEV` pick the slot from their table
//! in `NP_MAGLEV` (indexed by the flow hash), falling back to random when
//! the table is missing or names a slot the service no longer has;
//! conntrack keeps every flow on its first backend either way.
//!
//! Not handled (the packet passes untouched): IPv6, IP fragments after the
//! first, ICMP errors about translated flows. Conntrack entries are only
//! removed by LRU eviction.

use aya_ebpf::{
    bindings::TC_ACT_OK,
    helpers::generated::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    macros::{classifier, map},
    maps::{HashMap, LruHashMap},
    programs::TcContext,
};
use keelson_ebpf_common::{
    lb::{
        AF_INET, ALG_MAGLEV, BackendValue, IPPROTO_TCP, IPPROTO_UDP, KIND_CLUSTER_IP,
        SVC_FLAG_EXTERNAL_LOCAL, ServiceKey, ServiceValue,
    },
    nat::{
        CT_DIR_FORWARD, CT_DIR_REPLY, CT_FLAG_SNAT, CtKey, CtValue, MAGLEV_TABLE_SIZE, MAX_CT,
        MAX_MAGLEV_ENTRIES, MaglevKey, flow_hash,
    },
};

use crate::sock_lb::{LB_BACKENDS, LB_SERVICES};

#[map(name = "NP_CT")]
static NP_CT: LruHashMap<CtKey, CtValue> = LruHashMap::with_max_entries(MAX_CT, 0);

/// Written by user space (`proxy::nodeport`), RCU-freed elements.
#[map(name = "NP_MAGLEV")]
static NP_MAGLEV: HashMap<MaglevKey, u32> = HashMap::with_max_entries(MAX_MAGLEV_ENTRIES, 1);

const ETH_HLEN: usize = 14;
/// `htons(ETH_P_IP)` as the raw field reads on a little-endian machine.
const ETH_P_IP_BE: u16 = 0x0800u16.to_be();
/// `htons(IP_MF | IP_OFFSET)`: any fragment but an unfragmented packet.
const IP_FRAG_OFFSET_BE: u16 = 0x1fffu16.to_be();
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

/// What [`nodeport`] learned about a packet.
struct Packet {
    l4: usize,
    protocol: u8,
    saddr: u32,
    daddr: u32,
    sport: u16,
    dport: u16,
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
        return Ok(());
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
    if let Some(ct) = NP_CT.get_ptr_mut(&key) {
        // SAFETY: a valid pointer into the LRU map's value; racing writers
        // only race on `last_seen_ns`.
        let ct = unsafe {
            (*ct).last_seen_ns = now;
            *ct
        };
        return rewrite(
            ctx,
            &pkt,
            ct.frontend[0],
            ct.frontend_port,
            ct.client[0],
            ct.client_port,
        );
    }
    key.direction = CT_DIR_FORWARD;
    let ct = match NP_CT.get_ptr_mut(&key) {
        // SAFETY: as above.
        Some(ct) => unsafe {
            (*ct).last_seen_ns = now;
            *ct
        },
        None => match new_flow(&key, now)? {
            Some(ct) => ct,
            None => return Ok(()),
        },
    };
    rewrite(
        ctx,
        &pkt,
        ct.snat[0],
        ct.snat_port,
        ct.backend[0],
        ct.backend_port,
    )
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
    if frag & IP_FRAG_OFFSET_BE != 0 {
        // Later fragments carry no ports; first ones with MF set are rare
        // enough on NodePorts to be left to the kernel as well.
        return Ok(None);
    }
    let protocol: u8 = ctx.load(ETH_HLEN + 9)?;
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return Ok(None);
    }
    let l4 = ETH_HLEN + ihl;
    Ok(Some(Packet {
        l4,
        protocol,
        saddr: ctx.load(IP_SRC_OFF)?,
        daddr: ctx.load(IP_DST_OFF)?,
        sport: ctx.load(l4)?,
        dport: ctx.load(l4 + 2)?,
    }))
}

/// Picks a backend for a new flow to a NodePort frontend and records both
/// conntrack entries; `None` when the destination is not such a frontend
/// or it has no usable backend.
#[inline(always)]
fn new_flow(fwd: &CtKey, now: u64) -> Result<Option<CtValue>, i64> {
    let skey = ServiceKey::service(fwd.daddr, fwd.dport, AF_INET, fwd.protocol);
    let Some(svc) = LB_SERVICES.get_ptr(&skey) else {
        return Ok(None);
    };
    // SAFETY: a valid pointer into the map's value (RCU-freed elements).
    let svc: ServiceValue = unsafe { *svc };
    if svc.kind == KIND_CLUSTER_IP || svc.count == 0 {
        // ClusterIPs are the socket programs' business; a NodePort without
        // backends is left to the kernel (nothing listens: RST/ICMP).
        return Ok(None);
    }
    let slot = select_slot(fwd, &svc);
    let Some(slot) = LB_SERVICES.get_ptr(&skey.with_slot(slot, svc.revision)) else {
        return Ok(None);
    };
    // SAFETY: as above.
    let backend_id = unsafe { (*slot).backend_id };
    let Some(backend) = LB_BACKENDS.get_ptr(&backend_id) else {
        return Ok(None);
    };
    // SAFETY: as above.
    let backend: BackendValue = unsafe { *backend };
    if backend.family != AF_INET {
        return Ok(None);
    }
    let snat = svc.flags & SVC_FLAG_EXTERNAL_LOCAL == 0;
    let mut ct = CtValue {
        client: fwd.saddr,
        frontend: fwd.daddr,
        backend: backend.address,
        snat: if snat { fwd.daddr } else { fwd.saddr },
        last_seen_ns: now,
        backend_id,
        service_id: svc.service_id,
        client_port: fwd.sport,
        frontend_port: fwd.dport,
        backend_port: backend.port,
        snat_port: fwd.sport,
        flags: if snat { CT_FLAG_SNAT } else { 0 },
        family: AF_INET,
        protocol: fwd.protocol,
        _pad: [0; 5],
    };
    // Claim the reply tuple first: with SNAT, two clients may share a
    // source port, and the reply tuple must name exactly one flow.
    let mut claimed = false;
    let mut i = 0;
    while i < SNAT_TRIES {
        if NP_CT.insert(&ct.reply_key(), &ct, BPF_NOEXIST).is_ok() {
            claimed = true;
            break;
        }
        if !snat {
            // Without SNAT the reply tuple is the client's own: a stale
            // entry of an earlier flow with the same tuple; replace it.
            NP_CT.insert(&ct.reply_key(), &ct, 0)?;
            claimed = true;
            break;
        }
        // SAFETY: a plain helper call.
        let r = unsafe { bpf_get_prandom_u32() };
        ct.snat_port = ((SNAT_PORT_MIN + r % SNAT_PORT_SPAN) as u16).to_be();
        i += 1;
    }
    if !claimed {
        return Ok(None);
    }
    if NP_CT.insert(fwd, &ct, BPF_NOEXIST).is_err() {
        // Another CPU created this flow meanwhile: use its translation.
        let _ = NP_CT.remove(&ct.reply_key());
        let Some(theirs) = NP_CT.get_ptr(fwd) else {
            return Ok(None);
        };
        // SAFETY: a valid pointer into the LRU map's value.
        return Ok(Some(unsafe { *theirs }));
    }
    Ok(Some(ct))
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
    (unsafe { bpf_get_prandom_u32() } % count + 1) as u16
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
