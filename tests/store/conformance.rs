//! The behaviours every [`Store`] backend must share, written once. Each
//! function gets a fresh, empty store; `main.rs` runs each against SQLite
//! and against etcd. Absolute revision numbers differ between backends
//! (etcd starts at 1), so only relations between revisions are asserted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use keelson_control_plane::storage::{EventKind, KeyValue, Store, StoreError};

use crate::harness::{assert_quiet, expect_err, next_event};

const PODS: &str = "/registry/core/pods/default/";

fn pod(name: &str) -> String {
    format!("{PODS}{name}")
}

pub async fn create_get_already_exists(store: Arc<dyn Store>) {
    let key = pod("web");
    assert_eq!(store.get(&key).await.expect("get"), None);
    let kv = store.create(&key, b"v1".to_vec()).await.expect("create");
    assert_eq!(kv.key, key);
    assert_eq!(kv.value, b"v1");
    assert!(kv.mod_revision > 0);
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(store.get(&key).await.expect("get"), Some(kv.clone()));
    assert_eq!(
        store.current_revision().await.expect("revision"),
        kv.mod_revision
    );

    match expect_err(store.create(&key, b"v2".to_vec()).await, "second create") {
        StoreError::AlreadyExists(k) => assert_eq!(k, key),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The failed create changed nothing.
    assert_eq!(store.get(&key).await.expect("get"), Some(kv.clone()));
    assert_eq!(
        store.current_revision().await.expect("revision"),
        kv.mod_revision
    );
    // A key that is a prefix of another is a different key.
    assert_eq!(store.get(&pod("we")).await.expect("get"), None);
}

pub async fn update_compare_and_swap(store: Arc<dyn Store>) {
    let key = pod("web");
    let v1 = store.create(&key, b"v1".to_vec()).await.expect("create");
    let v2 = store
        .update(&key, b"v2".to_vec(), v1.mod_revision)
        .await
        .expect("update with the current revision");
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.create_revision, v1.create_revision);
    assert_eq!(v2.value, b"v2");
    assert_eq!(store.get(&key).await.expect("get"), Some(v2.clone()));

    match expect_err(
        store.update(&key, b"v3".to_vec(), v1.mod_revision).await,
        "update with a stale revision",
    ) {
        StoreError::Conflict {
            key: k,
            expected,
            current,
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, v1.mod_revision);
            assert_eq!(*current, v2, "Conflict carries the current value");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.expect("get"), Some(v2.clone()));

    let missing = pod("missing");
    for expected in [0, 1, v2.mod_revision] {
        match expect_err(
            store.update(&missing, b"x".to_vec(), expected).await,
            "update of a missing key",
        ) {
            StoreError::NotFound(k) => assert_eq!(k, missing),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert_eq!(
        store.get(&missing).await.expect("get"),
        None,
        "a failed update must not create the key"
    );
    assert_eq!(
        store.current_revision().await.expect("revision"),
        v2.mod_revision
    );
}

pub async fn delete_with_and_without_expected(store: Arc<dyn Store>) {
    let (a, b) = (pod("a"), pod("b"));
    let a1 = store.create(&a, b"a1".to_vec()).await.expect("create a");
    let b1 = store.create(&b, b"b1".to_vec()).await.expect("create b");
    let a2 = store
        .update(&a, b"a2".to_vec(), a1.mod_revision)
        .await
        .expect("update a");

    match expect_err(
        store.delete(&a, Some(a1.mod_revision)).await,
        "delete with a stale revision",
    ) {
        StoreError::Conflict { current, .. } => assert_eq!(*current, a2),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&a).await.expect("get"), Some(a2.clone()));

    let (deleted, at) = store
        .delete(&a, Some(a2.mod_revision))
        .await
        .expect("delete with the current revision");
    assert_eq!(deleted, a2, "delete returns the deleted value");
    assert!(at > a2.mod_revision);
    assert_eq!(store.get(&a).await.expect("get"), None);
    assert_eq!(store.current_revision().await.expect("revision"), at);

    for expected in [None, Some(a2.mod_revision), Some(at)] {
        match expect_err(store.delete(&a, expected).await, "delete of a missing key") {
            StoreError::NotFound(k) => assert_eq!(k, a),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    let (deleted, at2) = store.delete(&b, None).await.expect("unconditional delete");
    assert_eq!(deleted, b1);
    assert!(at2 > at);

    // A key created again starts a new life.
    let again = store.create(&a, b"a3".to_vec()).await.expect("recreate");
    assert!(again.mod_revision > at2);
    assert_eq!(again.create_revision, again.mod_revision);
}

pub async fn revisions_strictly_increase(store: Arc<dyn Store>) {
    let mut last = store.current_revision().await.expect("revision");
    let mut current: Option<KeyValue> = None;
    for i in 0..30 {
        let key = pod(&format!("k{}", i % 3));
        let revision = match i % 5 {
            0..=2 => match store.create(&key, vec![i]).await {
                Ok(kv) => kv.mod_revision,
                Err(StoreError::AlreadyExists(_)) => {
                    let kv = store.get(&key).await.expect("get").expect("exists");
                    store
                        .update(&key, vec![i], kv.mod_revision)
                        .await
                        .expect("update")
                        .mod_revision
                }
                Err(e) => panic!("create: {e}"),
            },
            3 => {
                let kv = store.get(&key).await.expect("get");
                match kv {
                    Some(kv) => {
                        store
                            .delete(&key, Some(kv.mod_revision))
                            .await
                            .expect("delete")
                            .1
                    }
                    None => {
                        store
                            .create(&key, vec![i])
                            .await
                            .expect("create")
                            .mod_revision
                    }
                }
            }
            _ => {
                let kv = store
                    .create(&pod(&format!("n{i}")), vec![i])
                    .await
                    .expect("create");
                current = Some(kv.clone());
                kv.mod_revision
            }
        };
        assert!(revision > last, "revision {revision} after {last}");
        last = revision;
    }
    // Failed writes do not consume revisions.
    let existing = current.expect("created at least once");
    let _ = store.create(&existing.key, vec![0]).await;
    let _ = store
        .update(&existing.key, vec![0], existing.mod_revision - 1)
        .await;
    let _ = store.delete(&pod("never"), None).await;
    assert_eq!(store.current_revision().await.expect("revision"), last);
}

pub async fn range_pages_at_a_fixed_revision(store: Arc<dyn Store>) {
    let mut snapshot = Vec::new();
    for i in 0..10 {
        snapshot.push(
            store
                .create(&pod(&format!("p{i:02}")), format!("v{i}").into_bytes())
                .await
                .expect("create"),
        );
    }
    // Neighbours outside the prefix, before and after it in key order.
    store
        .create("/registry/core/pods/defaulta/x", b"x".to_vec())
        .await
        .expect("create");
    store
        .create("/registry/core/configmaps/default/c", b"c".to_vec())
        .await
        .expect("create");
    store
        .create("/registry/core/pods/default", b"no slash".to_vec())
        .await
        .expect("create");

    let first = store
        .range(PODS, None, Some(4), None)
        .await
        .expect("first page");
    let at = first.revision;
    assert_eq!(at, store.current_revision().await.expect("revision"));
    assert_eq!(first.kvs, snapshot[0..4]);
    assert!(first.more);

    // Writes between pages must not show in later pages at `at`.
    store
        .update(&pod("p05"), b"new".to_vec(), snapshot[5].mod_revision)
        .await
        .expect("update");
    store.delete(&pod("p06"), None).await.expect("delete");
    store
        .create(&pod("p03a"), b"new".to_vec())
        .await
        .expect("create");
    store
        .create(&pod("p10"), b"new".to_vec())
        .await
        .expect("create");

    let mut listed = first.kvs.clone();
    let mut next = first;
    let mut pages = 1;
    while next.more {
        let after = next
            .kvs
            .last()
            .expect("a page with more is not empty")
            .key
            .clone();
        next = store
            .range(PODS, Some(&after), Some(4), Some(at))
            .await
            .expect("next page");
        assert_eq!(next.revision, at);
        listed.extend(next.kvs.iter().cloned());
        pages += 1;
        assert!(pages <= 3, "10 keys in pages of 4 take 3 pages");
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, snapshot, "the pages are the snapshot at {at}");

    // Now: the new state.
    let now = store
        .range(PODS, None, None, None)
        .await
        .expect("range now");
    assert!(now.revision > at);
    assert!(!now.more);
    let keys: Vec<&str> = now.kvs.iter().map(|kv| kv.key.as_str()).collect();
    let expected: Vec<String> = [
        "p00", "p01", "p02", "p03", "p03a", "p04", "p05", "p07", "p08", "p09", "p10",
    ]
    .iter()
    .map(|n| pod(n))
    .collect();
    assert_eq!(keys, expected);
    assert_eq!(now.kvs[6].value, b"new");

    // A limit equal to the number of keys has nothing more.
    let exact = store
        .range(PODS, None, Some(11), None)
        .await
        .expect("range");
    assert_eq!(exact.kvs.len(), 11);
    assert!(!exact.more);
    // Resuming past the prefix yields nothing.
    let past = store
        .range(PODS, Some("/registry/core/pods/defaultz"), None, None)
        .await
        .expect("range past the prefix");
    assert!(past.kvs.is_empty() && !past.more);
    // The empty prefix is every key.
    let all = store.range("", None, None, None).await.expect("range all");
    assert_eq!(all.kvs.len(), 14);

    let current = store.current_revision().await.expect("revision");
    match expect_err(
        store.range(PODS, None, None, Some(current + 1000)).await,
        "range in the future",
    ) {
        StoreError::FutureRevision {
            requested,
            current: c,
        } => {
            assert_eq!(requested, current + 1000);
            assert_eq!(c, current);
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

pub async fn range_after_compaction(store: Arc<dyn Store>) {
    let (a, b) = (pod("a"), pod("b"));
    let a1 = store.create(&a, b"a1".to_vec()).await.expect("create");
    let a2 = store
        .update(&a, b"a2".to_vec(), a1.mod_revision)
        .await
        .expect("update");
    let gone = store
        .create(&pod("gone"), b"g".to_vec())
        .await
        .expect("create");
    store.delete(&gone.key, None).await.expect("delete");
    let b1 = store.create(&b, b"b1".to_vec()).await.expect("create");
    let a3 = store
        .update(&a, b"a3".to_vec(), a2.mod_revision)
        .await
        .expect("update");

    assert_eq!(store.compacted_revision().await.expect("compacted"), 0);
    store.compact(b1.mod_revision).await.expect("compact");
    assert_eq!(
        store.compacted_revision().await.expect("compacted"),
        b1.mod_revision
    );

    match expect_err(
        store.range(PODS, None, None, Some(a1.mod_revision)).await,
        "range before the compaction",
    ) {
        StoreError::Compacted {
            requested,
            compacted,
        } => {
            assert_eq!(requested, a1.mod_revision);
            assert_eq!(compacted, b1.mod_revision);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let at = store
        .range(PODS, None, None, Some(b1.mod_revision))
        .await
        .expect("range at the compaction revision");
    assert_eq!(at.kvs, vec![a2.clone(), b1.clone()]);
    let now = store
        .range(PODS, None, None, None)
        .await
        .expect("range now");
    assert_eq!(now.kvs, vec![a3.clone(), b1.clone()]);
    assert_eq!(store.get(&a).await.expect("get"), Some(a3.clone()));
    assert_eq!(store.count(PODS).await.expect("count"), 2);

    // Compacting again lower, or at the same revision, changes nothing.
    store.compact(a2.mod_revision).await.expect("compact lower");
    store.compact(b1.mod_revision).await.expect("compact again");
    assert_eq!(
        store.compacted_revision().await.expect("compacted"),
        b1.mod_revision
    );
    let current = store.current_revision().await.expect("revision");
    assert!(matches!(
        store.compact(current + 100).await,
        Err(StoreError::FutureRevision { .. })
    ));
    // Compacting at the current revision keeps the current values.
    store.compact(current).await.expect("compact at current");
    assert_eq!(
        store.compacted_revision().await.expect("compacted"),
        current
    );
    let now = store
        .range(PODS, None, None, None)
        .await
        .expect("range now");
    assert_eq!(now.kvs, vec![a3, b1]);
}

pub async fn count_keys(store: Arc<dyn Store>) {
    assert_eq!(store.count(PODS).await.expect("count"), 0);
    for i in 0..5 {
        store
            .create(&pod(&format!("p{i}")), vec![i])
            .await
            .expect("create");
    }
    store
        .create("/registry/core/pods/defaultx/p", vec![0])
        .await
        .expect("create");
    store
        .create("/registry/core/configmaps/default/c", vec![0])
        .await
        .expect("create");
    let kv = store.get(&pod("p1")).await.expect("get").expect("exists");
    store
        .update(&pod("p1"), vec![9], kv.mod_revision)
        .await
        .expect("update");
    store.delete(&pod("p2"), None).await.expect("delete");
    assert_eq!(store.count(PODS).await.expect("count"), 4);
    assert_eq!(
        store
            .count("/registry/core/pods/")
            .await
            .expect("count all namespaces"),
        5
    );
    assert_eq!(store.count("/registry/").await.expect("count all"), 6);
    assert_eq!(store.count("").await.expect("count everything"), 6);
}

pub async fn watch_replays_history_then_live(store: Arc<dyn Store>) {
    let start = store.current_revision().await.expect("revision");
    let (a, b) = (pod("a"), pod("b"));
    let a1 = store.create(&a, b"a1".to_vec()).await.expect("create");
    store
        .create("/registry/core/configmaps/default/c", b"c".to_vec())
        .await
        .expect("create");
    let a2 = store
        .update(&a, b"a2".to_vec(), a1.mod_revision)
        .await
        .expect("update");
    let (_, deleted_at) = store.delete(&a, None).await.expect("delete");
    let b1 = store.create(&b, b"b1".to_vec()).await.expect("create");

    let mut watch = store.watch(PODS, start).await.expect("watch");
    let mut revisions = Vec::new();

    let e = next_event(&mut watch).await;
    assert_eq!(e.kind, EventKind::Added);
    assert_eq!(e.kv, a1);
    assert_eq!(e.prev, None);
    revisions.push(e.revision());

    let e = next_event(&mut watch).await;
    assert_eq!(e.kind, EventKind::Modified);
    assert_eq!(e.kv, a2);
    assert_eq!(e.prev, Some(a1.clone()));
    revisions.push(e.revision());

    let e = next_event(&mut watch).await;
    assert_eq!(e.kind, EventKind::Deleted);
    assert_eq!(e.kv.key, a);
    assert!(e.kv.value.is_empty());
    assert_eq!(e.kv.mod_revision, deleted_at);
    assert_eq!(e.kv.create_revision, a1.create_revision);
    assert_eq!(e.prev, Some(a2.clone()));
    revisions.push(e.revision());

    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Added, &b1));
    revisions.push(e.revision());

    // Caught up: now live changes.
    assert_quiet(&mut watch, Duration::from_millis(200)).await;
    let b2 = store
        .update(&b, b"b2".to_vec(), b1.mod_revision)
        .await
        .expect("update");
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, &e.kv, &e.prev),
        (EventKind::Modified, &b2, &Some(b1))
    );
    revisions.push(e.revision());
    let c = store
        .create(&pod("c"), b"c".to_vec())
        .await
        .expect("create");
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Added, &c));
    revisions.push(e.revision());

    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions strictly increase: {revisions:?}"
    );

    // A watch from the current revision sees only what comes next.
    let mut fresh = store
        .watch(PODS, c.mod_revision)
        .await
        .expect("watch from now");
    let (_, at) = store
        .delete(&c.key, Some(c.mod_revision))
        .await
        .expect("delete");
    let e = next_event(&mut fresh).await;
    assert_eq!((e.kind, e.revision()), (EventKind::Deleted, at));
}

pub async fn watch_from_compacted_revision_fails(store: Arc<dyn Store>) {
    let key = pod("a");
    let a1 = store.create(&key, b"1".to_vec()).await.expect("create");
    let a2 = store
        .update(&key, b"2".to_vec(), a1.mod_revision)
        .await
        .expect("update");
    let a3 = store
        .update(&key, b"3".to_vec(), a2.mod_revision)
        .await
        .expect("update");
    store.compact(a3.mod_revision).await.expect("compact");

    // Events after a1 start at a2, which is gone.
    match store.watch(PODS, a1.mod_revision).await {
        Err(StoreError::Compacted { compacted, .. }) => assert_eq!(compacted, a3.mod_revision),
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(_) => panic!("a watch from a compacted revision must fail"),
    }
    // Events after a3 - 1 start at a3, which is kept.
    let mut watch = store
        .watch(PODS, a3.mod_revision - 1)
        .await
        .expect("watch from the compaction revision");
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Modified, &a3));
}

