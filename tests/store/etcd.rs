//! etcd-only behaviour: several stores (as several keelson-server
//! processes would have) on one etcd share one state and one revision
//! sequence.

use std::sync::Arc;

use keelson_control_plane::storage::etcd::EtcdStore;
use keelson_control_plane::storage::{EventKind, Store, StoreError};
use keelson_e2e::etcd::EtcdServer;

use crate::harness::next_event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_state_and_revision_sequence() {
    let server = EtcdServer::start().expect("start etcd");
    let one: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(&[server.endpoint()])
            .await
            .expect("connect one"),
    );
    let two: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(&[server.endpoint()])
            .await
            .expect("connect two"),
    );
    let start = one.current_revision().await.expect("revision");
    let mut watch_on_one = one.watch("/shared/", start).await.expect("watch");

    let a = one
        .create("/shared/a", b"1".to_vec())
        .await
        .expect("create");
    assert_eq!(two.get("/shared/a").await.expect("get"), Some(a.clone()));
    assert!(matches!(
        two.create("/shared/a", b"2".to_vec()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let a2 = two
        .update("/shared/a", b"2".to_vec(), a.mod_revision)
        .await
        .expect("update through two");
    match one.update("/shared/a", b"3".to_vec(), a.mod_revision).await {
        Err(StoreError::Conflict { current, .. }) => assert_eq!(*current, a2),
        other => panic!("expected Conflict, got {other:?}"),
    }

    // Interleaved writes through both get one increasing sequence.
    let mut last = a2.mod_revision;
    for i in 0..10 {
        let store = if i % 2 == 0 { &one } else { &two };
        let kv = store
            .create(&format!("/shared/k{i}"), vec![i])
            .await
            .expect("create");
        assert!(kv.mod_revision > last);
        last = kv.mod_revision;
        assert_eq!(one.current_revision().await.expect("revision"), last);
        assert_eq!(two.current_revision().await.expect("revision"), last);
    }

    // A watch through one sees writes made through two.
    let e = next_event(&mut watch_on_one).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Added, &a));
    let e = next_event(&mut watch_on_one).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Modified, &a2));
    for i in 0..10u8 {
        let e = next_event(&mut watch_on_one).await;
        assert_eq!(e.kv.key, format!("/shared/k{i}"));
    }

    // A compaction through one is seen through two.
    one.compact(last).await.expect("compact");
    assert_eq!(two.compacted_revision().await.expect("compacted"), last);
    assert!(matches!(
        two.range("/shared/", None, None, Some(a.mod_revision))
            .await,
        Err(StoreError::Compacted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_no_etcd_fails() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let started = std::time::Instant::now();
    match EtcdStore::connect(&[format!("http://127.0.0.1:{port}")]).await {
        Err(StoreError::Backend(message)) => {
            eprintln!("connect failed after {:?}: {message}", started.elapsed())
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_etcd_ends_watches_and_fails_requests() {
    use futures::StreamExt;
    let server = EtcdServer::start().expect("start etcd");
    let store = EtcdStore::connect(&[server.endpoint()])
        .await
        .expect("connect");
    let mut watch = store.watch("/", 0).await.expect("watch");
    drop(server);
    match tokio::time::timeout(std::time::Duration::from_secs(20), watch.next()).await {
        Ok(None) | Ok(Some(Err(StoreError::Backend(_)))) => {}
        Ok(other) => panic!("expected the watch to end or fail, got {other:?}"),
        Err(_) => panic!("the watch hung after etcd died"),
    }
    assert!(matches!(store.get("/a").await, Err(StoreError::Backend(_))));
}
