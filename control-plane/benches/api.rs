//! `cargo xtask bench api`: the API server's load benchmark.
//!
//! For each store backend (embedded SQLite, etcd) it starts a fresh
//! `keelson-server` (`$KEELSON_SERVER_BIN`, else the one cargo built with
//! this bench) and measures, over HTTPS/HTTP2 with the admin client
//! certificate, one connection per client:
//! 1. closed-loop create and update throughput and p50/p99 of ~1 KiB
//!    ConfigMaps with 1, 16 and 64 clients;
//! 2. an open-loop paced write load (500/s for 5 s), latency from each
//!    write's scheduled send time — target p99 ≤ 25 ms on SQLite;
//! 3. watch delivery latency to 100 watchers of 200 paced creates, and
//!    whether every watcher got every event;
//! 4. the server's VmRSS after storing 10 000 pods (on a fresh server) —
//!    target < 64 MiB;
//! 5. the baseline: raw etcd puts of the same value size and concurrency
//!    against the same etcd, and keelson's create throughput as a ratio of
//!    it.
//!
//! It prints progress and a table, and writes everything to
//! `<workspace>/target/bench/api.json`. Targets are reported, never
//! asserted. Every process and temp dir it makes is removed on exit
//! (drop guards); it only uses 127.0.0.1. It touches nothing outside its
//! own processes and `target/bench/`.

#[path = "api/baseline.rs"]
mod baseline;
#[path = "api/client.rs"]
mod client;
#[path = "api/load.rs"]
mod load;
#[path = "api/procs.rs"]
mod procs;
#[path = "api/stats.rs"]
mod stats;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use crate::{
    client::Endpoint,
    load::{Paced, WatchFanout},
    procs::{Etcd, Server, cpu_seconds},
    stats::{Summary, ms, round},
};

/// Concurrent clients of the closed-loop phases.
const CLIENTS: [usize; 3] = [1, 16, 64];
/// Paced load: writes per second and for how long.
const PACED_RATE: f64 = 500.0;
const PACED_FOR: Duration = Duration::from_secs(5);
/// The target for the paced load on the embedded store.
const PACED_P99_TARGET: Duration = Duration::from_millis(25);
/// Connections the paced load is spread over.
const PACED_CONNS: usize = 16;
/// Watch fan-out: watchers, writes, and their pace.
const WATCHERS: usize = 100;
const WATCH_WRITES: usize = 200;
const WATCH_RATE: f64 = 50.0;
/// Pods stored before reading the server's RSS, and by how many clients.
const PODS: u64 = 10_000;
const POD_CLIENTS: usize = 64;
const RSS_TARGET: u64 = 64 * 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

const NS: &str = "bench";
const WATCH_NS: &str = "bench-watch";
const POD_NS: &str = "bench-pods";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Etcd,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Etcd => "etcd",
        }
    }
}

/// What the closed-loop phases last (`KEELSON_BENCH_SECS`, default 3).
fn phase_duration() -> Duration {
    let secs = std::env::var("KEELSON_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

fn server_binary() -> PathBuf {
    std::env::var_os("KEELSON_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keelson-server")))
}

/// `<workspace>/target/bench/api.json`, whatever CARGO_TARGET_DIR says.
fn report_path() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("target/bench/api.json")
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and
    // then this multi-minute run is skipped.
    if !std::env::args().any(|a| a == "--bench") {
        println!("api bench: skipped (run it with `cargo xtask bench api`)");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: error: starting tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `/proc/loadavg`'s first three fields: how busy the machine was (other
/// work on it skews every figure).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn progress(msg: impl AsRef<str>) {
    println!("bench: {}", msg.as_ref());
}

/// CPU time used by the server, etcd and this bench process.
#[derive(Clone, Copy, Default)]
struct Cpu {
    server: f64,
    etcd: f64,
    bench: f64,
}

impl Cpu {
    fn take(server: Option<&Server>, etcd: &Etcd) -> Self {
        let read = |pid: &str| cpu_seconds(pid).unwrap_or(0.0);
        Self {
            server: server.map_or(0.0, |s| read(&s.pid().to_string())),
            etcd: read(&etcd.pid().to_string()),
            bench: read("self"),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            server: self.server - before.server,
            etcd: self.etcd - before.etcd,
            bench: self.bench - before.bench,
        }
    }
}

/// A closed-loop phase's figures and the CPU it cost.
struct Phase {
    clients: usize,
    summary: Summary,
    cpu: Cpu,
}

