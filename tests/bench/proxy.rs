//! `cargo xtask bench proxy`: new-connection cost through service proxies.
//!
//! For N services (default N = 1, 1 000, 10 000, 100 000), each a ClusterIP
//! with three endpoints (`proxy/objects.rs`), it measures in the same run,
//! each in a fresh lab (`proxy/lab.rs`: client and backend network
//! namespaces, no route out of the machine):
//!
//! - (a) **direct**: connections straight to the backends with no proxy
//!   loaded at all — the limit every ratio is taken against;
//! - (b) **eBPF**: Keelson's socket-level load balancer programmed with the
//!   N services, connections to random VIPs (`proxy/ebpf.rs`);
//! - (c) **iptables**: kube-proxy's iptables layout loaded with
//!   `iptables-restore` (`proxy/iptables.rs`);
//! - (d) **nftables**: kube-proxy's nftables layout (`proxy/nftables.rs`);
//!
//! and, for each proxy, direct connections while it is loaded (a proxy can
//! slow every new connection of a node, not only VIP ones). Each figure is
//! the median of several runs of a closed loop of single connections (the
//! client process opens one connection at a time, times `connect()`, closes
//! with a reset). It also times programming all N services, and at
//! N = 10 000 one endpoint change until the datapath holds it.
//!
//! It prints ratios to (a) and the targets, and writes every figure
//! to `<workspace>/target/bench/proxy.json`. Targets are reported, never
//! asserted. Options (after `--`): `--sizes 1,1000`, `--seconds 1.0` (per
//! run), `--runs 3`, `--max-program-seconds 300` (a kube-proxy layout whose
//! programming is projected, linearly from the previous size, to take
//! longer is skipped at that size and reported as such — nftables at
//! 100 000 services would take many minutes here). Needs root; everything
//! it creates is removed on exit.

#[path = "proxy/ebpf.rs"]
mod ebpf;
#[path = "proxy/iptables.rs"]
mod iptables;
#[path = "proxy/lab.rs"]
mod lab;
#[path = "proxy/nftables.rs"]
mod nftables;
#[path = "proxy/objects.rs"]
mod objects;

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    ebpf::EbpfProxy,
    lab::{Lab, Sample, Target, round},
    objects::{BACKENDS, Cluster},
};

/// The sizes.
const SIZES: [usize; 4] = [1, 1_000, 10_000, 100_000];
/// Where programming and endpoint-change times are reported.
const CHANGE_AT: usize = 10_000;
/// Each run of the eBPF figures is split into this many interleaved slices.
const SLICES_PER_RUN: usize = 4;

struct Options {
    sizes: Vec<usize>,
    seconds: f64,
    runs: usize,
    /// A kube-proxy layout whose programming is projected (linearly from
    /// the previous size) to take longer is skipped at that size.
    max_program_seconds: f64,
    /// Which kube-proxy baselines to run (`--proxies ebpf` alone skips
    /// both, for quick iterations on the eBPF datapath).
    iptables: bool,
    nftables: bool,
}

