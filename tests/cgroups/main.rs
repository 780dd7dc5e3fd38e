//! The pod cgroup manager (`keelson_node::cgroups`) against the real
//! kernel: the manager this host's detection picks (v1 here: the host is
//! hybrid) builds its `kubepods` tree under a root unique to each test
//! ([`CgroupRoot`], removed on drop from every hierarchy, processes killed
//! first), and the tests read the kernel's own files and counters back.
//!
//! - `tree.rs` — the QoS tree and Burstable / Guaranteed / BestEffort pod
//!   cgroups with the kubelet's values in the v1 files; updates.
//! - `process.rs` — a process moved into a pod cgroup is there in every
//!   hierarchy (`/proc/<pid>/cgroup`).
//! - `oom.rs` — a 64 MiB allocation under a 32 MiB limit is OOM-killed by
//!   the kernel and the manager's OOM-kill reading counts it.
//! - `cpu.rs` — a 0.2 CPU limit holds a busy loop to about 20 % of a CPU.
//! - `remove.rs` — pod removal refuses or kills leftover processes and
//!   leaves nothing behind; a restarted manager lists the orphans.
//! - `detect.rs` — mode detection on this host and on sample mountinfos.
//!
//! Needs root. Each child workload is `keelson-cgroup-child` (`child.rs`).

mod child;
mod cpu;
mod detect;
mod oom;
mod process;
mod remove;
mod tree;

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use keelson_e2e::cgroup_root::CgroupRoot;
use keelson_node::cgroups::{self, CgroupLayout, CgroupManager, CgroupMode};
use serde_json::{Value, json};

/// The manager for a fresh root, and the layout it was chosen from. The
/// file checks here are v1's: fail clearly on a host that is not.
fn v1_manager(root: &CgroupRoot) -> Result<(Box<dyn CgroupManager>, CgroupLayout)> {
    let layout = CgroupLayout::detect()?;
    ensure!(
        matches!(layout.mode, CgroupMode::Hybrid | CgroupMode::Legacy),
        "these tests check cgroup v1 files; this host is {}",
        layout.mode
    );
    let manager = cgroups::manager(root.name())?;
    ensure!(manager.mode() == layout.mode);
    Ok((manager, layout))
}

/// The mount point of the v1 hierarchy carrying `controller`.
fn mount_of(layout: &CgroupLayout, controller: &str) -> Result<PathBuf> {
    Ok(layout
        .v1_hierarchy(controller)
        .with_context(|| format!("no v1 hierarchy has {controller}"))?
        .mount_point
        .clone())
}

/// A cgroup interface file's content, trimmed.
fn read(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

/// `<mount>/<relative>/<file>`.
fn file(mount: &Path, relative: &str, name: &str) -> PathBuf {
    mount.join(relative.trim_start_matches('/')).join(name)
}

/// A pod uid unique to this process and call.
fn uid() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:08x}-test-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Pod with these containers, as the API server would hand it over.
fn pod(uid: &str, containers: Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p-{uid}"), "namespace": "default", "uid": uid},
        "spec": {"containers": containers},
    }))?)
}

/// One container with these resources.
fn container(name: &str, resources: Value) -> Value {
    json!({"name": name, "image": "keelson.local/busybox:1", "resources": resources})
}

/// A one-container pod with `resources` (which must make it Burstable),
/// its cgroup made by a fresh manager under `root`: the manager, the
/// pod's uid and the resources written.
fn burstable_pod(
    root: &CgroupRoot,
    resources: Value,
) -> Result<(Box<dyn CgroupManager>, String, cgroups::PodResources)> {
    let (manager, _) = v1_manager(root)?;
    manager.ensure_qos_tree()?;
    let uid = uid();
    let spec = pod(&uid, json!([container("app", resources)]))?;
    let (qos, res) = cgroups::pod_resources(&spec, &cgroups::ResourceOptions::default())?;
    ensure!(qos == cgroups::QosClass::Burstable, "{qos:?}");
    manager.ensure_pod(&uid, qos, &res)?;
    Ok((manager, uid, res))
}
