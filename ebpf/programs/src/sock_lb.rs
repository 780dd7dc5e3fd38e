//! Socket-level load balancing (Cilium's `bpf_sock.c` role) for IPv4:
//! service VIPs are translated to a backend when the application connects
//! or sends, so no packet ever carries a VIP.
//!
//! - `sock4_connect` (`cgroup/connect4`): TCP and connected UDP. Looks the
//!   frontend up in `LB_SERVICES`, picks a backend (ClientIP affinity first,
//!   then random for TCP or by socket cookie for UDP), rewrites the
//!   destination, and records socket cookie + backend → VIP in
//!   `LB_REVNAT_SK`. A service without backends fails `connect()` with
//!   `ECONNREFUSED` (`bpf_set_retval` + reject), like kube-proxy's REJECT.
//! - `sock4_sendmsg` (`cgroup/sendmsg4`): the same per datagram of an
//!   unconnected UDP socket.
//! - `sock4_recvmsg` / `sock4_getpeername` (`cgroup/recvmsg4`,
//!   `cgroup/getpeername4`): the reverse, so the application sees the VIP.
//!
//! Addresses that are not frontends pass untouched. The programs only read
//! the service and backend maps; user space owns them (`node/src/proxy`).
//! The TC program (`nodeport.rs`) shares these maps and the helpers marked
//! `pub(crate)` (affinity, counters, the flow ring), so both paths apply
//! one ClientIP-affinity rule and feed one flow ring and counter set.
//! Maglev services are balanced like random ones here: at connect time the
//! source port is unknown, and Maglev's per-flow consistency matters on the
//! packet path (TC/XDP), which is where its table lookup will live.

use aya_ebpf::{
    EbpfContext,
    btf_maps::SkStorage,
    helpers::generated::{
        bpf_get_netns_cookie, bpf_get_prandom_u32, bpf_get_socket_cookie, bpf_ktime_get_ns,
        bpf_set_retval,
    },
    macros::{btf_map, cgroup_sock_addr, map},
    maps::{HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::SockAddrContext,
};
use keelson_ebpf_common::flows::{
    FlowCounters, FlowRecord, HOOK_CONNECT4, HOOK_SENDMSG4, MAX_BACKEND_STATS, MAX_SVC_STATS,
    RING_BYTES, VERDICT_DROPPED, VERDICT_FORWARDED, VERDICT_NO_BACKEND,
};
use keelson_ebpf_common::lb::{
    AF_INET, AFFINITY_BY_NETNS, AffinityKey, AffinityMatchKey, AffinityValue, BackendValue,
    IPPROTO_UDP, MAX_AFFINITY, MAX_AFFINITY_MATCH, MAX_BACKENDS, MAX_REVNAT_SK,
    MAX_SERVICE_ENTRIES, RevNatSkKey, RevNatSkValue, RevNatSock, SVC_FLAG_AFFINITY, ServiceKey,
    ServiceValue,
};

/// Written by user space with RCU-freed elements (`BPF_F_NO_PREALLOC`), so
/// a value a program is reading is never reused under it.
const BPF_F_NO_PREALLOC: u32 = 1;
/// Hook verdicts.
const SYS_PROCEED: i32 = 1;
const SYS_REJECT: i32 = 0;
const ECONNREFUSED: i32 = 111;
const EHOSTUNREACH: i32 = 113;
const NS_PER_SEC: u64 = 1_000_000_000;

#[map(name = "LB_SERVICES")]
pub(crate) static LB_SERVICES: HashMap<ServiceKey, ServiceValue> =
    HashMap::with_max_entries(MAX_SERVICE_ENTRIES, BPF_F_NO_PREALLOC);

#[map(name = "LB_BACKENDS")]
pub(crate) static LB_BACKENDS: HashMap<u32, BackendValue> =
    HashMap::with_max_entries(MAX_BACKENDS, BPF_F_NO_PREALLOC);

#[map(name = "LB_AFFINITY")]
pub(crate) static LB_AFFINITY: LruHashMap<AffinityKey, AffinityValue> =
    LruHashMap::with_max_entries(MAX_AFFINITY, 0);

#[map(name = "LB_AFF_MATCH")]
pub(crate) static LB_AFF_MATCH: HashMap<AffinityMatchKey, u8> =
    HashMap::with_max_entries(MAX_AFFINITY_MATCH, BPF_F_NO_PREALLOC);

#[map(name = "LB_REVNAT_SK")]
static LB_REVNAT_SK: LruHashMap<RevNatSkKey, RevNatSkValue> =
    LruHashMap::with_max_entries(MAX_REVNAT_SK, 0);

/// Connected sockets' reverse translation, stored on the socket itself.
#[btf_map(name = "LB_REVNAT_SOCK")]
static LB_REVNAT_SOCK: SkStorage<RevNatSock> = SkStorage::new();

/// One [`FlowRecord`] per translated or refused VIP flow.
#[map(name = "LB_FLOWS")]
pub(crate) static LB_FLOWS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Records lost because the ring was full (slot 0, per CPU).
#[map(name = "LB_FLOW_DROPS")]
pub(crate) static LB_FLOW_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "LB_SVC_STATS")]
pub(crate) static LB_SVC_STATS: PerCpuHashMap<u32, FlowCounters> =
    PerCpuHashMap::with_max_entries(MAX_SVC_STATS, 0);

