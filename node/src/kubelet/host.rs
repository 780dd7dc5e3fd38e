//! What the kubelet reads from the host for its Node object: the machine's
//! identity (kernel, OS image, machine and boot ids, architecture), its
//! resources (online CPUs, memory, huge pages, the root directory's
//! filesystem) and the pressure signals (available memory, disk and
//! inodes, process ids).
//!
//! The node lifecycle's only module that reads `/proc`, `/sys` and `/etc`
//! or calls `uname`, `statvfs` and `getifaddrs`. Every file format has a
//! pure parser here (unit-tested); the readers around them are thin. It
//! never writes anything, and knows nothing of the API.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use thiserror::Error;

/// Why a host fact could not be read.
#[derive(Debug, Error)]
pub enum HostError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("statvfs({path}): {source}")]
    Statvfs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("uname: {0}")]
    Uname(#[source] nix::Error),
    #[error("listing the host's interface addresses: {0}")]
    Interfaces(#[source] nix::Error),
}

const MEMINFO: &str = "/proc/meminfo";
const CPU_ONLINE: &str = "/sys/devices/system/cpu/online";
const LOADAVG: &str = "/proc/loadavg";
const PID_MAX: &str = "/proc/sys/kernel/pid_max";
const THREADS_MAX: &str = "/proc/sys/kernel/threads-max";
const OS_RELEASE: &str = "/etc/os-release";
const OS_RELEASE_FALLBACK: &str = "/usr/lib/os-release";
const MACHINE_ID: &str = "/etc/machine-id";
const MACHINE_ID_FALLBACK: &str = "/var/lib/dbus/machine-id";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const PRODUCT_UUID: &str = "/sys/class/dmi/id/product_uuid";
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";
const HOSTNAME: &str = "/proc/sys/kernel/hostname";

fn read(path: &str) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|source| HostError::Read {
        path: path.into(),
        source,
    })
}

fn parse_error(path: &str, reason: impl Into<String>) -> HostError {
    HostError::Parse {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The two `/proc/meminfo` figures the kubelet uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`: the node's memory capacity.
    pub total: u64,
    /// `MemAvailable`: what the memory-pressure signal compares.
    pub available: u64,
}

/// Parses `/proc/meminfo` (`Key:   <n> kB` lines). `MemTotal` and
/// `MemAvailable` are required.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, String> {
    let mut total = None;
    let mut available = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            _ => continue,
        };
        let mut fields = rest.split_whitespace();
        let number: u64 = fields
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{key}: no number in {rest:?}"))?;
        let bytes = match fields.next() {
            None => Some(number),
            Some("kB") => number.checked_mul(1024),
            Some(unit) => return Err(format!("{key}: unknown unit {unit:?}")),
        }
        .ok_or_else(|| format!("{key}: {number} kB is out of range"))?;
        *slot = Some(bytes);
    }
    Ok(MemInfo {
        total: total.ok_or("no MemTotal line")?,
        available: available.ok_or("no MemAvailable line")?,
    })
}

/// Reads `/proc/meminfo`.
pub fn meminfo() -> Result<MemInfo, HostError> {
    parse_meminfo(&read(MEMINFO)?).map_err(|reason| parse_error(MEMINFO, reason))
}

/// How many CPUs a kernel CPU list (`0-3,6,8-9`, as in
/// `/sys/devices/system/cpu/online`) names.
pub fn parse_cpu_list(text: &str) -> Result<u32, String> {
    let mut count = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("bad CPU number {s:?} in {text:?}"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if last < first {
            return Err(format!("descending range {part:?}"));
        }
        count = count
            .checked_add(last - first + 1)
            .ok_or_else(|| format!("too many CPUs in {text:?}"))?;
    }
    if count == 0 {
        return Err(format!("no CPUs in {text:?}"));
    }
    Ok(count)
}

/// The number of online CPUs (cAdvisor's `NumCores`, the kubelet's `cpu`
/// capacity), from sysfs, else `sysconf(_SC_NPROCESSORS_ONLN)`.
pub fn online_cpus() -> Result<u32, HostError> {
    match read(CPU_ONLINE) {
        Ok(text) => parse_cpu_list(&text).map_err(|reason| parse_error(CPU_ONLINE, reason)),
        Err(e) => {
            // SAFETY: sysconf has no memory-safety preconditions.
            let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
            u32::try_from(n).ok().filter(|n| *n > 0).ok_or(e)
        }
    }
}

/// The process-id figures of the `pid.available` signal, as the kubelet
/// computes them: the limit is the smaller of `kernel.pid_max` and
/// `kernel.threads-max` (every thread takes an id); in use is the number
/// of kernel scheduling entities, the total after the `/` in
/// `/proc/loadavg` (sysinfo's 16-bit `procs` overflows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStats {
    pub max: u64,
    pub running: u64,
}

impl PidStats {
    pub fn available(&self) -> u64 {
        self.max.saturating_sub(self.running)
    }
}

/// The number of threads in `/proc/loadavg` (`0.10 0.20 0.30 1/123 456`).
pub fn parse_loadavg_threads(text: &str) -> Result<u64, String> {
    text.split_whitespace()
        .nth(3)
        .and_then(|f| f.split_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .ok_or_else(|| format!("no running/total field in {:?}", text.trim()))
}

fn read_u64(path: &str) -> Result<u64, HostError> {
    let text = read(path)?;
    text.trim()
        .parse()
        .map_err(|_| parse_error(path, format!("not a number: {:?}", text.trim())))
}

/// Reads the pid limit and the threads in use.
pub fn pid_stats() -> Result<PidStats, HostError> {
    let max = read_u64(PID_MAX)?.min(read_u64(THREADS_MAX)?);
    let running =
        parse_loadavg_threads(&read(LOADAVG)?).map_err(|reason| parse_error(LOADAVG, reason))?;
    Ok(PidStats { max, running })
}

/// A filesystem's size and free space, in bytes and inodes (`statvfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// `f_blocks × f_frsize`: the `ephemeral-storage` capacity.
    pub capacity: u64,
    /// `f_bavail × f_frsize`: free space an unprivileged writer can use
    /// (cAdvisor's `Available`, the `nodefs.available` signal).
    pub available: u64,
    pub inodes: u64,
    /// `f_favail`.
    pub inodes_free: u64,
}

/// `statvfs(path)`.
pub fn fs_stats(path: &Path) -> Result<FsStats, HostError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|source| HostError::Statvfs {
        path: path.to_path_buf(),
        source,
    })?;
    let frsize = st.fragment_size();
    Ok(FsStats {
        capacity: st.blocks().saturating_mul(frsize),
        available: st.blocks_available().saturating_mul(frsize),
        inodes: st.files(),
        inodes_free: st.files_available(),
    })
}

