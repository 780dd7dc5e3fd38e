//! Container probes run by the pod workers, on a lab of their own (see
//! [`super::Lab`]): an exec readiness probe makes a busybox pod Ready only
//! once the file it reads exists, and un-Ready when the file is removed
//! (by an exec through CRI); an httpGet readiness probe on the echo pod's
//! named port makes it Ready, one on a closed port never does; a liveness
//! exec probe that starts failing gets its container stopped and
//! restarted (restartCount ≥ 1, lastState terminated); a startup probe
//! keeps a container neither started nor ready until it passes.
//!
//! Every probe uses `periodSeconds: 1` so the suite stays short.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use keelson_runtime::images::{BUSYBOX_IMAGE, ECHO_IMAGE};
use kube::{Api, api::PostParams};
use serde_json::json;

use super::{Lab, condition, pod, wait_pod};

fn container_status(p: &serde_json::Value) -> &serde_json::Value {
    &p["status"]["containerStatuses"][0]
}

fn running_unready(p: &serde_json::Value) -> bool {
    let cs = container_status(p);
    cs["state"]["running"].is_object()
        && cs["ready"] == false
        && condition(p, "Ready").as_deref() == Some("False")
        && condition(p, "ContainersReady").as_deref() == Some("False")
}

fn ready(p: &serde_json::Value) -> bool {
    container_status(p)["ready"] == true
        && condition(p, "Ready").as_deref() == Some("True")
        && condition(p, "ContainersReady").as_deref() == Some("True")
}

fn seconds(t: &serde_json::Value) -> Result<i64> {
    let t: k8s_openapi::jiff::Timestamp = t.as_str().context("no time")?.parse()?;
    Ok(t.as_second())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_drive_readiness_and_restarts() -> Result<()> {
    let lab = Lab::start().await?;
    let pods: Api<Pod> = Api::namespaced(lab.client.clone(), "default");
    let node = lab.node_name.as_str();
    let every_second = json!({"periodSeconds": 1, "failureThreshold": 1});
    let with = |probe: serde_json::Value| {
        let mut p = every_second.clone();
        if let (Some(p), Some(extra)) = (p.as_object_mut(), probe.as_object()) {
            p.extend(extra.clone());
        }
        p
    };

    // Exec readiness: Ready only once /tmp/ready exists.
    let gated = pod(
        node,
        "gated",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "sh", "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c", "sleep 3; touch /tmp/ready; sleep 3600"],
            "readinessProbe": with(json!({"exec": {"command": ["cat", "/tmp/ready"]}})),
        }]}),
    )?;
    // The two echo pods: httpGet readiness on the named port, and on a
    // closed one; a tcpSocket liveness probe keeps the first alive.
    let web = pod(
        node,
        "web",
        json!({"containers": [{"name": "echo", "image": ECHO_IMAGE,
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": with(json!({"httpGet": {"port": "http", "path": "/",
                "httpHeaders": [{"name": "X-Probe", "value": "keelson"}]}})),
            "livenessProbe": with(json!({"tcpSocket": {"port": 8080}})),
        }]}),
    )?;
    let closed = pod(
        node,
        "closed",
        json!({"containers": [{"name": "echo", "image": ECHO_IMAGE,
            "ports": [{"containerPort": 8080}],
            "readinessProbe": with(json!({"httpGet": {"port": 8081, "path": "/"}})),
        }]}),
    )?;
    // Liveness exec that starts failing two seconds in.
    let dying = pod(
        node,
        "dying",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "sh", "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c", "touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 3600"],
            "livenessProbe": with(json!({"exec": {"command": ["cat", "/tmp/alive"]},
                "failureThreshold": 2})),
        }]}),
    )?;
    // A startup probe: neither started nor ready until /tmp/up exists.
    let slow = pod(
        node,
        "slow",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "sh", "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c", "sleep 6; touch /tmp/up; sleep 3600"],
            "startupProbe": with(json!({"exec": {"command": ["cat", "/tmp/up"]},
                "failureThreshold": 30})),
        }]}),
    )?;
    for p in [&gated, &web, &closed, &dying, &slow] {
        pods.create(&PostParams::default(), p).await?;
    }

    let unready = wait_pod(&pods, "gated", "running, not yet Ready", running_unready)
        .await
        .with_context(|| lab.containerd.log_tail(20))?;
    ensure!(container_status(&unready)["started"] == true, "{unready}");
    // The startup probe gates started (and so ready); /tmp/up comes 6 s in.
    let starting = wait_pod(&pods, "slow", "running, not started", |p| {
        running_unready(p) && container_status(p)["started"] == false
    })
    .await?;
    ensure!(
        container_status(&starting)["restartCount"] == 0,
        "{starting}"
    );
    let gated_ready = wait_pod(&pods, "gated", "Ready", ready).await?;
    let cs = container_status(&gated_ready);
    let started_at = seconds(&cs["state"]["running"]["startedAt"])?;
    let ready_since = gated_ready["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["lastTransitionTime"].clone())
        .context("no Ready condition")?;
    // The file appears 3 s after the start (times are whole seconds).
    ensure!(
        seconds(&ready_since)? - started_at >= 2,
        "Ready at {ready_since}, started at {started_at}: {gated_ready}"
    );
    ensure!(cs["restartCount"] == 0, "{cs}");

    // Removing the file flips Ready back to False; the container runs on.
    let id = cs["containerID"]
        .as_str()
        .and_then(|i| i.strip_prefix("containerd://"))
        .context("no containerID")?
        .to_owned();
    let mut cri = lab.containerd.cri().await?;
    let out = cri
        .runtime
        .exec_sync(&id, &["rm", "/tmp/ready"], Duration::from_secs(5))
        .await?;
    ensure!(out.exit_code == 0, "rm /tmp/ready: {out:?}");
    let unready = wait_pod(&pods, "gated", "not Ready again", running_unready).await?;
    let cs = container_status(&unready);
    ensure!(
        cs["restartCount"] == 0 && cs["containerID"] == format!("containerd://{id}"),
        "{cs}"
    );

    wait_pod(&pods, "slow", "started and Ready", |p| {
        ready(p) && container_status(p)["started"] == true
    })
    .await?;

    // httpGet on the named port: Ready, and it stays alive.
    let web_ready = wait_pod(&pods, "web", "Ready", ready).await?;
    ensure!(
        container_status(&web_ready)["restartCount"] == 0,
        "{web_ready}"
    );
    // httpGet on a closed port: running, never Ready.
    wait_pod(&pods, "closed", "running", |p| {
        container_status(p)["state"]["running"].is_object()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let closed_now = serde_json::to_value(pods.get("closed").await?)?;
    ensure!(running_unready(&closed_now), "{closed_now}");
    let ready_cond = closed_now["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .context("no Ready condition")?;
    ensure!(ready_cond["reason"] == "ContainersNotReady", "{ready_cond}");

    // Liveness failure: stopped (grace 1 s), restarted after the back-off.
    let restarted = wait_pod(&pods, "dying", "restarted", |p| {
        let cs = container_status(p);
        cs["restartCount"].as_i64().is_some_and(|n| n >= 1)
    })
    .await?;
    let last = &container_status(&restarted)["lastState"]["terminated"];
    ensure!(
        last["reason"] == "Error" && last["exitCode"].as_i64().is_some_and(|c| c != 0),
        "{restarted}"
    );
    // The web pod's liveness probe kept passing meanwhile.
    let web_now = serde_json::to_value(pods.get("web").await?)?;
    ensure!(
        ready(&web_now) && container_status(&web_now)["restartCount"] == 0,
        "{web_now}"
    );
    Ok(())
}
