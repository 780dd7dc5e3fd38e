//! The cgroup v2 manager, for unified hosts.
//!
//! One tree; a controller works in a cgroup only if every ancestor lists
//! it in `cgroup.subtree_control`, and a cgroup with controllers enabled
//! for its children may hold no processes itself. So the manager enables
//! `cpu`, `memory`, `pids` (and `cpuset`, `io`, `hugetlb` where the kernel
//! offers them) from the mount down to the QoS level, and not in the pod
//! cgroup: runc enables what the container cgroups below it need. Values
//! go to `cpu.weight` (from the shares, as the kubelet converts them),
//! `cpu.max` (`<quota|max> <period>`), `memory.max` and `pids.max`; the
//! pod's `memory.events` (hierarchical: container kills count) and
//! `cpu.stat` are read back. Removal uses `cgroup.kill` where the kernel
//! has it (5.14+), then kills what is left one by one.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    CgroupError, CgroupManager, CgroupMode, CpuStats, KILL_TIMEOUT, OomEvents, PodCgroup,
    PodResources, QosClass, fs, normalize_root, parse_flat_keyed, prefixes, qos_path,
    resources::cpu_weight_from_shares,
};

/// Controllers the kubelet cannot do without.
const REQUIRED: &[&str] = &["cpu", "memory", "pids"];
/// Controllers enabled too when the kernel offers them.
const OPTIONAL: &[&str] = &["cpuset", "io", "hugetlb"];

/// The v2 manager (see the module docs).
#[derive(Debug)]
pub struct V2Manager {
    mount: PathBuf,
    root: String,
    /// Of [`REQUIRED`] and [`OPTIONAL`], those the mount's root offers.
    controllers: Vec<String>,
}

impl V2Manager {
    /// A manager for pods under `root` of the cgroup2 tree at `mount`;
    /// fails unless the tree offers `cpu`, `memory` and `pids`.
    pub fn new(mount: PathBuf, root: &str) -> Result<Self, CgroupError> {
        let root = normalize_root(root)?;
        let available = fs::read(&mount.join("cgroup.controllers"))?;
        let available: Vec<&str> = available.split_whitespace().collect();
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|c| !available.contains(c))
            .map(|c| (*c).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(CgroupError::MissingControllers {
                mode: CgroupMode::Unified,
                missing,
            });
        }
        let controllers = REQUIRED
            .iter()
            .chain(OPTIONAL)
            .filter(|c| available.contains(c))
            .map(|c| (*c).to_owned())
            .collect();
        Ok(V2Manager {
            mount,
            root,
            controllers,
        })
    }

    fn dir(&self, relative: &str) -> PathBuf {
        self.mount.join(relative.trim_start_matches('/'))
    }

    /// Enables the controllers for the children of `dir`, those its
    /// `cgroup.controllers` offers and that are not on yet.
    fn enable_controllers(&self, dir: &Path) -> Result<(), CgroupError> {
        let offered = fs::read(&dir.join("cgroup.controllers"))?;
        let enabled = fs::read(&dir.join("cgroup.subtree_control"))?;
        let offered: Vec<&str> = offered.split_whitespace().collect();
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let wanted: Vec<String> = self
            .controllers
            .iter()
            .filter(|c| offered.contains(&c.as_str()) && !enabled.contains(&c.as_str()))
            .map(|c| format!("+{c}"))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        fs::write(&dir.join("cgroup.subtree_control"), &wanted.join(" "))
    }
}

/// The v2 interface files and values for `res`.
pub fn interface_values(res: &PodResources) -> Vec<(&'static str, String)> {
    let max = |v: Option<u64>| v.map_or_else(|| "max".to_owned(), |v| v.to_string());
    vec![
        (
            "cpu.weight",
            cpu_weight_from_shares(res.cpu_shares).to_string(),
        ),
        (
            "cpu.max",
            format!("{} {}", max(res.cpu_quota_us), res.cpu_period_us),
        ),
        ("memory.max", max(res.memory_limit_bytes)),
        ("pids.max", max(res.pids_limit)),
    ]
}

impl CgroupManager for V2Manager {
    fn mode(&self) -> CgroupMode {
        CgroupMode::Unified
    }

    fn root(&self) -> &str {
        &self.root
    }

