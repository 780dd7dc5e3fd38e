//! The kernel enforces a pod's CPU limit: a busy loop under a 0.2 CPU
//! quota gets about a fifth of one CPU, measured by the cgroup's own CPU
//! accounting (not wall time), and the CFS throttling counters show the
//! quota biting.

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use keelson_e2e::cgroup_root::CgroupRoot;
use serde_json::json;

use crate::{burstable_pod, child::Workload};

#[test]
fn a_cpu_limit_holds_a_busy_loop_to_its_quota() -> Result<()> {
    let root = CgroupRoot::new()?;
    let (manager, uid, res) = burstable_pod(
        &root,
        json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}),
    )?;
    ensure!(res.cpu_quota_us == Some(20_000), "{res:?}");

    let mut spinner = Workload::spawn(&["spin"])?;
    manager.add_process(&uid, spinner.pid())?;
    spinner.go()?;
    thread::sleep(Duration::from_millis(300));
    let (before, started) = (manager.cpu_stats(&uid)?, Instant::now());
    thread::sleep(Duration::from_secs(1));
    let (after, elapsed) = (manager.cpu_stats(&uid)?, started.elapsed());

    let used = after.usage.saturating_sub(before.usage);
    let share = used.as_secs_f64() / elapsed.as_secs_f64();
    eprintln!(
        "busy loop under 0.2 CPU: {:.1} % of a CPU ({used:?} in {elapsed:?}), \
         throttled in {} of {} periods",
        share * 100.0,
        after.throttled_periods - before.throttled_periods,
        after.periods - before.periods,
    );
    ensure!(!used.is_zero(), "the busy loop never ran");
    // 20 ms per 100 ms period; generous against period-boundary effects.
    ensure!(share <= 0.25, "{:.1} % of a CPU", share * 100.0);
    ensure!(
        after.throttled_periods > before.throttled_periods,
        "never throttled: {before:?} → {after:?}"
    );
    Ok(())
}
