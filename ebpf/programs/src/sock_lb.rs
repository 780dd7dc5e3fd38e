//! Socket-level load balancing (Cilium's `bpf_sock.c` role) for IPv4:
//! service VIPs are translated to a backend when the application connects
//! or sends, so no packet ever carries a VIP.
//!
//! - `sock4_connect` (`cgroup/connect4`): TCP and connected UDP. Looks the
//!   frontend up in `LB_SERVICES`, picks a backend (ClientIP affinity first,
//!   then random for TCP or by socket cookie for UDP), rewrites the
//!   destination, and records backend → VIP for the reverse hooks: in the
//!   cookie-indexed `LB_REVNAT_TCP` array for TCP, on the socket
//!   (`LB_REVNAT_SOCK`) for connected UDP. A service without backends fails
//!   `connect()` with `ECONNREFUSED` (`bpf_set_retval` + reject), like
//!   kube-proxy's REJECT.
//! - `sock4_sendmsg` (`cgroup/sendmsg4`): the same per datagram of an
//!   unconnected UDP socket (reverse entry: cookie + backend → VIP in the
//!   `LB_REVNAT_SK` LRU).
//! - `sock4_recvmsg` / `sock4_getpeername` (`cgroup/recvmsg4`,
//!   `cgroup/getpeername4`): the reverse, so the application sees the VIP.
//!
//! The connect path is the hot one (`cargo xtask bench proxy`): one hash
//! lookup for the service entry (small services carry their backend ids
//! inline), array lookups — inlined by the verifier — for the backend, the
//! reverse entry and the counters, and one ring record.
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
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    btf_maps::SkStorage,
    helpers::generated::{
        bpf_get_netns_cookie, bpf_get_prandom_u32, bpf_get_socket_cookie, bpf_ktime_get_ns,
        bpf_set_retval,
    },
    macros::{btf_map, cgroup_sock_addr, map},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::SockAddrContext,
};
use keelson_ebpf_common::flows::{
    FLOW_WAKEUP_BYTES, FlowCounters, FlowRecord, HOOK_CONNECT4, HOOK_SENDMSG4, RING_BYTES,
    SockCounters, VERDICT_DROPPED, VERDICT_FORWARDED, VERDICT_NO_BACKEND,
};
use keelson_ebpf_common::lb::{
    AF_INET, AFFINITY_BY_NETNS, AffinityKey, AffinityMatchKey, AffinityValue, BackendValue,
    IPPROTO_TCP, IPPROTO_UDP, MAX_AFFINITY, MAX_AFFINITY_MATCH, MAX_BACKENDS, MAX_REVNAT_SK,
    MAX_REVNAT_TCP, MAX_SERVICE_ENTRIES, RevNatConn, RevNatSkKey, RevNatSkValue, RevNatSock,
    SVC_FLAG_AFFINITY, ServiceKey, ServiceValue,
};

/// Written by user space with RCU-freed elements (`BPF_F_NO_PREALLOC`), so
/// a value a program is reading is never reused under it.
const BPF_F_NO_PREALLOC: u32 = 1;
/// The backend array can be mapped into user space, which reads it whole.
const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Hook verdicts.
const SYS_PROCEED: i32 = 1;
const SYS_REJECT: i32 = 0;
const ECONNREFUSED: i32 = 111;
const EHOSTUNREACH: i32 = 113;
const NS_PER_SEC: u64 = 1_000_000_000;

#[map(name = "LB_SERVICES")]
pub(crate) static LB_SERVICES: HashMap<ServiceKey, ServiceValue> =
    HashMap::with_max_entries(MAX_SERVICE_ENTRIES, BPF_F_NO_PREALLOC);

/// Indexed by backend id; a zeroed value (family 0) is no backend. User
/// space writes a backend before any entry names it and zeroes it only
/// after no live entry does.
#[map(name = "LB_BACKENDS")]
pub(crate) static LB_BACKENDS: Array<BackendValue> =
    Array::with_max_entries(MAX_BACKENDS, BPF_F_MMAPABLE);

#[map(name = "LB_AFFINITY")]
pub(crate) static LB_AFFINITY: LruHashMap<AffinityKey, AffinityValue> =
    LruHashMap::with_max_entries(MAX_AFFINITY, 0);

#[map(name = "LB_AFF_MATCH")]
pub(crate) static LB_AFF_MATCH: HashMap<AffinityMatchKey, u8> =
    HashMap::with_max_entries(MAX_AFFINITY_MATCH, BPF_F_NO_PREALLOC);