/// One huge-page size the kernel supports and how many such pages are
/// reserved (`/sys/kernel/mm/hugepages/hugepages-<n>kB/nr_hugepages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HugePages {
    pub page_size: u64,
    pub pages: u64,
}

/// The page size in bytes of a `hugepages-<n>kB` directory name.
pub fn parse_hugepages_dir(name: &str) -> Option<u64> {
    name.strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse::<u64>()
        .ok()?
        .checked_mul(1024)
}

/// Every supported huge-page size (none when the kernel has no huge
/// pages), in ascending size.
pub fn hugepages() -> Result<Vec<HugePages>, HostError> {
    let entries = match std::fs::read_dir(HUGEPAGES) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HostError::Read {
                path: HUGEPAGES.into(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(page_size) = name.to_str().and_then(parse_hugepages_dir) else {
            continue;
        };
        let nr = entry.path().join("nr_hugepages");
        let pages = read_u64(&nr.to_string_lossy())?;
        out.push(HugePages { page_size, pages });
    }
    out.sort();
    Ok(out)
}

/// `PRETTY_NAME` of an os-release file (shell-style quoting removed), or
/// `None` when it has none.
pub fn parse_os_release_pretty_name(text: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?
        .trim();
    let unquoted = match value.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q => &value[1..value.len() - 1],
        _ => value,
    };
    // Inside double quotes, os-release allows \" \\ \$ \` escapes.
    let mut out = String::with_capacity(unquoted.len());
    let mut chars = unquoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Some(out)
}

/// The machine's identity, as the kubelet reports it in
/// `status.nodeInfo` (read once at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    /// `uname -r`.
    pub kernel_version: String,
    /// os-release `PRETTY_NAME` (`Unknown` without one, as cAdvisor says).
    pub os_image: String,
    /// `linux`.
    pub operating_system: String,
    /// Go's name of the architecture (`amd64`, `arm64`, …).
    pub architecture: String,
    pub machine_id: String,
    pub boot_id: String,
    /// DMI product UUID; empty on machines without one (VMs often).
    pub system_uuid: String,
}

/// Go's `GOARCH` for Rust's `target_arch`, the names Kubernetes uses in
/// `kubernetes.io/arch` and `nodeInfo.architecture`.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

fn first_readable(paths: &[&str]) -> Result<String, HostError> {
    let mut last = None;
    for path in paths {
        match read(path) {
            Ok(text) => return Ok(text),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| parse_error("", "no path given")))
}

impl SystemInfo {
    pub fn read() -> Result<Self, HostError> {
        let uname = nix::sys::utsname::uname().map_err(HostError::Uname)?;
        let os_image = first_readable(&[OS_RELEASE, OS_RELEASE_FALLBACK])
            .ok()
            .and_then(|t| parse_os_release_pretty_name(&t))
            .unwrap_or_else(|| "Unknown".to_owned());
        Ok(Self {
            kernel_version: uname.release().to_string_lossy().into_owned(),
            os_image,
            operating_system: std::env::consts::OS.to_owned(),
            architecture: go_arch(std::env::consts::ARCH).to_owned(),
            machine_id: first_readable(&[MACHINE_ID, MACHINE_ID_FALLBACK])?
                .trim()
                .to_owned(),
            boot_id: read(BOOT_ID)?.trim().to_owned(),
            system_uuid: read(PRODUCT_UUID)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        })
    }
}

