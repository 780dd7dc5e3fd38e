//! The load the `api` bench puts on a keelson-server: closed-loop creates
//! and updates of ~1 KiB ConfigMaps, an open-loop paced write load, watch
//! fan-out to many watchers, and bulk pod creation. Each function takes
//! already-open connections and returns what it measured; it starts no
//! processes and prints nothing.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    client::{Conn, Endpoint, Reply},
    stats::{Samples, Summary},
};

/// Bytes of `data.payload` in every ConfigMap.
pub const PAYLOAD: usize = 1024;
/// A worker gives up after this many failed requests in one phase (a dead
/// connection would otherwise spin until the deadline).
const MAX_WORKER_ERRORS: u64 = 50;

/// Opens `n` connections to `endpoint`, each its own TCP/TLS/HTTP2 session.
pub async fn connect(endpoint: &Endpoint, n: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(endpoint.connect().await?);
    }
    Ok(conns)
}

/// Creates namespace `name` (an existing one is fine).
pub async fn ensure_namespace(conn: &mut Conn, name: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let reply = conn
        .request(Method::POST, "/api/v1/namespaces", Some(to_bytes(&body)))
        .await?;
    if reply.status == StatusCode::CONFLICT {
        return Ok(());
    }
    reply
        .ok()
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// A ConfigMap of ~1 KiB whose payload depends on `seq` (so each update
/// changes it); `resource_version` makes a PUT conditional.
pub fn configmap(name: &str, resource_version: Option<&str>, seq: u64) -> Bytes {
    let mut payload = format!("{seq:016x}-");
    let filler = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut i = seq as usize;
    while payload.len() < PAYLOAD {
        payload.push(filler[i % filler.len()] as char);
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    let mut metadata = json!({ "name": name });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = Value::from(rv);
    }
    to_bytes(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": { "payload": payload },
    }))
}

fn configmaps(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

/// `metadata.resourceVersion` of a reply's object.
fn resource_version(reply: &Reply) -> Result<String> {
    reply
        .json()?
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the reply has no metadata.resourceVersion")
}

/// Per client: the ConfigMaps it created, as (name, resourceVersion).
pub type Created = Vec<Vec<(String, String)>>;

/// Creates ConfigMaps `<prefix>-<client>-<seq>` in `ns` from every
/// connection, each as fast as its replies come back, for `duration`.
pub async fn creates(
    conns: &[Conn],
    ns: &str,
    prefix: &str,
    duration: Duration,
) -> Result<(Summary, Created)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (w, conn) in conns.iter().cloned().enumerate() {
        let (path, prefix) = (configmaps(ns), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut samples = Samples::with_capacity(4096);
            let mut made = Vec::new();
            let mut seq = 0u64;
            while Instant::now() < deadline && samples.errors < MAX_WORKER_ERRORS {
                let name = format!("{prefix}-{w}-{seq}");
                let body = configmap(&name, None, seq);
                seq += 1;
                let sent = Instant::now();
                let reply = conn
                    .request(Method::POST, &path, Some(body))
                    .await
                    .and_then(Reply::ok);
                let took = sent.elapsed();
                match reply.and_then(|r| resource_version(&r)) {
                    Ok(rv) => {
                        samples.record(took);
                        made.push((name, rv));
                    }
                    Err(e) => samples.error(format!("create: {e:#}")),
                }
            }
            (samples, made, Instant::now())
        }));
    }
    let mut all = Samples::default();
    let mut created = Vec::new();
    let mut end = start;
    for task in tasks {
        let (samples, made, done) = task.await.context("a create worker panicked")?;
        all.merge(samples);
        created.push(made);
        end = end.max(done);
    }
    Ok((all.summary(end - start), created))
}

/// Updates (conditional PUT with the last resourceVersion) each client's
/// own ConfigMaps round-robin, for `duration`; `created[i]` belongs to
/// `conns[i]`.
pub async fn updates(
    conns: &[Conn],
    ns: &str,
    created: Created,
    duration: Duration,
) -> Result<Summary> {
    if created.len() != conns.len() || created.iter().any(Vec::is_empty) {
        bail!("every update client needs ConfigMaps of its own");
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (conn, mut objects) in conns.iter().cloned().zip(created) {
        let path = configmaps(ns);
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut samples = Samples::with_capacity(4096);
            let mut seq = 1u64 << 32;
            while Instant::now() < deadline && samples.errors < MAX_WORKER_ERRORS {
                let i = (seq as usize) % objects.len();
                let (name, rv) = &objects[i];
                let body = configmap(name, Some(rv), seq);
                seq += 1;
                let url = format!("{path}/{name}");
                let sent = Instant::now();
                let reply = conn
                    .request(Method::PUT, &url, Some(body))
                    .await
                    .and_then(Reply::ok);
                let took = sent.elapsed();
                match reply.and_then(|r| resource_version(&r)) {
                    Ok(rv) => {
                        samples.record(took);
                        objects[i].1 = rv;
                    }
                    Err(e) => samples.error(format!("update: {e:#}")),
                }
            }
            (samples, Instant::now())
        }));
    }
    let mut all = Samples::default();
    let mut end = start;
    for task in tasks {
        let (samples, done) = task.await.context("an update worker panicked")?;
        all.merge(samples);
        end = end.max(done);
    }
    Ok(all.summary(end - start))
}

