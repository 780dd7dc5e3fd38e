//! `--store etcd`: several API servers on one etcd see one state and one
//! revision sequence.

use std::{thread, time::Duration};

use anyhow::{Result, ensure};
use keelson_e2e::{etcd::EtcdServer, server::ServerProcess};
use serde_json::json;

#[test]
fn two_servers_on_one_etcd_share_state_revisions_and_watches() -> Result<()> {
    let etcd = EtcdServer::start()?;
    let endpoint = etcd.endpoint();
    let a = ServerProcess::start_with(&["--store", "etcd", "--etcd-endpoints", &endpoint])?;
    let b = ServerProcess::start_with(&["--store", "etcd", "--etcd-endpoints", &endpoint])?;
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |name: &str, v: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": v}}).to_string()
    };

    let created = a.curl(
        "POST",
        cms,
        Some("application/json"),
        Some(cm("x", "1").as_bytes()),
        true,
    )?;
    ensure!(created.status == 201, "{created:?}");
    let rv = created.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let seen = b.curl("GET", &format!("{cms}/x"), None, None, true)?;
    ensure!(
        seen.json()["metadata"]["resourceVersion"] == rv.as_str(),
        "b sees {:?}, a wrote {rv}",
        seen.json()["metadata"]
    );

    // b's write moves the object on; a's stale write is a 409 Conflict.
    let mut update = seen.json();
    update["data"]["v"] = json!("2");
    let ok = b.curl(
        "PUT",
        &format!("{cms}/x"),
        Some("application/json"),
        Some(update.to_string().as_bytes()),
        true,
    )?;
    ensure!(ok.status == 200, "{ok:?}");
    let mut stale = created.json();
    stale["data"]["v"] = json!("lost");
    let conflict = a.curl(
        "PUT",
        &format!("{cms}/x"),
        Some("application/json"),
        Some(stale.to_string().as_bytes()),
        true,
    )?;
    ensure!(
        conflict.status == 409 && conflict.json()["reason"] == "Conflict",
        "{conflict:?}"
    );

    // A watch on b sees a write made through a.
    let watch_path = format!("{cms}?watch=1&resourceVersion={rv}&timeoutSeconds=4");
    let watcher = thread::scope(|s| -> Result<_> {
        let handle = s.spawn(|| b.curl("GET", &watch_path, None, None, true));
        thread::sleep(Duration::from_millis(800));
        let y = a.curl(
            "POST",
            cms,
            Some("application/json"),
            Some(cm("y", "1").as_bytes()),
            true,
        )?;
        ensure!(y.status == 201, "{y:?}");
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("watch thread panicked"))?
    })?;
    let events: Vec<serde_json::Value> = watcher
        .body
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    ensure!(
        kinds.contains(&("MODIFIED".into(), "x".into())),
        "watch on b: {kinds:?}"
    );
    ensure!(
        kinds.contains(&("ADDED".into(), "y".into())),
        "watch on b missed a's create: {kinds:?}"
    );
    let revisions: Vec<i64> = events
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .collect();
    ensure!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions out of order: {revisions:?}"
    );
    Ok(())
}
