//! Bad input gets a Kubernetes Status with the right code and reason, and
//! never reaches the store.

use anyhow::{Result, ensure};
use keelson_e2e::server::ServerProcess;
use serde_json::json;

fn status_of(resp: &keelson_e2e::server::CurlResponse) -> (u64, String) {
    let v = resp.json();
    (
        v["code"].as_u64().unwrap_or(0),
        v["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn bad_requests_get_statuses() -> Result<()> {
    let server = ServerProcess::start()?;
    let cms = "/api/v1/namespaces/default/configmaps";

    let anon = server.curl("GET", "/api/v1/namespaces", None, None, false)?;
    ensure!(
        anon.status == 401 && status_of(&anon) == (401, "Unauthorized".into()),
        "{anon:?}"
    );
    let health = server.curl("GET", "/healthz", None, None, false)?;
    ensure!(health.status == 200 && health.body == "ok", "{health:?}");

    let malformed = server.curl(
        "POST",
        cms,
        Some("application/json"),
        Some(b"{\"metadata\": "),
        true,
    )?;
    ensure!(
        malformed.status == 400 && status_of(&malformed).1 == "BadRequest",
        "{malformed:?}"
    );

    let big = vec![b' '; 3 * 1024 * 1024 + 10];
    let too_large = server.curl("POST", cms, Some("application/json"), Some(&big), true)?;
    ensure!(too_large.status == 413, "{too_large:?}");

    let invalid = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "UPPER"}});
    let resp = server.curl(
        "POST",
        cms,
        Some("application/json"),
        Some(invalid.to_string().as_bytes()),
        true,
    )?;
    let v = resp.json();
    ensure!(resp.status == 422 && v["reason"] == "Invalid", "{resp:?}");
    ensure!(
        v["details"]["causes"][0]["field"] == "metadata.name",
        "{resp:?}"
    );

    let unknown =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "dta": {}});
    let resp = server.curl(
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        Some("application/json"),
        Some(unknown.to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 400 && resp.body.contains("dta"), "{resp:?}");

    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let resp = server.curl("POST", cms, Some("application/yaml"), Some(yaml), true)?;
    ensure!(
        resp.status == 201 && resp.json()["data"]["a"] == "b",
        "{resp:?}"
    );

    let resp = server.curl(
        "POST",
        cms,
        Some("application/vnd.kubernetes.protobuf"),
        Some(b"\x00garbage"),
        true,
    )?;
    ensure!(
        resp.status == 400 && resp.body.contains("protobuf"),
        "garbage protobuf: {resp:?}"
    );
    let resp = server.curl("POST", cms, Some("application/cbor"), Some(b"\x00"), true)?;
    ensure!(
        resp.status == 415 && status_of(&resp).1 == "UnsupportedMediaType",
        "{resp:?}"
    );

    let resp = server.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(",
        None,
        None,
        true,
    )?;
    ensure!(resp.status == 400, "bad label selector: {resp:?}");
    let resp = server.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?fieldSelector=spec.nodeName%3Dx",
        None,
        None,
        true,
    )?;
    ensure!(resp.status == 400, "unsupported field selector: {resp:?}");
    let resp = server.curl("GET", "/api/v1/namespaces/default/nosuch", None, None, true)?;
    ensure!(resp.status == 404, "{resp:?}");

    // None of the rejected objects reached the store.
    let list = server.curl("GET", cms, None, None, true)?.json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    ensure!(
        names == ["from-yaml"],
        "unexpected configmaps stored: {names:?}"
    );
    Ok(())
}

