//! The SQLite store's single writer thread and its group commit.
//!
//! Every write (create, update, delete, compact) is a [`Request`] on one
//! queue. The thread takes everything queued (up to [`MAX_GROUP`]), checks
//! and applies each write in turn inside ONE `BEGIN IMMEDIATE` transaction,
//! commits once (one WAL fsync under `synchronous=FULL`), publishes the
//! committed events in revision order to the watch broadcast, and only then
//! answers each caller. A write that fails its own check (CAS, exists, not
//! found) is answered with its error and leaves the rest of the group alone;
//! a failing commit answers the whole group with `Backend`.
//!
//! This thread owns the only writing connection; it must not be given work
//! that waits on the async runtime.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{broadcast, oneshot};

use super::rows::{self, Row, backend};
use crate::storage::{Event, KeyValue, Revision, StoreError};

/// At most this many writes share one transaction.
const MAX_GROUP: usize = 512;

/// Compaction deletes history in chunks of this many revisions, one
/// transaction each, so the WAL and the pause for writers stay bounded.
const COMPACT_CHUNK: Revision = 10_000;

/// A write.
#[derive(Debug)]
pub(super) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

/// A write's result.
#[derive(Debug)]
pub(super) enum Done {
    /// Create or update: the key's new value.
    Put(KeyValue),
    /// Delete: the deleted value and the revision of the delete.
    Deleted(KeyValue, Revision),
    /// Compaction finished (or had nothing to do).
    Compacted,
}

/// A queued write and where to send its result.
pub(super) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// Committed events, one broadcast message per commit.
pub(super) type EventBatch = Arc<Vec<Event>>;

/// Starts the writer thread; it exits when every sender of `requests` is
/// gone and the queue is drained.
pub(super) fn spawn(
    conn: Connection,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<EventBatch>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || run(conn, requests, events))
}

fn run(
    mut conn: Connection,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<EventBatch>,
) {
    let mut queue: VecDeque<Request> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match requests.recv() {
                Ok(request) => queue.push_back(request),
                Err(mpsc::RecvError) => break,
            }
        }
        while queue.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => queue.push_back(request),
                Err(_) => break,
            }
        }
        if let Some(Request {
            op: Op::Compact { revision },
            ..
        }) = queue.front()
        {
            let revision = *revision;
            if let Some(request) = queue.pop_front() {
                let result = compact(&mut conn, revision);
                if let Err(e) = &result {
                    tracing::warn!(revision, error = %e, "sqlite compaction failed");
                }
                let _ = request.reply.send(result);
            }
            continue;
        }
        let mut group = Vec::new();
        while let Some(request) = queue.pop_front() {
            if matches!(request.op, Op::Compact { .. }) {
                queue.push_front(request);
                break;
            }
            group.push(request);
        }
        commit_group(&mut conn, group, &events);
    }
    tracing::debug!("sqlite writer stopped");
}

/// Applies and commits one group, publishes its events, answers callers.
fn commit_group(
    conn: &mut Connection,
    group: Vec<Request>,
    events: &broadcast::Sender<EventBatch>,
) {
    let (ops, replies): (Vec<Op>, Vec<_>) = group.into_iter().map(|r| (r.op, r.reply)).unzip();
    match apply_group(conn, ops) {
        Ok(results) => {
            let committed: Vec<Event> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|(_, event)| event.clone()))
                .collect();
            if !committed.is_empty() {
                tracing::trace!(
                    writes = replies.len(),
                    events = committed.len(),
                    "sqlite group committed"
                );
                // No receivers is fine: nobody watches.
                let _ = events.send(Arc::new(committed));
            }
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result.map(|(done, _)| done));
            }
        }
        Err(e) => {
            tracing::error!(writes = replies.len(), error = %e, "sqlite group commit failed");
            for reply in replies {
                let _ = reply.send(Err(backend(&e)));
            }
        }
    }
}

type Applied = Result<(Done, Event), StoreError>;

fn apply_group(conn: &mut Connection, ops: Vec<Op>) -> rusqlite::Result<Vec<Applied>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        results.push(apply(&tx, op)?);
    }
    tx.commit()?;
    Ok(results)
}

