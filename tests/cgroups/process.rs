//! A process moved into a pod cgroup is in it in every hierarchy, as the
//! kernel reports in `/proc/<pid>/cgroup`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use keelson_e2e::cgroup_root::CgroupRoot;
use keelson_node::cgroups::{OnProcesses, PodResources, QosClass};

use crate::{child::Workload, read, uid, v1_manager};

#[test]
fn a_process_in_a_pod_cgroup_shows_up_there() -> Result<()> {
    let root = CgroupRoot::new()?;
    let (manager, layout) = v1_manager(&root)?;
    manager.ensure_qos_tree()?;
    let uid = uid();
    let cg = manager.ensure_pod(&uid, QosClass::Burstable, &PodResources::default())?;
    let mut sleeper = Workload::spawn(&["sleep"])?;
    let pid = sleeper.pid();

    // Not there before.
    let before = read(std::path::Path::new(&format!("/proc/{pid}/cgroup")))?;
    ensure!(!before.contains(&cg.cgroup_parent));

    manager.add_process(&uid, pid)?;
    let lines = read(std::path::Path::new(&format!("/proc/{pid}/cgroup")))?;
    // `ID:CONTROLLERS:PATH`, one line per hierarchy (`0::PATH` for v2).
    let path_of = |label: &str| -> Result<String> {
        lines
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                (controllers == label).then(|| path.to_owned())
            })
            .with_context(|| format!("no {label:?} line in /proc/{pid}/cgroup:\n{lines}"))
    };
    let mut labels: Vec<String> = ["cpu", "cpuacct", "memory", "pids", "cpuset"]
        .iter()
        .map(|c| layout.v1_hierarchy(c).map(|h| h.label()))
        .collect::<Option<_>>()
        .context("a v1 controller is missing")?;
    if layout.unified.is_some() {
        labels.push(String::new());
    }
    for label in &labels {
        let path = path_of(label)?;
        ensure!(
            path == cg.cgroup_parent,
            "{label:?}: {path} instead of {}",
            cg.cgroup_parent
        );
    }
    ensure!(manager.pod_processes(&uid)? == [pid]);

    // Removal refuses while it runs and leaves the cgroup alone …
    let err = manager.remove_pod(&uid, OnProcesses::Fail).unwrap_err();
    ensure!(err.to_string().contains(&pid.to_string()), "{err}");
    ensure!(manager.find_pod(&uid)?.is_some());
    ensure!(
        sleeper.wait(Duration::from_millis(50)).is_err(),
        "the sleeper died"
    );
    // … and kills it when asked.
    manager.remove_pod(&uid, OnProcesses::Kill)?;
    sleeper.wait_killed(Duration::from_secs(5))?;
    ensure!(manager.find_pod(&uid)?.is_none());
    Ok(())
}
