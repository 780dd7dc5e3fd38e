//! The host's cgroup layout from `/proc/self/mountinfo`: which mode
//! (pure v2, hybrid, legacy v1) and where each hierarchy is mounted.
//!
//! Parsing and classification are pure functions of the file's text
//! ([`parse_mountinfo`], [`CgroupLayout::from_mounts`]); only
//! [`CgroupLayout::detect`] reads the file. The rules follow what kubelets
//! (through runc's libcontainer) decide: a cgroup2 file system at
//! `/sys/fs/cgroup` is the unified mode; v1 controller hierarchies next to
//! a cgroup2 mount (conventionally `/sys/fs/cgroup/unified`) are hybrid,
//! and hybrid hosts are managed through v1; v1 hierarchies alone are
//! legacy. A cgroup2 mount elsewhere with no v1 controllers (a container
//! that mounts it at an odd place) counts as unified too.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// Where the kernel says this process's mounts are.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The controllers a v1 hierarchy can carry (the kernel's cgroup_subsys
/// list); anything else in a v1 mount's super options is an option.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "debug",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// One line of mountinfo (the fields this module needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the mounted file system that is the mount's root
    /// (`/` unless a subtree was bind-mounted or a cgroup namespace hides
    /// the rest).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Per-superblock options: for cgroup v1 the hierarchy's controllers
    /// (`rw,cpu,cpuacct`) and name (`name=systemd`).
    pub super_options: String,
}

/// Parses mountinfo text (`proc(5)`): `id parent major:minor root
/// mount-point options [optional…] - fstype source super-options`, with
/// octal escapes (`\040`) in paths.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, CgroupError> {
    let mut mounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| CgroupError::Mountinfo {
            line: index + 1,
            reason: reason.to_owned(),
        };
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 10 {
            return Err(bad("fewer than 10 fields"));
        }
        let separator = fields
            .iter()
            .skip(6)
            .position(|f| *f == "-")
            .map(|p| p + 6)
            .ok_or_else(|| bad("no \"-\" separator"))?;
        let tail = &fields[separator + 1..];
        if tail.len() < 3 {
            return Err(bad("fewer than 3 fields after \"-\""));
        }
        mounts.push(Mount {
            root: unescape(fields[3]),
            mount_point: PathBuf::from(unescape(fields[4])),
            fs_type: tail[0].to_owned(),
            super_options: tail[2].to_owned(),
        });
    }
    Ok(mounts)
}

/// Undoes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(octal) = bytes.get(i + 1..i + 4)
            && octal.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let value = octal
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mode of a host, as kubelets name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupMode {
    /// cgroup v2 only (`/sys/fs/cgroup` is cgroup2).
    Unified,
    /// v1 controller hierarchies plus a cgroup2 tree (usually at
    /// `/sys/fs/cgroup/unified`, holding whatever controllers v1 left).
    Hybrid,
    /// v1 hierarchies only.
    Legacy,
}

impl CgroupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupMode::Unified => "unified (cgroup v2)",
            CgroupMode::Hybrid => "hybrid (cgroup v1 with a v2 tree)",
            CgroupMode::Legacy => "legacy (cgroup v1)",
        }
    }
}

impl std::fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Its controllers (`["cpu", "cpuacct"]`), empty for a named
    /// hierarchy without controllers (`name=systemd`).
    pub controllers: Vec<String>,
    /// `name=` of a named hierarchy.
    pub name: Option<String>,
    pub mount_point: PathBuf,
    /// The hierarchy directory mounted there (see [`Mount::root`]).
    pub root: String,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// How `/proc/<pid>/cgroup` names this hierarchy
    /// (`cpu,cpuacct`, `name=systemd`).
    pub fn label(&self) -> String {
        let mut parts = self.controllers.clone();
        if let Some(name) = &self.name {
            parts.push(format!("name={name}"));
        }
        parts.join(",")
    }
}

/// The cgroup v2 tree's mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedMount {
    pub mount_point: PathBuf,
    pub root: String,
}

/// Every cgroup hierarchy of the host and the resulting mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    pub mode: CgroupMode,
    /// The cgroup2 mount, if any (the whole story in unified mode).
    pub unified: Option<UnifiedMount>,
    /// v1 hierarchies, one per distinct set of controllers/name, in
    /// mountinfo order; empty in unified mode.
    pub v1: Vec<V1Hierarchy>,
}

