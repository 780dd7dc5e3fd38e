//! `ifstats`: a TC ingress classifier that counts packets and bytes per
//! interface into a per-CPU hash map keyed by ifindex. It never drops or
//! alters traffic (always `TC_ACT_OK`).

use aya_ebpf::{
    bindings::TC_ACT_OK,
    macros::{classifier, map},
    maps::PerCpuHashMap,
    programs::TcContext,
};
use keelson_ebpf_common::ifstats::{IfCounters, MAX_INTERFACES};

/// ifindex → this CPU's ingress counters for that interface.
#[map(name = "IF_STATS")]
static IF_STATS: PerCpuHashMap<u32, IfCounters> =
    PerCpuHashMap::with_max_entries(MAX_INTERFACES, 0);

#[classifier]
pub fn ifstats_ingress(ctx: TcContext) -> i32 {
    // SAFETY: `skb` is the context pointer the kernel passed to this program.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let len = u64::from(ctx.len());
    match IF_STATS.get_ptr_mut(ifindex) {
        Some(counters) => {
            // SAFETY: per-CPU values are only touched by this CPU while the
            // program runs (no preemption inside a BPF program).
            unsafe {
                (*counters).packets += 1;
                (*counters).bytes += len;
            }
        }
        None => {
            let first = IfCounters {
                packets: 1,
                bytes: len,
            };
            // A full map only loses counts; traffic always passes.
            let _ = IF_STATS.insert(ifindex, first, 0);
        }
    }
    TC_ACT_OK
}
