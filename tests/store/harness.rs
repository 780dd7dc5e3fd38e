//! Fresh stores for one test each, with the guards that remove them.

use std::sync::Arc;
use std::time::Duration;

use keelson_control_plane::storage::etcd::EtcdStore;
use keelson_control_plane::storage::sqlite::SqliteStore;
use keelson_control_plane::storage::{Event, Store, StoreError, WatchStream};
use keelson_e2e::etcd::EtcdServer;

/// A store and what must outlive it. Fields drop in order: the store
/// first (the SQLite writer stops), then its file or etcd process.
pub struct Backend {
    store: Arc<dyn Store>,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Etcd(#[allow(dead_code)] EtcdServer),
}

impl Backend {
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
}

/// A SQLite store on a new file in a temporary directory.
pub fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("open sqlite store");
    Backend {
        store: Arc::new(store),
        _guard: Guard::Sqlite(dir),
    }
}

/// An etcd store on a private etcd server.
pub async fn etcd() -> Backend {
    let server = EtcdServer::start().expect("start etcd");
    let store = EtcdStore::connect(&[server.endpoint()])
        .await
        .expect("connect to etcd");
    Backend {
        store: Arc::new(store),
        _guard: Guard::Etcd(server),
    }
}

/// How long a test waits for an expected watch event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The next watch event; panics on an error, the end of the stream or a
/// timeout.
pub async fn next_event(watch: &mut WatchStream) -> Event {
    use futures::StreamExt;
    match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// Asserts no watch item arrives within `wait`.
pub async fn assert_quiet(watch: &mut WatchStream, wait: Duration) {
    use futures::StreamExt;
    if let Ok(item) = tokio::time::timeout(wait, watch.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

/// Unwraps a result expected to fail, for `match`ing its error.
pub fn expect_err<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) -> StoreError {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(e) => e,
    }
}
