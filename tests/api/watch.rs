//! Watch semantics over HTTP: WatchList (`sendInitialEvents`) with the
//! initial-events-end bookmark, selectors on live events, and 410 Expired
//! for a revision the server no longer has.

use std::{thread, time::Duration};

use anyhow::{Result, ensure};
use keelson_e2e::server::{CurlResponse, ServerProcess};
use serde_json::{Value, json};

fn events(resp: &CurlResponse) -> Vec<Value> {
    resp.body
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
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
        .collect()
}

#[test]
fn watch_list_bookmarks_selectors_and_expiry() -> Result<()> {
    let mut server = ServerProcess::start()?;
    let cms = "/api/v1/namespaces/default/configmaps";
    let create = |server: &ServerProcess, name: &str, app: &str| -> Result<CurlResponse> {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}});
        server.curl(
            "POST",
            cms,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
            true,
        )
    };
    create(&server, "a", "x")?;
    create(&server, "b", "y")?;

    // WatchList: initial ADDED events, then the initial-events-end bookmark.
    let resp = server.curl(
        "GET",
        &format!("{cms}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"),
        None,
        None,
        true,
    )?;
    let evs = events(&resp);
    let s = summary(&evs);
    ensure!(
        s.len() >= 3
            && s[0] == ("ADDED".into(), "a".into())
            && s[1] == ("ADDED".into(), "b".into()),
        "{s:?}"
    );
    let bookmark = &evs[2];
    ensure!(bookmark["type"] == "BOOKMARK", "{bookmark}");
    ensure!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true",
        "{bookmark}"
    );
    ensure!(bookmark["object"]["kind"] == "ConfigMap", "{bookmark}");

    // A label-selected watch: objects entering the selector are ADDED,
    // leaving it DELETED; others are not seen.
    let list = server.curl("GET", cms, None, None, true)?.json();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    let path = format!("{cms}?watch=1&labelSelector=app%3Dx&resourceVersion={rv}&timeoutSeconds=3");
    let watched = thread::scope(|scope| -> Result<CurlResponse> {
        let handle = scope.spawn(|| server.curl("GET", &path, None, None, true));
        thread::sleep(Duration::from_millis(700));
        create(&server, "c", "x")?;
        create(&server, "d", "y")?;
        let relabel = json!({"metadata": {"labels": {"app": "x"}}}).to_string();
        server.curl(
            "PATCH",
            &format!("{cms}/b"),
            Some("application/merge-patch+json"),
            Some(relabel.as_bytes()),
            true,
        )?;
        let unlabel = json!({"metadata": {"labels": {"app": "z"}}}).to_string();
        server.curl(
            "PATCH",
            &format!("{cms}/a"),
            Some("application/merge-patch+json"),
            Some(unlabel.as_bytes()),
            true,
        )?;
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("watch thread panicked"))?
    })?;
    let s = summary(&events(&watched));
    ensure!(
        s == [
            ("ADDED".into(), "c".into()),
            ("ADDED".into(), "b".into()),
            ("DELETED".into(), "a".into())
        ],
        "selector watch saw {s:?}"
    );

    // After a restart the watch cache starts at the current revision:
    // older revisions are answered with an in-stream 410 Expired.
    server.restart()?;
    let resp = server.curl(
        "GET",
        &format!("{cms}?watch=1&resourceVersion=2&timeoutSeconds=2"),
        None,
        None,
        true,
    )?;
    let evs = events(&resp);
    ensure!(
        evs.first().is_some_and(|e| e["type"] == "ERROR"
            && e["object"]["code"] == 410
            && e["object"]["reason"] == "Expired"),
        "watch from a forgotten revision: {:?}",
        resp.body
    );
    Ok(())
}