impl Options {
    fn parse() -> Result<Self> {
        let mut options = Self {
            sizes: SIZES.to_vec(),
            seconds: 1.0,
            runs: 3,
            max_program_seconds: 300.0,
            iptables: true,
            nftables: true,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--sizes" => {
                    options.sizes = value("--sizes")?
                        .split(',')
                        .map(|s| s.trim().parse().with_context(|| format!("bad size {s:?}")))
                        .collect::<Result<_>>()?;
                }
                "--seconds" => options.seconds = value("--seconds")?.parse()?,
                "--runs" => options.runs = value("--runs")?.parse()?,
                "--max-program-seconds" => {
                    options.max_program_seconds = value("--max-program-seconds")?.parse()?;
                }
                "--proxies" => {
                    let list = value("--proxies")?;
                    let names: Vec<&str> = list.split(',').map(str::trim).collect();
                    if let Some(bad) = names
                        .iter()
                        .find(|n| !["ebpf", "iptables", "nftables"].contains(n))
                    {
                        bail!("unknown proxy {bad:?} (ebpf, iptables, nftables)");
                    }
                    options.iptables = names.contains(&"iptables");
                    options.nftables = names.contains(&"nftables");
                }
                // What cargo bench passes.
                "--bench" => {}
                other => bail!(
                    "unknown option {other:?} (--sizes, --seconds, --runs, --max-program-seconds, --proxies)"
                ),
            }
        }
        if options.sizes.contains(&0) || options.runs == 0 {
            bail!("sizes and runs must be positive");
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench proxy: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(message: impl std::fmt::Display) {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    println!("[{:7.1}s] {message}", start.elapsed().as_secs_f64());
}

/// `runs` samples of `target` in `lab`, median.
fn measure(lab: &mut Lab, target: Target, options: &Options) -> Result<(Sample, Vec<Sample>)> {
    let runs = (0..options.runs)
        .map(|_| lab.measure(target, options.seconds))
        .collect::<Result<Vec<_>>>()?;
    Ok((Sample::median(runs.clone()), runs))
}

/// What one proxy did at one size.
struct ProxyFigures {
    program: Duration,
    program_detail: Value,
    vip: Sample,
    direct: Sample,
    change: Option<Duration>,
    /// (a) measured interleaved with this proxy's figures, when it can be
    /// switched on and off cheaply: the ratios' baseline instead of the
    /// size's before-and-after direct runs.
    paired_direct: Option<Sample>,
}

impl ProxyFigures {
    /// The (a) this proxy's ratios are taken against.
    fn baseline<'a>(&'a self, direct: &'a Sample) -> &'a Sample {
        self.paired_direct.as_ref().unwrap_or(direct)
    }

    fn json(&self, direct: &Sample) -> Value {
        let baseline = self.baseline(direct);
        json!({
            "paired_direct": self.paired_direct.as_ref().map(Sample::json),
            "program_ms": round(ms(self.program)),
            "program_detail": self.program_detail,
            "vip": self.vip.json(),
            "direct_while_loaded": self.direct.json(),
            "vip_rate_ratio": ratio(self.vip.rate, baseline.rate),
            "direct_rate_ratio": ratio(self.direct.rate, baseline.rate),
            "endpoint_change_ms": self.change.map(|d| round(ms(d))),
        })
    }
}

/// A proxy's figures, or why it was skipped.
fn skipped_or(figures: &Result<ProxyFigures, String>, baseline: &Sample) -> Value {
    match figures {
        Ok(figures) => figures.json(baseline),
        Err(why) => json!({ "skipped": why }),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(x: f64, base: f64) -> f64 {
    (x / base * 1000.0).round() / 1000.0
}

fn all_backends(_: usize) -> Vec<std::net::Ipv4Addr> {
    BACKENDS.to_vec()
}

fn bench_ebpf(n: usize, cluster: &mut Cluster, options: &Options) -> Result<ProxyFigures> {
    let mut lab = Lab::new()?;
    let mut proxy = EbpfProxy::load(&lab.cgroup, n)?;
    let programmed = proxy.program(cluster)?;
    anyhow::ensure!(
        proxy.backends_of(n - 1)? == 3,
        "the last service is not programmed"
    );
    progress(format!(
        "  ebpf: programmed {n} services in {:.1} ms (objects → desired state {:.1} ms, maps {:.1} ms)",
        ms(programmed.compute + programmed.write),
        ms(programmed.compute),
        ms(programmed.write)
    ));
    // (a), (b) and direct-while-loaded in short interleaved slices, the
    // programs detached for (a) and attached for the others, in a rotating
    // order: the machine's drift (CPU placement, other load) falls on all
    // three alike instead of on whichever ran in a bad second.
    let rounds = options.runs * SLICES_PER_RUN;
    let slice = options.seconds / SLICES_PER_RUN as f64;
    let (mut base, mut vip, mut loaded) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    proxy.detach()?;
                    base.push(lab.measure(Target::Direct, slice)?);
                    proxy.attach(&lab.cgroup)?;
                }
                1 => vip.push(lab.measure(Target::Vips(n), slice)?),
                _ => loaded.push(lab.measure(Target::Direct, slice)?),
            }
        }
    }
    let (paired_direct, vip, direct) = (
        Sample::pooled(&base),
        Sample::pooled(&vip),
        Sample::pooled(&loaded),
    );
    // connect4's own cost, from the kernel's run statistics, in one more
    // short run (not in the figures above: statistics add two clock reads
    // per run).
    let stats_on = keelson_node::bpf::stats::enable()?;
    let before = proxy.connect4_stats()?;
    lab.measure(Target::Vips(n), options.seconds.min(0.5))?;
    let connect4 = proxy.connect4_stats()?.since(&before);
    drop(stats_on);
    progress(format!(
        "  ebpf: connect4 ran {} times, {} ns per run",
        connect4.runs,
        connect4.per_run().as_nanos()
    ));
    let change = if n == CHANGE_AT {
        let k = n / 2;
        cluster.set_endpoints(k, &BACKENDS[..2]);
        let event = cluster.slices[k].clone();
        let started = Instant::now();
        proxy.slice_event(&event)?;
        while proxy.backends_of(k)? != 2 {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "change never landed"
            );
        }
        let took = started.elapsed();
        cluster.set_endpoints(k, &BACKENDS);
        progress(format!(
            "  ebpf: one endpoint change visible in the map after {:.2} ms",
            ms(took)
        ));
        Some(took)
    } else {
        None
    };
    drop(proxy);
    Ok(ProxyFigures {
        program: programmed.compute + programmed.write,
        program_detail: json!({
            "objects_to_desired_ms": round(ms(programmed.compute)),
            "map_writes_ms": round(ms(programmed.write)),
            "connect4_ns_per_run": connect4.per_run().as_nanos() as u64,
        }),
        vip,
        direct,
        change,
        paired_direct: Some(paired_direct),
    })
}