#[map(name = "LB_REVNAT_SK")]
static LB_REVNAT_SK: LruHashMap<RevNatSkKey, RevNatSkValue> =
    LruHashMap::with_max_entries(MAX_REVNAT_SK, 0);

/// Connected UDP sockets' reverse translation, stored on the socket itself.
#[btf_map(name = "LB_REVNAT_SOCK")]
static LB_REVNAT_SOCK: SkStorage<RevNatSock> = SkStorage::new();

/// TCP sockets' reverse translation, direct-mapped by socket cookie.
#[map(name = "LB_REVNAT_TCP")]
static LB_REVNAT_TCP: Array<RevNatConn> = Array::with_max_entries(MAX_REVNAT_TCP, 0);

/// One [`FlowRecord`] per translated or refused VIP flow.
#[map(name = "LB_FLOWS")]
pub(crate) static LB_FLOWS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Records lost because the ring was full (slot 0, per CPU).
#[map(name = "LB_FLOW_DROPS")]
pub(crate) static LB_FLOW_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Indexed by service id (the loader sizes it to the service capacity).
#[map(name = "LB_SVC_STATS")]
pub(crate) static LB_SVC_STATS: PerCpuArray<FlowCounters> =
    PerCpuArray::with_max_entries(MAX_SERVICE_ENTRIES, 0);

/// Indexed by backend id (sized to the backend capacity).
#[map(name = "LB_BE_STATS")]
pub(crate) static LB_BE_STATS: PerCpuArray<FlowCounters> =
    PerCpuArray::with_max_entries(MAX_BACKENDS, 0);

/// Translations by the socket programs, by service id: the hot path's
/// compact counters (16 bytes per id).
#[map(name = "LB_SVC_SOCK")]
static LB_SVC_SOCK: PerCpuArray<SockCounters> =
    PerCpuArray::with_max_entries(MAX_SERVICE_ENTRIES, 0);

