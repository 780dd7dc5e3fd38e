//! Baseline (c): the services as kube-proxy's iptables mode lays them out
//! (`pkg/proxy/iptables/proxier.go`), loaded with `iptables-restore` into
//! the client's namespace:
//!
//! nat `OUTPUT`/`PREROUTING` → `KUBE-SERVICES`, one rule per service port
//! (`-d VIP -p tcp --dport 80 -j KUBE-SVC-…`, then the `KUBE-NODEPORTS`
//! rule last) → `KUBE-SVC-…` (masquerade mark for sources outside the
//! cluster CIDR, then one `statistic --mode random` rule per endpoint) →
//! `KUBE-SEP-…` (hairpin mark, `DNAT`); `KUBE-POSTROUTING` masquerades
//! marked packets. The filter table gets kube-proxy's jumps too (its
//! chains are empty: every service has endpoints).
//!
//! An endpoint change is applied as kube-proxy's partial sync does
//! (`iptables-restore --noflush`): the top-level chains are rewritten in
//! full, the changed service's chains only.

use std::{fmt::Write as _, io::Write as _, process::Command, time::Duration};

use anyhow::{Context, Result, ensure};
use keelson_e2e::netns::NetNs;

use crate::objects::{BACKEND_PORT, CLUSTER_CIDR, SERVICE_PORT, service_name, vip};
use std::net::Ipv4Addr;

/// kube-proxy's chain hash: 16 characters (base32 of a SHA-256 there;
/// any stable unique name costs the same here).
fn svc_chain(i: usize) -> String {
    format!("KUBE-SVC-{:016X}", mix(i as u64))
}

fn sep_chain(i: usize, ep: Ipv4Addr) -> String {
    format!(
        "KUBE-SEP-{:016X}",
        mix(((i as u64) << 32) | u64::from(u32::from(ep)))
    )
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The `KUBE-SERVICES` rule of service `i`.
fn services_rule(out: &mut String, i: usize) {
    let _ = writeln!(
        out,
        "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"bench/{}:http cluster IP\" -m tcp --dport {SERVICE_PORT} -j {}",
        vip(i),
        service_name(i),
        svc_chain(i)
    );
}

/// Declarations and rules of service `i`'s own chains.
fn service_chains(decls: &mut String, rules: &mut String, i: usize, endpoints: &[Ipv4Addr]) {
    let svc = svc_chain(i);
    let name = service_name(i);
    let _ = writeln!(decls, ":{svc} - [0:0]");
    let _ = writeln!(
        rules,
        "-A {svc} ! -s {CLUSTER_CIDR} -d {}/32 -p tcp -m comment --comment \"bench/{name}:http cluster IP\" -m tcp --dport {SERVICE_PORT} -j KUBE-MARK-MASQ",
        vip(i)
    );
    let n = endpoints.len();
    for (k, ep) in endpoints.iter().enumerate() {
        let sep = sep_chain(i, *ep);
        let _ = writeln!(decls, ":{sep} - [0:0]");
        let remaining = n - k;
        if remaining > 1 {
            let _ = writeln!(
                rules,
                "-A {svc} -m comment --comment \"bench/{name}:http -> {ep}:{BACKEND_PORT}\" -m statistic --mode random --probability {:.11} -j {sep}",
                1.0 / remaining as f64
            );
        } else {
            let _ = writeln!(
                rules,
                "-A {svc} -m comment --comment \"bench/{name}:http -> {ep}:{BACKEND_PORT}\" -j {sep}"
            );
        }
        let _ = writeln!(
            rules,
            "-A {sep} -s {ep}/32 -m comment --comment \"bench/{name}:http\" -j KUBE-MARK-MASQ"
        );
        let _ = writeln!(
            rules,
            "-A {sep} -p tcp -m comment --comment \"bench/{name}:http\" -m tcp -j DNAT --to-destination {ep}:{BACKEND_PORT}"
        );
    }
}

/// kube-proxy's fixed chains: declarations and rules.
const NAT_HEAD: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
";
const NAT_JUMPS: &str = "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
";
const NODEPORTS_RULE: &str = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
const FILTER: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
";

/// The full `iptables-restore` input for `endpoints(i)` of `n` services.
pub fn ruleset(n: usize, endpoints: &dyn Fn(usize) -> Vec<Ipv4Addr>) -> String {
    let mut decls = String::with_capacity(n * 140);
    let mut rules = String::with_capacity(n * 1200);
    rules.push_str(NAT_JUMPS);
    for i in 0..n {
        services_rule(&mut rules, i);
    }
    rules.push_str(NODEPORTS_RULE);
    for i in 0..n {
        service_chains(&mut decls, &mut rules, i, &endpoints(i));
    }
    let mut out = String::with_capacity(decls.len() + rules.len() + 1024);
    out.push_str(FILTER);
    out.push_str(NAT_HEAD);
    out.push_str(&decls);
    out.push_str(&rules);
    out.push_str("COMMIT\n");
    out
}

/// The partial-sync input after service `i`'s endpoints went from `old`
/// to `new`: top-level chains in full, service `i`'s chains, removed
/// endpoint chains deleted.
pub fn partial(n: usize, i: usize, old: &[Ipv4Addr], new: &[Ipv4Addr]) -> String {
    let mut decls = String::new();
    let mut rules = String::with_capacity(n * 160);
    rules.push_str(NAT_JUMPS);
    for s in 0..n {
        services_rule(&mut rules, s);
    }
    rules.push_str(NODEPORTS_RULE);
    service_chains(&mut decls, &mut rules, i, new);
    // Removed endpoints' chains: declared (which flushes them), then
    // deleted, as kube-proxy does.
    for gone in old.iter().filter(|ep| !new.contains(ep)) {
        let _ = writeln!(decls, ":{} - [0:0]", sep_chain(i, *gone));
        let _ = writeln!(rules, "-X {}", sep_chain(i, *gone));
    }
    let mut out = String::new();
    out.push_str(NAT_HEAD);
    out.push_str(&decls);
    out.push_str(&rules);
    out.push_str("COMMIT\n");
    out
}

/// Runs `iptables-restore [flags]` with `input` inside `netns`; returns how
/// long it took.
pub fn restore(netns: &NetNs, input: String, flags: &'static [&'static str]) -> Result<Duration> {
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(input.as_bytes())?;
    file.flush()?;
    let path = file.path().to_owned();
    netns.enter(move || {
        let stdin = std::fs::File::open(&path)?;
        let started = std::time::Instant::now();
        let out = Command::new("iptables-restore")
            .args(["-w"])
            .args(flags)
            .stdin(stdin)
            .output()
            .context("running iptables-restore (installed by `cargo xtask setup`)")?;
        let took = started.elapsed();
        ensure!(
            out.status.success(),
            "iptables-restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(took)
    })
}

/// `iptables-restore --version`, e.g. "iptables-restore v1.8.9 (nf_tables)".
pub fn version() -> String {
    Command::new("iptables-restore")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