pub async fn watch_prefix_isolation(store: Arc<dyn Store>) {
    let start = store.current_revision().await.expect("revision");
    let mut pods = store
        .watch("/registry/core/pods/", start)
        .await
        .expect("watch pods");
    for key in [
        "/registry/core/configmaps/default/c",
        "/registry/core/podtemplates/default/t",
        "/registry/core/pods",
        "/registry/core/podsx/default/p",
    ] {
        store.create(key, b"x".to_vec()).await.expect("create");
    }
    let pod = store
        .create("/registry/core/pods/default/p", b"p".to_vec())
        .await
        .expect("create pod");
    let e = next_event(&mut pods).await;
    assert_eq!(
        e.kv, pod,
        "the first event is the pod: nothing else leaks in"
    );
    store
        .create("/registry/core/configmaps/default/d", b"x".to_vec())
        .await
        .expect("create");
    assert_quiet(&mut pods, Duration::from_millis(300)).await;
}

pub async fn concurrent_cas_updaters(store: Arc<dyn Store>) {
    const WORKERS: u64 = 8;
    const INCREMENTS: u64 = 10;
    let key = pod("counter");
    let initial = store.create(&key, b"0".to_vec()).await.expect("create");

    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let store = Arc::clone(&store);
        let key = key.clone();
        let mut seen = initial.clone();
        tasks.push(tokio::spawn(async move {
            // (expected revision, new revision) of every successful update.
            let mut wins = Vec::new();
            let mut conflicts = 0u64;
            while (wins.len() as u64) < INCREMENTS {
                let n: u64 = std::str::from_utf8(&seen.value)
                    .expect("utf8")
                    .parse()
                    .expect("number");
                match store
                    .update(&key, (n + 1).to_string().into_bytes(), seen.mod_revision)
                    .await
                {
                    Ok(kv) => {
                        wins.push((seen.mod_revision, kv.mod_revision));
                        seen = kv;
                    }
                    Err(StoreError::Conflict { current, .. }) => {
                        conflicts += 1;
                        seen = *current;
                    }
                    Err(e) => panic!("update: {e}"),
                }
            }
            (wins, conflicts)
        }));
    }
    let mut expected_revisions = HashSet::new();
    let mut new_revisions = HashSet::new();
    let mut conflicts = 0;
    for task in tasks {
        let (wins, c) = task.await.expect("worker");
        conflicts += c;
        for (expected, new) in wins {
            assert!(
                expected_revisions.insert(expected),
                "two updates won from revision {expected}"
            );
            assert!(new_revisions.insert(new));
        }
    }
    let total = WORKERS * INCREMENTS;
    let last = store.get(&key).await.expect("get").expect("exists");
    assert_eq!(last.value, total.to_string().into_bytes());
    assert_eq!(new_revisions.len() as u64, total);
    assert_eq!(Some(&last.mod_revision), new_revisions.iter().max());
    assert!(conflicts > 0, "concurrent updaters must have collided");
}