impl Phase {
    /// CPU microseconds per successful operation.
    fn per_op(&self, seconds: f64) -> f64 {
        if self.summary.ops == 0 {
            0.0
        } else {
            seconds * 1e6 / self.summary.ops as f64
        }
    }

    fn cpu_line(&self) -> String {
        let secs = self.summary.elapsed.as_secs_f64().max(1e-9);
        format!(
            "cpu: server {:.2} cores ({:.0} us/op), etcd {:.2} cores ({:.0} us/op), bench {:.2} cores",
            self.cpu.server / secs,
            self.per_op(self.cpu.server),
            self.cpu.etcd / secs,
            self.per_op(self.cpu.etcd),
            self.cpu.bench / secs
        )
    }

    fn to_json(&self) -> Value {
        let mut v = self.summary.to_json();
        let secs = self.summary.elapsed.as_secs_f64().max(1e-9);
        v["cpu"] = json!({
            "server_cores": round(self.cpu.server / secs, 3),
            "server_us_per_op": round(self.per_op(self.cpu.server), 1),
            "etcd_cores": round(self.cpu.etcd / secs, 3),
            "etcd_us_per_op": round(self.per_op(self.cpu.etcd), 1),
            "bench_cores": round(self.cpu.bench / secs, 3),
        });
        v
    }
}

/// Everything measured on one backend.
struct BackendResult {
    backend: Backend,
    creates: Vec<Phase>,
    updates: Vec<Phase>,
    paced: Paced,
    watch: WatchFanout,
    rss_after_load: u64,
    /// Writes the server took before `rss_after_load` was read.
    writes_before_rss: u64,
    pods: Summary,
    rss_fresh: u64,
    rss_pods: u64,
    rss_pods_settled: u64,
}

impl BackendResult {
    /// The RSS the target is judged on: the larger reading after the pods.
    fn rss_judged(&self) -> u64 {
        self.rss_pods.max(self.rss_pods_settled)
    }
}

async fn run() -> Result<()> {
    let binary = server_binary();
    let phase = phase_duration();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load_before = loadavg();
    progress(format!(
        "server {}, {cpus} CPUs (load average {load_before}), closed-loop phases of {:.1}s",
        binary.display(),
        phase.as_secs_f64()
    ));

    // One etcd for the raw baseline and the etcd backend's phases.
    progress("starting etcd (/usr/bin/etcd)");
    let etcd = Etcd::start().await?;

    // Size the raw values like keelson's stored ConfigMaps: ask a server.
    let value_size = {
        let server = Server::start(&binary, &[])?;
        let endpoint = Endpoint::new(server.addr, &server.data_dir())?;
        let mut conn = endpoint.connect().await?;
        load::ensure_namespace(&mut conn, NS).await?;
        load::stored_size(&mut conn, NS).await?
    };
    let mut raw = Vec::new();
    for clients in CLIENTS {
        progress(format!(
            "[etcd-raw] put {value_size} B values, {clients} clients, {:.1}s ...",
            phase.as_secs_f64()
        ));
        let before = Cpu::take(None, &etcd);
        let summary = baseline::puts(&etcd.endpoint, clients, value_size, phase).await?;
        let put = Phase {
            clients,
            summary,
            cpu: Cpu::take(None, &etcd).since(before),
        };
        progress(format!(
            "[etcd-raw] put x{clients}: {}\n        {}",
            put.summary.line(),
            put.cpu_line()
        ));
        raw.push(put);
    }

    let mut results = Vec::new();
    for backend in [Backend::Sqlite, Backend::Etcd] {
        let result = bench_backend(backend, &binary, &etcd, phase).await?;
        results.push(result);
    }
    drop(etcd);

    let load_after = loadavg();
    print_table(&raw, &results);
    println!("load average: {load_before} at the start, {load_after} at the end");
    let host = json!({ "cpus": cpus, "loadavg_start": load_before, "loadavg_end": load_after });
    let report = to_json(host, phase, value_size, &raw, &results);
    let path = report_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    progress(format!("figures written to {}", path.display()));
    Ok(())
}

fn server_args(backend: Backend, etcd: &Etcd) -> Vec<String> {
    match backend {
        Backend::Sqlite => vec![],
        Backend::Etcd => vec![
            "--store".into(),
            "etcd".into(),
            "--etcd-endpoints".into(),
            etcd.endpoint.clone(),
        ],
    }
}

