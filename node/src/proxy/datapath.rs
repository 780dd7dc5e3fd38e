//! The agent's packet-path lifecycle around the NodePort TC program:
//! starting it ([`start_nodeport`]: sysctls, load on the pinned maps,
//! pinned TCX links on `--devices`, the Maglev writer), ageing its
//! conntrack ([`expired_flows`], run every [`CT_GC_INTERVAL`] by the task
//! [`start_nodeport`] spawns), and removing every attachment when the
//! agent is told to clean up ([`detach_all`]).
//!
//! Conntrack ageing is Cilium's scheme on an LRU map: a flow (its forward
//! and reply entries together) is deleted once idle longer than its
//! lifetime — [`CtTimeouts::closing`] for TCP flows closed both ways (the
//! program marks FINs; RSTs it deletes itself), [`CtTimeouts::tcp`] for
//! other TCP flows, [`CtTimeouts::other`] for UDP — so closed and dead
//! flows leave before LRU pressure evicts live ones. An entry whose
//! partner is gone (evicted) only lingers [`CtTimeouts::orphan`].
//!
//! Owns no map content but conntrack deletions; the service maps are
//! `proxy::maps`', the Maglev tables `proxy::nodeport`'s.

use std::{collections::HashMap, path::Path, time::Duration};

use keelson_ebpf_common::{
    lb::IPPROTO_TCP,
    nat::{CtKey, CtValue},
};
use tracing::{debug, info, warn};

use super::{
    agent::{AgentConfig, AgentError},
    nodeport::MaglevWriter,
};
use crate::bpf::{
    self, BpfError,
    nodeport::{self as np, Conntrack, MaglevMap, NodePort},
    sock_lb,
};

/// How often the agent ages the NodePort conntrack.
pub const CT_GC_INTERVAL: Duration = Duration::from_secs(10);

/// Idle lifetimes of conntrack flows (Cilium's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtTimeouts {
    /// An open TCP flow.
    pub tcp: Duration,
    /// A UDP flow.
    pub other: Duration,
    /// A TCP flow both sides closed (FIN each way): long enough for the
    /// last ACK and retransmissions.
    pub closing: Duration,
    /// One entry of a flow whose other entry is gone.
    pub orphan: Duration,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        Self {
            tcp: Duration::from_secs(21_600),
            other: Duration::from_secs(60),
            closing: Duration::from_secs(10),
            orphan: Duration::from_secs(10),
        }
    }
}

/// The conntrack entries to delete at `now_ns` (`CLOCK_MONOTONIC`, the
/// clock of the entries' `last_seen_ns`): every entry of each flow idle
/// longer than its lifetime. A flow is its forward and reply entries
/// (grouped by the forward key their values name); its idle time counts
/// from the newer of the two. Pure.
pub fn expired_flows(
    entries: &[(CtKey, CtValue)],
    now_ns: u64,
    timeouts: &CtTimeouts,
) -> Vec<CtKey> {
    struct Flow {
        keys: Vec<CtKey>,
        last_seen_ns: u64,
        closing: bool,
        tcp: bool,
    }
    let mut flows: HashMap<CtKey, Flow> = HashMap::new();
    for (key, value) in entries {
        let flow = flows.entry(value.forward_key()).or_insert(Flow {
            keys: Vec::new(),
            last_seen_ns: 0,
            closing: false,
            tcp: value.protocol == IPPROTO_TCP,
        });
        flow.keys.push(*key);
        flow.last_seen_ns = flow.last_seen_ns.max(value.last_seen_ns);
        flow.closing |= value.is_closing();
    }
    let mut expired = Vec::new();
    for flow in flows.into_values() {
        let mut lifetime = if flow.closing {
            timeouts.closing
        } else if flow.tcp {
            timeouts.tcp
        } else {
            timeouts.other
        };
        if flow.keys.len() < 2 {
            lifetime = lifetime.min(timeouts.orphan);
        }
        let idle = Duration::from_nanos(now_ns.saturating_sub(flow.last_seen_ns));
        if idle > lifetime {
            expired.extend(flow.keys);
        }
    }
    expired.sort();
    expired
}

/// One ageing pass over the pinned conntrack: deletes [`expired_flows`]
/// whose entries saw no packet since they were listed. Returns how many
/// entries went.
pub fn age_conntrack(
    conntrack: &mut Conntrack,
    now_ns: u64,
    timeouts: &CtTimeouts,
) -> Result<usize, BpfError> {
    let entries = conntrack.entries()?;
    let listed: HashMap<CtKey, u64> = entries.iter().map(|(k, v)| (*k, v.last_seen_ns)).collect();
    let mut deleted = 0;
    for key in expired_flows(&entries, now_ns, timeouts) {
        // A packet since the listing (or a new flow on the key) keeps it.
        if conntrack.last_seen(&key)? == listed.get(&key).copied() {
            conntrack.remove(&key)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Ages the conntrack pinned under `pin_dir` every [`CT_GC_INTERVAL`],
/// forever (on a blocking thread: a pass walks the whole map).
fn spawn_conntrack_gc(pin_dir: std::path::PathBuf) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CT_GC_INTERVAL);
        loop {
            ticker.tick().await;
            let dir = pin_dir.clone();
            let pass = tokio::task::spawn_blocking(move || {
                let mut conntrack = Conntrack::open(&dir)?;
                age_conntrack(&mut conntrack, bpf::monotonic_ns(), &CtTimeouts::default())
            })
            .await;
            match pass {
                Ok(Ok(0)) => {}
                Ok(Ok(deleted)) => debug!(deleted, "aged the NodePort conntrack"),
                Ok(Err(e)) => warn!(error = %e, "ageing the NodePort conntrack"),
                Err(e) => warn!(error = %e, "the conntrack ageing pass failed"),
            }
        }
    });
}