pub async fn watches_started_during_writes_see_each_change_once(store: Arc<dyn Store>) {
    const WRITERS: usize = 4;
    const WRITES: usize = 150;
    let start = store.current_revision().await.expect("revision");
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..WRITES {
                let kv = store
                    .create(&pod(&format!("w{w}-{i:04}")), vec![1])
                    .await
                    .expect("create");
                revisions.push(kv.mod_revision);
            }
            revisions
        }));
    }
    // Start watches while the writes go on, each from a revision a little
    // in the past, so its history read overlaps live events.
    let mut watches = Vec::new();
    while watches.len() < 24 && !writers.iter().all(|w| w.is_finished()) {
        let now = store.current_revision().await.expect("revision");
        let after = (now - 10).max(start);
        watches.push((after, store.watch(PODS, after).await.expect("watch")));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut revisions = Vec::new();
    for writer in writers {
        revisions.extend(writer.await.expect("writer"));
    }
    revisions.sort_unstable();
    assert!(
        watches.len() >= 2,
        "the writes ended before watches could start"
    );
    for (after, mut watch) in watches {
        for &expected in revisions.iter().filter(|&&r| r > after) {
            let e = next_event(&mut watch).await;
            assert_eq!(
                e.revision(),
                expected,
                "watch after {after}: every change once, in order"
            );
        }
        assert_quiet(&mut watch, Duration::from_millis(50)).await;
    }
}
