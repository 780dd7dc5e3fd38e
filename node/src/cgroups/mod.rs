//! The kubelet's pod cgroup manager: the `kubepods` tree and one cgroup per
//! pod, with the pod's CPU, memory and pids limits, in whichever cgroup
//! mode the host runs.
//!
//! As in youki's libcgroups, [`CgroupManager`] is a trait with one
//! implementation per mode, chosen once at start-up ([`manager`]) from
//! `/proc/self/mountinfo` ([`mountinfo`]): [`v2::V2Manager`] on a unified
//! (cgroup v2) host, [`v1::V1Manager`] on legacy and hybrid hosts (hybrid
//! hosts are driven through v1, as kubelets do).
//!
//! The layout is the kubelet's cgroupfs driver's, under a configurable
//! root (`--cgroup-root`, `/` by default), in every hierarchy:
//!
//! ```text
//! <root>/kubepods/pod<uid>               Guaranteed pods
//! <root>/kubepods/burstable/pod<uid>     Burstable pods
//! <root>/kubepods/besteffort/pod<uid>    BestEffort pods
//! ```
//!
//! A pod's cgroup path relative to the mount ([`PodCgroup::cgroup_parent`],
//! e.g. `/kubepods/burstable/pod<uid>`) is what CRI's `RunPodSandbox`
//! takes as `cgroup_parent` for containerd's cgroupfs driver; runc then
//! makes the container cgroups below it.
//!
//! The module owns the directories it makes under the root and nothing
//! else: it never touches the host's mounts or other cgroups, and kills
//! only processes inside a pod cgroup it is asked to remove. What the
//! values are is decided by the pure [`resources`] (QoS class and
//! `ResourceConfigForPod`) and [`quantity`] (Kubernetes quantities).

pub mod mountinfo;
pub mod quantity;
pub mod resources;
pub mod v1;
pub mod v2;

mod fs;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::PathBuf,
    time::Duration,
};

use thiserror::Error;

pub use mountinfo::{CgroupLayout, CgroupMode};
pub use resources::{PodResources, QosClass, ResourceOptions, pod_resources};

/// The top of the pod tree below the root.
pub const KUBEPODS: &str = "kubepods";
/// Prefix of a pod cgroup's directory name.
pub const POD_PREFIX: &str = "pod";

/// How long [`CgroupManager::remove_pod`] keeps killing before it gives up.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures of the cgroup manager.
#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("/proc/self/mountinfo line {line}: {reason}")]
    Mountinfo { line: usize, reason: String },
    #[error("no cgroup file system is mounted")]
    NoCgroupFs,
    #[error("the {mode} cgroup hierarchy lacks the {} controller(s) the kubelet needs", missing.join(", "))]
    MissingControllers {
        mode: CgroupMode,
        missing: Vec<String>,
    },
    #[error("invalid cgroup root {0:?}: want an absolute path of plain names (like /keelson)")]
    InvalidRoot(String),
    #[error("invalid pod uid {0:?}: want letters, digits, '-' and '_' only")]
    InvalidUid(String),
    #[error("no cgroup for pod {0}")]
    PodNotFound(String),
    #[error("pod {uid}'s cgroup still holds processes {pids:?}")]
    ProcessesRemain { uid: String, pids: Vec<u32> },
    #[error("unexpected content in {}: {content:?}", path.display())]
    Parse { path: PathBuf, content: String },
}

/// A pod's cgroup as the manager found or made it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodCgroup {
    pub uid: String,
    pub qos: QosClass,
    /// The path relative to the cgroup mount(s), root included
    /// (`/kubepods/burstable/pod<uid>`): CRI's `cgroup_parent`.
    pub cgroup_parent: String,
}

/// What [`CgroupManager::remove_pod`] does with processes still inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnProcesses {
    /// Refuse ([`CgroupError::ProcessesRemain`]) and remove nothing.
    Fail,
    /// SIGKILL them (and whatever they fork) until the tree is empty.
    Kill,
}

