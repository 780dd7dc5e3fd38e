//! Baseline (d): the services as kube-proxy's nftables mode lays them out
//! (`pkg/proxy/nftables/proxier.go`), loaded with `nft -f` into the
//! client's namespace: table `ip kube-proxy`, base chains at kube-proxy's
//! hooks and priorities, the `service-ips` verdict map keyed by
//! `address . protocol . port` that `services` consults, one
//! `service-…` chain per service port (masquerade mark, then `numgen random
//! mod N vmap` over its endpoints) and one `endpoint-…` chain per endpoint
//! (hairpin mark, `dnat`), the `cluster-ips` set with its reject check, and
//! the (empty) no-endpoint and firewall maps.
//!
//! An endpoint change is one `nft -f` transaction, as kube-proxy's partial
//! sync writes it: the service chain flushed and rewritten, the removed
//! endpoint's chain deleted.

use std::{fmt::Write as _, io::Write as _, net::Ipv4Addr, process::Command, time::Duration};

use anyhow::{Context, Result, ensure};
use keelson_e2e::netns::NetNs;

use crate::objects::{BACKEND_PORT, CLUSTER_CIDR, NAMESPACE, SERVICE_PORT, service_name, vip};

const TABLE: &str = "ip kube-proxy";

fn svc_chain(i: usize) -> String {
    format!(
        "service-{:08X}-{NAMESPACE}/{}/tcp/http",
        i as u32 ^ 0x5bd1_e995,
        service_name(i)
    )
}

fn ep_chain(i: usize, ep: Ipv4Addr) -> String {
    format!(
        "endpoint-{:08X}-{NAMESPACE}/{}/tcp/http__{ep}/{BACKEND_PORT}",
        (i as u32).rotate_left(7) ^ u32::from(ep),
        service_name(i)
    )
}

const HEAD: &str = r#"add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy services
add chain ip kube-proxy masquerading
add chain ip kube-proxy mark-for-masquerade
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump firewall-check
add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr 10.96.0.0/12 drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy masquerading meta mark & 0x4000 == 0 return
add rule ip kube-proxy masquerading meta mark set meta mark ^ 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy mark-for-masquerade meta mark set meta mark | 0x4000
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
"#;

/// Service `i`'s rules (its chain must exist and be empty).
fn service_rules(out: &mut String, i: usize, endpoints: &[Ipv4Addr]) {
    let chain = svc_chain(i);
    let _ = writeln!(
        out,
        "add rule {TABLE} {chain} ip daddr {} tcp dport {SERVICE_PORT} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade",
        vip(i)
    );
    let targets: Vec<String> = endpoints
        .iter()
        .enumerate()
        .map(|(k, ep)| format!("{k} : goto {}", ep_chain(i, *ep)))
        .collect();
    let _ = writeln!(
        out,
        "add rule {TABLE} {chain} numgen random mod {} vmap {{ {} }}",
        endpoints.len(),
        targets.join(" , ")
    );
}

fn endpoint_chain(out: &mut String, i: usize, ep: Ipv4Addr) {
    let chain = ep_chain(i, ep);
    let _ = writeln!(out, "add chain {TABLE} {chain}");
    let _ = writeln!(
        out,
        "add rule {TABLE} {chain} ip saddr {ep} jump mark-for-masquerade"
    );
    let _ = writeln!(
        out,
        "add rule {TABLE} {chain} meta l4proto tcp dnat to {ep}:{BACKEND_PORT}"
    );
}

/// The full `nft -f` script for `endpoints(i)` of `n` services.
pub fn ruleset(n: usize, endpoints: &dyn Fn(usize) -> Vec<Ipv4Addr>) -> String {
    let mut out = String::with_capacity(n * 1100 + HEAD.len());
    out.push_str(HEAD);
    for i in 0..n {
        let eps = endpoints(i);
        for ep in &eps {
            endpoint_chain(&mut out, i, *ep);
        }
        let _ = writeln!(out, "add chain {TABLE} {}", svc_chain(i));
        service_rules(&mut out, i, &eps);
        let _ = writeln!(out, "add element {TABLE} cluster-ips {{ {} }}", vip(i));
        let _ = writeln!(
            out,
            "add element {TABLE} service-ips {{ {} . tcp . {SERVICE_PORT} : goto {} }}",
            vip(i),
            svc_chain(i)
        );
    }
    out
}

/// The transaction after service `i`'s endpoints went from `old` to `new`.
pub fn partial(i: usize, old: &[Ipv4Addr], new: &[Ipv4Addr]) -> String {
    let mut out = String::new();
    for ep in new.iter().filter(|ep| !old.contains(ep)) {
        endpoint_chain(&mut out, i, *ep);
    }
    let _ = writeln!(out, "flush chain {TABLE} {}", svc_chain(i));
    service_rules(&mut out, i, new);
    for ep in old.iter().filter(|ep| !new.contains(ep)) {
        let chain = ep_chain(i, *ep);
        let _ = writeln!(out, "flush chain {TABLE} {chain}");
        let _ = writeln!(out, "delete chain {TABLE} {chain}");
    }
    out
}

/// Runs `nft -f` with `script` inside `netns`; returns how long it took.
pub fn load(netns: &NetNs, script: String) -> Result<Duration> {
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(script.as_bytes())?;
    file.flush()?;
    let path = file.path().to_owned();
    netns.enter(move || {
        let started = std::time::Instant::now();
        let out = Command::new("nft")
            .arg("-f")
            .arg(&path)
            .output()
            .context("running nft (installed by `cargo xtask setup`)")?;
        let took = started.elapsed();
        ensure!(
            out.status.success(),
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
        Ok(took)
    })
}

/// `nft --version`.
pub fn version() -> String {
    Command::new("nft")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
