//! The BPF datapath's user-space edge: the embedded BPF object, bpffs, and
//! one loader module per program family (mirroring `ebpf/programs/src`).
//!
//! This module is the only place that calls into aya; everything above it
//! works with plain Rust values (counters, map contents).

pub mod flows;
pub mod ifstats;
pub mod mmap;
pub mod nodeport;
pub mod sock_lb;
pub mod stats;

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
    #[error("reading the run statistics of BPF program {name}: {source}")]
    Stats {
        name: &'static str,
        #[source]
        source: std::io::Error,
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

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns()`,
/// which stamps conntrack and affinity entries.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Whether this kernel attaches TC programs through TCX links (≥ 6.6,
/// aya's own test); older ones only have clsact qdiscs and netlink filters.
pub fn has_tcx() -> bool {
    use aya::util::KernelVersion;
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}

/// Attaches a TC classifier to `interface`'s ingress in the calling
/// thread's network namespace: through TCX on kernels that have it (≥ 6.6,
/// aya's own test), else on a clsact qdisc (added if missing).
pub(crate) fn attach_tc_ingress(
    program: &mut aya::programs::SchedClassifier,
    interface: &str,
) -> Result<(), BpfError> {
    use aya::programs::tc;
    if !has_tcx()
        && let Err(source) = tc::qdisc_add_clsact(interface)
    {
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

/// How [`attach_tc_ingress_pinned`] attached a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcAttach {
    /// The TCX link pinned there now runs the new program (one atomic
    /// `BPF_LINK_UPDATE`: the interface was never without a program, nor
    /// ran two copies).
    Replaced,
    /// A new TCX link, pinned (over an unusable old pin, if any: a link of
    /// a device that is gone, or of another one).
    Attached,
    /// No TCX on this kernel: a clsact filter that lives as long as the
    /// loaded program (this process), not pinned.
    Unpinned,
}

/// Attaches a TC classifier to `interface`'s ingress (calling thread's
/// network namespace) through a TCX link pinned at `pin`, so it stays
/// attached when this process exits. A link already pinned there for this
/// interface is updated in place to run `program`; otherwise a new link is
/// attached, pinned next to `pin` and renamed over it (which releases an
/// old, unusable link). Before TCX (< 6.6) it falls back to
/// [`attach_tc_ingress`] without pinning.
pub(crate) fn attach_tc_ingress_pinned(
    program: &mut aya::programs::SchedClassifier,
    name: &'static str,
    interface: &str,
    pin: &Path,
) -> Result<TcAttach, BpfError> {
    use aya::programs::{
        LinkOrder, TcAttachType,
        links::{FdLink, LinkError, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
    };
    if !has_tcx() {
        attach_tc_ingress(program, interface)?;
        tracing::warn!(
            interface,
            "no TCX on this kernel: the TC program is not pinned and detaches when the agent stops"
        );
        return Ok(TcAttach::Unpinned);
    }
    let attach_err = |source| BpfError::Attach {
        interface: interface.to_owned(),
        source,
    };
    let link_err = |source| BpfError::Link {
        program: name,
        source,
    };
    let ours = program
        .info()
        .map_err(|source| BpfError::Program { name, source })?
        .id();
    match PinnedLink::from_pin(pin) {
        Ok(old) => match SchedClassifierLink::try_from(FdLink::from(old)) {
            Ok(link) => match program.attach_to_link(link) {
                Ok(id) => {
                    // The pin keeps the link; our fd closes with `link`.
                    let link = program.take_link(id).map_err(attach_err)?;
                    drop(link);
                    if tc_ingress_programs(interface)?
                        .iter()
                        .any(|(id, _)| *id == ours)
                    {
                        return Ok(TcAttach::Replaced);
                    }
                    tracing::warn!(interface, pin = %pin.display(),
                        "the pinned TC link belongs to another device; attaching anew");
                }
                Err(e) => tracing::info!(interface, pin = %pin.display(), error = %e,
                    "the pinned TC link cannot be updated (its device is gone?); attaching anew"),
            },
            Err(e) => tracing::warn!(interface, pin = %pin.display(), error = %e,
                "the pin is not a TCX link; replacing it"),
        },
        Err(LinkError::SyscallError(e)) if e.io_error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(link_err(source)),
    }
    let id = program
        .attach_with_options(
            interface,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(attach_err)?;
    let link: FdLink = program
        .take_link(id)
        .map_err(attach_err)?
        .try_into()
        .map_err(link_err)?;
    let file = pin
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // bpffs refuses dots in names; `%` never ends an escaped name.
    let staged = pin.with_file_name(format!("{file}%new"));
    // A crash between pin and rename leaves a staged pin behind.
    let _ = std::fs::remove_file(&staged);
    let pinned = link.pin(&staged).map_err(|source| BpfError::Pin {
        path: staged.display().to_string(),
        source,
    })?;
    std::fs::rename(&staged, pin).map_err(|source| BpfError::Bpffs {
        path: pin.display().to_string(),
        source,
    })?;
    // Closing our fd leaves the link held by its pin alone.
    drop(pinned);
    Ok(TcAttach::Attached)
}

/// Ids and names of the programs attached to `interface`'s TCX ingress in
/// the calling thread's network namespace, in run order (empty before TCX,
/// on kernels < 6.6). Names are the kernel's, cut to 15 bytes.
pub fn tc_ingress_programs(interface: &str) -> Result<Vec<(u32, String)>, BpfError> {
    use aya::programs::{SchedClassifier, TcAttachType};
    if !has_tcx() {
        return Ok(Vec::new());
    }
    let (_, programs) =
        SchedClassifier::query_tcx(interface, TcAttachType::Ingress).map_err(|source| {
            BpfError::Attach {
                interface: interface.to_owned(),
                source,
            }
        })?;
    Ok(programs
        .iter()
        .map(|p| (p.id(), p.name_as_str().unwrap_or_default().to_owned()))
        .collect())
}
