//! `keelson-node`: the node agent's command line.
//!
//! Lists only subcommands that work today; the kubelet and the kube-proxy
//! replacement add theirs as they land.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use keelson_node::bpf::{self, ifstats::IfStats};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "keelson-node",
    version,
    about = "Keelson node agent: kubelet, CNI and an eBPF kube-proxy replacement",
    long_about = "Keelson node agent. One runs on every Linux host of a Keelson (or \
                  Kubernetes) cluster; its datapath runs in the kernel as eBPF programs."
)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `keelson_node=debug`.
    #[arg(long, env = "KEELSON_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Count ingress packets and bytes per interface with the `ifstats` TC
    /// classifier, printing totals every interval until Ctrl-C.
    Ifstats(IfstatsArgs),
}

#[derive(Args)]
struct IfstatsArgs {
    /// Interfaces to attach to (in this process's network namespace).
    #[arg(required = true, value_name = "INTERFACE")]
    interfaces: Vec<String>,
    /// Time between two reports, e.g. `500ms`, `2s`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Stop after this many reports.
    #[arg(long)]
    count: Option<u64>,
    /// Also pin the counter map at this path on bpffs (removed on exit), so
    /// `bpftool map dump pinned PATH` can read it meanwhile.
    #[arg(long, value_name = "PATH")]
    pin: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Ifstats(args) => ifstats(args).await,
    }
}

async fn ifstats(args: IfstatsArgs) -> Result<()> {
    if args.interval.is_zero() {
        bail!("--interval must be greater than zero");
    }
    let mut stats = IfStats::load().context("loading the ifstats program")?;
    for interface in &args.interfaces {
        stats
            .attach(interface)
            .with_context(|| format!("attaching ifstats to {interface}"))?;
    }
    let _pin = match &args.pin {
        Some(path) => {
            if path.starts_with(bpf::BPFFS) {
                bpf::ensure_bpffs(std::path::Path::new(bpf::BPFFS))?;
            }
            stats.pin_map(path)?;
            Some(PinGuard(path.clone()))
        }
        None => None,
    };

    let mut ticker = tokio::time::interval(args.interval);
    ticker.tick().await;
    let mut reports = 0u64;
    println!(
        "{:<16} {:>8} {:>14} {:>16}",
        "INTERFACE", "IFINDEX", "PACKETS", "BYTES"
    );
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => {
                info!("interrupted; detaching");
                return Ok(());
            }
        }
        for (ifindex, counters) in stats.totals()? {
            let name = interface_name(ifindex).unwrap_or_else(|| "?".to_owned());
            println!(
                "{name:<16} {ifindex:>8} {:>14} {:>16}",
                counters.packets, counters.bytes
            );
        }
        reports += 1;
        if args.count.is_some_and(|count| reports >= count) {
            return Ok(());
        }
    }
}

/// Removes a pinned map when the command ends.
struct PinGuard(PathBuf);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn interface_name(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes as if_indextoname requires.
    let ptr = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: on success the kernel wrote a NUL-terminated name into `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}