/// Memory-pressure counters of a pod cgroup, for reporting `OOMKilled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomEvents {
    /// Processes the kernel OOM killer killed inside the pod (its whole
    /// subtree): v2 `memory.events` `oom_kill`; v1 the sum of
    /// `memory.oom_control` `oom_kill` over the pod and its children.
    pub oom_kills: u64,
    /// Times the limit was hit: v2 `memory.events` `max`; v1
    /// `memory.failcnt`.
    pub limit_hits: u64,
    /// v1 `memory.oom_control` `under_oom` (none on v2).
    pub under_oom: Option<bool>,
}

/// CPU accounting of a pod cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// CPU time used (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`).
    pub usage: Duration,
    /// CFS periods with the quota active, and those that ran out of it.
    pub periods: u64,
    pub throttled_periods: u64,
    /// Time spent throttled.
    pub throttled: Duration,
}

/// One implementation per cgroup mode. Methods take the pod's uid; the
/// manager finds its cgroup on disk, so an agent that restarts needs no
/// state of its own ([`CgroupManager::pods`] lists what exists).
pub trait CgroupManager: Send + Sync + fmt::Debug {
    /// The host mode this manager drives.
    fn mode(&self) -> CgroupMode;

    /// The root below the mount(s) (`""` for `/`, else `/name…`).
    fn root(&self) -> &str;

    /// The directories of a path relative to the mount (as in
    /// [`PodCgroup::cgroup_parent`]), one per hierarchy this manager keeps.
    fn dirs(&self, relative: &str) -> Vec<PathBuf>;

    /// Makes `<root>/kubepods`, `…/burstable` and `…/besteffort` (2 CPU
    /// shares, like the kubelet), enabling what the mode needs.
    fn ensure_qos_tree(&self) -> Result<(), CgroupError>;

    /// Makes every directory of `relative` (top-down, in every hierarchy
    /// this manager keeps), with what the mode needs in each (inherited
    /// cpusets on v1, enabled controllers on v2).
    fn ensure_path(&self, relative: &str) -> Result<(), CgroupError>;

    /// Writes the complete desired values of one cgroup.
    fn apply(&self, relative: &str, resources: &PodResources) -> Result<(), CgroupError>;

    /// Makes (or keeps) the pod's cgroup and writes `resources` to it.
    #[tracing::instrument(skip(self, resources), fields(root = self.root()))]
    fn ensure_pod(
        &self,
        uid: &str,
        qos: QosClass,
        resources: &PodResources,
    ) -> Result<PodCgroup, CgroupError> {
        validate_uid(uid)?;
        let relative = pod_path(self.root(), qos, uid);
        self.ensure_path(&relative)?;
        self.apply(&relative, resources)?;
        tracing::debug!(cgroup = relative, ?resources, "pod cgroup ready");
        Ok(PodCgroup {
            uid: uid.to_owned(),
            qos,
            cgroup_parent: relative,
        })
    }

    /// Writes new values to an existing pod cgroup.
    #[tracing::instrument(skip(self, resources), fields(root = self.root()))]
    fn update_pod(&self, uid: &str, resources: &PodResources) -> Result<(), CgroupError> {
        let pod = self.existing_pod(uid)?;
        self.apply(&pod.cgroup_parent, resources)
    }

    /// The pod's cgroup; `PodNotFound` when it exists in no hierarchy.
    fn existing_pod(&self, uid: &str) -> Result<PodCgroup, CgroupError> {
        self.find_pod(uid)?
            .ok_or_else(|| CgroupError::PodNotFound(uid.to_owned()))
    }

    /// Writes values to a QoS level: `kubepods` itself for
    /// [`QosClass::Guaranteed`] (the node allocatable), else the
    /// `burstable` / `besteffort` directory.
    fn update_qos(&self, qos: QosClass, resources: &PodResources) -> Result<(), CgroupError>;

    /// Moves a process into the pod cgroup (every hierarchy).
    fn add_process(&self, uid: &str, pid: u32) -> Result<(), CgroupError>;

    /// The pod's memory-pressure counters.
    fn oom_events(&self, uid: &str) -> Result<OomEvents, CgroupError>;

    /// The pod's CPU accounting.
    fn cpu_stats(&self, uid: &str) -> Result<CpuStats, CgroupError>;

