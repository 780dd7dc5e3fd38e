//! Mode detection: on this host against the kernel's own answer (how runc,
//! and so kubelets, decide: the file-system type of `/sys/fs/cgroup` and
//! `/sys/fs/cgroup/unified`), and on sample mountinfos of each mode.

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use keelson_e2e::cgroup_root::CgroupRoot;
use keelson_node::cgroups::{
    self, CgroupError, CgroupLayout, CgroupMode, mountinfo::parse_mountinfo, v2::V2Manager,
};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

/// runc's `IsCgroup2UnifiedMode` / `IsCgroup2HybridMode`.
fn statfs_mode() -> Result<CgroupMode> {
    let is_cgroup2 =
        |p: &str| statfs(Path::new(p)).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    Ok(if is_cgroup2("/sys/fs/cgroup") {
        CgroupMode::Unified
    } else if is_cgroup2("/sys/fs/cgroup/unified") {
        CgroupMode::Hybrid
    } else {
        CgroupMode::Legacy
    })
}

#[test]
fn this_host_is_detected_as_the_kernel_says() -> Result<()> {
    let layout = CgroupLayout::detect()?;
    let kernel = statfs_mode()?;
    eprintln!("this host: {} (statfs says {kernel})", layout.mode);
    ensure!(layout.mode == kernel, "{} vs {kernel}", layout.mode);
    if layout.mode == CgroupMode::Hybrid {
        // This machine kind: v1 owns cpu, memory and pids, v2 only hugetlb.
        let unified = layout.unified.as_ref().map(|u| u.mount_point.clone());
        ensure!(unified == Some(PathBuf::from("/sys/fs/cgroup/unified")));
        for c in ["cpu", "cpuacct", "memory", "pids"] {
            ensure!(layout.v1_hierarchy(c).is_some(), "no v1 {c}");
        }
        let root = CgroupRoot::new()?;
        ensure!(cgroups::manager(root.name())?.mode() == CgroupMode::Hybrid);
        // The v2 tree lacks what a v2 manager needs, and says so.
        let offered = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")?;
        if !offered.split_whitespace().any(|c| c == "memory") {
            let err =
                V2Manager::new(PathBuf::from("/sys/fs/cgroup/unified"), root.name()).unwrap_err();
            ensure!(
                matches!(&err, CgroupError::MissingControllers { missing, .. }
                    if missing.iter().any(|m| m == "memory")),
                "{err}"
            );
        }
    }
    Ok(())
}

#[test]
fn sample_mountinfos_of_each_mode() -> Result<()> {
    let unified = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    let hybrid = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    let legacy = "\
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
27 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
28 24 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
29 24 0:25 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
";
    let mode = |text: &str| -> Result<CgroupLayout> {
        Ok(CgroupLayout::from_mounts(&parse_mountinfo(text)?)?)
    };
    let u = mode(unified)?;
    ensure!(u.mode == CgroupMode::Unified && u.v1.is_empty());
    let h = mode(hybrid)?;
    ensure!(h.mode == CgroupMode::Hybrid);
    ensure!(
        h.v1_hierarchy("memory").map(|m| m.mount_point.clone())
            == Some(PathBuf::from("/sys/fs/cgroup/memory"))
    );
    let l = mode(legacy)?;
    ensure!(l.mode == CgroupMode::Legacy && l.unified.is_none());
    ensure!(l.v1_hierarchy("cpuacct").map(|m| m.label()) == Some("cpu,cpuacct".into()));
    // A manager for each layout is the right kind (v2 needs a real tree,
    // so only the v1 ones are built here).
    for layout in [&h, &l] {
        let m = cgroups::manager_for(layout, "/keelson-sample")?;
        ensure!(m.mode() == layout.mode);
        ensure!(
            m.dirs("/x")
                .iter()
                .any(|d| d == Path::new("/sys/fs/cgroup/memory/x"))
        );
    }
    Ok(())
}
