//! `cargo xtask setup`: make a fresh machine of this kind able to build and
//! test Keelson. Checks first, installs only what is missing, one line per
//! step, so a second run installs nothing.
//!
//! What and why (see docs/operations.md):
//! - Debian's `rustc-web` + `rust-web-src`: a rustc (1.96, LLVM 22) that
//!   ships core's sources, needed for `-Z build-std=core` on
//!   `bpfel-unknown-none`; rustup's toolchains here have no `rust-src`.
//! - `bpf-linker`, built from crates.io against Debian's LLVM 22.
//! - `iproute2`, `bpftool`: namespaces and links for datapath tests, and
//!   inspecting programs and maps.
//! - bpffs mounted at /sys/fs/bpf, where BPF objects are pinned.
//! - `containerd`, `runc`: the node's container runtime (driven through
//!   CRI); `busybox-static`: the static busybox of the local busybox image.
//!   Installing containerd must not leave Debian's own containerd service
//!   running: Keelson starts its own instances with its own configuration.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::cmd::{Cmd, cargo};

/// Debian packages, each with why it is needed.
const PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "rustc 1.96 with LLVM 22, for the BPF target"),
    ("rust-web-src", "core's sources, for -Z build-std=core"),
    ("llvm-22-dev", "LLVM 22, linked by bpf-linker"),
    (
        "libpolly-19-dev",
        "needed by LLVM's cmake config when bpf-linker links",
    ),
    ("libzstd-dev", "linked by bpf-linker"),
    ("zlib1g-dev", "linked by bpf-linker"),
    ("clang", "C toolchain used by bpf-linker's build"),
    ("bpftool", "inspecting BPF programs and maps"),
    ("iproute2", "ip netns/link/addr for datapath tests"),
    ("file", "identifying built objects"),
    (
        "protobuf-compiler",
        "protoc, for etcd-client's generated gRPC code",
    ),
    (
        "etcd-server",
        "a real etcd v3 for the etcd store backend and its tests",
    ),
    (
        "etcd-client",
        "etcdctl, the raw etcd baseline of `cargo xtask bench api`",
    ),
    (
        "iptables",
        "kube-proxy's iptables layout, a baseline of `cargo xtask bench proxy`",
    ),
    (
        "nftables",
        "kube-proxy's nftables layout, a baseline of `cargo xtask bench proxy`",
    ),
    (
        "containerd",
        "the container runtime behind the CRI client (1.6, CRI plugin built in)",
    ),
    (
        "runc",
        "the OCI runtime containerd's shims start containers with",
    ),
    (
        "busybox-static",
        "the static /bin/busybox inside the local keelson.local/busybox:1 image",
    ),
];

