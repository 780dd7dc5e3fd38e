//! The new-user walk-through with an unmodified kubectl.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use keelson_e2e::server::ServerProcess;

#[test]
fn kubectl_walkthrough() -> Result<()> {
    let server = ServerProcess::start()?;

    let namespaces = server.kubectl_ok(&["get", "ns"])?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure!(
            namespaces.contains(ns),
            "`kubectl get ns` lacks {ns}:\n{namespaces}"
        );
    }
    ensure!(
        namespaces.contains("Active"),
        "no STATUS column:\n{namespaces}"
    );

    server.kubectl_ok(&["create", "ns", "demo"])?;
    server.kubectl_ok(&[
        "create",
        "configmap",
        "c",
        "--from-literal=a=1",
        "-n",
        "demo",
    ])?;
    let yaml = server.kubectl_ok(&["get", "cm", "-n", "demo", "-o", "yaml"])?;
    ensure!(yaml.contains("a: \"1\""), "configmap data missing:\n{yaml}");
    ensure!(
        yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "server fields missing:\n{yaml}"
    );

    server.kubectl_ok(&["label", "cm", "c", "x=y", "-n", "demo"])?;
    let labelled = server.kubectl_ok(&["get", "cm", "-l", "x=y", "-n", "demo"])?;
    ensure!(
        labelled.lines().any(|l| l.starts_with("c ")),
        "label selector missed c:\n{labelled}"
    );
    let none = server.kubectl(&["get", "cm", "-l", "x=z", "-n", "demo"])?;
    ensure!(!none.1.contains("c "), "x=z matched c:\n{}", none.1);

    // `kubectl get -w` prints a change made by another client.
    let mut watch = server
        .kubectl_command(&["get", "cm", "-n", "demo", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = watch.stdout.take().context("watch stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait for the initial listing before changing anything.
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .context("watch printed nothing")?;
    ensure!(
        first.contains("NAME") || first.contains(" c "),
        "unexpected first watch line {first:?}"
    );
    server.kubectl_ok(&[
        "create",
        "configmap",
        "d",
        "--from-literal=b=2",
        "-n",
        "demo",
    ])?;
    let mut seen = Vec::new();
    let saw_d = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => {
                let hit = line.contains("ADDED") && line.split_whitespace().any(|w| w == "d");
                seen.push(line);
                if hit {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = watch.kill();
    let _ = watch.wait();
    ensure!(
        saw_d,
        "the watch never printed configmap d; it printed:\n{}",
        seen.join("\n")
    );

    // Error cases, as kubectl shows them.
    let (ok, _, err) = server.kubectl(&["get", "cm", "nope", "-n", "demo"])?;
    ensure!(
        !ok && err.contains("(NotFound)") && err.contains("configmaps \"nope\" not found"),
        "{err}"
    );
    let (ok, _, err) = server.kubectl(&["create", "ns", "demo"])?;
    ensure!(!ok && err.contains("(AlreadyExists)"), "{err}");
    let (ok, _, err) = server.kubectl(&["create", "configmap", "Bad_Name", "-n", "demo"])?;
    ensure!(
        !ok && err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    let (ok, _, err) = server.kubectl(&["create", "configmap", "e", "-n", "nosuchns"])?;
    ensure!(
        !ok && err.contains("namespaces \"nosuchns\" not found"),
        "{err}"
    );

    // Deleting the namespace returns once it and its contents are gone.
    server.kubectl_ok(&["delete", "ns", "demo", "--timeout=60s"])?;
    let (ok, _, err) = server.kubectl(&["get", "ns", "demo"])?;
    ensure!(
        !ok && err.contains("(NotFound)"),
        "namespace still there: {err}"
    );
    let cms = server.kubectl_ok(&["get", "cm", "-A"])?;
    ensure!(!cms.contains("demo"), "contents of demo survived:\n{cms}");
    Ok(())
}
