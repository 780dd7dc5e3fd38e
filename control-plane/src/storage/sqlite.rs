//! The embedded default store: one SQLite file holding an append-only
//! revision log, as k3s's kine does.
//!
//! - Every write appends a row whose `id` (`AUTOINCREMENT`, so never
//!   reused, also across restarts and compactions) is the revision. Reads
//!   at a past revision take each key's newest row at or before it.
//! - All writes go through one writer thread ([`writer`]) that group
//!   commits: many writes, each with its own compare-and-swap check, in one
//!   transaction and one fsync (`journal_mode=WAL`, `synchronous=FULL`), and
//!   a write is answered only once its commit is durable.
//! - Reads run on blocking threads (`spawn_blocking`) over a small pool of
//!   read connections; WAL lets them proceed alongside the writer.
//! - Watches ([`watch`]) replay the log and then follow the writer's
//!   broadcast of committed events.
//!
//! One process owns a file: a second process writing the same file would
//! keep CAS correct (checks run inside `BEGIN IMMEDIATE`) but its watchers
//! would miss the other's writes. This module owns the file and nothing
//! else; it knows nothing of Kubernetes objects.

mod rows;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{broadcast, oneshot};

use self::rows::backend;
use self::writer::{Done, EventBatch, Op, Request};
use super::{KeyValue, RangeResult, Revision, Store, StoreError, WatchStream};

/// How long a connection waits for a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// Commits buffered for watchers that have not caught up yet; a watcher
/// further behind rereads the log.
const EVENT_BUFFER: usize = 1_024;

/// The SQLite-backed [`Store`]. Dropping it waits for the writer thread to
/// finish the writes already queued (so the file can be reopened at once)
/// and ends every watch stream.
pub struct SqliteStore {
    path: PathBuf,
    reader: Arc<Reader>,
    writes: Option<mpsc::Sender<Request>>,
    events: broadcast::Sender<EventBatch>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Keeps query plans stable so cached statements are not re-planned on
/// every bind (the bundled SQLite has STAT4, which otherwise re-prepares
/// `WHERE name = ?` lookups each call — measured at ~13 % of server CPU).
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if absent) the store file at `path`, sets it up
    /// (WAL, `synchronous=FULL`, schema) and starts the writer thread.
    /// Revisions continue from the file's last one.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        stable_plans(&conn).map_err(backend)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "sqlite: {} does not support WAL (journal_mode is {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.execute_batch(rows::SCHEMA).map_err(backend)?;
        match rows::meta(&conn, "schema_version").map_err(backend)? {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [rows::SCHEMA_VERSION],
                )
                .map_err(backend)?;
                sync_parent_dir(path);
            }
            Some(rows::SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Backend(format!(
                    "sqlite: {} has schema version {other}, this build understands {}",
                    path.display(),
                    rows::SCHEMA_VERSION
                )));
            }
        }
        let revision = rows::current_revision(&conn).map_err(backend)?;
        let compacted = rows::compacted_revision(&conn).map_err(backend)?;

        let (writes, requests) = mpsc::channel();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let writer = writer::spawn(conn, requests, events.clone())
            .map_err(|e| StoreError::Backend(format!("sqlite: starting the writer: {e}")))?;
        tracing::info!(path = %path.display(), revision, compacted, "sqlite store opened");
        Ok(SqliteStore {
            path: path.to_path_buf(),
            reader: Arc::new(Reader {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
            writes: Some(writes),
            events,
            writer: Some(writer),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Backend("sqlite: the writer thread has stopped".into());
        self.writes
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request { op, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit;
        // waiting for it means a reopen of the same file never races it.
        drop(self.writes.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "sqlite writer thread panicked");
        }
    }
}

/// Fsyncs the directory holding a newly created store file, so the file's
/// directory entry is as durable as its contents. Best effort.
fn sync_parent_dir(path: &Path) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not fsync the store's directory");
    }
}