/// The bpf-linker release that fits rustc 1.95 and LLVM 22.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Debian's rustc with core's sources, used for the BPF target only.
pub const BPF_RUSTC: &str = "/usr/bin/rustc";
const BPFFS: &str = "/sys/fs/bpf";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo xtask setup`: must be root.
    Explicit,
    /// Run before tasks that need the tools: fine without root as long as
    /// nothing is missing.
    Automatic,
}

pub fn run(mode: Mode) -> Result<()> {
    let root = is_root();
    if mode == Mode::Explicit && !root {
        bail!(
            "cargo xtask setup must run as root: it installs Debian packages with apt-get \
             and mounts bpffs (try `sudo -E cargo xtask setup`)"
        );
    }
    println!(
        "setup: running as {}",
        if root { "root" } else { "a regular user" }
    );
    packages(root)?;
    bpf_linker()?;
    bpffs(root)?;
    python_client()?;
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn packages(root: bool) -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !package_installed(name))
        .collect();
    if missing.is_empty() {
        println!("setup: Debian packages ({}): all present", PACKAGES.len());
        return Ok(());
    }
    let list = missing.join(" ");
    if !root {
        bail!(
            "setup: Debian packages missing: {list}; installing them needs root: run `sudo -E cargo xtask setup`"
        );
    }
    println!("setup: Debian packages: installing {list} (apt-get) ...");
    Cmd::new("apt-get")
        .args(["-qq", "update"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("apt-get update failed (is a Debian mirror reachable?)")?;
    Cmd::new("apt-get")
        .args(["-qq", "install", "-y"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .with_context(|| format!("apt-get install {list} failed"))?;
    let still: Vec<&str> = missing
        .into_iter()
        .filter(|name| !package_installed(name))
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get reported success but these are still missing: {}",
            still.join(" ")
        );
    }
    println!("setup: Debian packages: installed {list}");
    Ok(())
}

fn package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b"install ok installed"))
}

/// `$CARGO_HOME/bin`, where `cargo install` puts binaries.
pub fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    home.join("bin")
}

fn bpf_linker() -> Result<()> {
    let path = cargo_bin_dir().join("bpf-linker");
    match bpf_linker_state(&path) {
        Ok(()) => {
            println!(
                "setup: bpf-linker {BPF_LINKER_VERSION} (LLVM 22): present at {}",
                path.display()
            );
            return Ok(());
        }
        Err(why) => println!(
            "setup: bpf-linker {BPF_LINKER_VERSION} (LLVM 22): {why}; installing with cargo install (2-3 minutes) ..."
        ),
    }
    let llvm_bin = Path::new("/usr/lib/llvm-22/bin");
    let path_var = prepend_path(llvm_bin);
    cargo(&[
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
        "--force",
        "--no-default-features",
        "--features",
        "llvm-22",
    ])
    .env("PATH", path_var)
    .run()
    .context("installing bpf-linker failed")?;
    bpf_linker_state(&path).map_err(|why| anyhow::anyhow!("bpf-linker after install: {why}"))?;
    println!(
        "setup: bpf-linker {BPF_LINKER_VERSION} (LLVM 22): installed at {}",
        path.display()
    );
    Ok(())
}

/// Ok when `path` is bpf-linker at the pinned version, linked to LLVM 22.
fn bpf_linker_state(path: &Path) -> std::result::Result<(), String> {
    let version = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|_| "not installed".to_owned())?;
    let version = String::from_utf8_lossy(&version.stdout);
    if !version.contains(BPF_LINKER_VERSION) {
        return Err(format!("found `{}`", version.trim()));
    }
    let libs = Command::new("ldd")
        .arg(path)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    if !String::from_utf8_lossy(&libs.stdout).contains("libLLVM.so.22") {
        return Err("not linked against LLVM 22".to_owned());
    }
    Ok(())
}

/// PATH with `dir` in front.
pub fn prepend_path(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(existing) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

fn bpffs(root: bool) -> Result<()> {
    let mounts =
        std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&BPFFS) && fields.get(2) == Some(&"bpf")
    });
    if mounted {
        println!("setup: bpffs at {BPFFS}: mounted");
        return Ok(());
    }
    if !root {
        bail!(
            "setup: bpffs is not mounted at {BPFFS}; mounting it needs root: run `sudo -E cargo xtask setup`"
        );
    }
    Cmd::new("mount")
        .args(["-t", "bpf", "bpf", BPFFS])
        .output()
        .context("mounting bpffs")?;
    println!("setup: bpffs at {BPFFS}: mounted now");
    Ok(())
}

/// The official Kubernetes Python client, which the API tests drive.
fn python_client() -> Result<()> {
    let present = |python: &str| {
        Command::new(python)
            .args(["-c", "import kubernetes"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if present("python3") {
        println!("setup: Python kubernetes client: present");
        return Ok(());
    }
    println!("setup: Python kubernetes client: installing with pip ...");
    Cmd::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "kubernetes",
        ])
        .run()
        .context("pip install kubernetes failed")?;
    if !present("python3") {
        bail!("pip installed kubernetes but `import kubernetes` still fails");
    }
    println!("setup: Python kubernetes client: installed");
    Ok(())
}