#[test]
fn services_get_cluster_ips_and_conflicts_are_422() -> Result<()> {
    let server = ServerProcess::start()?;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, ip: Option<&str>| {
        let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}});
        if let Some(ip) = ip {
            s["spec"]["clusterIP"] = json!(ip);
        }
        s.to_string()
    };
    let kubernetes = server
        .curl("GET", &format!("{svcs}/kubernetes"), None, None, true)?
        .json();
    ensure!(
        kubernetes["spec"]["clusterIP"] == "10.96.0.1",
        "{kubernetes}"
    );

    let a = server.curl(
        "POST",
        svcs,
        Some("application/json"),
        Some(svc("a", None).as_bytes()),
        true,
    )?;
    ensure!(a.status == 201, "{a:?}");
    let ip = a.json()["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(ip.starts_with("10.") && ip != "10.96.0.1", "allocated {ip}");

    let b = server.curl(
        "POST",
        svcs,
        Some("application/json"),
        Some(svc("b", Some(&ip)).as_bytes()),
        true,
    )?;
    ensure!(b.status == 422, "taken IP accepted: {b:?}");
    ensure!(
        b.json()["details"]["causes"][0]["field"] == "spec.clusterIPs",
        "{b:?}"
    );

    let del = server.curl("DELETE", &format!("{svcs}/a"), None, None, true)?;
    ensure!(del.status == 200, "{del:?}");
    let c = server.curl(
        "POST",
        svcs,
        Some("application/json"),
        Some(svc("c", Some(&ip)).as_bytes()),
        true,
    )?;
    ensure!(c.status == 201, "released IP not reusable: {c:?}");
    Ok(())
}

#[test]
fn terminating_namespaces_refuse_creates_and_pods_delete_gracefully() -> Result<()> {
    let server = ServerProcess::start()?;
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}}).to_string();
    ensure!(
        server
            .curl(
                "POST",
                "/api/v1/namespaces",
                Some("application/json"),
                Some(ns.as_bytes()),
                true
            )?
            .status
            == 201
    );
    // A pod bound to a node is deleted gracefully: it stays, marked, until
    // its kubelet (or a grace-0 delete) removes it, holding the namespace.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "keelson.local/pause:1"}]}});
    let created = server.curl(
        "POST",
        "/api/v1/namespaces/t/pods",
        Some("application/json"),
        Some(pod.to_string().as_bytes()),
        true,
    )?;
    ensure!(created.status == 201, "{created:?}");
    ensure!(
        created.json()["spec"]["terminationGracePeriodSeconds"] == 30,
        "pod defaults: {}",
        created.body
    );

    let deleting = server.curl("DELETE", "/api/v1/namespaces/t", None, None, true)?;
    ensure!(
        deleting.status == 200 && deleting.json()["status"]["phase"] == "Terminating",
        "{deleting:?}"
    );

    let mut pod_marked = false;
    for _ in 0..50 {
        let p = server
            .curl("GET", "/api/v1/namespaces/t/pods/p", None, None, true)?
            .json();
        if p["metadata"]["deletionTimestamp"].is_string() {
            ensure!(p["metadata"]["deletionGracePeriodSeconds"] == 30, "{p}");
            pod_marked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ensure!(pod_marked, "the namespace controller never deleted the pod");

    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}).to_string();
    let refused = server.curl(
        "POST",
        "/api/v1/namespaces/t/configmaps",
        Some("application/json"),
        Some(cm.as_bytes()),
        true,
    )?;
    let v = refused.json();
    ensure!(
        refused.status == 403 && v["reason"] == "Forbidden",
        "{refused:?}"
    );
    ensure!(
        v["details"]["causes"][0]["reason"] == "NamespaceTerminating",
        "{refused:?}"
    );

    // The kubelet's final grace-0 delete removes the pod; the namespace goes.
    let gone = server.curl(
        "DELETE",
        "/api/v1/namespaces/t/pods/p?gracePeriodSeconds=0",
        None,
        None,
        true,
    )?;
    ensure!(gone.status == 200, "{gone:?}");
    let mut ns_gone = false;
    for _ in 0..100 {
        if server
            .curl("GET", "/api/v1/namespaces/t", None, None, true)?
            .status
            == 404
        {
            ns_gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ensure!(ns_gone, "namespace t never finished terminating");
    Ok(())
}