impl CgroupLayout {
    /// Reads and classifies `/proc/self/mountinfo`.
    pub fn detect() -> Result<Self, CgroupError> {
        let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::Io {
            path: PathBuf::from(MOUNTINFO),
            op: "reading",
            source,
        })?;
        Self::from_mounts(&parse_mountinfo(&text)?)
    }

    /// Classifies parsed mounts.
    pub fn from_mounts(mounts: &[Mount]) -> Result<Self, CgroupError> {
        // A later mount on the same point hides an earlier one.
        let visible = |m: &Mount| {
            !mounts
                .iter()
                .rev()
                .take_while(|later| !std::ptr::eq(*later, m))
                .any(|later| later.mount_point == m.mount_point)
        };
        let cgroup2: Vec<&Mount> = mounts
            .iter()
            .filter(|m| m.fs_type == "cgroup2" && visible(m))
            .collect();
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        for m in mounts
            .iter()
            .filter(|m| m.fs_type == "cgroup" && visible(m))
        {
            let mut controllers = Vec::new();
            let mut name = None;
            for option in m.super_options.split(',') {
                if let Some(n) = option.strip_prefix("name=") {
                    name = Some(n.to_owned());
                } else if V1_CONTROLLERS.contains(&option) {
                    controllers.push(option.to_owned());
                }
            }
            if controllers.is_empty() && name.is_none() {
                continue;
            }
            controllers.sort();
            let same = |h: &V1Hierarchy| h.controllers == controllers && h.name == name;
            match v1.iter_mut().find(|h| same(h)) {
                // The same hierarchy mounted twice: prefer its whole tree.
                Some(existing) => {
                    if existing.root != "/" && m.root == "/" {
                        existing.mount_point = m.mount_point.clone();
                        existing.root = m.root.clone();
                    }
                }
                None => v1.push(V1Hierarchy {
                    controllers,
                    name,
                    mount_point: m.mount_point.clone(),
                    root: m.root.clone(),
                }),
            }
        }
        let pick = |path: &str| cgroup2.iter().find(|m| m.mount_point == Path::new(path));
        let unified_at_root = pick("/sys/fs/cgroup");
        let unified = unified_at_root
            .or_else(|| pick("/sys/fs/cgroup/unified"))
            .or_else(|| cgroup2.first())
            .map(|m| UnifiedMount {
                mount_point: m.mount_point.clone(),
                root: m.root.clone(),
            });
        let has_v1_controllers = v1.iter().any(|h| !h.controllers.is_empty());
        let mode = if unified_at_root.is_some() || (!has_v1_controllers && unified.is_some()) {
            CgroupMode::Unified
        } else if has_v1_controllers && unified.is_some() {
            CgroupMode::Hybrid
        } else if has_v1_controllers {
            CgroupMode::Legacy
        } else {
            return Err(CgroupError::NoCgroupFs);
        };
        if mode == CgroupMode::Unified {
            v1.clear();
        }
        Ok(CgroupLayout { mode, unified, v1 })
    }

    /// The v1 hierarchy carrying `controller`.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine kind's layout (Debian 12 with a hybrid boot).
    pub(crate) const HYBRID: &str = "\
22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd host with `systemd.unified_cgroup_hierarchy=1`.
    const UNIFIED: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 25 0:6 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:9 - bpf bpf rw,mode=700
