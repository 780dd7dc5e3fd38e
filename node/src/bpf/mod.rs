//! The BPF datapath's user-space edge: the embedded BPF object, bpffs, and
//! one loader module per program family (mirroring `ebpf/programs/src`).
//!
//! This module is the only place that calls into aya; everything above it
//! works with plain Rust values (counters, map contents).

pub mod flows;
pub mod ifstats;
pub mod nodeport;
pub mod sock_lb;

use std::path::Path;

use thiserror::Error;

/// The BPF object built from `ebpf/programs` by `cargo xtask build-ebpf`.
/// `build.rs` refuses to compile the agent against a missing or stale one.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("KEELSON_BPF_OBJECT"));

/// Where bpffs is conventionally mounted and Keelson pins its objects.
pub const BPFFS: &str = "/sys/fs/bpf";

/// Failures of the BPF datapath edge.
#[derive(Debug, Error)]
pub enum BpfError {
    #[error("loading the BPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("BPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF program {0} is missing from the object")]
    MissingProgram(&'static str),
    #[error("BPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("pinning to {path}: {source}")]
    Pin {
        path: String,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("attaching to interface {interface}: {source}")]
    Attach {
        interface: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("adding the clsact qdisc to {interface}: {source}")]
    Qdisc {
        interface: String,
        #[source]
        source: aya::programs::tc::TcError,
    },
    #[error("opening cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("attaching BPF program {program} to cgroup {cgroup}: {source}")]
    CgroupAttach {
        program: &'static str,
        cgroup: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF program {program}: its link cannot be pinned: {source}")]
    Link {
        program: &'static str,
        #[source]
        source: aya::programs::links::LinkError,
    },
    #[error("{0} is not on a bpffs")]
    NotBpffs(String),
    #[error("bpffs at {path}: {source}")]
    Bpffs {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Mounts bpffs at `path` unless a bpffs is already mounted there.
pub fn ensure_bpffs(path: &Path) -> Result<(), BpfError> {
    let err = |source| BpfError::Bpffs {
        path: path.display().to_string(),
        source,
    };
    if is_bpffs(path).map_err(err)? {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(err)?;
    nix::mount::mount(
        Some("bpf"),
        path,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| err(e.into()))?;
    tracing::info!(path = %path.display(), "mounted bpffs");
    Ok(())
}

/// Whether `path` is the mount point of a bpffs (per /proc/self/mounts).
pub fn is_bpffs(path: &Path) -> std::io::Result<bool> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let want = path.to_string_lossy();
    Ok(mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_, mount_point, fstype) = (fields.next(), fields.next(), fields.next());
        mount_point == Some(want.trim_end_matches('/')) && fstype == Some("bpf")
    }))
}

/// Attaches a TC classifier to `interface`'s ingress in the calling
/// thread's network namespace: through TCX on kernels that have it (≥ 6.6,
/// aya's own test), else on a clsact qdisc (added if missing).
pub(crate) fn attach_tc_ingress(
    program: &mut aya::programs::SchedClassifier,
    interface: &str,
) -> Result<(), BpfError> {
    use aya::{programs::tc, util::KernelVersion};
    let has_tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    if !has_tcx && let Err(source) = tc::qdisc_add_clsact(interface) {
        let exists = match &source {
            tc::TcError::AlreadyAttached => true,
            tc::TcError::NetlinkError(e) => e.raw_os_error() == Some(libc::EEXIST),
            _ => false,
        };
        if !exists {
            return Err(BpfError::Qdisc {
                interface: interface.to_owned(),
                source,
            });
        }
    }
    program
        .attach(interface, aya::programs::TcAttachType::Ingress)
        .map_err(|source| BpfError::Attach {
            interface: interface.to_owned(),
            source,
        })?;
    Ok(())
}
