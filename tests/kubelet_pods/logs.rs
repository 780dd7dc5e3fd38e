//! `kubectl logs` end to end: the kubelet's log server
//! (`keelson_node::kubelet::server`) runs in-process next to the
//! PodManager on 127.0.0.1, the test Node advertises it
//! (`InternalIP` 127.0.0.1, `status.daemonEndpoints.kubeletEndpoint.Port`),
//! and an unmodified kubectl reads a busybox pod's logs through
//! `keelson-server`'s `pods/log` proxy: all lines (stdout and stderr, a
//! 20000-byte line containerd split into partial records joined again),
//! `--tail 1`, `--timestamps`, `-f` showing a line printed after it
//! started, and clear errors for a missing container, `--previous`, a
//! missing pod and an unreachable kubelet (503).

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use keelson_e2e::server::ServerProcess;
use keelson_runtime::images::BUSYBOX_IMAGE;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{Lab, Running, pod, wait_pod};

const LONG: usize = 20_000;

/// `kubectl <args>` off the async workers; (success, stdout, stderr).
async fn kubectl(server: &ServerProcess, args: &[&str]) -> Result<(bool, String, String)> {
    let kubeconfig = server.kubeconfig();
    let cache = server.data_dir().join("kubectl-cache");
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keelson_e2e::server::kubectl(&kubeconfig, &cache, &args)
    })
    .await?
}

/// A spawned kubectl, killed and reaped on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_reads_the_kubelets_log_files() -> Result<()> {
    let lab = Lab::start().await?;
    let (server, containerd, client) = (&lab.server, &lab.containerd, &lab.client);

    // The kubelet server on 127.0.0.1, advertised in the Node's status.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (log_root, store) = (lab.log_root.clone(), lab.pods.clone());
    let kubelet_server = Running(tokio::spawn(async move {
        if let Err(e) =
            keelson_node::kubelet::server::serve(listener, log_root, Arc::new(store)).await
        {
            eprintln!("kubelet server: {e}");
        }
    }));
    Api::<Node>::all(client.clone())
        .patch_status(
            &lab.node_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            }})),
        )
        .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // stdout and stderr reach the log through separate pipes: a second
    // between them keeps their order in the file deterministic.
    let script = format!(
        "echo one; sleep 1; echo two >&2; head -c {LONG} /dev/zero | tr '\\0' x; echo; echo three; \
         i=0; while true; do sleep 1; i=$((i+1)); echo tick-$i; done"
    );
    let printer = pod(
        &lab.node_name,
        "printer",
        json!({"containers": [{"name": "sh", "image": BUSYBOX_IMAGE,
                "command": ["sh", "-c", script]}]}),
    )?;
    pods.create(&PostParams::default(), &printer).await?;
    wait_pod(&pods, "printer", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await
    .with_context(|| containerd.log_tail(20))?;

    // All lines, in order, the long one joined from its partial records.
    let mut out = String::new();
    for _ in 0..50 {
        let (ok, stdout, stderr) = kubectl(server, &["logs", "printer"]).await?;
        ensure!(ok, "kubectl logs printer: {stderr}\n{}", server.log());
        out = stdout;
        if out.contains("three\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() >= 4, "kubectl logs printer: {out:?}");
    ensure!(lines[0] == "one" && lines[1] == "two", "{:?}", &lines[..2]);
    ensure!(
        lines[2].len() == LONG && lines[2].bytes().all(|b| b == b'x'),
        "the long line came back as {} bytes",
        lines[2].len()
    );
    ensure!(lines[3] == "three", "{:?}", lines[3]);
    ensure!(
        lines[4..].iter().all(|l| l.starts_with("tick-")),
        "{:?}",
        &lines[4..]
    );

    // --tail 1: the last line only.
    let (ok, tail, stderr) = kubectl(server, &["logs", "printer", "--tail", "1"]).await?;
    ensure!(ok, "kubectl logs --tail 1: {stderr}");
    ensure!(
        tail.lines().count() == 1 && (tail == "three\n" || tail.starts_with("tick-")),
        "--tail 1 gave {tail:?}"
    );

    // --timestamps: RFC 3339 timestamp, a space, the line.
    let (ok, stamped, stderr) =
        kubectl(server, &["logs", "printer", "--timestamps", "-c", "sh"]).await?;
    ensure!(ok, "kubectl logs --timestamps: {stderr}");
    let first = stamped.lines().next().context("no lines")?;
    let (ts, msg) = first.split_once(' ').context("no timestamp")?;
    ensure!(msg == "one", "{first:?}");
    let ts: jiff::Timestamp = ts.parse().with_context(|| format!("timestamp {ts:?}"))?;
    let age = jiff::Timestamp::now().duration_since(ts);
    ensure!(
        age > jiff::SignedDuration::ZERO && age < jiff::SignedDuration::from_secs(120),
        "timestamp {ts} is {age:?} old"
    );

    // -f: a line printed after kubectl started arrives on its stdout.
    let (_, before, _) = kubectl(server, &["logs", "printer"]).await?;
    let last_tick = |text: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix("tick-")?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
    };
    let seen = last_tick(&before);
    let mut follow = Child(
        server
            .kubectl_command(&["logs", "-f", "printer"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning kubectl logs -f")?,
    );
    let stdout = follow.0.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let want = seen + 2;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut followed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line
                    .strip_prefix("tick-")
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n >= want);
                followed.push(line);
                if done {
                    break;
                }
            }
            Err(_) => anyhow::bail!(
                "kubectl logs -f showed no tick-{want} (last before: tick-{seen}): {followed:?}"
            ),
        }
    }
    ensure!(
        followed.first().map(String::as_str) == Some("one"),
        "{followed:?}"
    );
    drop(follow);

    // A missing container and a missing previous instance: clear errors.
    let (ok, _, stderr) = kubectl(server, &["logs", "printer", "-c", "nope"]).await?;
    ensure!(
        !ok && stderr.contains("container nope is not valid for pod printer"),
        "kubectl logs -c nope: ok={ok} {stderr:?}"
    );
    let (ok, _, stderr) = kubectl(server, &["logs", "printer", "--previous"]).await?;
    ensure!(
        !ok && stderr.contains("previous terminated container \"sh\" in pod \"printer\" not found"),
        "kubectl logs --previous: ok={ok} {stderr:?}"
    );
    let (ok, _, stderr) = kubectl(server, &["logs", "nosuchpod"]).await?;
    ensure!(
        !ok && stderr.contains("pods \"nosuchpod\" not found"),
        "kubectl logs nosuchpod: ok={ok} {stderr:?}"
    );

    // The kubelet gone: 503 naming the unreachable kubelet.
    drop(kubelet_server);
    let (ok, _, stderr) = kubectl(server, &["logs", "printer"]).await?;
    ensure!(
        !ok && stderr.contains(&format!("at 127.0.0.1:{port} is unreachable")),
        "kubectl logs without a kubelet: ok={ok} {stderr:?}"
    );
    Ok(())
}