    /// Kills every process in the pod cgroup and the cgroups below it until
    /// none is left (part of [`CgroupManager::remove_pod`]). v2 first uses
    /// `cgroup.kill`.
    fn kill_pod_processes(&self, pod: &PodCgroup) -> Result<(), CgroupError> {
        fs::kill_until_empty(&pod.uid, &self.dirs(&pod.cgroup_parent), KILL_TIMEOUT)
    }

    /// The pod's cgroup, if it exists in any hierarchy.
    fn find_pod(&self, uid: &str) -> Result<Option<PodCgroup>, CgroupError> {
        validate_uid(uid)?;
        for qos in [
            QosClass::Guaranteed,
            QosClass::Burstable,
            QosClass::BestEffort,
        ] {
            let relative = pod_path(self.root(), qos, uid);
            if self.dirs(&relative).iter().any(|d| d.is_dir()) {
                return Ok(Some(PodCgroup {
                    uid: uid.to_owned(),
                    qos,
                    cgroup_parent: relative,
                }));
            }
        }
        Ok(None)
    }

    /// Every pod cgroup under the root, in any hierarchy (for cleaning up
    /// orphans after a crash), sorted by uid.
    fn pods(&self) -> Result<Vec<PodCgroup>, CgroupError> {
        let mut found = BTreeSet::new();
        for qos in [
            QosClass::Guaranteed,
            QosClass::Burstable,
            QosClass::BestEffort,
        ] {
            let level = qos_path(self.root(), qos);
            for dir in self.dirs(&level) {
                for uid in fs::pod_uids(&dir)? {
                    found.insert((uid, qos));
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|(uid, qos)| PodCgroup {
                cgroup_parent: pod_path(self.root(), qos, &uid),
                uid,
                qos,
            })
            .collect())
    }

    /// The processes in the pod cgroup and the cgroups below it.
    fn pod_processes(&self, uid: &str) -> Result<Vec<u32>, CgroupError> {
        let pod = self
            .find_pod(uid)?
            .ok_or_else(|| CgroupError::PodNotFound(uid.to_owned()))?;
        fs::subtree_procs(&self.dirs(&pod.cgroup_parent))
    }

    /// Removes the pod cgroup (and any container cgroups below it) from
    /// every hierarchy. Nothing to remove is not an error.
    fn remove_pod(&self, uid: &str, on_processes: OnProcesses) -> Result<(), CgroupError> {
        let Some(pod) = self.find_pod(uid)? else {
            return Ok(());
        };
        let dirs = self.dirs(&pod.cgroup_parent);
        let pids = fs::subtree_procs(&dirs)?;
        if !pids.is_empty() {
            match on_processes {
                OnProcesses::Fail => {
                    return Err(CgroupError::ProcessesRemain {
                        uid: uid.to_owned(),
                        pids,
                    });
                }
                OnProcesses::Kill => {
                    tracing::info!(uid, ?pids, "killing the processes left in the pod cgroup");
                    self.kill_pod_processes(&pod)?;
                }
            }
        }
        for dir in &dirs {
            fs::remove_subtree(dir, KILL_TIMEOUT)?;
        }
        tracing::debug!(uid, cgroup = pod.cgroup_parent, "removed the pod cgroup");
        Ok(())
    }
}

/// Detects the host's mode and makes its manager for `root`
/// (`--cgroup-root`).
pub fn manager(root: &str) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let layout = CgroupLayout::detect()?;
    manager_for(&layout, root)
}

/// The manager for a known layout.
pub fn manager_for(
    layout: &CgroupLayout,
    root: &str,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let manager: Box<dyn CgroupManager> = match layout.mode {
        CgroupMode::Unified => {
            let mount = layout.unified.as_ref().ok_or(CgroupError::NoCgroupFs)?;
            Box::new(v2::V2Manager::new(mount.mount_point.clone(), root)?)
        }
        CgroupMode::Hybrid | CgroupMode::Legacy => Box::new(v1::V1Manager::new(layout, root)?),
    };
    tracing::info!(mode = %manager.mode(), root, "cgroup manager");
    Ok(manager)
}