/// What the paced (open-loop) load measured.
pub struct Paced {
    /// Latency from each write's *scheduled* send time to its reply.
    pub all: Summary,
    pub creates: Summary,
    pub updates: Summary,
    /// The rate asked for and the rate the replies came back at.
    pub target_rate: f64,
    pub achieved_rate: f64,
    /// How late the generator itself got at worst (its own scheduling).
    pub max_send_lag: Duration,
}

/// Open loop: `rate` writes per second for `duration`, sent at fixed
/// intervals regardless of replies (spread over `conns`), alternating
/// creates of new ConfigMaps and unconditional updates of `existing` ones.
/// Latency counts from the scheduled send time, so a stalled server is
/// charged for the requests that queued behind it (no coordinated
/// omission).
pub async fn paced(
    conns: &[Conn],
    ns: &str,
    existing: &[String],
    rate: f64,
    duration: Duration,
) -> Result<Paced> {
    if existing.is_empty() || conns.is_empty() {
        bail!("the paced load needs connections and existing ConfigMaps");
    }
    let period = Duration::from_secs_f64(1.0 / rate);
    let n = (rate * duration.as_secs_f64()).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let path = configmaps(ns);
    let mut tasks = Vec::with_capacity(n as usize);
    let mut max_send_lag = Duration::ZERO;
    for i in 0..n {
        let scheduled = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        max_send_lag = max_send_lag.max(scheduled.elapsed());
        let mut conn = conns[(i as usize) % conns.len()].clone();
        let is_create = i % 2 == 0;
        let (method, url, body) = if is_create {
            let name = format!("paced-{i}");
            (Method::POST, path.clone(), configmap(&name, None, i))
        } else {
            let name = &existing[(i as usize / 2) % existing.len()];
            (
                Method::PUT,
                format!("{path}/{name}"),
                configmap(name, None, i),
            )
        };
        tasks.push(tokio::spawn(async move {
            let reply = conn
                .request(method, &url, Some(body))
                .await
                .and_then(Reply::ok);
            (is_create, scheduled, Instant::now(), reply.map(drop))
        }));
    }
    let mut all = Samples::with_capacity(n as usize);
    let (mut creates, mut updates) = (Samples::default(), Samples::default());
    let mut end = start;
    for task in tasks {
        let (is_create, scheduled, done, result) = task.await.context("a paced write panicked")?;
        end = end.max(done);
        let kind = if is_create {
            &mut creates
        } else {
            &mut updates
        };
        match result {
            Ok(()) => {
                all.record(done - scheduled);
                kind.record(done - scheduled);
            }
            Err(e) => {
                all.error(format!("{e:#}"));
                kind.error(format!("{e:#}"));
            }
        }
    }
    let elapsed = end - start;
    let achieved_rate = all.len() as f64 / elapsed.as_secs_f64();
    Ok(Paced {
        all: all.summary(elapsed),
        creates: creates.summary(elapsed),
        updates: updates.summary(elapsed),
        target_rate: rate,
        achieved_rate,
        max_send_lag,
    })
}

/// What the watch fan-out measured.
pub struct WatchFanout {
    pub watchers: usize,
    pub writes: usize,
    /// Receipt at a watcher minus the moment the write's reply reached the
    /// writer (clamped at zero; see `early`).
    pub after_reply: Summary,
    /// Receipt at a watcher minus the moment the write was sent.
    pub after_send: Summary,
    /// Deliveries that arrived before the writer had its reply.
    pub early: u64,
    /// (watcher, write) pairs never delivered.
    pub missing: u64,
    /// Events delivered more than once to the same watcher.
    pub duplicates: u64,
    /// Watch streams that failed or ended early (with the first reason).
    pub stream_errors: u64,
    pub first_stream_error: Option<String>,
}

