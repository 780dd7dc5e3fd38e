//! The cgroup v1 manager, for legacy and hybrid hosts.
//!
//! v1 has one hierarchy per controller group (`cpu`, `cpuacct` or a
//! co-mounted `cpu,cpuacct`, `memory`, `pids`, …), each with its own copy
//! of the tree. Like runc's cgroupfs driver (which containerd uses below
//! the pod), the pod's directory is made in every v1 hierarchy the host
//! mounts, named ones (`name=systemd`) included, and on a hybrid host in
//! the cgroup v2 tree as well, which there only tracks processes. Values
//! go to:
//!
//! - `cpu`: `cpu.shares`, `cpu.cfs_period_us`, `cpu.cfs_quota_us` (−1 = no
//!   limit); `cpuacct`: `cpuacct.usage` (read);
//! - `memory`: `memory.limit_in_bytes` (−1 = no limit); `memory.oom_control`
//!   and `memory.failcnt` (read);
//! - `pids`: `pids.max`;
//! - `cpuset`: new directories inherit `cpuset.cpus` / `cpuset.mems` from
//!   their parent (the kernel leaves them empty, and an empty cpuset takes
//!   no processes).
//!
//! The `cpu`, `cpuacct` and `memory` controllers are required; `pids` only
//! when a pids limit is asked for.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    CgroupError, CgroupLayout, CgroupManager, CgroupMode, CpuStats, OomEvents, PodResources,
    QosClass, fs, normalize_root, parse_flat_keyed, prefixes, qos_path, resources::MIN_SHARES,
};

/// One hierarchy this manager keeps the tree in.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// As `/proc/<pid>/cgroup` names it (`cpu,cpuacct`; `""` for v2).
    label: String,
    mount_point: PathBuf,
    controllers: Vec<String>,
}

impl Hierarchy {
    fn dir(&self, relative: &str) -> PathBuf {
        self.mount_point.join(relative.trim_start_matches('/'))
    }

    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The v1 manager (see the module docs).
#[derive(Debug)]
pub struct V1Manager {
    mode: CgroupMode,
    root: String,
    hierarchies: Vec<Hierarchy>,
    cpu: usize,
    cpuacct: usize,
    memory: usize,
    pids: Option<usize>,
}

impl V1Manager {
    /// A manager over the v1 hierarchies of `layout` (plus its v2 tree on a
    /// hybrid host), for pods under `root`.
    pub fn new(layout: &CgroupLayout, root: &str) -> Result<Self, CgroupError> {
        let root = normalize_root(root)?;
        let mut hierarchies: Vec<Hierarchy> = layout
            .v1
            .iter()
            .map(|h| Hierarchy {
                label: h.label(),
                mount_point: h.mount_point.clone(),
                controllers: h.controllers.clone(),
            })
            .collect();
        if layout.mode == CgroupMode::Hybrid
            && let Some(unified) = &layout.unified
        {
            hierarchies.push(Hierarchy {
                label: String::new(),
                mount_point: unified.mount_point.clone(),
                controllers: Vec::new(),
            });
        }
        let find = |c: &str| hierarchies.iter().position(|h| h.has(c));
        let (cpu, cpuacct, memory) = (find("cpu"), find("cpuacct"), find("memory"));
        let missing: Vec<String> = [("cpu", cpu), ("cpuacct", cpuacct), ("memory", memory)]
            .into_iter()
            .filter(|(_, found)| found.is_none())
            .map(|(name, _)| name.to_owned())
            .collect();
        let (Some(cpu), Some(cpuacct), Some(memory)) = (cpu, cpuacct, memory) else {
            return Err(CgroupError::MissingControllers {
                mode: layout.mode,
                missing,
            });
        };
        let pids = find("pids");
        Ok(V1Manager {
            mode: layout.mode,
            root,
            cpu,
            cpuacct,
            memory,
            pids,
            hierarchies,
        })
    }

