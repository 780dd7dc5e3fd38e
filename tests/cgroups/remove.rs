//! Removing pod cgroups: processes are refused or killed, container
//! cgroups below the pod go too, and nothing is left in any hierarchy. A
//! manager started afresh (an agent after a crash) finds the pods first.

use std::{fs, time::Duration};

use anyhow::{Result, ensure};
use keelson_e2e::cgroup_root::{CgroupRoot, cgroup_mounts, tree};
use keelson_node::cgroups::{self, CgroupError, OnProcesses, PodResources, QosClass};

use crate::{child::Workload, uid, v1_manager};

#[test]
fn remove_pod_leaves_nothing_behind() -> Result<()> {
    let root = CgroupRoot::new()?;
    let (manager, layout) = v1_manager(&root)?;
    manager.ensure_qos_tree()?;
    let res = PodResources {
        memory_limit_bytes: Some(64 << 20),
        ..PodResources::default()
    };

    // A Guaranteed pod with a process directly inside.
    let (g_uid, b_uid, e_uid) = (uid(), uid(), uid());
    manager.ensure_pod(&g_uid, QosClass::Guaranteed, &res)?;
    let mut in_pod = Workload::spawn(&["sleep"])?;
    manager.add_process(&g_uid, in_pod.pid())?;

    // A Burstable pod with a container cgroup below it, made as runc makes
    // it (a directory in every hierarchy; a cpuset needs its CPUs and
    // memory nodes), and a process inside that.
    let b = manager.ensure_pod(&b_uid, QosClass::Burstable, &res)?;
    let mut in_container = Workload::spawn(&["sleep"])?;
    let cpuset = layout.v1_hierarchy("cpuset").map(|h| h.mount_point.clone());
    for pod_dir in manager.dirs(&b.cgroup_parent) {
        let ctr = pod_dir.join("ctr-1");
        fs::create_dir(&ctr)?;
        if cpuset.as_ref().is_some_and(|m| pod_dir.starts_with(m)) {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                fs::write(ctr.join(f), fs::read_to_string(pod_dir.join(f))?.trim())?;
            }
        }
        fs::write(ctr.join("cgroup.procs"), in_container.pid().to_string())?;
    }

    // An empty BestEffort pod.
    manager.ensure_pod(&e_uid, QosClass::BestEffort, &PodResources::default())?;

    // A fresh manager finds all three.
    let restarted = cgroups::manager(root.name())?;
    let mut found: Vec<_> = restarted.pods()?.into_iter().map(|p| p.uid).collect();
    found.sort();
    let mut want = vec![g_uid.clone(), b_uid.clone(), e_uid.clone()];
    want.sort();
    ensure!(found == want, "pods() = {found:?}");
    ensure!(restarted.pod_processes(&b_uid)? == [in_container.pid()]);

    // Processes left: refused without kill, nothing removed.
    let err = restarted.remove_pod(&g_uid, OnProcesses::Fail).unwrap_err();
    ensure!(
        matches!(&err, CgroupError::ProcessesRemain { pids, .. } if pids == &[in_pod.pid()]),
        "{err}"
    );
    ensure!(manager.dirs(&b.cgroup_parent).iter().all(|d| d.is_dir()));

    restarted.remove_pod(&g_uid, OnProcesses::Kill)?;
    in_pod.wait_killed(Duration::from_secs(5))?;
    restarted.remove_pod(&b_uid, OnProcesses::Kill)?;
    in_container.wait_killed(Duration::from_secs(5))?;
    restarted.remove_pod(&e_uid, OnProcesses::Fail)?;
    // Removing what is gone is fine.
    restarted.remove_pod(&e_uid, OnProcesses::Fail)?;

    ensure!(restarted.pods()?.is_empty());
    ensure!(matches!(
        restarted.oom_events(&g_uid),
        Err(CgroupError::PodNotFound(_))
    ));
    // In every cgroup hierarchy of the host, only the tree itself is left.
    for mount in cgroup_mounts()? {
        let kubepods = root.dir(&mount, "/kubepods");
        let mut left: Vec<_> = tree(&kubepods)
            .into_iter()
            .filter_map(|d| {
                d.strip_prefix(&kubepods)
                    .ok()
                    .map(|p| p.display().to_string())
            })
            .collect();
        left.sort();
        ensure!(
            left == ["", "besteffort", "burstable"],
            "{}: {left:?}",
            kubepods.display()
        );
    }
    Ok(())
}
