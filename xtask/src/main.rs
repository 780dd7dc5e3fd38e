//! `cargo xtask`: Keelson's developer tasks.
//!
//! `setup` installs what a fresh machine lacks; `build-ebpf` builds the BPF
//! object with Debian's rustc (the only toolchain here with `rust-src`);
//! `build` builds BPF then the workspace; `test` runs everything CI runs;
//! `images` builds Keelson's local container images as OCI archives;
//! `bench` runs a benchmark suite.
//! Lists only tasks that work today.

mod bench;
mod cmd;
mod ebpf;
mod images;
mod setup;
mod test;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", version, about = "Keelson developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Check for and install what this machine lacks (Debian packages,
    /// bpf-linker against LLVM 22, bpffs). Idempotent; needs root.
    Setup,
    /// Build the BPF programs (ebpf/programs) for bpfel-unknown-none.
    BuildEbpf,
    /// Build the BPF programs, then the workspace in release.
    Build,
    /// Build Keelson's local images as OCI archives in target/images/
    /// (pause.tar, busybox.tar, echo.tar): static programs from
    /// images/ plus Debian's busybox, no docker. Import one with
    /// `keelson-node images import FILE`.
    Images,
    /// Set up, build BPF, then rustfmt --check, clippy -D warnings and the
    /// whole test suite (unit and root/BPF integration tests).
    Test(test::TestArgs),
    /// Build in release, then run a benchmark suite and print its figures
    /// (`api`: the API server on SQLite and etcd against a raw etcd
    /// baseline; `proxy`: the eBPF load balancer against no proxy and
    /// kube-proxy's iptables and nftables layouts; figures also written to
    /// target/bench/<suite>.json).
    Bench {
        #[arg(value_enum)]
        suite: bench::Suite,
        /// Passed to the suite (proxy: `--sizes 1,1000 --seconds 1 --runs 3`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    match task {
        Task::Setup => setup::run(setup::Mode::Explicit),
        Task::BuildEbpf => {
            setup::run(setup::Mode::Automatic)?;
            ebpf::build().map(drop)
        }
        Task::Build => {
            setup::run(setup::Mode::Automatic)?;
            ebpf::build()?;
            cmd::step("build", "workspace (release)", || {
                cmd::cargo(&["build", "--release", "--workspace"]).run()
            })
        }
        Task::Images => images::run().map(drop),
        Task::Test(args) => test::run(args),
        Task::Bench { suite, args } => bench::run(suite, &args),
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