    /// `(label, directory)` of a relative path in each hierarchy, for
    /// matching `/proc/<pid>/cgroup`.
    pub fn labelled_dirs(&self, relative: &str) -> Vec<(String, PathBuf)> {
        self.hierarchies
            .iter()
            .map(|h| (h.label.clone(), h.dir(relative)))
            .collect()
    }

    fn cpu_dir(&self, relative: &str) -> PathBuf {
        self.hierarchies[self.cpu].dir(relative)
    }

    fn memory_dir(&self, relative: &str) -> PathBuf {
        self.hierarchies[self.memory].dir(relative)
    }
}

impl CgroupManager for V1Manager {
    fn mode(&self) -> CgroupMode {
        self.mode
    }

    fn root(&self) -> &str {
        &self.root
    }

    /// Makes every directory of `relative` in every hierarchy, top-down,
    /// giving new cpusets their parent's CPUs and memory nodes.
    fn ensure_path(&self, relative: &str) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let mut parent = h.mount_point.clone();
            for prefix in prefixes(relative) {
                let dir = h.dir(&prefix);
                fs::mkdir(&dir)?;
                if h.has("cpuset") {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        if fs::read(&dir.join(file))?.trim().is_empty() {
                            let inherited = fs::read(&parent.join(file))?;
                            fs::write(&dir.join(file), inherited.trim())?;
                        }
                    }
                }
                parent = dir;
            }
        }
        Ok(())
    }

    /// Writes the complete desired values of one cgroup.
    fn apply(&self, relative: &str, res: &PodResources) -> Result<(), CgroupError> {
        if self.pids.is_none() && res.pids_limit.is_some() {
            return Err(CgroupError::MissingControllers {
                mode: self.mode,
                missing: vec!["pids".to_owned()],
            });
        }
        let cpu = self.cpu_dir(relative);
        fs::write(&cpu.join("cpu.shares"), &res.cpu_shares.to_string())?;
        fs::write(
            &cpu.join("cpu.cfs_period_us"),
            &res.cpu_period_us.to_string(),
        )?;
        let quota = res
            .cpu_quota_us
            .map_or_else(|| "-1".to_owned(), |q| q.to_string());
        fs::write(&cpu.join("cpu.cfs_quota_us"), &quota)?;
        let limit = res
            .memory_limit_bytes
            .map_or_else(|| "-1".to_owned(), |b| b.to_string());
        fs::write(
            &self.memory_dir(relative).join("memory.limit_in_bytes"),
            &limit,
        )?;
        if let Some(pids) = self.pids {
            let value = res
                .pids_limit
                .map_or_else(|| "max".to_owned(), |n| n.to_string());
            fs::write(
                &self.hierarchies[pids].dir(relative).join("pids.max"),
                &value,
            )?;
        }
        Ok(())
    }

    fn dirs(&self, relative: &str) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.dir(relative)).collect()
    }

    #[tracing::instrument(skip(self), fields(root = self.root))]
    fn ensure_qos_tree(&self) -> Result<(), CgroupError> {
        for qos in [QosClass::Burstable, QosClass::BestEffort] {
            self.ensure_path(&qos_path(&self.root, qos))?;
        }
        let best_effort = self.cpu_dir(&qos_path(&self.root, QosClass::BestEffort));
        fs::write(&best_effort.join("cpu.shares"), &MIN_SHARES.to_string())
    }

    fn update_qos(&self, qos: QosClass, resources: &PodResources) -> Result<(), CgroupError> {
        let relative = qos_path(&self.root, qos);
        self.ensure_path(&relative)?;
        self.apply(&relative, resources)
    }

    fn add_process(&self, uid: &str, pid: u32) -> Result<(), CgroupError> {
        let pod = self.existing_pod(uid)?;
        for dir in self.dirs(&pod.cgroup_parent) {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn oom_events(&self, uid: &str) -> Result<OomEvents, CgroupError> {
        let pod = self.existing_pod(uid)?;
        let dir = self.memory_dir(&pod.cgroup_parent);
        // v1 counts a kill only in the cgroup of the killed process, so the
        // pod's count is the sum over its container cgroups.
        let mut oom_kills = 0;
        for cgroup in fs::subtree(&dir)? {
            oom_kills += oom_control(&cgroup)?.1;
        }
        let (under_oom, _) = oom_control(&dir)?;
        Ok(OomEvents {
            oom_kills,
            limit_hits: fs::read_u64(&dir.join("memory.failcnt"))?,
            under_oom: Some(under_oom),
        })
    }

    fn cpu_stats(&self, uid: &str) -> Result<CpuStats, CgroupError> {
        let pod = self.existing_pod(uid)?;
        let usage_ns = fs::read_u64(
            &self.hierarchies[self.cpuacct]
                .dir(&pod.cgroup_parent)
                .join("cpuacct.usage"),
        )?;
        let stat_path = self.cpu_dir(&pod.cgroup_parent).join("cpu.stat");
        let text = fs::read(&stat_path)?;
        let stat = parse_flat_keyed(&text);
        let field = |k: &str| stat.get(k).copied().unwrap_or(0);
        Ok(CpuStats {
            usage: Duration::from_nanos(usage_ns),
            periods: field("nr_periods"),
            throttled_periods: field("nr_throttled"),
            throttled: Duration::from_nanos(field("throttled_time")),
        })
    }
}

/// `(under_oom, oom_kill)` of one memory cgroup's `memory.oom_control`.
fn oom_control(dir: &Path) -> Result<(bool, u64), CgroupError> {
    let path = dir.join("memory.oom_control");
    let text = fs::read(&path)?;
    parse_oom_control(&text).ok_or(CgroupError::Parse {
        path,
        content: text,
    })
}

/// `memory.oom_control`: `under_oom` and `oom_kill` (the latter since
/// Linux 4.13; counted as 0 before).
fn parse_oom_control(text: &str) -> Option<(bool, u64)> {
    let fields = parse_flat_keyed(text);
    let under_oom = *fields.get("under_oom")? != 0;
    Some((under_oom, fields.get("oom_kill").copied().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::mountinfo::{CgroupLayout, parse_mountinfo};

    #[test]
    fn oom_control_is_parsed() {
        assert_eq!(
            parse_oom_control("oom_kill_disable 0\nunder_oom 1\noom_kill 2\n"),
            Some((true, 2))
        );
        assert_eq!(
            parse_oom_control("oom_kill_disable 0\nunder_oom 0\n"),
            Some((false, 0))
        );
        assert_eq!(parse_oom_control("nonsense"), None);
    }

    #[test]
    fn needs_cpu_cpuacct_and_memory() {
        let layout = CgroupLayout::from_mounts(
            &parse_mountinfo("1 0 0:5 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
                .unwrap(),
        )
        .unwrap();
        let err = V1Manager::new(&layout, "/").unwrap_err();
        match err {
            CgroupError::MissingControllers { missing, .. } => {
                assert_eq!(missing, ["cpu", "cpuacct"]);
            }
            other => panic!("{other}"),
        }
    }

    /// A fake v1 layout in a temporary directory: plain directories and
    /// files stand in for cgroupfs, so the writes can be checked without
    /// root (the real kernel is the integration tests' job).
    fn fake(tmp: &Path) -> V1Manager {
        let mut text = String::new();
        for (i, (dir, fstype, options)) in [
            ("cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
            ("memory", "cgroup", "rw,memory"),
            ("systemd", "cgroup", "rw,name=systemd"),
            ("unified", "cgroup2", "rw"),
        ]
        .into_iter()
        .enumerate()
        {
            std::fs::create_dir_all(tmp.join(dir)).unwrap();
            text.push_str(&format!(
                "{i} 0 0:{i} / {} rw - {fstype} cgroup {options}\n",
                tmp.join(dir).display()
            ));
        }
        let layout = CgroupLayout::from_mounts(&parse_mountinfo(&text).unwrap()).unwrap();
        V1Manager::new(&layout, "/r").unwrap()
    }

    #[test]
    fn hybrid_hosts_keep_the_tree_in_every_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let m = fake(tmp.path());
        assert_eq!(m.mode(), CgroupMode::Hybrid);
        let dirs = m.labelled_dirs("/r/kubepods");
        let labels: Vec<&str> = dirs.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["cpu,cpuacct", "memory", "name=systemd", ""]);
        assert_eq!(dirs[0].1, tmp.path().join("cpu,cpuacct/r/kubepods"));
        assert_eq!(dirs[3].1, tmp.path().join("unified/r/kubepods"));

        m.ensure_qos_tree().unwrap();
        let read = |p: &str| std::fs::read_to_string(tmp.path().join(p)).unwrap();
        assert_eq!(read("cpu,cpuacct/r/kubepods/besteffort/cpu.shares"), "2");
        for dir in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            assert!(tmp.path().join(dir).join("r/kubepods/burstable").is_dir());
        }
        let res = PodResources {
            cpu_shares: 102,
            cpu_quota_us: Some(20_000),
            memory_limit_bytes: Some(64 << 20),
            ..PodResources::default()
        };
        let pod = m.ensure_pod("u1", QosClass::Burstable, &res).unwrap();
        assert_eq!(pod.cgroup_parent, "/r/kubepods/burstable/podu1");
        let pod_dir = "r/kubepods/burstable/podu1";
        assert_eq!(read(&format!("cpu,cpuacct/{pod_dir}/cpu.shares")), "102");
        assert_eq!(
            read(&format!("cpu,cpuacct/{pod_dir}/cpu.cfs_quota_us")),
            "20000"
        );
        assert_eq!(
            read(&format!("cpu,cpuacct/{pod_dir}/cpu.cfs_period_us")),
            "100000"
        );
        assert_eq!(
            read(&format!("memory/{pod_dir}/memory.limit_in_bytes")),
            "67108864"
        );
        assert!(tmp.path().join("unified").join(pod_dir).is_dir());

        m.update_pod("u1", &PodResources::default()).unwrap();
        assert_eq!(
            read(&format!("cpu,cpuacct/{pod_dir}/cpu.cfs_quota_us")),
            "-1"
        );
        assert_eq!(
            read(&format!("memory/{pod_dir}/memory.limit_in_bytes")),
            "-1"
        );

        m.ensure_pod("u2", QosClass::Guaranteed, &res).unwrap();
        let pods = m.pods().unwrap();
        assert_eq!(
            pods.iter()
                .map(|p| (p.uid.as_str(), p.qos))
                .collect::<Vec<_>>(),
            [("u1", QosClass::Burstable), ("u2", QosClass::Guaranteed)]
        );
        assert_eq!(
            m.find_pod("u2").unwrap().unwrap().cgroup_parent,
            "/r/kubepods/podu2"
        );
        assert_eq!(m.find_pod("u3").unwrap(), None);
        assert!(matches!(
            m.update_pod("u3", &res),
            Err(CgroupError::PodNotFound(_))
        ));
        assert!(matches!(
            m.ensure_pod("../x", QosClass::Burstable, &res),
            Err(CgroupError::InvalidUid(_))
        ));

        // A pids limit without the pids controller is refused, not dropped,
        // and nothing is written.
        let err = m
            .update_pod(
                "u1",
                &PodResources {
                    cpu_shares: 7,
                    pids_limit: Some(10),
                    ..PodResources::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(err, CgroupError::MissingControllers { .. }),
            "{err}"
        );
        assert_eq!(read(&format!("cpu,cpuacct/{pod_dir}/cpu.shares")), "1024");
    }
}
