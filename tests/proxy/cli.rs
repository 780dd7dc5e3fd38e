//! `keelson-node lb desired` as a user runs it against a live server.

use std::process::{Command, Output};

use anyhow::Result;
use k8s_openapi::api::core::v1::Node;
use keelson_e2e::server::ServerProcess;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{client, create_web, create_web_slices, node_binary, server_port};

fn lb_desired(server: &ServerProcess, args: &[&str]) -> Result<Output> {
    Ok(Command::new(node_binary()?)
        .args(["lb", "desired", "--kubeconfig"])
        .arg(server.kubeconfig())
        .args(args)
        .env("KEELSON_LOG", "warn")
        .output()?)
}

/// The table row (and its continuation lines) of one frontend.
fn rows_of<'a>(table: &'a str, frontend: &str) -> Vec<&'a str> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in table.lines() {
        if line.starts_with(frontend) && line[frontend.len()..].starts_with(' ') {
            inside = true;
        } else if !line.starts_with(' ') {
            inside = false;
        }
        if inside {
            rows.push(line);
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_desired_prints_one_row_per_frontend_and_one_line_per_backend() -> Result<()> {
    let server = ServerProcess::start()?;
    let client = client(&server).await?;
    let web = create_web(&client).await?;
    create_web_slices(&client, &web).await?;

    let out = lb_desired(
        &server,
        &["--node-name", "node-a", "--node-ip", "127.0.0.1"],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    println!("{stdout}");

    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("FRONTEND") && lines[0].ends_with("BACKENDS"),
        "{stdout}"
    );
    let kubernetes = rows_of(&stdout, "10.96.0.1:443/TCP");
    assert_eq!(kubernetes.len(), 1, "{stdout}");
    assert!(kubernetes[0].contains("ClusterIP"), "{stdout}");
    assert!(
        kubernetes[0].contains("default/kubernetes:https"),
        "{stdout}"
    );
    assert!(
        kubernetes[0].ends_with(&format!(
            "1 => 127.0.0.1:{}/TCP (active)",
            server_port(&server)?
        )),
        "{stdout}"
    );

    let http = rows_of(&stdout, &format!("{}:80/TCP", web.cluster_ip));
    assert_eq!(http.len(), 3, "{stdout}");
    assert!(http[0].contains("shop/web:http"), "{stdout}");
    assert!(http[0].contains("random,affinity=10800s"), "{stdout}");
    assert!(
        http[0].ends_with("1 => 10.244.1.17:8080/TCP (active, node node-a)"),
        "{stdout}"
    );
    assert!(
        http[2].trim_start() == "3 => 10.244.3.5:8080/TCP (active, node node-c)",
        "{stdout}"
    );
    let node_port = rows_of(&stdout, &format!("127.0.0.1:{}/TCP", web.http_node_port));
    assert_eq!(node_port.len(), 3, "{stdout}");
    assert!(node_port[0].contains("NodePort"), "{stdout}");
    assert!(node_port[0].contains("maglev"), "{stdout}");
    let dns = rows_of(&stdout, &format!("{}:53/UDP", web.cluster_ip));
    assert!(dns[0].contains("5353/UDP"), "{stdout}");
    // Header + 1 (kubernetes) + 4 frontends × 3 backends.
    assert_eq!(lines.len(), 1 + 1 + 4 * 3, "{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_desired_takes_node_ports_addresses_from_the_node_object() -> Result<()> {
    let server = ServerProcess::start()?;
    let client = client(&server).await?;
    let web = create_web(&client).await?;
    let nodes = Api::<Node>::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "node-a"}}
    }))?;
    nodes.create(&PostParams::default(), &node).await?;
    nodes
        .patch_status(
            "node-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "127.0.0.2"},
                {"type": "InternalIP", "address": "fd00::2"},
                {"type": "Hostname", "address": "node-a"}
            ]}})),
        )
        .await?;

    let out = lb_desired(&server, &["--node-name", "node-a"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node_port = rows_of(&stdout, &format!("127.0.0.2:{}/TCP", web.http_node_port));
    assert_eq!(node_port.len(), 1, "{stdout}");
    assert!(
        node_port[0].ends_with("(none: connections refused)"),
        "{stdout}"
    );

    // A node without a Node object: no node ports, and a warning says why.
    let out = lb_desired(&server, &["--node-name", "node-z"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("NodePort"), "{stdout}");
    assert!(stderr.contains("no node ports listed"), "{stderr}");
    Ok(())
}

#[test]
fn lb_desired_with_a_bad_kubeconfig_fails_clearly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.kubeconfig");
    let out = Command::new(node_binary()?)
        .args(["lb", "desired", "--node-name", "n1", "--kubeconfig"])
        .arg(&missing)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("nope.kubeconfig"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    std::fs::write(&missing, "apiVersion: v1\nkind: Config\nclusters: [oops\n")?;
    let out = Command::new(node_binary()?)
        .args(["lb", "desired", "--node-name", "n1", "--kubeconfig"])
        .arg(&missing)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("kubeconfig"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}