/// Checks one write against the key's newest row and appends its row.
/// The outer error aborts the group; the inner one is this write's answer.
fn apply(conn: &Connection, op: Op) -> rusqlite::Result<Applied> {
    match op {
        Op::Create { key, value } => {
            let latest = rows::latest(conn, &key)?;
            if let Some(row) = &latest
                && !row.deleted
            {
                return Ok(Err(StoreError::AlreadyExists(key)));
            }
            let prev = latest.map_or(0, |row| row.id);
            let id = insert(conn, &key, true, false, 0, prev, &value, None)?;
            let kv = KeyValue {
                key,
                value,
                create_revision: id,
                mod_revision: id,
            };
            let event = Event {
                kind: crate::storage::EventKind::Added,
                kv: kv.clone(),
                prev: None,
            };
            Ok(Ok((Done::Put(kv), event)))
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let current = match live(conn, &key)? {
                Some(row) => row,
                None => return Ok(Err(StoreError::NotFound(key))),
            };
            if current.id != expected {
                return Ok(Err(conflict(key, expected, current)));
            }
            let id = insert(
                conn,
                &key,
                false,
                false,
                current.create_revision,
                current.id,
                &value,
                Some(&current.value),
            )?;
            let kv = KeyValue {
                key,
                value,
                create_revision: current.create_revision,
                mod_revision: id,
            };
            let event = Event {
                kind: crate::storage::EventKind::Modified,
                kv: kv.clone(),
                prev: Some(current.into_kv()),
            };
            Ok(Ok((Done::Put(kv), event)))
        }
        Op::Delete { key, expected } => {
            let current = match live(conn, &key)? {
                Some(row) => row,
                None => return Ok(Err(StoreError::NotFound(key))),
            };
            if let Some(expected) = expected
                && current.id != expected
            {
                return Ok(Err(conflict(key, expected, current)));
            }
            let id = insert(
                conn,
                &key,
                false,
                true,
                current.create_revision,
                current.id,
                &[],
                Some(&current.value),
            )?;
            let prev = current.into_kv();
            let event = Event {
                kind: crate::storage::EventKind::Deleted,
                kv: KeyValue {
                    key,
                    value: Vec::new(),
                    create_revision: prev.create_revision,
                    mod_revision: id,
                },
                prev: Some(prev.clone()),
            };
            Ok(Ok((Done::Deleted(prev, id), event)))
        }
        Op::Compact { .. } => Err(rusqlite::Error::InvalidParameterName(
            "compaction cannot join a write group".into(),
        )),
    }
}

/// The key's newest row if the key currently exists.
fn live(conn: &Connection, key: &str) -> rusqlite::Result<Option<Row>> {
    Ok(rows::latest(conn, key)?.filter(|row| !row.deleted))
}

fn conflict(key: String, expected: Revision, current: Row) -> StoreError {
    StoreError::Conflict {
        key,
        expected,
        current: Box::new(current.into_kv()),
    }
}

#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &Connection,
    key: &str,
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
    old_value: Option<&[u8]>,
) -> rusqlite::Result<Revision> {
    conn.prepare_cached(
        "INSERT INTO log (name, created, deleted, create_revision, prev_revision, value, old_value) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key.as_bytes(),
        created,
        deleted,
        create_revision,
        prev_revision,
        value,
        old_value
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Discards history older than `revision`: every row superseded by a row
/// at or before `revision`, and every delete row before it. Rows at or
/// after `revision` stay, so ranges at `revision` or later and watches
/// from `revision - 1` or later still work. Idempotent; `revision <= 1`
/// and revisions at or below the last compaction have nothing to discard.
fn compact(conn: &mut Connection, revision: Revision) -> Result<Done, StoreError> {
    let (current, compacted) = {
        let current = rows::current_revision(conn).map_err(backend)?;
        let compacted = rows::compacted_revision(conn).map_err(backend)?;
        (current, compacted)
    };
    if revision <= compacted.max(1) {
        return Ok(Done::Compacted);
    }
    if revision > current {
        return Err(StoreError::FutureRevision {
            requested: revision,
            current,
        });
    }
    let started = std::time::Instant::now();
    let mut done = compacted;
    let mut removed = 0usize;
    while done < revision {
        let hi = (done + COMPACT_CHUNK).min(revision);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        // Each row names its predecessor: every row in (done, hi] makes its
        // predecessor superseded. Predecessors of earlier rows went in
        // earlier compactions.
        removed += tx
            .execute(
                "DELETE FROM log WHERE id IN \
                 (SELECT prev_revision FROM log WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
                params![done, hi],
            )
            .map_err(backend)?;
        removed += tx
            .execute(
                "DELETE FROM log WHERE deleted = 1 AND id >= ?1 AND id < ?2",
                params![done, hi],
            )
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('compacted', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [hi],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        done = hi;
    }
    tracing::info!(
        revision,
        removed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sqlite store compacted"
    );
    Ok(Done::Compacted)
}