fn start_server(binary: &Path, backend: Backend, etcd: &Etcd) -> Result<Server> {
    let args = server_args(backend, etcd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(binary, &args)
}

async fn bench_backend(
    backend: Backend,
    binary: &Path,
    etcd: &Etcd,
    phase: Duration,
) -> Result<BackendResult> {
    let tag = backend.name();
    progress(format!("[{tag}] starting keelson-server"));
    let server = start_server(binary, backend, etcd)?;
    let endpoint = Endpoint::new(server.addr, &server.data_dir())?;
    let mut admin = endpoint.connect().await?;
    load::ensure_namespace(&mut admin, NS).await?;
    load::ensure_namespace(&mut admin, WATCH_NS).await?;
    // Warm-up: a few hundred writes so caches, pools and files exist.
    {
        let conns = load::connect(&endpoint, 4).await?;
        load::creates(&conns, NS, "warmup", Duration::from_millis(500)).await?;
    }

    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut existing = Vec::new();
    let mut writes = 0;
    for clients in CLIENTS {
        let conns = load::connect(&endpoint, clients).await?;
        progress(format!(
            "[{tag}] create, {clients} clients, {:.1}s ...",
            phase.as_secs_f64()
        ));
        let before = Cpu::take(Some(&server), etcd);
        let (summary, created) = load::creates(&conns, NS, &format!("c{clients}"), phase).await?;
        let create = Phase {
            clients,
            summary,
            cpu: Cpu::take(Some(&server), etcd).since(before),
        };
        progress(format!(
            "[{tag}] create x{clients}: {}\n        {}",
            create.summary.line(),
            create.cpu_line()
        ));
        writes += create.summary.ops;
        creates.push(create);
        if clients == *CLIENTS.last().unwrap_or(&1) {
            existing = created
                .iter()
                .flatten()
                .take(1000)
                .map(|(name, _)| name.clone())
                .collect();
        }
        progress(format!(
            "[{tag}] update, {clients} clients, {:.1}s ...",
            phase.as_secs_f64()
        ));
        let before = Cpu::take(Some(&server), etcd);
        let summary = load::updates(&conns, NS, created, phase).await?;
        let update = Phase {
            clients,
            summary,
            cpu: Cpu::take(Some(&server), etcd).since(before),
        };
        progress(format!(
            "[{tag}] update x{clients}: {}\n        {}",
            update.summary.line(),
            update.cpu_line()
        ));
        writes += update.summary.ops;
        updates.push(update);
    }

    progress(format!(
        "[{tag}] paced writes (creates/updates alternating), {PACED_RATE:.0}/s for {:.0}s over {PACED_CONNS} connections ...",
        PACED_FOR.as_secs_f64()
    ));
    let conns = load::connect(&endpoint, PACED_CONNS).await?;
    let paced = load::paced(&conns, NS, &existing, PACED_RATE, PACED_FOR).await?;
    drop(conns);
    progress(format!(
        "[{tag}] paced: {} (achieved {:.0}/s, generator lag max {:.1} ms)",
        paced.all.line(),
        paced.achieved_rate,
        ms(paced.max_send_lag)
    ));

    progress(format!(
        "[{tag}] watch fan-out: {WATCHERS} watchers, {WATCH_WRITES} creates at {WATCH_RATE:.0}/s ..."
    ));
    let watch = load::watch_fanout(&endpoint, WATCH_NS, WATCHERS, WATCH_WRITES, WATCH_RATE).await?;
    progress(format!(
        "[{tag}] watch: from send p50 {:.2} ms p99 {:.2} ms; from the writer's reply p50 {:.2} ms p99 {:.2} ms; {} deliveries, {} missing",
        ms(watch.after_send.p50),
        ms(watch.after_send.p99),
        ms(watch.after_reply.p50),
        ms(watch.after_reply.p99),
        watch.after_reply.ops,
        watch.missing
    ));
    writes += paced.all.ops + watch.writes as u64;
    let rss_after_load = server.rss_bytes()?;
    drop(admin);
    drop(server);

    // RSS with 10 000 pods, on a fresh server (and a fresh etcd) so the
    // figure is about the pods, not the earlier phases' history.
    let fresh_etcd = match backend {
        Backend::Etcd => Some(Etcd::start().await?),
        Backend::Sqlite => None,
    };
    let server = start_server(binary, backend, fresh_etcd.as_ref().unwrap_or(etcd))?;
    let endpoint = Endpoint::new(server.addr, &server.data_dir())?;
    let mut admin = endpoint.connect().await?;
    load::ensure_namespace(&mut admin, POD_NS).await?;
    let rss_fresh = server.rss_bytes()?;
    progress(format!(
        "[{tag}] storing {PODS} pods with {POD_CLIENTS} clients on a fresh server (RSS now {:.1} MiB) ...",
        rss_fresh as f64 / MIB
    ));
    let conns = load::connect(&endpoint, POD_CLIENTS).await?;
    let pods = load::pods(&conns, POD_NS, PODS).await?;
    let rss_pods = server.rss_bytes()?;
    drop(conns);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_pods_settled = server.rss_bytes()?;
    progress(format!(
        "[{tag}] pods: {}; RSS {:.1} MiB right after, {:.1} MiB 3 s later",
        pods.line(),
        rss_pods as f64 / MIB,
        rss_pods_settled as f64 / MIB
    ));
    if pods.ops < PODS {
        progress(format!(
            "[{tag}] WARNING: only {} of {PODS} pods were stored; server log tail:\n{}",
            pods.ops,
            server.log_tail()
        ));
    }
    drop(admin);
    drop(server);
    drop(fresh_etcd);

    Ok(BackendResult {
        backend,
        creates,
        updates,
        paced,
        watch,
        rss_after_load,
        writes_before_rss: writes,
        pods,
        rss_fresh,
        rss_pods,
        rss_pods_settled,
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn met(ok: bool) -> &'static str {
    if ok { "MET" } else { "NOT MET" }
}

fn raw_rate(raw: &[Phase], clients: usize) -> f64 {
    raw.iter()
        .find(|p| p.clients == clients)
        .map_or(0.0, |p| p.summary.ops_per_sec)
}

fn print_table(raw: &[Phase], results: &[BackendResult]) {
    println!();
    println!("== keelson API bench ==");
    println!(
        "{:<9} {:<7} {:>7} {:>10} {:>9} {:>9} {:>8} {:>13} {:>12} {:>10}",
        "backend",
        "op",
        "clients",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "vs raw etcd",
        "srv+etcd cpu",
        "srv us/op"
    );
    for p in raw {
        let s = &p.summary;
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<9} {:<7} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>13} {:>12.2} {:>10}",
            "etcd-raw",
            "put",
            p.clients,
            s.ops_per_sec,
            ms(s.p50),
            ms(s.p99),
            s.errors,
            "1.00x",
            p.cpu.etcd / secs,
            "-"
        );
    }
    for r in results {
        for (op, rows) in [("create", &r.creates), ("update", &r.updates)] {
            for p in rows {
                let s = &p.summary;
                let vs = if op == "create" {
                    format!("{:.2}x", ratio(s.ops_per_sec, raw_rate(raw, p.clients)))
                } else {
                    "-".to_owned()
                };
                let secs = s.elapsed.as_secs_f64().max(1e-9);
                println!(
                    "{:<9} {:<7} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>13} {:>12.2} {:>10.0}",
                    r.backend.name(),
                    op,
                    p.clients,
                    s.ops_per_sec,
                    ms(s.p50),
                    ms(s.p99),
                    s.errors,
                    vs,
                    (p.cpu.server + p.cpu.etcd) / secs,
                    p.per_op(p.cpu.server)
                );
            }
        }
    }
    println!();
    for r in results {
        let name = r.backend.name();
        let p = &r.paced;
        let target = if r.backend == Backend::Sqlite {
            format!(
                "target p99 <= {:.0} ms: {} ({:+.2} ms)",
                ms(PACED_P99_TARGET),
                met(p.all.p99 <= PACED_P99_TARGET),
                ms(p.all.p99) - ms(PACED_P99_TARGET)
            )
        } else {
            format!("(the {:.0} ms target is for sqlite)", ms(PACED_P99_TARGET))
        };
        println!(
            "{name:<7} paced {:.0}/s x {:.0}s: achieved {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}; {target}",
            p.target_rate,
            PACED_FOR.as_secs_f64(),
            p.achieved_rate,
            ms(p.all.p50),
            ms(p.all.p99),
            ms(p.all.max),
            p.all.errors
        );
        let w = &r.watch;
        println!(
            "{name:<7} watch {} watchers x {} events ({} deliveries): from the write's send p50 {:.2} ms p99 {:.2} ms; from the writer's reply p50 {:.2} ms p99 {:.2} ms ({} arrived before the reply, counted 0); missing {}, duplicates {}, stream errors {}",
            w.watchers,
            w.writes,
            w.after_send.ops,
            ms(w.after_send.p50),
            ms(w.after_send.p99),
            ms(w.after_reply.p50),
            ms(w.after_reply.p99),
            w.early,
            w.missing,
            w.duplicates,
            w.stream_errors
        );
        let rss = r.rss_judged();
        println!(
            "{name:<7} RSS with {} pods: {:.1} MiB (fresh {:.1} MiB, pods stored at {:.0}/s); target < {:.0} MiB: {} ({:+.1} MiB); after the load phases ({} writes): {:.1} MiB",
            r.pods.ops,
            rss as f64 / MIB,
            r.rss_fresh as f64 / MIB,
            r.pods.ops_per_sec,
            RSS_TARGET as f64 / MIB,
            met(rss < RSS_TARGET && r.pods.ops == PODS),
            (rss as f64 - RSS_TARGET as f64) / MIB,
            r.writes_before_rss,
            r.rss_after_load as f64 / MIB
        );
    }
    println!();
}