    /// Makes every directory of `relative`; controllers are enabled in the
    /// mount and in each directory above the last.
    fn ensure_path(&self, relative: &str) -> Result<(), CgroupError> {
        self.enable_controllers(&self.mount)?;
        let all = prefixes(relative);
        for (i, prefix) in all.iter().enumerate() {
            let dir = self.dir(prefix);
            fs::mkdir(&dir)?;
            if i + 1 < all.len() {
                self.enable_controllers(&dir)?;
            }
        }
        Ok(())
    }

    /// Writes the complete desired values of one cgroup.
    fn apply(&self, relative: &str, res: &PodResources) -> Result<(), CgroupError> {
        let dir = self.dir(relative);
        for (file, value) in interface_values(res) {
            fs::write(&dir.join(file), &value)?;
        }
        Ok(())
    }

    fn dirs(&self, relative: &str) -> Vec<PathBuf> {
        vec![self.dir(relative)]
    }

    #[tracing::instrument(skip(self), fields(root = self.root))]
    fn ensure_qos_tree(&self) -> Result<(), CgroupError> {
        for qos in [QosClass::Burstable, QosClass::BestEffort] {
            let relative = qos_path(&self.root, qos);
            self.ensure_path(&relative)?;
            // The QoS levels hold pod cgroups, never processes.
            self.enable_controllers(&self.dir(&relative))?;
        }
        let best_effort = self.dir(&qos_path(&self.root, QosClass::BestEffort));
        fs::write(
            &best_effort.join("cpu.weight"),
            &cpu_weight_from_shares(super::resources::MIN_SHARES).to_string(),
        )
    }

    fn update_qos(&self, qos: QosClass, resources: &PodResources) -> Result<(), CgroupError> {
        let relative = qos_path(&self.root, qos);
        self.ensure_path(&relative)?;
        self.enable_controllers(&self.dir(&relative))?;
        self.apply(&relative, resources)
    }

    fn add_process(&self, uid: &str, pid: u32) -> Result<(), CgroupError> {
        let pod = self.existing_pod(uid)?;
        fs::write(
            &self.dir(&pod.cgroup_parent).join("cgroup.procs"),
            &pid.to_string(),
        )
    }

    fn oom_events(&self, uid: &str) -> Result<OomEvents, CgroupError> {
        let pod = self.existing_pod(uid)?;
        let path = self.dir(&pod.cgroup_parent).join("memory.events");
        let text = fs::read(&path)?;
        let events = parse_flat_keyed(&text);
        let oom_kills = *events.get("oom_kill").ok_or_else(|| CgroupError::Parse {
            path: path.clone(),
            content: text.clone(),
        })?;
        Ok(OomEvents {
            oom_kills,
            limit_hits: events.get("max").copied().unwrap_or(0),
            under_oom: None,
        })
    }

    fn cpu_stats(&self, uid: &str) -> Result<CpuStats, CgroupError> {
        let pod = self.existing_pod(uid)?;
        let text = fs::read(&self.dir(&pod.cgroup_parent).join("cpu.stat"))?;
        let stat = parse_flat_keyed(&text);
        let field = |k: &str| stat.get(k).copied().unwrap_or(0);
        Ok(CpuStats {
            usage: Duration::from_micros(field("usage_usec")),
            periods: field("nr_periods"),
            throttled_periods: field("nr_throttled"),
            throttled: Duration::from_micros(field("throttled_usec")),
        })
    }