/// Translations by the socket programs, by backend id.
#[map(name = "LB_BE_SOCK")]
static LB_BE_SOCK: PerCpuArray<SockCounters> = PerCpuArray::with_max_entries(MAX_BACKENDS, 0);

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
    let Some(svc) = LB_SERVICES.get_ptr(&key) else {
        return SYS_PROCEED;
    };
    // SAFETY: a non-null pointer to a value of this map. User space never
    // writes an element in place — an update replaces it — and elements
    // are freed only after an RCU grace period (BPF_F_NO_PREALLOC), so the
    // entry stays whole while the program runs; it is read, not copied.
    let svc: &ServiceValue = unsafe { &*svc };
    match pick(ctx, &key, svc) {
        Ok((backend_id, backend)) => {
            // SAFETY: user_ip4/user_port are writable in connect4/sendmsg4.
            unsafe {
                (*sa).user_ip4 = backend.address[0];
                (*sa).user_port = u32::from(backend.port);
            }
            record_revnat(ctx, hook, &key, svc, &backend);
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
    if verdict == VERDICT_FORWARDED {
        let connect = hook == HOOK_CONNECT4;
        count_translation(&LB_SVC_SOCK, service_id, connect);
        count_translation(&LB_BE_SOCK, backend_id, connect);
    } else {
        count_refusal(service_id, verdict == VERDICT_NO_BACKEND);
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
    if LB_FLOWS
        .output::<FlowRecord>(&record, ring_wakeup())
        .is_err()
    {
        count_ring_drop();
    }
}

/// Commit flags of a flow record: wake the reader only once a batch is
/// waiting (`FLOW_WAKEUP_BYTES`); it drains on a short timer otherwise.
/// Waking it for every record would cost a context switch per connection.
#[inline(always)]
pub(crate) fn ring_wakeup() -> u64 {
    if LB_FLOWS.query(u64::from(BPF_RB_AVAIL_DATA)) >= FLOW_WAKEUP_BYTES {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
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

/// Counts one connection (connect4) or datagram (sendmsg4) of `id` in
/// this CPU's slot (an id past the array's end loses its count; never
/// fail the syscall).
#[inline(always)]
fn count_translation(map: &PerCpuArray<SockCounters>, id: u32, connect: bool) {
    if let Some(counters) = map.get_ptr_mut(id) {
        // SAFETY: this CPU's slot of the per-CPU array; no other writer.
        unsafe {
            if connect {
                (*counters).connections += 1;
            } else {
                (*counters).datagrams += 1;
            }
        }
    }
}

/// Counts one refusal of service `id`: no backends, or dropped.
#[inline(always)]
fn count_refusal(id: u32, no_backend: bool) {
    if let Some(counters) = LB_SVC_STATS.get_ptr_mut(id) {
        // SAFETY: this CPU's slot of the per-CPU array; no other writer.
        unsafe {
            if no_backend {
                (*counters).refused += 1;
            } else {
                (*counters).dropped += 1;
            }
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
    let backend_id = slot_backend(key, svc, slot).ok_or(Refuse::Inconsistent)?;
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
    (r.checked_rem(count).unwrap_or(0) + 1) as u16
}

/// The backend id of `slot` of the service entry `svc` (of `key`): inline
/// in the entry for small services, else from the slot of the entry's
/// revision. `None` when the slot vanished mid-update.
#[inline(always)]
pub(crate) fn slot_backend(key: &ServiceKey, svc: &ServiceValue, slot: u16) -> Option<u32> {
    if let Some(id) = svc.inline_backend(slot) {
        return Some(id);
    }
    let slot_value = LB_SERVICES.get_ptr(&key.with_slot(slot, svc.revision))?;
    // SAFETY: a valid pointer into the map's value (RCU-freed elements).
    Some(unsafe { (*slot_value).backend_id })
}

/// An IPv4 backend by id, copied out of the array (a zeroed slot — no
/// backend — has family 0).
#[inline(always)]
pub(crate) fn backend(id: u32) -> Option<BackendValue> {
    let ptr = LB_BACKENDS.get_ptr(id)?;
    // SAFETY: a valid pointer into the array; user space may rewrite the
    // slot only once no live entry names the id.
    let value = unsafe { *ptr };
    (value.family == AF_INET).then_some(value)
}

/// Remembers backend → frontend for the reverse hooks: for a TCP connect
/// in the cookie's slot of `LB_REVNAT_TCP`, for a connected UDP socket on
/// the socket (one peer per socket), by socket cookie + backend for an
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
    let sock = RevNatSock {
        backend: backend.address,
        backend_port: backend.port,
        family: AF_INET,
        protocol: key.protocol,
        frontend,
    };
    // SAFETY (cookie helper calls below): valid context pointer; the
    // helper is allowed in sock_addr programs.
    if hook == HOOK_CONNECT4 && key.protocol == IPPROTO_TCP {
        let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
        if let Some(slot) = LB_REVNAT_TCP.get_ptr_mut(revnat_tcp_slot(cookie)) {
            // SAFETY: a valid pointer into the array. A reader racing
            // with a new socket taking the slot checks the cookie.
            unsafe {
                *slot = RevNatConn {
                    cookie,
                    sock,
                    _pad: 0,
                }
            };
        }
        return;
    }
    if hook == HOOK_CONNECT4 {
        let mut value = sock;
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
    let peer =
        |s: &RevNatSock| s.backend[0] == ip && s.backend_port == port && s.protocol == protocol;
    // SAFETY (cookie helper calls below): valid context pointer; the
    // helper is allowed in recvmsg4/getpeername4.
    if protocol == IPPROTO_TCP {
        let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
        let Some(slot) = LB_REVNAT_TCP.get_ptr(revnat_tcp_slot(cookie)) else {
            return;
        };
        // SAFETY: a valid pointer into the array.
        let conn = unsafe { *slot };
        if conn.cookie != cookie || !peer(&conn.sock) {
            return;
        }
        rewrite_peer(ctx, &conn.sock.frontend);
        return;
    }
    // A connected UDP socket's peer, stored on the socket.
    // SAFETY: the context's socket; lookup only (no create).
    let sock = unsafe { LB_REVNAT_SOCK.get_ptr_mut(ctx) };
    // SAFETY: a valid pointer to this socket's storage, when not null.
    let frontend = match unsafe { sock.as_ref() } {
        Some(s) if peer(s) => s.frontend,
        _ => {
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
    rewrite_peer(ctx, &frontend);
}

/// The slot of `LB_REVNAT_TCP` for a socket cookie.
#[inline(always)]
fn revnat_tcp_slot(cookie: u64) -> u32 {
    (cookie as u32) & (MAX_REVNAT_TCP - 1)
}

/// Reports `frontend` as the peer in recvmsg4/getpeername4.
#[inline(always)]
fn rewrite_peer(ctx: &SockAddrContext, frontend: &RevNatSkValue) {
    // SAFETY: user_ip4/user_port are writable in recvmsg4/getpeername4.
    unsafe {
        (*ctx.sock_addr).user_ip4 = frontend.address[0];
        (*ctx.sock_addr).user_port = u32::from(frontend.port);
    }
}
