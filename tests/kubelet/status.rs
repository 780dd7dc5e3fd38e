//! Conditions over time: DiskPressure posted within the sampling second
//! when the root dir's filesystem (a small tmpfs) fills and empties, with
//! a 30 s status period that cannot explain it; heartbeats advancing while
//! transition times stay; a `Ready=Unknown` written by someone else (the
//! node lifecycle controller) replaced with a new transition, and another
//! writer's condition kept.

use std::{ffi::OsString, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::{api::core::v1::Node, jiff::Timestamp};
use keelson_e2e::{server::ServerProcess, tmpfs::Tmpfs, unique_name};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{Kubelet, client, condition, fast_args, root_fs, times, wait_for, wait_ready};

const TMPFS_SIZE: u64 = 8 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_pressure_is_posted_as_soon_as_the_root_dir_fills_and_empties() -> Result<()> {
    let root = Tmpfs::new(TMPFS_SIZE)?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let mut args = fast_args(&root, &name);
    // Periodic updates 30 s apart: only a change can post within seconds.
    let at = args
        .iter()
        .position(|a| a == "--node-status-update-frequency")
        .context("frequency")?;
    args[at + 1] = OsString::from("30s");
    let mut agent = Kubelet::start(&server, &args)?;
    let client = client(&server).await?;
    let api = Api::<Node>::all(client.clone());
    let node = wait_ready(&mut agent, &client, &name).await?;

    // ephemeral-storage is the tmpfs: 8Mi, allocatable 10% less.
    let status = node.status.clone().context("no status")?;
    let capacity = status.capacity.clone().context("capacity")?;
    let allocatable = status.allocatable.clone().context("allocatable")?;
    ensure!(
        capacity["ephemeral-storage"].0 == "8Mi",
        "{:?}",
        capacity["ephemeral-storage"]
    );
    ensure!(
        allocatable["ephemeral-storage"].0 == (TMPFS_SIZE - TMPFS_SIZE / 10).to_string(),
        "{:?}",
        allocatable["ephemeral-storage"]
    );
    let disk = condition(&node, "DiskPressure").context("DiskPressure")?;
    ensure!(disk.status == "False", "{disk:?}");
    let (_, ready_transition) = times(&node, "Ready")?;

    // Fill the filesystem past 90%: nodefs.available<10%.
    let filler = root.path().join("filler");
    std::fs::write(&filler, vec![0x6b_u8; 7_800_000])?;
    let filled_at = Timestamp::now();
    let pressed = wait_for(
        &mut agent,
        "DiskPressure=True",
        Duration::from_secs(5),
        || async {
            let node = api.get(&name).await?;
            Ok(condition(&node, "DiskPressure")
                .is_some_and(|c| c.status == "True")
                .then_some(node))
        },
    )
    .await?;
    let disk = condition(&pressed, "DiskPressure").context("DiskPressure")?;
    ensure!(
        disk.reason.as_deref() == Some("KubeletHasDiskPressure")
            && disk.message.as_deref() == Some("kubelet has disk pressure"),
        "{disk:?}"
    );
    let (_, pressed_at) = times(&pressed, "DiskPressure")?;
    ensure!(
        pressed_at.as_second() >= filled_at.as_second(),
        "transition {pressed_at} before the fill at {filled_at}"
    );
    ensure!(
        times(&pressed, "Ready")?.1 == ready_transition,
        "Ready did not change, its transition time must not either"
    );

    // Free it again: back to False, a new transition.
    std::fs::remove_file(&filler)?;
    let relieved = wait_for(
        &mut agent,
        "DiskPressure=False",
        Duration::from_secs(5),
        || async {
            let node = api.get(&name).await?;
            Ok(condition(&node, "DiskPressure")
                .is_some_and(|c| c.status == "False")
                .then_some(node))
        },
    )
    .await?;
    let disk = condition(&relieved, "DiskPressure").context("DiskPressure")?;
    ensure!(
        disk.reason.as_deref() == Some("KubeletHasNoDiskPressure"),
        "{disk:?}"
    );
    ensure!(times(&relieved, "DiskPressure")?.1 >= pressed_at);
    drop(agent);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_advance_and_an_unknown_ready_is_replaced_with_a_new_transition() -> Result<()> {
    let root = root_fs()?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let mut agent = Kubelet::start(&server, &fast_args(&root, &name))?;
    let client = client(&server).await?;
    let api = Api::<Node>::all(client.clone());
    let node = wait_ready(&mut agent, &client, &name).await?;
    let (heartbeat, transition) = times(&node, "Ready")?;

    // Periodic updates (1 s): the heartbeat moves, the transition stays.
    let later = wait_for(
        &mut agent,
        "a later heartbeat",
        Duration::from_secs(5),
        || async {
            let node = api.get(&name).await?;
            Ok((times(&node, "Ready")?.0 > heartbeat).then_some(node))
        },
    )
    .await?;
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
        let (hb, tt) = times(&later, kind)?;
        ensure!(hb > heartbeat, "{kind} heartbeat did not advance");
        ensure!(
            tt == transition,
            "{kind} transition moved: {transition} → {tt}"
        );
    }

    // The node lifecycle controller's verdict on a silent node, plus a
    // condition of another component, written over the kubelet's.
    let mut conditions = later
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let long_ago = "2020-01-01T00:00:00Z";
    for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
        c.status = "Unknown".into();
        c.reason = Some("NodeStatusUnknown".into());
        c.message = Some("Kubelet stopped posting node status.".into());
        c.last_transition_time = Some(serde_json::from_value(json!(long_ago))?);
    }
    let mut conditions = serde_json::to_value(&conditions)?;
    if let Some(list) = conditions.as_array_mut() {
        list.push(json!({
            "type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated",
            "message": "routes created", "lastHeartbeatTime": long_ago, "lastTransitionTime": long_ago
        }));
    }
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": conditions}})),
    )
    .await?;

    let back = wait_for(
        &mut agent,
        "Ready=True again",
        Duration::from_secs(5),
        || async {
            let node = api.get(&name).await?;
            Ok(condition(&node, "Ready")
                .is_some_and(|c| c.status == "True")
                .then_some(node))
        },
    )
    .await?;
    let (_, new_transition) = times(&back, "Ready")?;
    ensure!(
        new_transition > transition,
        "Unknown → True is a transition: {transition} → {new_transition}"
    );
    ensure!(
        condition(&back, "Ready").and_then(|c| c.reason.as_deref()) == Some("KubeletReady"),
        "{:?}",
        condition(&back, "Ready")
    );
    let network =
        condition(&back, "NetworkUnavailable").context("NetworkUnavailable was dropped")?;
    ensure!(
        network.reason.as_deref() == Some("RouteCreated"),
        "{network:?}"
    );
    Ok(())
}