/// The read side: a pool of read-only-by-pragma connections used on
/// blocking threads.
struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        stable_plans(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect().map_err(backend)?,
        };
        let result = f(&conn);
        // A connection left inside a transaction (it should not be) is
        // not reused.
        if conn.is_autocommit() {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        result
    }

    /// Runs `f` with a read connection on a blocking thread.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = Arc::clone(self);
        tokio::task::spawn_blocking(move || reader.with_conn(f))
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite: read task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.reader
            .run(move |conn| {
                Ok(rows::latest(conn, &key)
                    .map_err(backend)?
                    .filter(|row| !row.deleted)
                    .map(rows::Row::into_kv))
            })
            .await
    }

    /// `limit` of `Some(0)` means no limit, as in etcd.
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<Revision>,
    ) -> Result<RangeResult, StoreError> {
        let start = rows::range_start(prefix, start_after);
        let end = rows::prefix_end(prefix);
        let limit = limit
            .filter(|&l| l > 0)
            .map(|l| i64::try_from(l).unwrap_or(i64::MAX - 1));
        self.reader
            .run(move |conn| {
                let tx = conn.unchecked_transaction().map_err(backend)?;
                let current = rows::current_revision(&tx).map_err(backend)?;
                let at = match revision {
                    Some(requested) if requested > 0 => {
                        if requested > current {
                            return Err(StoreError::FutureRevision { requested, current });
                        }
                        let compacted = rows::compacted_revision(&tx).map_err(backend)?;
                        if requested < compacted {
                            return Err(StoreError::Compacted {
                                requested,
                                compacted,
                            });
                        }
                        requested
                    }
                    _ => current,
                };
                let mut found =
                    rows::range(&tx, &start, &end, at, limit.map(|l| l + 1)).map_err(backend)?;
                let more = limit.is_some_and(|l| found.len() as i64 > l);
                if let Some(l) = limit {
                    found.truncate(usize::try_from(l).unwrap_or(usize::MAX));
                }
                Ok(RangeResult {
                    kvs: found.into_iter().map(rows::Row::into_kv).collect(),
                    revision: at,
                    more,
                })
            })
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let start = prefix.as_bytes().to_vec();
        let end = rows::prefix_end(prefix);
        self.reader
            .run(move |conn| rows::count(conn, &start, &end).map_err(backend))
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        match self
            .write(Op::Create {
                key: key.to_owned(),
                value,
            })
            .await?
        {
            Done::Put(kv) => Ok(kv),
            other => Err(unexpected(other)),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        match self
            .write(Op::Update {
                key: key.to_owned(),
                value,
                expected,
            })
            .await?
        {
            Done::Put(kv) => Ok(kv),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        match self
            .write(Op::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            Done::Deleted(kv, revision) => Ok((kv, revision)),
            other => Err(unexpected(other)),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.reader
            .run(|conn| rows::current_revision(conn).map_err(backend))
            .await
    }

    /// The revision of the last compaction, 0 if none.
    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.reader
            .run(|conn| rows::compacted_revision(conn).map_err(backend))
            .await
    }

    /// `Err(Compacted)` when `after + 1` is below the last compaction.
    /// `Deleted` events carry the deleted key's `create_revision`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let after = after.max(0);
        // Subscribe before reading history: see `watch`'s module docs.
        let live = self.events.subscribe();
        let start = prefix.as_bytes().to_vec();
        let end = rows::prefix_end(prefix);
        let (s, e) = (start.clone(), end.clone());
        let first = self
            .reader
            .run(move |conn| watch::read_page(conn, after, &s, &e))
            .await?;
        Ok(watch::stream(
            Arc::clone(&self.reader),
            live,
            prefix.to_owned(),
            start,
            end,
            after,
            first,
        ))
    }

    /// Idempotent: compacting at or below the last compaction (or at
    /// revision 1 or below) does nothing. `Err(FutureRevision)` above the
    /// current revision.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.write(Op::Compact { revision }).await? {
            Done::Compacted => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Backend(format!("sqlite: writer answered with {done:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EventKind;
    use futures::StreamExt;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("state.db")).expect("open");
        (dir, store)
    }

    fn rows_in_log(path: &Path) -> i64 {
        let conn = Connection::open(path).expect("open");
        conn.query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
            .expect("count")
    }

    #[tokio::test]
    async fn file_uses_wal_and_reads_see_acknowledged_writes() {
        let (_dir, store) = open();
        let conn = Connection::open(store.path()).expect("open");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let kv = store.create("/a", b"1".to_vec()).await.expect("create");
        assert_eq!(
            store.get("/a").await.expect("get"),
            Some(kv),
            "a read after an acknowledged write sees it"
        );
    }

    #[tokio::test]
    async fn concurrent_cas_updates_have_one_winner() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let kv = store.create("/k", b"0".to_vec()).await.expect("create");
        // Many updaters all expecting the same revision land in the same
        // group: exactly one may win.
        let mut tasks = Vec::new();
        for i in 0..32 {
            let store = Arc::clone(&store);
            let expected = kv.mod_revision;
            tasks.push(tokio::spawn(async move {
                store
                    .update("/k", format!("{i}").into_bytes(), expected)
                    .await
            }));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.expect("join") {
                Ok(_) => wins += 1,
                Err(StoreError::Conflict { current, .. }) => {
                    assert!(current.mod_revision > kv.mod_revision)
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(wins, 1);
    }

    #[tokio::test]
    async fn compaction_removes_superseded_rows_only() {
        let (_dir, store) = open();
        let a = store.create("/a", b"1".to_vec()).await.expect("create a");
        let a = store
            .update("/a", b"2".to_vec(), a.mod_revision)
            .await
            .expect("update a");
        let a = store
            .update("/a", b"3".to_vec(), a.mod_revision)
            .await
            .expect("update a");
        let b = store.create("/b", b"1".to_vec()).await.expect("create b");
        let (_, deleted_at) = store.delete("/b", None).await.expect("delete b");
        let c = store.create("/c", b"1".to_vec()).await.expect("create c");
        assert_eq!(rows_in_log(store.path()), 6);

        // Compacting at c: a's two old rows, b's create and (before c) its
        // delete go; a@3 and c stay.
        store.compact(c.mod_revision).await.expect("compact");
        assert_eq!(rows_in_log(store.path()), 2);
        assert_eq!(
            store.compacted_revision().await.expect("compacted"),
            c.mod_revision
        );
        let at = store
            .range("/", None, None, Some(c.mod_revision))
            .await
            .expect("range at compaction");
        assert_eq!(at.kvs, vec![a.clone(), c.clone()]);
        match store.range("/", None, None, Some(deleted_at)).await {
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => assert_eq!((requested, compacted), (deleted_at, c.mod_revision)),
            other => panic!("expected Compacted, got {other:?}"),
        }
        // Idempotent and never backwards.
        store.compact(b.mod_revision).await.expect("compact again");
        assert_eq!(
            store.compacted_revision().await.expect("compacted"),
            c.mod_revision
        );
        // Future revisions are refused.
        assert!(matches!(
            store.compact(c.mod_revision + 10).await,
            Err(StoreError::FutureRevision { .. })
        ));
    }

    #[tokio::test]
    async fn delete_at_compaction_revision_still_replays() {
        let (_dir, store) = open();
        let a = store.create("/a", b"1".to_vec()).await.expect("create");
        let (_, deleted_at) = store
            .delete("/a", Some(a.mod_revision))
            .await
            .expect("delete");
        store.compact(deleted_at).await.expect("compact");
        let mut watch = store.watch("/", deleted_at - 1).await.expect("watch");
        let event = watch.next().await.expect("event").expect("ok");
        assert_eq!(event.kind, EventKind::Deleted);
        assert_eq!(event.revision(), deleted_at);
        assert_eq!(event.prev.expect("prev").value, b"1".to_vec());
        assert!(matches!(
            store.watch("/", deleted_at - 2).await,
            Err(StoreError::Compacted { .. })
        ));
    }

    #[tokio::test]
    async fn compaction_in_many_chunks_matches_one_pass() {
        let (_dir, store) = open();
        let mut kv = store.create("/x", b"0".to_vec()).await.expect("create");
        // More revisions than one compaction chunk would not keep the test
        // fast; check chunk boundaries instead by compacting stepwise.
        for i in 1..50 {
            kv = store
                .update("/x", format!("{i}").into_bytes(), kv.mod_revision)
                .await
                .expect("update");
            if i % 7 == 0 {
                store.compact(kv.mod_revision - 3).await.expect("compact");
            }
        }
        store.compact(kv.mod_revision).await.expect("compact");
        assert_eq!(rows_in_log(store.path()), 1);
        assert_eq!(store.get("/x").await.expect("get"), Some(kv));
    }

    #[tokio::test]
    async fn dropping_the_store_ends_watches() {
        let (_dir, store) = open();
        let mut watch = store.watch("/", 0).await.expect("watch");
        store.create("/a", b"1".to_vec()).await.expect("create");
        assert!(watch.next().await.is_some());
        drop(store);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .expect("stream ends")
                .is_none()
        );
    }
}