fn bench_iptables(n: usize, options: &Options) -> Result<ProxyFigures> {
    let mut lab = Lab::new()?;
    let rules = iptables::ruleset(n, &all_backends);
    let bytes = rules.len();
    let program = iptables::restore(&lab.client_ns, rules, &[])?;
    progress(format!(
        "  iptables: iptables-restore of {n} services ({:.1} MB) took {:.1} ms",
        bytes as f64 / 1e6,
        ms(program)
    ));
    let (vip, _) = measure(&mut lab, Target::Vips(n), options)?;
    let (direct, _) = measure(&mut lab, Target::Direct, options)?;
    let change = if n == CHANGE_AT {
        let took = iptables::restore(
            &lab.client_ns,
            iptables::partial(n, n / 2, &BACKENDS, &BACKENDS[..2]),
            &["--noflush"],
        )?;
        progress(format!(
            "  iptables: one endpoint change (partial restore) took {:.2} ms",
            ms(took)
        ));
        Some(took)
    } else {
        None
    };
    Ok(ProxyFigures {
        program,
        program_detail: json!({ "restore_bytes": bytes }),
        vip,
        direct,
        change,
        paired_direct: None,
    })
}

fn bench_nftables(n: usize, options: &Options) -> Result<ProxyFigures> {
    let mut lab = Lab::new()?;
    let script = nftables::ruleset(n, &all_backends);
    let bytes = script.len();
    let program = nftables::load(&lab.client_ns, script)?;
    progress(format!(
        "  nftables: nft -f of {n} services ({:.1} MB) took {:.1} ms",
        bytes as f64 / 1e6,
        ms(program)
    ));
    let (vip, _) = measure(&mut lab, Target::Vips(n), options)?;
    let (direct, _) = measure(&mut lab, Target::Direct, options)?;
    let change = if n == CHANGE_AT {
        let took = nftables::load(
            &lab.client_ns,
            nftables::partial(n / 2, &BACKENDS, &BACKENDS[..2]),
        )?;
        progress(format!(
            "  nftables: one endpoint change (one transaction) took {:.2} ms",
            ms(took)
        ));
        Some(took)
    } else {
        None
    };
    Ok(ProxyFigures {
        program,
        program_detail: json!({ "script_bytes": bytes }),
        vip,
        direct,
        change,
        paired_direct: None,
    })
}

/// One target of the issue, checked against a figure.
struct Check {
    what: String,
    value: f64,
    target: String,
    met: bool,
}

