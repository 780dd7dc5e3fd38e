//! SQLite-only behaviour: the file survives reopening with its revision
//! sequence, and a watcher that falls behind the live broadcast catches up
//! from the log without losing or repeating events.

use std::sync::Arc;

use keelson_control_plane::storage::sqlite::SqliteStore;
use keelson_control_plane::storage::{EventKind, Store};

use crate::harness::{next_event, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_revision_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let (a, b, deleted_at, compacted) = {
        let store = SqliteStore::open(&path).expect("open");
        let a = store.create("/k/a", b"a1".to_vec()).await.expect("create");
        let a = store
            .update("/k/a", b"a2".to_vec(), a.mod_revision)
            .await
            .expect("update");
        let b = store.create("/k/b", b"b1".to_vec()).await.expect("create");
        let c = store.create("/k/c", b"c1".to_vec()).await.expect("create");
        store.compact(c.mod_revision).await.expect("compact");
        let (_, deleted_at) = store.delete("/k/c", None).await.expect("delete");
        (a, b, deleted_at, c.mod_revision)
    };

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.get("/k/a").await.expect("get"), Some(a.clone()));
    assert_eq!(store.get("/k/b").await.expect("get"), Some(b.clone()));
    assert_eq!(store.get("/k/c").await.expect("get"), None);
    assert_eq!(
        store.current_revision().await.expect("revision"),
        deleted_at
    );
    assert_eq!(
        store.compacted_revision().await.expect("compacted"),
        compacted
    );
    let next = store.create("/k/d", b"d1".to_vec()).await.expect("create");
    assert!(
        next.mod_revision > deleted_at,
        "revisions continue after reopen"
    );

    // The history that survived compaction still replays after reopen.
    let mut watch = store.watch("/k/", compacted - 1).await.expect("watch");
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, e.revision()), (EventKind::Added, compacted));
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, e.revision()), (EventKind::Deleted, deleted_at));
    let e = next_event(&mut watch).await;
    assert_eq!(e.kv, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_the_log() {
    let backend = sqlite();
    let store: Arc<dyn Store> = backend.store();
    let start = store.current_revision().await.expect("revision");
    let mut watch = store.watch("/lag/", start).await.expect("watch");
    // More separate commits than the live buffer holds, while the watcher
    // reads nothing; interleave keys it must not see.
    const WRITES: usize = 1_300;
    let mut revisions = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let kv = store
            .create(&format!("/lag/{i:05}"), vec![1])
            .await
            .expect("create");
        revisions.push(kv.mod_revision);
        if i % 100 == 0 {
            store
                .create(&format!("/other/{i}"), vec![1])
                .await
                .expect("create");
        }
    }
    for (i, revision) in revisions.iter().enumerate() {
        let e = next_event(&mut watch).await;
        assert_eq!(e.kv.key, format!("/lag/{i:05}"));
        assert_eq!(e.revision(), *revision, "event {i} in order, none lost");
    }
    let live = store.create("/lag/live", vec![2]).await.expect("create");
    assert_eq!(next_event(&mut watch).await.kv, live);
}

/// Throughput and latency of creates from 16 concurrent writers. A
/// measurement, not an assertion: run with
/// `cargo test -p keelson-e2e --test store -- --ignored --nocapture sqlite_create_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn sqlite_create_throughput_16_writers() {
    use std::time::{Duration, Instant};
    const WRITERS: usize = 16;
    const RUN: Duration = Duration::from_secs(5);
    let backend = sqlite();
    let store = backend.store();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while started.elapsed() < RUN {
                let key = format!("/registry/core/configmaps/bench/w{writer:02}-{n:08}");
                let t = Instant::now();
                store.create(&key, vec![b'x'; 512]).await.expect("create");
                latencies.push(t.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "sqlite: {} creates from {WRITERS} writers in {:.2}s = {:.0} writes/s; latency p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(1.0),
    );

    // Reads over what was written: a paginated list at one revision, a
    // count, point reads.
    let prefix = "/registry/core/configmaps/bench/";
    let t = Instant::now();
    let (mut listed, mut pages, mut after, mut at) = (0, 0, None::<String>, None);
    loop {
        let page = store
            .range(prefix, after.as_deref(), Some(500), at)
            .await
            .expect("range");
        listed += page.kvs.len();
        pages += 1;
        at = Some(page.revision);
        after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    let list = t.elapsed();
    let t = Instant::now();
    let count = store.count(prefix).await.expect("count");
    let counted = t.elapsed();
    assert_eq!(count as usize, listed);
    let t = Instant::now();
    for n in 0..1_000u64 {
        let key = format!("{prefix}w{:02}-{:08}", n % 16, n / 16);
        store.get(&key).await.expect("get");
    }
    println!(
        "sqlite: listed {listed} keys in {pages} pages of 500 in {list:?}; count in {counted:?}; 1000 gets in {:?}",
        t.elapsed()
    );
}