fn phases(rows: &[Phase]) -> Value {
    let mut m = Map::new();
    for p in rows {
        m.insert(p.clients.to_string(), p.to_json());
    }
    Value::Object(m)
}

fn to_json(
    host: Value,
    phase: Duration,
    value_size: usize,
    raw: &[Phase],
    results: &[BackendResult],
) -> Value {
    let mut backends = Map::new();
    for r in results {
        let mut vs_raw = Map::new();
        for p in &r.creates {
            vs_raw.insert(
                p.clients.to_string(),
                json!(round(
                    ratio(p.summary.ops_per_sec, raw_rate(raw, p.clients)),
                    3
                )),
            );
        }
        let p = &r.paced;
        let w = &r.watch;
        let rss = r.rss_judged();
        backends.insert(
            r.backend.name().to_owned(),
            json!({
                "create": phases(&r.creates),
                "update": phases(&r.updates),
                "create_vs_raw_etcd_put": vs_raw,
                "paced": {
                    "target_rate": p.target_rate,
                    "achieved_rate": round(p.achieved_rate, 1),
                    "duration_s": PACED_FOR.as_secs_f64(),
                    "latency_from": "scheduled send time",
                    "max_generator_lag_ms": round(ms(p.max_send_lag), 3),
                    "all": p.all.to_json(),
                    "creates": p.creates.to_json(),
                    "updates": p.updates.to_json(),
                    "target_p99_ms": ms(PACED_P99_TARGET),
                    "target_applies": r.backend == Backend::Sqlite,
                    "target_met": p.all.p99 <= PACED_P99_TARGET && p.all.errors == 0,
                },
                "watch": {
                    "watchers": w.watchers,
                    "writes": w.writes,
                    "write_rate": WATCH_RATE,
                    "deliveries": w.after_reply.ops,
                    "after_reply": {
                        "latency_from": "the writer receiving the create's reply (deliveries before it count as 0)",
                        "p50_ms": round(ms(w.after_reply.p50), 3),
                        "p99_ms": round(ms(w.after_reply.p99), 3),
                        "max_ms": round(ms(w.after_reply.max), 3),
                    },
                    "after_send": {
                        "latency_from": "the writer sending the create",
                        "p50_ms": round(ms(w.after_send.p50), 3),
                        "p99_ms": round(ms(w.after_send.p99), 3),
                        "max_ms": round(ms(w.after_send.max), 3),
                    },
                    "early_deliveries": w.early,
                    "missing": w.missing,
                    "duplicates": w.duplicates,
                    "stream_errors": w.stream_errors,
                    "first_stream_error": w.first_stream_error,
                },
                "rss": {
                    "pods": r.pods.ops,
                    "pod_create": r.pods.to_json(),
                    "fresh_mib": round(r.rss_fresh as f64 / MIB, 2),
                    "with_pods_mib": round(r.rss_pods as f64 / MIB, 2),
                    "with_pods_settled_mib": round(r.rss_pods_settled as f64 / MIB, 2),
                    "judged_mib": round(rss as f64 / MIB, 2),
                    "target_mib": RSS_TARGET as f64 / MIB,
                    "target_met": rss < RSS_TARGET && r.pods.ops == PODS,
                    "after_load_phases_mib": round(r.rss_after_load as f64 / MIB, 2),
                    "writes_before_after_load_reading": r.writes_before_rss,
                },
            }),
        );
    }
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "bench": "api",
        "unix_time": unix,
        "host": host,
        "settings": {
            "closed_loop_phase_s": phase.as_secs_f64(),
            "clients": CLIENTS,
            "configmap_payload_bytes": load::PAYLOAD,
            "paced_rate": PACED_RATE,
            "paced_connections": PACED_CONNS,
            "watchers": WATCHERS,
            "watch_writes": WATCH_WRITES,
            "pods": PODS,
            "pod_clients": POD_CLIENTS,
        },
        "etcd_raw_put": {
            "value_bytes": value_size,
            "by_clients": phases(raw),
        },
        "backends": backends,
    })
}