/// The host name, lower-cased (the kubelet's default node name).
pub fn hostname() -> Result<String, HostError> {
    Ok(read(HOSTNAME)?.trim().to_lowercase())
}

/// One IPv4 address of an interface, with the flags that matter for
/// choosing the node IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub interface: String,
    pub up: bool,
    pub loopback: bool,
    pub address: Ipv4Addr,
}

/// The node's default InternalIP: the first global unicast IPv4 address
/// of an interface that is up (loopback, link-local `169.254/16`,
/// unspecified, broadcast and multicast addresses are skipped), in the
/// kernel's interface order.
pub fn pick_node_ip(addresses: &[InterfaceAddress]) -> Option<IpAddr> {
    addresses
        .iter()
        .find(|a| {
            let ip = a.address;
            a.up && !a.loopback
                && !(ip.is_loopback()
                    || ip.is_link_local()
                    || ip.is_unspecified()
                    || ip.is_broadcast()
                    || ip.is_multicast())
        })
        .map(|a| IpAddr::V4(a.address))
}

/// The IPv4 addresses of this network namespace's interfaces.
pub fn interface_addresses() -> Result<Vec<InterfaceAddress>, HostError> {
    use nix::net::if_::InterfaceFlags;
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(HostError::Interfaces)? {
        let Some(address) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|sin| sin.ip())
        else {
            continue;
        };
        out.push(InterfaceAddress {
            interface: ifa.interface_name.clone(),
            up: ifa.flags.contains(InterfaceFlags::IFF_UP),
            loopback: ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            address,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_gives_total_and_available_in_bytes() {
        let text = "MemTotal:       24683664 kB\nMemFree:         4374068 kB\n\
                    MemAvailable:   23769944 kB\nBuffers:          123 kB\nHugePages_Total:       0\n";
        assert_eq!(
            parse_meminfo(text),
            Ok(MemInfo {
                total: 24683664 * 1024,
                available: 23769944 * 1024
            })
        );
    }

    #[test]
    fn meminfo_without_a_field_or_with_garbage_is_an_error() {
        assert!(parse_meminfo("MemTotal: 1 kB\n").is_err());
        assert!(parse_meminfo("MemAvailable: 1 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: x kB\nMemAvailable: 1 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: 1 MB\nMemAvailable: 1 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n").is_err());
        assert!(parse_meminfo("").is_err());
    }

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0\n"), Ok(1));
        assert_eq!(parse_cpu_list("0-1\n"), Ok(2));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Ok(7));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn loadavg_gives_the_thread_total() {
        assert_eq!(
            parse_loadavg_threads("1.01 2.26 2.42 1/103 10466\n"),
            Ok(103)
        );
        assert!(parse_loadavg_threads("1.01 2.26 2.42").is_err());
        assert!(parse_loadavg_threads("1 2 3 4 5").is_err());
    }

    #[test]
    fn pid_availability_saturates() {
        let s = PidStats {
            max: 10,
            running: 12,
        };
        assert_eq!(s.available(), 0);
    }

    #[test]
    fn hugepage_dirs_name_their_size() {
        assert_eq!(parse_hugepages_dir("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(parse_hugepages_dir("hugepages-1048576kB"), Some(1 << 30));
        assert_eq!(parse_hugepages_dir("hugepages-xkB"), None);
        assert_eq!(parse_hugepages_dir("other"), None);
    }

    #[test]
    fn os_release_pretty_name_is_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            parse_os_release_pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME='Alpine Linux v3.20'").as_deref(),
            Some("Alpine Linux v3.20")
        );
        assert_eq!(
            parse_os_release_pretty_name("PRETTY_NAME=Plain").as_deref(),
            Some("Plain")
        );
        assert_eq!(
            parse_os_release_pretty_name(r#"PRETTY_NAME="A \"quoted\" name""#).as_deref(),
            Some(r#"A "quoted" name"#)
        );
        assert_eq!(parse_os_release_pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn architectures_have_go_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("s390x"), "s390x");
    }

    fn addr(interface: &str, up: bool, loopback: bool, ip: [u8; 4]) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.into(),
            up,
            loopback,
            address: Ipv4Addr::from(ip),
        }
    }

    #[test]
    fn node_ip_is_the_first_global_address_of_an_up_interface() {
        let addrs = [
            addr("lo", true, true, [127, 0, 0, 1]),
            addr("eth9", false, false, [10, 0, 0, 9]),
            addr("eth0", true, false, [169, 254, 1, 1]),
            addr("eth0", true, false, [10, 0, 0, 5]),
            addr("eth1", true, false, [192, 168, 1, 5]),
        ];
        assert_eq!(pick_node_ip(&addrs), Some("10.0.0.5".parse().expect("ip")));
        assert_eq!(pick_node_ip(&addrs[..3]), None);
    }
}