";

    /// A legacy host (CentOS 7 style: co-mounted cpu,cpuacct and
    /// net_cls,net_prio, the systemd named hierarchy, no cgroup2).
    const LEGACY: &str = "\
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
27 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
28 24 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
29 24 0:25 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
30 24 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_cls,net_prio
31 24 0:27 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset,clone_children
";

    fn layout(text: &str) -> CgroupLayout {
        CgroupLayout::from_mounts(&parse_mountinfo(text).unwrap()).unwrap()
    }

    #[test]
    fn parses_fields_and_escapes() {
        let mounts = parse_mountinfo(
            "36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
             37 35 0:40 / /x rw - tmpfs none rw\n",
        )
        .unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].root, "/mnt1");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt 2"));
        assert_eq!(mounts[0].fs_type, "ext3");
        assert_eq!(mounts[0].super_options, "rw,errors=continue");
        assert_eq!(mounts[1].fs_type, "tmpfs");
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line() {
        let err =
            parse_mountinfo("31 23 0:28 / /sys/fs/cgroup rw,relatime tmpfs tmpfs rw,mode=755\n")
                .unwrap_err();
        assert!(
            matches!(err, CgroupError::Mountinfo { line: 1, .. }),
            "{err}"
        );
        let err = parse_mountinfo(&format!("{HYBRID}garbage\n")).unwrap_err();
        assert!(
            matches!(err, CgroupError::Mountinfo { line: 13, .. }),
            "{err}"
        );
        let err = parse_mountinfo("1 2 3 4 5 6 7 8 - x\n").unwrap_err();
        assert!(matches!(err, CgroupError::Mountinfo { line: 1, .. }));
    }

    #[test]
    fn hybrid_host() {
        let l = layout(HYBRID);
        assert_eq!(l.mode, CgroupMode::Hybrid);
        assert_eq!(
            l.unified.as_ref().map(|u| u.mount_point.clone()),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let cpu = l.v1_hierarchy("cpu").unwrap();
        assert_eq!(cpu.controllers, ["cpu"]);
        assert_eq!(cpu.mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(
            l.v1_hierarchy("cpuacct").unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            l.v1_hierarchy("memory").unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert!(l.v1_hierarchy("pids").is_some());
        assert!(l.v1_hierarchy("hugetlb").is_none(), "hugetlb is on v2 here");
        let systemd = l.v1.iter().find(|h| h.name.is_some()).unwrap();
        assert_eq!(systemd.label(), "name=systemd");
        assert!(systemd.controllers.is_empty());
        assert_eq!(l.v1.len(), 9);
    }

    #[test]
    fn unified_host() {
        let l = layout(UNIFIED);
        assert_eq!(l.mode, CgroupMode::Unified);
        assert_eq!(
            l.unified.unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup")
        );
        assert!(l.v1.is_empty());
    }

    #[test]
    fn legacy_host() {
        let l = layout(LEGACY);
        assert_eq!(l.mode, CgroupMode::Legacy);
        assert!(l.unified.is_none());
        let cpu = l.v1_hierarchy("cpu").unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.label(), "cpu,cpuacct");
        assert_eq!(cpu.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(l.v1_hierarchy("cpuacct"), Some(cpu));
        assert_eq!(
            l.v1_hierarchy("net_prio").unwrap().controllers,
            ["net_cls", "net_prio"]
        );
        // Options are not controllers.
        let cpuset = l.v1_hierarchy("cpuset").unwrap();
        assert_eq!(cpuset.controllers, ["cpuset"]);
        let systemd = l.v1.iter().find(|h| h.name.is_some()).unwrap();
        assert!(systemd.controllers.is_empty());
    }

    #[test]
    fn odd_layouts() {
        // cgroup2 at an odd place, no v1 controllers: unified there.
        let l = layout("1 0 0:1 / /run/cg2 rw - cgroup2 none rw\n");
        assert_eq!(l.mode, CgroupMode::Unified);
        assert_eq!(l.unified.unwrap().mount_point, PathBuf::from("/run/cg2"));
        // A v2 host that keeps a named v1 hierarchy for old tools: unified.
        let l = layout(&format!(
            "{UNIFIED}40 26 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        ));
        assert_eq!(l.mode, CgroupMode::Unified);
        assert!(l.v1.is_empty());
        // A hierarchy mounted twice (a bind of a subtree first) keeps the
        // whole-tree mount.
        let l = layout(
            "1 0 0:5 /kubepods /var/lib/x rw - cgroup cgroup rw,memory\n\
             2 0 0:5 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        assert_eq!(l.mode, CgroupMode::Legacy);
        assert_eq!(l.v1.len(), 1);
        assert_eq!(l.v1[0].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(l.v1[0].root, "/");
        // A mount hidden by a later mount on the same point is not used.
        let l = layout(
            "1 0 0:5 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
             2 0 0:6 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
             3 2 0:7 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        assert_eq!(l.mode, CgroupMode::Legacy);
        // No cgroup file system at all.
        let err = CgroupLayout::from_mounts(
            &parse_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw\n").unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, CgroupError::NoCgroupFs));
    }
}