/// Opens `watchers` watch streams (one connection each) on `ns` from its
/// current resourceVersion, then creates `writes` ConfigMaps at `rate`
/// per second from a separate connection, and matches every ADDED event
/// at every watcher to its write by name.
pub async fn watch_fanout(
    endpoint: &Endpoint,
    ns: &str,
    watchers: usize,
    writes: usize,
    rate: f64,
) -> Result<WatchFanout> {
    let mut writer = endpoint.connect().await?;
    let list = writer
        .request(Method::GET, &format!("{}?limit=1", configmaps(ns)), None)
        .await?
        .ok()
        .context("listing before watching")?
        .json()?;
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .context("the list has no resourceVersion")?
        .to_owned();
    let watch_path = format!("{}?watch=1&resourceVersion={rv}", configmaps(ns));

    // Every watcher is subscribed once its response headers are back.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut streams = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut conn = endpoint.connect().await?;
        streams.push(conn.stream(&watch_path).await?);
    }
    let mut tasks = Vec::with_capacity(watchers);
    for body in streams {
        tasks.push(tokio::spawn(read_watch(body, writes, stopped.clone())));
    }

    // The writes, paced, each timed at send and at reply.
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut sends = Vec::with_capacity(writes);
    for i in 0..writes {
        tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
        let mut conn = writer.clone();
        let path = configmaps(ns);
        sends.push(tokio::spawn(async move {
            let name = format!("watched-{i}");
            let sent = Instant::now();
            let reply = conn
                .request(Method::POST, &path, Some(configmap(&name, None, i as u64)))
                .await
                .and_then(Reply::ok);
            (name, sent, Instant::now(), reply.map(drop))
        }));
    }
    let mut written = HashMap::with_capacity(writes);
    for send in sends {
        let (name, sent, replied, result) = send.await.context("a watched write panicked")?;
        result.with_context(|| format!("creating {name}"))?;
        written.insert(name, (sent, replied));
    }
    // Give the stragglers a moment, then stop whoever is still waiting.
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let _ = stop.send(true);
    });
    let mut results = Vec::with_capacity(watchers);
    for task in tasks {
        results.push(task.await.context("a watcher panicked")?);
    }
    stopper.abort();

    let mut after_reply = Samples::with_capacity(watchers * writes);
    let mut after_send = Samples::with_capacity(watchers * writes);
    let (mut early, mut missing, mut duplicates) = (0u64, 0u64, 0u64);
    let mut stream_errors = 0u64;
    let mut first_stream_error = None;
    for result in results {
        if let Some(e) = result.error {
            stream_errors += 1;
            first_stream_error.get_or_insert(e);
        }
        let mut seen = HashMap::with_capacity(writes);
        for (name, at) in result.received {
            let Some(&(sent, replied)) = written.get(&name) else {
                continue;
            };
            if seen.insert(name, ()).is_some() {
                duplicates += 1;
                continue;
            }
            if at < replied {
                early += 1;
            }
            after_reply.record(at.saturating_duration_since(replied));
            after_send.record(at.saturating_duration_since(sent));
        }
        missing += written.len().saturating_sub(seen.len()) as u64;
    }
    let elapsed = start.elapsed();
    Ok(WatchFanout {
        watchers,
        writes,
        after_reply: after_reply.summary(elapsed),
        after_send: after_send.summary(elapsed),
        early,
        missing,
        duplicates,
        stream_errors,
        first_stream_error,
    })
}

struct WatcherResult {
    /// (object name, receipt time) of every ADDED event.
    received: Vec<(String, Instant)>,
    error: Option<String>,
}

/// Reads one watch stream until `expected` ADDED events arrived, the
/// stream ends, or `stop` fires. Times each frame at arrival, before any
/// parsing.
async fn read_watch(
    mut body: hyper::body::Incoming,
    expected: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> WatcherResult {
    let mut received = Vec::with_capacity(expected);
    let mut buf: Vec<u8> = Vec::new();
    let error = loop {
        if received.len() >= expected {
            break None;
        }
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = stop.wait_for(|stop| *stop) => {
                break Some("stopped before every event arrived".to_owned())
            }
        };
        let at = Instant::now();
        let data = match frame {
            None => break Some("the watch stream ended".to_owned()),
            Some(Err(e)) => break Some(format!("reading the watch stream: {e}")),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if event["type"] == "ADDED"
                && let Some(name) = event
                    .pointer("/object/metadata/name")
                    .and_then(Value::as_str)
            {
                received.push((name.to_owned(), at));
            }
        }
    };
    WatcherResult { received, error }
}

/// Creates `count` minimal pods in `ns` from all `conns` at once; returns
/// the create summary.
pub async fn pods(conns: &[Conn], ns: &str, count: u64) -> Result<Summary> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for conn in conns.iter().cloned() {
        let next = next.clone();
        let path = format!("/api/v1/namespaces/{ns}/pods");
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut samples = Samples::with_capacity(1024);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || samples.errors >= MAX_WORKER_ERRORS {
                    break;
                }
                let body = to_bytes(&json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": { "name": format!("pod-{i:05}") },
                    "spec": { "containers": [{ "name": "c", "image": "keelson.local/pause:1" }] },
                }));
                let sent = Instant::now();
                match conn
                    .request(Method::POST, &path, Some(body))
                    .await
                    .and_then(Reply::ok)
                {
                    Ok(_) => samples.record(sent.elapsed()),
                    Err(e) => samples.error(format!("pod create: {e:#}")),
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        all.merge(task.await.context("a pod worker panicked")?);
    }
    Ok(all.summary(start.elapsed()))
}

/// The size of a created ConfigMap as the server returns it (≈ what it
/// stores), for sizing the raw etcd baseline's values.
pub async fn stored_size(conn: &mut Conn, ns: &str) -> Result<usize> {
    let reply = conn
        .request(
            Method::POST,
            &configmaps(ns),
            Some(configmap("size-probe", None, 0)),
        )
        .await?
        .ok()
        .context("creating the size probe")?;
    Ok(reply.body.len())
}