/// What NodePort translation needs from the kernel in this namespace:
/// forwarding, and the node's own address accepted as a source on the
/// devices (SNATed requests and reverse-translated replies carry it).
fn nodeport_sysctls(devices: &[String]) -> std::io::Result<()> {
    let mut knobs = vec![
        ("ipv4/ip_forward".to_owned(), "1"),
        ("ipv4/conf/all/accept_local".to_owned(), "1"),
        ("ipv4/conf/all/rp_filter".to_owned(), "0"),
    ];
    for device in devices {
        knobs.push((format!("ipv4/conf/{device}/accept_local"), "1"));
        knobs.push((format!("ipv4/conf/{device}/rp_filter"), "0"));
    }
    for (knob, value) in knobs {
        std::fs::write(format!("/proc/sys/net/{knob}"), value).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("setting net.{}: {e}", knob.replace('/', ".")),
            )
        })?;
    }
    Ok(())
}

/// NodePort at TC for the agent: with `--devices`, sets the sysctls, loads
/// the program on the pinned maps (after `SockLb::load`), attaches it to
/// every device through its pinned link (replacing the previous agent's
/// program in place), detaches it from devices no longer listed, and
/// starts conntrack ageing. Without devices, detaches whatever a previous
/// run left attached and returns `None`.
pub fn start_nodeport(
    config: &AgentConfig,
) -> Result<Option<(NodePort, MaglevWriter)>, AgentError> {
    if config.devices.is_empty() {
        let detached = np::detach_pinned(&config.pin_dir)?;
        if !detached.is_empty() {
            info!(devices = ?detached, "no --devices: detached the NodePort program a previous run left");
        }
        return Ok(None);
    }
    nodeport_sysctls(&config.devices).map_err(AgentError::Sysctl)?;
    let mut programs = NodePort::load(&config.pin_dir)?;
    for device in &config.devices {
        programs.attach(device)?;
    }
    programs.detach_others()?;
    let maglev = MaglevWriter::new(MaglevMap::open(&config.pin_dir)?)?;
    spawn_conntrack_gc(config.pin_dir.clone());
    info!(devices = ?config.devices, "NodePort program attached (links pinned)");
    Ok(Some((programs, maglev)))
}

/// Detaches every program the agent pinned under `pin_dir` — the socket
/// programs' cgroup links and the NodePort TC links — leaving the maps
/// pinned (`keelson-node proxy --cleanup`). Returns the interfaces the
/// NodePort program left.
pub fn detach_all(pin_dir: &Path) -> Result<Vec<String>, BpfError> {
    sock_lb::detach_pinned(pin_dir)?;
    np::detach_pinned(pin_dir)
}

#[cfg(test)]
mod tests {
    use keelson_ebpf_common::{
        lb::{AF_INET, IPPROTO_UDP},
        nat::{CT_FLAG_FIN_FORWARD, CT_FLAG_FIN_REPLY},
    };

    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn flow(client_port: u16, protocol: u8, last_seen_s: u64) -> CtValue {
        CtValue {
            client: [1, 0, 0, 0],
            frontend: [2, 0, 0, 0],
            backend: [3, 0, 0, 0],
            snat: [2, 0, 0, 0],
            last_seen_ns: last_seen_s * SEC,
            client_port,
            frontend_port: 80,
            backend_port: 8080,
            snat_port: client_port,
            family: AF_INET,
            protocol,
            ..CtValue::default()
        }
    }

    fn both(value: CtValue) -> [(CtKey, CtValue); 2] {
        [(value.forward_key(), value), (value.reply_key(), value)]
    }

    #[test]
    fn flows_age_by_their_newest_entry_and_their_state() {
        let t = CtTimeouts::default();
        let now = 100_000 * SEC;
        let mut entries = Vec::new();
        // Open TCP, idle 1 h: kept.
        entries.extend(both(flow(1, IPPROTO_TCP, 100_000 - 3_600)));
        // UDP, forward idle 2 min but a reply 5 s ago: kept.
        let udp = flow(2, IPPROTO_UDP, 100_000 - 120);
        let mut reply = udp;
        reply.last_seen_ns = now - 5 * SEC;
        entries.push((udp.forward_key(), udp));
        entries.push((udp.reply_key(), reply));
        // UDP idle 2 min both ways: expired.
        let dead = flow(3, IPPROTO_UDP, 100_000 - 120);
        entries.extend(both(dead));
        // TCP closed both ways 30 s ago: expired; closed 2 s ago: kept.
        let mut closed = flow(4, IPPROTO_TCP, 100_000 - 30);
        closed.flags = CT_FLAG_FIN_FORWARD | CT_FLAG_FIN_REPLY;
        entries.extend(both(closed));
        let mut closing = flow(5, IPPROTO_TCP, 100_000 - 2);
        closing.flags = closed.flags;
        entries.extend(both(closing));
        // Half-closed (one FIN) 30 s ago: still an open flow.
        let mut half = flow(6, IPPROTO_TCP, 100_000 - 30);
        half.flags = CT_FLAG_FIN_FORWARD;
        entries.extend(both(half));
        // A forward entry whose reply was evicted, idle 30 s: expired.
        let orphan = flow(7, IPPROTO_TCP, 100_000 - 30);
        entries.push((orphan.forward_key(), orphan));

        let mut want = vec![
            dead.forward_key(),
            dead.reply_key(),
            closed.forward_key(),
            closed.reply_key(),
            orphan.forward_key(),
        ];
        want.sort();
        assert_eq!(expired_flows(&entries, now, &t), want);
        // Nothing expires before any flow was idle.
        assert!(expired_flows(&entries, (100_000 - 3_600) * SEC, &t).is_empty());
    }
}
