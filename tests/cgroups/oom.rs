//! The kernel enforces a pod's memory limit: an allocation past it is
//! OOM-killed, and the manager's OOM-kill reading (what the kubelet turns
//! into `OOMKilled`) counts it.

use std::time::Duration;

use anyhow::{Result, ensure};
use keelson_e2e::cgroup_root::CgroupRoot;
use serde_json::json;

use crate::{burstable_pod, child::Workload};

#[test]
fn allocating_past_the_memory_limit_is_oom_killed_and_counted() -> Result<()> {
    let root = CgroupRoot::new()?;
    let (manager, uid, res) = burstable_pod(
        &root,
        json!({"requests": {"memory": "16Mi"}, "limits": {"memory": "32Mi"}}),
    )?;
    ensure!(res.memory_limit_bytes == Some(32 << 20));
    ensure!(manager.oom_events(&uid)?.oom_kills == 0);

    // Within the limit: runs to the end.
    let mut small = Workload::spawn(&["alloc", "8"])?;
    manager.add_process(&uid, small.pid())?;
    small.go()?;
    ensure!(small.line()? == "allocated 8");
    let status = small.wait(Duration::from_secs(30))?;
    ensure!(status.success(), "8 MiB under a 32 MiB limit: {status}");
    let events = manager.oom_events(&uid)?;
    ensure!(events.oom_kills == 0, "{events:?}");

    // Twice the limit: the kernel kills it.
    let mut big = Workload::spawn(&["alloc", "64"])?;
    manager.add_process(&uid, big.pid())?;
    big.go()?;
    big.wait_killed(Duration::from_secs(30))?;
    ensure!(
        big.line()?.is_empty(),
        "it reported an allocation it cannot have made"
    );
    let events = manager.oom_events(&uid)?;
    ensure!(events.oom_kills == 1, "{events:?}");
    ensure!(events.limit_hits > 0, "{events:?}");
    ensure!(events.under_oom == Some(false), "{events:?}");
    Ok(())
}