fn run() -> Result<()> {
    let options = Options::parse()?;
    keelson_e2e::require_root()?;
    progress(format!(
        "proxy bench: sizes {:?}, {} runs of {} s per figure",
        options.sizes, options.runs, options.seconds
    ));
    let mut sizes = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let mut table = Vec::new();
    let (mut last_iptables, mut last_nftables) = (None, None);
    for &n in &options.sizes {
        progress(format!("N = {n}: building {n} Services and EndpointSlices"));
        let mut cluster = Cluster::new(n);
        progress("  direct (no proxy loaded)");
        let mut runs = {
            let mut lab = Lab::new()?;
            measure(&mut lab, Target::Direct, &options)?.1
        };
        progress("  ebpf");
        let ebpf = bench_ebpf(n, &mut cluster, &options)?;
        // Why a baseline is not run at this size, if it is not.
        let skip =
            |name: &str, selected: bool, last: &Option<(usize, Duration)>| -> Option<String> {
                let why = if !selected {
                    "not selected (--proxies)".to_owned()
                } else {
                    let (m, took) = (*last)?;
                    let projected = took.as_secs_f64() * n as f64 / m as f64;
                    if projected <= options.max_program_seconds {
                        return None;
                    }
                    format!(
                        "programming projected at {projected:.0} s > {} s",
                        options.max_program_seconds
                    )
                };
                progress(format!("  {name}: skipped ({why})"));
                Some(why)
            };
        let iptables = match skip("iptables", options.iptables, &last_iptables) {
            Some(why) => Err(why),
            None => {
                progress("  iptables");
                let figures = bench_iptables(n, &options)?;
                last_iptables = Some((n, figures.program));
                Ok(figures)
            }
        };
        let nftables = match skip("nftables", options.nftables, &last_nftables) {
            Some(why) => Err(why),
            None => {
                progress("  nftables");
                let figures = bench_nftables(n, &options)?;
                last_nftables = Some((n, figures.program));
                Ok(figures)
            }
        };
        progress("  direct again (no proxy loaded)");
        runs.extend({
            let mut lab = Lab::new()?;
            measure(&mut lab, Target::Direct, &options)?.1
        });
        let direct = Sample::median(runs);

        let ebpf_vip = ebpf.vip.rate / ebpf.baseline(&direct).rate;
        let ebpf_direct = ebpf.direct.rate / ebpf.baseline(&direct).rate;
        checks.push(Check {
            what: format!("N={n}: eBPF VIP connections / direct"),
            value: ebpf_vip,
            target: "≥ 0.95".into(),
            met: ebpf_vip >= 0.95,
        });
        checks.push(Check {
            what: format!("N={n}: direct connections with eBPF loaded / direct"),
            value: ebpf_direct,
            target: "≥ 0.98".into(),
            met: ebpf_direct >= 0.98,
        });
        if n == CHANGE_AT {
            let program = ms(ebpf.program);
            checks.push(Check {
                what: format!("N={n}: eBPF programming all services (ms)"),
                value: program,
                target: "< 1000".into(),
                met: program < 1000.0,
            });
            if let Some(change) = ebpf.change {
                checks.push(Check {
                    what: format!("N={n}: eBPF one endpoint change visible (ms)"),
                    value: ms(change),
                    target: "< 10".into(),
                    met: ms(change) < 10.0,
                });
            }
        }
        let measured = [
            ("ebpf", Ok(&ebpf)),
            ("iptables", iptables.as_ref()),
            ("nftables", nftables.as_ref()),
        ];
        for (name, figures) in measured {
            let figures = match figures {
                Ok(figures) => figures,
                Err(why) => {
                    table.push(format!("{n:>7} {name:<9} skipped: {why}"));
                    continue;
                }
            };
            let base = figures.baseline(&direct).rate;
            table.push(format!(
                "{n:>7} {name:<9} {:>9.0} {:>6.3} {:>8.1} {:>8.1} {:>9.0} {:>6.3} {:>10.1}",
                figures.vip.rate,
                figures.vip.rate / base,
                figures.vip.p50_us,
                figures.vip.p99_us,
                figures.direct.rate,
                figures.direct.rate / base,
                ms(figures.program),
            ));
        }
        table.push(format!(
            "{n:>7} {:<9} {:>9.0} {:>6.3} {:>8.1} {:>8.1}",
            "direct", direct.rate, 1.0, direct.p50_us, direct.p99_us
        ));
        sizes.push(json!({
            "services": n,
            "endpoints_per_service": BACKENDS.len(),
            "direct": direct.json(),
            "ebpf": ebpf.json(&direct),
            "iptables": skipped_or(&iptables, &direct),
            "nftables": skipped_or(&nftables, &direct),
        }));
    }

    println!();
    println!(
        "{:>7} {:<9} {:>9} {:>6} {:>8} {:>8} {:>9} {:>6} {:>10}",
        "N", "proxy", "VIP c/s", "/(a)", "p50 µs", "p99 µs", "direct", "/(a)", "program ms"
    );
    for line in &table {
        println!("{line}");
    }
    println!();
    for check in &checks {
        println!(
            "target: {:<58} {:>10.3} {:<8} {}",
            check.what,
            check.value,
            check.target,
            if check.met { "met" } else { "MISSED" }
        );
    }

    let report = json!({
        "bench": "proxy",
        "environment": {
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "iptables": iptables::version(),
            "nftables": nftables::version(),
        },
        "method": {
            "workload": "one client process in a test cgroup and network namespace opens TCP connections one at a time (connect() timed, closed with RST) to random VIPs of the N services or to the 3 backends directly; backends accept and close in another namespace over a veth",
            "seconds_per_run": options.seconds,
            "runs_per_figure": options.runs,
            "figure": "kube-proxy layouts: median of the runs by rate, against the direct baseline's median of runs before and after the proxies; eBPF: (a), VIP and direct-while-loaded pooled over runs × 4 interleaved slices in rotating order (programs detached from the client's cgroup for (a)), its ratios against that paired (a)",
            "endpoint_change": format!("at N={CHANGE_AT}: service N/2 loses one of its 3 endpoints; eBPF: from the EndpointSlice watch event through the agent's path (ChangeTracker::apply_slice → LbMapWriter::apply_changes) until the kernel map shows 2 backends; iptables: kube-proxy's partial sync (iptables-restore --noflush); nftables: one nft -f transaction"),
        },
        "sizes": sizes,
        "targets": checks.iter().map(|c| json!({
            "what": c.what, "value": (c.value * 1000.0).round() / 1000.0, "target": c.target, "met": c.met,
        })).collect::<Vec<_>>(),
    });
    let out = output_path();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    Ok(())
}

/// `<target dir>/bench/proxy.json`.
fn output_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench/proxy.json")
}
