//! `kill -9` of the server during a write storm loses no acknowledged
//! write, and revisions keep increasing across restarts.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use keelson_e2e::server::ServerProcess;

#[test]
fn sigkill_during_a_write_storm_loses_no_acknowledged_write() -> Result<()> {
    let mut server = ServerProcess::start()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/api/storm.py");
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..3 {
        let mut storm = Command::new("python3")
            .arg(script)
            .arg(server.kubeconfig())
            .arg(format!("r{round}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = storm.stdout.take().context("storm stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let mut this_round = 0;
        // Kill after a few hundred acknowledged writes, mid-storm.
        while this_round < 200 && started.elapsed() < Duration::from_secs(60) {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some((name, rv)) = line.split_once(' ') {
                acked.insert(name.to_owned(), rv.parse()?);
                this_round += 1;
            }
        }
        server.kill9();
        // Acks printed before the kill but not yet read still count.
        for line in lines.map_while(Result::ok) {
            if let Some((name, rv)) = line.split_once(' ') {
                acked.insert(name.to_owned(), rv.parse()?);
            }
        }
        let _ = storm.kill();
        let _ = storm.wait();
        ensure!(
            this_round >= 50,
            "round {round}: only {this_round} writes acknowledged before the kill"
        );
        server.restart()?;

        let list = server
            .curl(
                "GET",
                "/api/v1/namespaces/default/configmaps",
                None,
                None,
                true,
            )?
            .json();
        let stored: BTreeMap<String, i64> = list["items"]
            .as_array()
            .context("list items")?
            .iter()
            .filter_map(|i| {
                Some((
                    i["metadata"]["name"].as_str()?.to_owned(),
                    i["metadata"]["resourceVersion"].as_str()?.parse().ok()?,
                ))
            })
            .collect();
        let lost: Vec<&String> = acked.keys().filter(|k| !stored.contains_key(*k)).collect();
        ensure!(
            lost.is_empty(),
            "round {round}: {} acknowledged writes lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        for (name, rv) in &acked {
            ensure!(
                stored.get(name) == Some(rv),
                "{name}: acknowledged at {rv}, stored at {:?}",
                stored.get(name)
            );
        }
        // The next write gets a revision above every acknowledged one.
        let max = acked.values().copied().max().unwrap_or(0);
        let probe = server.curl(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"probe-{round}"}}}}"#).as_bytes()),
            true,
        )?;
        let rv: i64 = probe.json()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .parse()?;
        ensure!(
            rv > max,
            "round {round}: revision went backwards: {rv} <= {max}"
        );
    }
    eprintln!("{} acknowledged writes survived 3 SIGKILLs", acked.len());
    Ok(())
}
