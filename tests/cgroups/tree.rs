//! The `kubepods` tree and pod cgroups with the kubelet's values, read back
//! from this host's cgroup v1 files.

use anyhow::{Result, ensure};
use keelson_e2e::cgroup_root::CgroupRoot;
use keelson_node::cgroups::{PodResources, QosClass, ResourceOptions, pod_resources, qos_path};
use serde_json::json;

use crate::{container, file, mount_of, pod, read, uid, v1_manager};

/// `memory.limit_in_bytes` of an unlimited v1 memory cgroup is the page
/// counter's maximum (`PAGE_COUNTER_MAX` pages), far above any real limit.
fn is_unlimited(bytes: &str) -> bool {
    bytes.parse::<u64>().is_ok_and(|b| b >= 1 << 62)
}

#[test]
fn qos_tree_and_pod_cgroups_carry_the_kubelets_values() -> Result<()> {
    let root = CgroupRoot::new()?;
    let (manager, layout) = v1_manager(&root)?;
    let cpu = mount_of(&layout, "cpu")?;
    let memory = mount_of(&layout, "memory")?;
    let pids = mount_of(&layout, "pids")?;
    let cpuset = mount_of(&layout, "cpuset")?;

    manager.ensure_qos_tree()?;
    let r = root.name();
    // Every hierarchy has the tree, the v2 one too on a hybrid host.
    let mut mounts: Vec<_> = layout.v1.iter().map(|h| h.mount_point.clone()).collect();
    mounts.extend(layout.unified.iter().map(|u| u.mount_point.clone()));
    for mount in &mounts {
        for qos in [QosClass::Burstable, QosClass::BestEffort] {
            let dir = file(mount, &qos_path(r, qos), "");
            ensure!(dir.is_dir(), "{} is missing", dir.display());
        }
    }
    let best_effort = qos_path(r, QosClass::BestEffort);
    ensure!(read(&file(&cpu, &best_effort, "cpu.shares"))? == "2");

    // Burstable: requests below limits.
    let burstable_uid = uid();
    let burstable = pod(
        &burstable_uid,
        json!([container(
            "app",
            json!({
                "requests": {"cpu": "250m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "128Mi"},
            })
        )]),
    )?;
    let options = ResourceOptions {
        pod_pids_limit: Some(100),
        ..ResourceOptions::default()
    };
    let (qos, res) = pod_resources(&burstable, &options)?;
    ensure!(qos == QosClass::Burstable);
    let cg = manager.ensure_pod(&burstable_uid, qos, &res)?;
    ensure!(
        cg.cgroup_parent == format!("{r}/kubepods/burstable/pod{burstable_uid}"),
        "cgroup_parent {}",
        cg.cgroup_parent
    );
    let p = &cg.cgroup_parent;
    ensure!(read(&file(&cpu, p, "cpu.shares"))? == "256");
    ensure!(read(&file(&cpu, p, "cpu.cfs_period_us"))? == "100000");
    ensure!(read(&file(&cpu, p, "cpu.cfs_quota_us"))? == "50000");
    ensure!(read(&file(&memory, p, "memory.limit_in_bytes"))? == "134217728");
    ensure!(read(&file(&pids, p, "pids.max"))? == "100");
    // The new cpuset has its parent's CPUs and memory nodes.
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let own = read(&file(&cpuset, p, f))?;
        ensure!(
            !own.is_empty() && own == read(&cpuset.join(f))?,
            "{f} = {own:?}"
        );
    }

    // Guaranteed: directly under kubepods.
    let guaranteed_uid = uid();
    let guaranteed = pod(
        &guaranteed_uid,
        json!([container(
            "app",
            json!({"limits": {"cpu": "1", "memory": "256Mi"}})
        )]),
    )?;
    let (qos, res) = pod_resources(&guaranteed, &ResourceOptions::default())?;
    ensure!(qos == QosClass::Guaranteed);
    let cg = manager.ensure_pod(&guaranteed_uid, qos, &res)?;
    ensure!(cg.cgroup_parent == format!("{r}/kubepods/pod{guaranteed_uid}"));
    let p = &cg.cgroup_parent;
    ensure!(read(&file(&cpu, p, "cpu.shares"))? == "1024");
    ensure!(read(&file(&cpu, p, "cpu.cfs_quota_us"))? == "100000");
    ensure!(read(&file(&memory, p, "memory.limit_in_bytes"))? == "268435456");
    ensure!(read(&file(&pids, p, "pids.max"))? == "max");

    // BestEffort: 2 shares, nothing limited.
    let best_effort_uid = uid();
    let best = pod(&best_effort_uid, json!([container("app", json!({}))]))?;
    let (qos, res) = pod_resources(&best, &ResourceOptions::default())?;
    ensure!(qos == QosClass::BestEffort);
    let cg = manager.ensure_pod(&best_effort_uid, qos, &res)?;
    ensure!(cg.cgroup_parent == format!("{r}/kubepods/besteffort/pod{best_effort_uid}"));
    let p = &cg.cgroup_parent;
    ensure!(read(&file(&cpu, p, "cpu.shares"))? == "2");
    ensure!(read(&file(&cpu, p, "cpu.cfs_quota_us"))? == "-1");
    let limit = read(&file(&memory, p, "memory.limit_in_bytes"))?;
    ensure!(is_unlimited(&limit), "memory.limit_in_bytes = {limit}");

    // An update rewrites the values; unlimited again is -1 / max.
    manager.update_pod(
        &burstable_uid,
        &PodResources {
            cpu_shares: 512,
            cpu_quota_us: Some(150_000),
            memory_limit_bytes: Some(96 << 20),
            ..PodResources::default()
        },
    )?;
    let p = format!("{r}/kubepods/burstable/pod{burstable_uid}");
    ensure!(read(&file(&cpu, &p, "cpu.shares"))? == "512");
    ensure!(read(&file(&cpu, &p, "cpu.cfs_quota_us"))? == "150000");
    ensure!(read(&file(&memory, &p, "memory.limit_in_bytes"))? == "100663296");
    manager.update_pod(&burstable_uid, &PodResources::default())?;
    ensure!(read(&file(&cpu, &p, "cpu.cfs_quota_us"))? == "-1");
    ensure!(is_unlimited(&read(&file(
        &memory,
        &p,
        "memory.limit_in_bytes"
    ))?));
    ensure!(read(&file(&pids, &p, "pids.max"))? == "max");

    // The kernel refuses what it cannot do, and the error names the file.
    let err = manager
        .update_pod(
            &burstable_uid,
            &PodResources {
                cpu_quota_us: Some(10),
                ..PodResources::default()
            },
        )
        .unwrap_err();
    ensure!(err.to_string().contains("cpu.cfs_quota_us"), "{err}");

    // The listing sees all three, in their classes.
    let mut listed: Vec<_> = manager
        .pods()?
        .into_iter()
        .map(|p| (p.uid, p.qos))
        .collect();
    listed.sort();
    let mut want = vec![
        (burstable_uid, QosClass::Burstable),
        (guaranteed_uid, QosClass::Guaranteed),
        (best_effort_uid, QosClass::BestEffort),
    ];
    want.sort();
    ensure!(listed == want, "pods() = {listed:?}");
    Ok(())
}