    fn kill_pod_processes(&self, pod: &PodCgroup) -> Result<(), CgroupError> {
        let dir = self.dir(&pod.cgroup_parent);
        let kill = dir.join("cgroup.kill");
        if kill.exists() {
            fs::write(&kill, "1")?;
        }
        fs::kill_until_empty(&pod.uid, &[dir], KILL_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup2 tree in a temporary directory: the root offers
    /// controllers, and each directory the manager makes gets a
    /// `cgroup.controllers` as the kernel would (what the parent enabled).
    /// Checks the writes without root; the kernel is the integration
    /// tests' job.
    fn fake(tmp: &Path, offered: &str) -> V2Manager {
        std::fs::write(tmp.join("cgroup.controllers"), offered).unwrap();
        std::fs::write(tmp.join("cgroup.subtree_control"), "").unwrap();
        V2Manager::new(tmp.to_path_buf(), "/r").unwrap()
    }

    /// What the kernel does on mkdir: the new cgroup offers what its parent
    /// enabled.
    fn mimic_kernel(dir: &Path) {
        for sub in fs::subtree(dir).unwrap().into_iter().rev() {
            if sub == dir {
                continue;
            }
            if !sub.join("cgroup.controllers").exists()
                && let Some(parent) = sub.parent()
            {
                let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control"))
                    .unwrap_or_default()
                    .replace('+', "");
                std::fs::write(sub.join("cgroup.controllers"), enabled).unwrap();
                std::fs::write(sub.join("cgroup.subtree_control"), "").unwrap();
            }
        }
    }

    #[test]
    fn values_in_v2_files() {
        let res = PodResources {
            cpu_shares: 1024,
            cpu_quota_us: Some(50_000),
            cpu_period_us: 100_000,
            memory_limit_bytes: Some(1 << 30),
            pids_limit: Some(4096),
        };
        assert_eq!(
            interface_values(&res),
            [
                ("cpu.weight", "39".to_owned()),
                ("cpu.max", "50000 100000".to_owned()),
                ("memory.max", "1073741824".to_owned()),
                ("pids.max", "4096".to_owned()),
            ]
        );
        assert_eq!(
            interface_values(&PodResources::default()),
            [
                ("cpu.weight", "39".to_owned()),
                ("cpu.max", "max 100000".to_owned()),
                ("memory.max", "max".to_owned()),
                ("pids.max", "max".to_owned()),
            ]
        );
    }

    #[test]
    fn refuses_a_tree_without_the_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cgroup.controllers"), "hugetlb\n").unwrap();
        match V2Manager::new(tmp.path().to_path_buf(), "/") {
            Err(CgroupError::MissingControllers { missing, .. }) => {
                assert_eq!(missing, ["cpu", "memory", "pids"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tree_controllers_and_pod_values() {
        let tmp = tempfile::tempdir().unwrap();
        let m = fake(tmp.path(), "cpuset cpu io memory hugetlb pids rdma misc\n");
        // The fake kernel fills in cgroup.controllers after each mkdir; run
        // the tree creation level by level like the kernel would see it.
        for _ in 0..4 {
            let _ = m.ensure_qos_tree();
            mimic_kernel(tmp.path());
        }
        m.ensure_qos_tree().unwrap();
        let read = |p: &str| std::fs::read_to_string(tmp.path().join(p)).unwrap();
        assert_eq!(
            read("cgroup.subtree_control"),
            "+cpu +memory +pids +cpuset +io +hugetlb"
        );
        for level in [
            "r",
            "r/kubepods",
            "r/kubepods/burstable",
            "r/kubepods/besteffort",
        ] {
            assert_eq!(
                read(&format!("{level}/cgroup.subtree_control")),
                "+cpu +memory +pids +cpuset +io +hugetlb",
                "{level}"
            );
        }
        assert_eq!(read("r/kubepods/besteffort/cpu.weight"), "1");

        let res = PodResources {
            cpu_shares: 256,
            cpu_quota_us: Some(20_000),
            memory_limit_bytes: Some(32 << 20),
            ..PodResources::default()
        };
        let pod = m.ensure_pod("u1", QosClass::Guaranteed, &res).unwrap();
        assert_eq!(pod.cgroup_parent, "/r/kubepods/podu1");
        let dir = "r/kubepods/podu1";
        assert_eq!(read(&format!("{dir}/cpu.weight")), "10");
        assert_eq!(read(&format!("{dir}/cpu.max")), "20000 100000");
        assert_eq!(read(&format!("{dir}/memory.max")), "33554432");
        assert_eq!(read(&format!("{dir}/pids.max")), "max");
        // Controllers are not enabled inside the pod cgroup itself.
        assert!(!tmp.path().join(dir).join("cgroup.subtree_control").exists());

        m.update_pod("u1", &PodResources::default()).unwrap();
        assert_eq!(read(&format!("{dir}/cpu.max")), "max 100000");

        std::fs::write(
            tmp.path().join(dir).join("memory.events"),
            "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(
            m.oom_events("u1").unwrap(),
            OomEvents {
                oom_kills: 1,
                limit_hits: 5,
                under_oom: None
            }
        );
        std::fs::write(
            tmp.path().join(dir).join("cpu.stat"),
            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n\
             nr_periods 20\nnr_throttled 7\nthrottled_usec 250000\n",
        )
        .unwrap();
        assert_eq!(
            m.cpu_stats("u1").unwrap(),
            CpuStats {
                usage: Duration::from_millis(1500),
                periods: 20,
                throttled_periods: 7,
                throttled: Duration::from_millis(250),
            }
        );
        assert_eq!(m.pods().unwrap(), [pod]);
    }
}
