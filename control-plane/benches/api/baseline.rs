//! The raw etcd baseline: plain puts (what `etcdctl put` does) straight to
//! an etcd with the etcd-client crate, each client its own gRPC channel,
//! values of the size keelson stores for a ConfigMap. Keys live under
//! `/bench-raw/`, outside keelson's `/registry/`. Owns nothing else.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

use crate::stats::{Samples, Summary};

/// `clients` concurrent put loops of `value_size`-byte values for
/// `duration`.
pub async fn puts(
    endpoint: &str,
    clients: usize,
    value_size: usize,
    duration: Duration,
) -> Result<Summary> {
    let value: Vec<u8> = (0..value_size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut kvs = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut client = etcd_client::Client::connect([endpoint], None)
            .await
            .with_context(|| format!("connecting to etcd at {endpoint}"))?;
        // Channels connect lazily: make sure this one is up before timing.
        client.status().await.context("etcd status")?;
        kvs.push(client.kv_client());
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for (w, mut kv) in kvs.into_iter().enumerate() {
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(4096);
            let mut seq = 0u64;
            while Instant::now() < deadline && samples.errors < 50 {
                let key = format!("/bench-raw/{clients}/{w}/{seq}");
                seq += 1;
                let sent = Instant::now();
                match kv.put(key, value.clone(), None).await {
                    Ok(_) => samples.record(sent.elapsed()),
                    Err(e) => samples.error(format!("etcd put: {e}")),
                }
            }
            (samples, Instant::now())
        }));
    }
    let mut all = Samples::default();
    let mut end = start;
    for task in tasks {
        let (samples, done) = task.await.context("an etcd put worker panicked")?;
        all.merge(samples);
        end = end.max(done);
    }
    Ok(all.summary(end - start))
}