/// Normalises a cgroup root: `/` → `""`, `/a/b/` → `/a/b`; refuses
/// relative paths, `.`/`..` and empty components.
pub fn normalize_root(root: &str) -> Result<String, CgroupError> {
    let invalid = || CgroupError::InvalidRoot(root.to_owned());
    if root == "/" {
        return Ok(String::new());
    }
    let rest = root.strip_prefix('/').ok_or_else(invalid)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut out = String::new();
    for component in rest.split('/') {
        if component.is_empty() || component == "." || component == ".." || component.contains('\0')
        {
            return Err(invalid());
        }
        out.push('/');
        out.push_str(component);
    }
    Ok(out)
}

/// Pod uids become directory names: only UUID-like characters pass.
pub fn validate_uid(uid: &str) -> Result<(), CgroupError> {
    let ok = !uid.is_empty()
        && uid.len() <= 128
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidUid(uid.to_owned()))
    }
}

/// The QoS level's path relative to the mount: `<root>/kubepods`
/// (Guaranteed), `<root>/kubepods/burstable`, `<root>/kubepods/besteffort`.
pub fn qos_path(root: &str, qos: QosClass) -> String {
    match qos {
        QosClass::Guaranteed => format!("{root}/{KUBEPODS}"),
        QosClass::Burstable => format!("{root}/{KUBEPODS}/burstable"),
        QosClass::BestEffort => format!("{root}/{KUBEPODS}/besteffort"),
    }
}

/// A pod cgroup's path relative to the mount.
pub fn pod_path(root: &str, qos: QosClass, uid: &str) -> String {
    format!("{}/{POD_PREFIX}{uid}", qos_path(root, qos))
}

/// Every prefix of a relative path, shortest first: `/a/b` → `/a`, `/a/b`.
pub(crate) fn prefixes(relative: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for component in relative.split('/').filter(|c| !c.is_empty()) {
        current.push('/');
        current.push_str(component);
        out.push(current.clone());
    }
    out
}

/// Parses `key value` lines (`cpu.stat`, `memory.events`,
/// `memory.oom_control`); lines that are not a name and a number are
/// skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let key = fields.next()?;
            let value = fields.next()?.parse().ok()?;
            fields.next().is_none().then_some((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_normalised() {
        assert_eq!(normalize_root("/").unwrap(), "");
        assert_eq!(normalize_root("/keelson").unwrap(), "/keelson");
        assert_eq!(normalize_root("/a/b/").unwrap(), "/a/b");
        for bad in ["", "keelson", "/a//b", "/a/../b", "/./a", "//"] {
            assert!(
                matches!(normalize_root(bad), Err(CgroupError::InvalidRoot(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn uids_are_checked() {
        validate_uid("8f9a2b6c-1d2e-4f3a-9b8c-7d6e5f4a3b2c").unwrap();
        validate_uid("static_0123abcd").unwrap();
        for bad in ["", "../x", "a/b", "a b", "pod\n", &"x".repeat(129)] {
            assert!(
                matches!(validate_uid(bad), Err(CgroupError::InvalidUid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tree_paths_are_the_kubelets() {
        assert_eq!(qos_path("", QosClass::Guaranteed), "/kubepods");
        assert_eq!(
            pod_path("", QosClass::Burstable, "u1"),
            "/kubepods/burstable/podu1"
        );
        assert_eq!(
            pod_path("/keelson-test-1", QosClass::BestEffort, "u2"),
            "/keelson-test-1/kubepods/besteffort/podu2"
        );
        assert_eq!(
            pod_path("/r", QosClass::Guaranteed, "u3"),
            "/r/kubepods/podu3"
        );
        assert_eq!(prefixes("/a/b/c"), ["/a", "/a/b", "/a/b/c"]);
        assert!(prefixes("").is_empty());
    }

    #[test]
    fn flat_keyed_files() {
        let v2_events = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n";
        let m = parse_flat_keyed(v2_events);
        assert_eq!(m["oom_kill"], 1);
        assert_eq!(m["max"], 17);
        let v1_oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_flat_keyed(v1_oom)["oom_kill"], 3);
        let cpu_stat =
            "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\nnr_bursts 0\nburst_time 0\n";
        let m = parse_flat_keyed(cpu_stat);
        assert_eq!(m["nr_throttled"], 4);
        assert_eq!(m["throttled_time"], 123_456);
        assert!(parse_flat_keyed("garbage\nx y\na 1 2\n").is_empty());
    }
}