#[map(name = "LB_BE_STATS")]
pub(crate) static LB_BE_STATS: PerCpuHashMap<u32, FlowCounters> =
    PerCpuHashMap::with_max_entries(MAX_BACKEND_STATS, 0);

#[cgroup_sock_addr(connect4)]
pub fn sock4_connect(ctx: SockAddrContext) -> i32 {
    translate(&ctx, HOOK_CONNECT4)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn sock4_sendmsg(ctx: SockAddrContext) -> i32 {
    translate(&ctx, HOOK_SENDMSG4)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn sock4_recvmsg(ctx: SockAddrContext) -> i32 {
    reverse(&ctx);
    SYS_PROCEED
}

#[cgroup_sock_addr(getpeername4)]
pub fn sock4_getpeername(ctx: SockAddrContext) -> i32 {
    reverse(&ctx);
    SYS_PROCEED
}

/// Why a frontend could not be translated: the hook fails with this errno.
enum Refuse {
    /// No backends: `ECONNREFUSED`.
    NoBackends,
    /// A slot or backend vanished mid-update (or is malformed):
    /// `EHOSTUNREACH`, as Cilium does; a retry sees the new entry.
    Inconsistent,
}

/// Forward translation for connect4/sendmsg4.
#[inline(always)]
fn translate(ctx: &SockAddrContext, hook: u8) -> i32 {
    let sa = ctx.sock_addr;
    // SAFETY: `sa` is the context pointer the kernel passed to the program;
    // these fields are readable in connect4 and sendmsg4.
    let (family, ip, port, protocol) = unsafe {
        (
            (*sa).user_family,
            (*sa).user_ip4,
            (*sa).user_port,
            (*sa).protocol,
        )
    };
    if family != u32::from(AF_INET) {
        return SYS_PROCEED;
    }
    let protocol = protocol as u8;
    let key = ServiceKey::service([ip, 0, 0, 0], port as u16, AF_INET, protocol);
    // Copy the entry out: user space may replace it meanwhile.
    let Some(svc) = LB_SERVICES.get_ptr(&key) else {
        return SYS_PROCEED;
    };
    // SAFETY: a non-null pointer to a value of this map, freed only after
    // an RCU grace period (BPF_F_NO_PREALLOC).
    let svc: ServiceValue = unsafe { *svc };
    match pick(ctx, &key, &svc) {
        Ok((backend_id, backend)) => {
            // SAFETY: user_ip4/user_port are writable in connect4/sendmsg4.
            unsafe {
                (*sa).user_ip4 = backend.address[0];
                (*sa).user_port = u32::from(backend.port);
            }
            record_revnat(ctx, hook, &key, &svc, &backend);
            emit_flow(
                ctx,
                hook,
                &key,
                svc.service_id,
                VERDICT_FORWARDED,
                backend_id,
                &backend,
            );
            SYS_PROCEED
        }
        Err(why) => {
            let (errno, verdict) = match why {
                Refuse::NoBackends => (ECONNREFUSED, VERDICT_NO_BACKEND),
                Refuse::Inconsistent => (EHOSTUNREACH, VERDICT_DROPPED),
            };
            emit_flow(
                ctx,
                hook,
                &key,
                svc.service_id,
                verdict,
                0,
                &BackendValue::default(),
            );
            // SAFETY: a plain helper call; allowed in these hooks (≥ 5.18).
            unsafe { bpf_set_retval(-errno) };
            SYS_REJECT
        }
    }
}

/// Counts the decision per service and backend and emits its
/// [`FlowRecord`] into the ring (or counts the loss when it is full).
#[inline(always)]
fn emit_flow(
    ctx: &SockAddrContext,
    hook: u8,
    key: &ServiceKey,
    service_id: u32,
    verdict: u8,
    backend_id: u32,
    backend: &BackendValue,
) {
    let mut delta = FlowCounters::default();
    match verdict {
        VERDICT_FORWARDED if hook == HOOK_CONNECT4 => delta.connections = 1,
        VERDICT_FORWARDED => delta.datagrams = 1,
        VERDICT_NO_BACKEND => delta.refused = 1,
        _ => delta.dropped = 1,
    }
    bump(&LB_SVC_STATS, service_id, &delta);
    if backend_id != 0 {
        bump(&LB_BE_STATS, backend_id, &delta);
    }
    // The socket's own address: known once it is bound (explicitly, or a
    // connected socket reconnecting); 0 for a fresh socket at connect.
    // SAFETY: `sk` is a non-null socket pointer in sock_addr programs and
    // src_ip4/src_port are readable fields of `struct bpf_sock`.
    let (src_ip4, src_port) = unsafe {
        let sk = (*ctx.sock_addr).__bindgen_anon_1.sk;
        ((*sk).src_ip4, (*sk).src_port)
    };
    // SAFETY (helpers below): plain helper calls on the valid context
    // pointer, allowed in connect4/sendmsg4.
    let record = FlowRecord {
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        socket_cookie: unsafe { bpf_get_socket_cookie(ctx.as_ptr()) },
        netns_cookie: unsafe { bpf_get_netns_cookie(ctx.as_ptr()) },
        src_address: [src_ip4, 0, 0, 0],
        orig_address: key.address,
        xlate_address: backend.address,
        xlate_src_address: [0; 4],
        service_id,
        backend_id,
        // bpf_sock.src_port is in host byte order.
        src_port: (src_port as u16).to_be(),
        orig_port: key.port,
        xlate_port: backend.port,
        xlate_src_port: 0,
        family: AF_INET,
        protocol: key.protocol,
        verdict,
        hook,
        _pad: [0; 4],
    };
    if LB_FLOWS.output::<FlowRecord>(&record, 0).is_err() {
        count_ring_drop();
    }
}

/// Counts one flow record lost to a full ring.
#[inline(always)]
pub(crate) fn count_ring_drop() {
    if let Some(drops) = LB_FLOW_DROPS.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of the per-CPU array.
        unsafe { *drops += 1 };
    }
}

/// Adds `delta` to this CPU's counters of `id`, creating them at first use.
#[inline(always)]
fn bump(map: &PerCpuHashMap<u32, FlowCounters>, id: u32, delta: &FlowCounters) {
    match map.get_ptr_mut(&id) {
        // SAFETY: this CPU's value of the per-CPU hash; no other writer.
        Some(counters) => unsafe {
            (*counters).connections += delta.connections;
            (*counters).datagrams += delta.datagrams;
            (*counters).refused += delta.refused;
            (*counters).dropped += delta.dropped;
            (*counters).packets += delta.packets;
            (*counters).bytes += delta.bytes;
            (*counters).reply_packets += delta.reply_packets;
            (*counters).reply_bytes += delta.reply_bytes;
        },
        None => {
            // A full map loses the counts; never fail the syscall.
            let _ = map.insert(&id, delta, 0);
        }
    }
}

/// Chooses the backend for a new flow to the service entry `svc` of `key`.
#[inline(always)]
fn pick(
    ctx: &SockAddrContext,
    key: &ServiceKey,
    svc: &ServiceValue,
) -> Result<(u32, BackendValue), Refuse> {
    let count = u32::from(svc.count);
    if count == 0 {
        return Err(Refuse::NoBackends);
    }
    let affinity = svc.flags & SVC_FLAG_AFFINITY != 0;
    let mut aff_key = AffinityKey::default();
    if affinity {
        // SAFETY: valid context pointer; the helper is allowed here.
        let netns = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
        aff_key = AffinityKey {
            client: [netns as u32, (netns >> 32) as u32, 0, 0],
            service_id: svc.service_id,
            family: AF_INET,
            source: AFFINITY_BY_NETNS,
            _pad: [0; 2],
        };
        if let Some(found) = affinity_backend(&aff_key, svc) {
            return Ok(found);
        }
    }
    let slot = select_slot(ctx, key.protocol, count);
    let slot_key = key.with_slot(slot, svc.revision);
    let Some(slot_value) = LB_SERVICES.get_ptr(&slot_key) else {
        return Err(Refuse::Inconsistent);
    };
    // SAFETY: as for the service entry.
    let backend_id = unsafe { (*slot_value).backend_id };
    let backend = backend(backend_id).ok_or(Refuse::Inconsistent)?;
    if affinity {
        // SAFETY: a plain helper call.
        remember_affinity(&aff_key, backend_id, unsafe { bpf_ktime_get_ns() });
    }
    Ok((backend_id, backend))
}

/// Records `backend_id` as the affinity client's backend, used at `now`.
#[inline(always)]
pub(crate) fn remember_affinity(aff_key: &AffinityKey, backend_id: u32, now: u64) {
    let value = AffinityValue {
        last_used_ns: now,
        backend_id,
        _pad: 0,
    };
    // A full LRU map evicts; losing affinity is not an error.
    let _ = LB_AFFINITY.insert(aff_key, &value, 0);
}

/// The remembered backend of an affinity client, if still fresh and still
/// a member of the service; refreshes its timestamp.
#[inline(always)]
pub(crate) fn affinity_backend(
    aff_key: &AffinityKey,
    svc: &ServiceValue,
) -> Option<(u32, BackendValue)> {
    let entry = LB_AFFINITY.get_ptr_mut(aff_key)?;
    // SAFETY: a valid pointer into the LRU map's value.
    let AffinityValue {
        last_used_ns,
        backend_id,
        ..
    } = unsafe { *entry };
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(last_used_ns) > u64::from(svc.affinity_timeout) * NS_PER_SEC {
        return None;
    }
    let member = AffinityMatchKey {
        backend_id,
        service_id: svc.service_id,
    };
    LB_AFF_MATCH.get_ptr(&member)?;
    let backend = backend(backend_id)?;
    // SAFETY: same pointer; a racing update only loses a refresh.
    unsafe { (*entry).last_used_ns = now };
    Some((backend_id, backend))
}

/// Slot in `1..=count`: random for TCP; for UDP a hash of the socket
/// cookie, so one socket's datagrams stay on one backend (as Cilium does).
///
/// TODO(maglev): `ALG_MAGLEV` services are picked the same way here. The
/// Maglev table lookup (per-service lookup table in a map-in-map, indexed
/// by a 5-tuple hash) belongs to the packet path, where the source port is
/// known; at connect time it is not, so Cilium's socket LB is random too.
#[inline(always)]
fn select_slot(ctx: &SockAddrContext, protocol: u8, count: u32) -> u16 {
    let r = if protocol == IPPROTO_UDP {
        // SAFETY: valid context pointer; the helper is allowed here.
        let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
        (cookie.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
    } else {
        // SAFETY: a plain helper call.
        unsafe { bpf_get_prandom_u32() }
    };
    (r % count + 1) as u16
}

/// An IPv4 backend by id, copied out of the map.
#[inline(always)]
fn backend(id: u32) -> Option<BackendValue> {
    let ptr = LB_BACKENDS.get_ptr(&id)?;
    // SAFETY: a valid pointer into the map's value (RCU-freed).
    let value = unsafe { *ptr };
    (value.family == AF_INET).then_some(value)
}

/// Remembers backend → frontend for the reverse hooks: on the socket for
/// a connect (one peer per socket), by socket cookie + backend for an
/// unconnected UDP send (any number of peers).
#[inline(always)]
fn record_revnat(
    ctx: &SockAddrContext,
    hook: u8,
    key: &ServiceKey,
    svc: &ServiceValue,
    backend: &BackendValue,
) {
    let frontend = RevNatSkValue {
        address: key.address,
        port: key.port,
        family: AF_INET,
        _pad: 0,
        service_id: svc.service_id,
    };
    if hook == HOOK_CONNECT4 {
        let mut value = RevNatSock {
            backend: backend.address,
            backend_port: backend.port,
            family: AF_INET,
            protocol: key.protocol,
            frontend,
        };
        // SAFETY: the context's socket; the helper is allowed in
        // sock_addr programs. A reconnect overwrites the old peer.
        let stored = unsafe { LB_REVNAT_SOCK.get_or_insert_ptr_mut(ctx, Some(&mut value)) };
        if !stored.is_null() {
            // SAFETY: a valid pointer to this socket's storage.
            unsafe { *stored = value };
        }
        // Out of memory: getpeername() shows the backend; never fail.
        return;
    }
    // SAFETY: valid context pointer; the helper is allowed here.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let rkey = RevNatSkKey {
        cookie,
        address: backend.address,
        port: backend.port,
        family: AF_INET,
        protocol: key.protocol,
        _pad: 0,
    };
    // A full LRU map evicts the oldest entry; never fail the syscall.
    let _ = LB_REVNAT_SK.insert(&rkey, &frontend, 0);
}

/// Reverse translation for recvmsg4/getpeername4: backend → VIP.
#[inline(always)]
fn reverse(ctx: &SockAddrContext) {
    let sa = ctx.sock_addr;
    // SAFETY: context fields readable in recvmsg4 and getpeername4.
    let (family, ip, port, protocol) = unsafe {
        (
            (*sa).user_family,
            (*sa).user_ip4,
            (*sa).user_port,
            (*sa).protocol,
        )
    };
    if family != u32::from(AF_INET) {
        return;
    }
    let (protocol, port) = (protocol as u8, port as u16);
    // A connected socket's peer, stored on the socket.
    // SAFETY: the context's socket; lookup only (no create).
    let sock = unsafe { LB_REVNAT_SOCK.get_ptr_mut(ctx) };
    // SAFETY: a valid pointer to this socket's storage, when not null.
    let frontend = match unsafe { sock.as_ref() } {
        Some(s) if s.backend[0] == ip && s.backend_port == port && s.protocol == protocol => {
            s.frontend
        }
        _ => {
            // SAFETY: valid context pointer; the helper is allowed here.
            let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
            let rkey = RevNatSkKey {
                cookie,
                address: [ip, 0, 0, 0],
                port,
                family: AF_INET,
                protocol,
                _pad: 0,
            };
            let Some(orig) = LB_REVNAT_SK.get_ptr(&rkey) else {
                return;
            };
            // SAFETY: a valid pointer into the LRU map's value.
            unsafe { *orig }
        }
    };
    let RevNatSkValue { address, port, .. } = frontend;
    // SAFETY: user_ip4/user_port are writable in recvmsg4/getpeername4.
    unsafe {
        (*sa).user_ip4 = address[0];
        (*sa).user_port = u32::from(port);
    }
}
